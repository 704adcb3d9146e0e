"""A Celery worker as `macha-ai` runs it: ``python -m macha.cli.celery_worker SUPERVISOR_PID <celery arguments>``.

The worker dies with `macha-ai`, and its pool children and embedded beat die with the worker, whoever is killed
with -9: a process left running would finish a task that the next `macha-ai` has already re-queued (it re-queues
whatever its dead predecessor's workers held), or send the schedule beside the next one's beat; and nothing of Macha
may outlive `macha-ai`. Celery ties its pool children to the worker itself (without checking that the worker is
still there when it does); the embedded beat, a process of its own, it does not tie at all.

SIGKILL rather than a warm shutdown: once its parent is gone, a process of the tree is orphaned work, and what it
held is acknowledged late, so it goes back on the queue.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from macha.core.lifetime import die_with_parent


def main() -> None:
    try:
        supervisor = int(sys.argv[1])
    except (IndexError, ValueError):
        sys.exit("usage: python -m macha.cli.celery_worker SUPERVISOR_PID CELERY_ARGUMENTS...")
    die_with_parent(signal.SIGKILL, supervisor)
    worker = os.getpid()

    def tie_to_worker(**_: Any) -> None:
        # Run in each pool child (forked by the worker's event loop, in its main thread) and in the embedded beat
        # process (forked by the worker's main thread); the solo pool sends it in the worker itself, which is tied
        # to macha-ai already.
        if os.getpid() != worker:
            die_with_parent(signal.SIGKILL, worker)

    from celery import maybe_patch_concurrency, signals

    signals.worker_process_init.connect(tie_to_worker, weak=False)
    signals.beat_embedded_init.connect(tie_to_worker, weak=False)
    sys.argv = ["celery", *sys.argv[2:]]
    if _pool(sys.argv) == "solo":
        # Celery enforces time limits only in the prefork pool.
        from workers.solo_limits import enforce_in_solo_worker

        enforce_in_solo_worker()
    maybe_patch_concurrency()  # as `python -m celery` does
    from celery.bin.celery import main as celery_main

    sys.exit(celery_main())


def _pool(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg in ("-P", "--pool") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--pool="):
            return arg.split("=", 1)[1]
    return None


if __name__ == "__main__":
    main()
