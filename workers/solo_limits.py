"""Task time limits for a worker of the solo pool (the gpu worker: one process, no idle pool child).

Celery enforces time limits only in the prefork pool, whose parent kills a child that overran. A solo worker runs
its task in its own main thread, so it enforces them itself:
- the soft limit raises SoftTimeLimitExceeded in the task (SIGALRM, handled in the main thread), as prefork's
  does: a model call or a tool loop blocked on a socket is interrupted, and the task rolls back and says why;
- the hard limit, for a task that ignored the soft one (stuck in C code, or it caught the exception), kills the
  worker: macha-ai then stops and its service manager starts it again, and the message, acknowledged late, goes
  back on the queue. Nothing runs past the broker's visibility timeout (kept above the hard limit), so no message
  is ever handed to a second worker while the first still runs it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from celery import signals
from celery.exceptions import SoftTimeLimitExceeded

log = logging.getLogger(__name__)
#: How often the watchdog looks at the running task.
WATCH_EVERY = 0.5


def limits_of(task: Any) -> tuple[float | None, float | None]:
    """(hard, soft) seconds for this run: the message's own, else the task's, else the app's defaults."""
    hard, soft = (getattr(task.request, "timelimit", None) or (None, None))
    conf = task.app.conf
    hard = hard or task.time_limit or conf.task_time_limit
    soft = soft or task.soft_time_limit or conf.task_soft_time_limit
    return hard, soft


class SoloTimeLimits:
    """Arms the limits when a task starts, disarms them when it ends (task_prerun / task_postrun, which the solo
    pool sends in the main thread around each task)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: tuple[str, float] | None = None  # (task id, hard deadline)
        self._watchdog: threading.Thread | None = None

    def install(self) -> None:
        signal.signal(signal.SIGALRM, self._soft)
        signals.task_prerun.connect(self._start, weak=False)
        signals.task_postrun.connect(self._end, weak=False)

    def _start(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if task is None or threading.current_thread() is not threading.main_thread():
            return
        hard, soft = limits_of(task)
        if soft:
            signal.setitimer(signal.ITIMER_REAL, float(soft))
        with self._lock:
            self._running = (task_id or "?", time.monotonic() + float(hard) if hard else float("inf"))
            if hard and self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="hard-time-limit", daemon=True)
                self._watchdog.start()

    def _end(self, **_: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        with self._lock:
            self._running = None

    def _soft(self, _signum: int, _frame: Any) -> None:
        with self._lock:
            running = self._running
        if running is not None:  # an alarm that fired as the task ended has nothing to stop
            raise SoftTimeLimitExceeded()

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_EVERY)
            with self._lock:
                running = self._running
            if running is not None and time.monotonic() > running[1]:
                log.error("task %s ran past its hard time limit and ignored the soft one: killing the worker "
                          "(macha-ai stops and its service manager starts it again)", running[0])
                logging.shutdown()
                os.kill(os.getpid(), signal.SIGKILL)


def enforce_in_solo_worker() -> None:
    SoloTimeLimits().install()
