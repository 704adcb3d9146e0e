"""A Celery app for tests of the worker processes themselves: Macha's app and tasks, plus tasks that overrun their
time limit on purpose and one that says what the worker process has imported. Run it as a worker does:
``-A helpers.worker_probe`` with tests/ on PYTHONPATH."""

from __future__ import annotations

import os
import sys
import time

from celery.exceptions import SoftTimeLimitExceeded

# Macha's app with its own tasks registered, as the real worker has them.
from workers.tasks import app


@app.task(name="probe.sleep")
def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


@app.task(name="probe.ignore_soft_limit")
def ignore_soft_limit(seconds: float) -> str:
    """A runaway that catches the soft limit and goes on: only the hard limit stops it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(max(0.0, deadline - time.monotonic()))
        except SoftTimeLimitExceeded:
            pass
    return "ran to the end"


@app.task(name="probe.modules")
def modules(names: list[str]) -> dict:
    """Which of these top-level modules the process running this task has imported, and its pid."""
    return {"pid": os.getpid(), "loaded": sorted(n for n in names if n in sys.modules)}
