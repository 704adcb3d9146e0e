"""The periodic schedule, built from Settings (triggerInterval, reviewInterval, sarCollectFrequency...)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from macha.config import Settings
from macha.core.calendar import calendar_to_crontab
from macha.monitor.checks.registry import HOST_CHECKS


def _entry(task: str, every: float, schedule: Any = None, **kwargs: Any) -> dict[str, Any]:
    """A task every ``every`` seconds (or on ``schedule``); a run older than that is superseded by the next one."""
    entry: dict[str, Any] = {"task": task, "schedule": schedule if schedule is not None else float(every),
                             "options": {"expires": float(every)}}
    if kwargs:
        entry["kwargs"] = kwargs
    return entry


def build_beat_schedule(settings: Settings) -> dict[str, Any]:
    host = settings.hostname
    tick = settings.trigger_interval
    schedule = {
        "check-host": _entry("macha.start_check", tick, hostname=host, reason="schedule"),
        "review-tick": _entry("macha.review_tick", settings.review_interval),
        "expire-approvals": _entry("macha.expire_approvals", 60),
        "reconcile": _entry("macha.reconcile", 60),
        "retention": _entry("macha.retention", 3600),
    }
    # The registered host checks, on this host's own queue (the route picks it), each as configured.
    for check in HOST_CHECKS:
        if check.enabled(settings):
            when = crontab(**calendar_to_crontab(check.calendar(settings))) if check.calendar else None
            schedule[check.name] = _entry(check.task, check.every(settings), when, hostname=host)
    if settings.memory.enable and settings.memory.config_paths:
        schedule["index-config"] = _entry("macha.index_config", 3600, hostname=host)
    if settings.meta.background_interval:
        schedule["background-analysis"] = _entry("macha.background_analysis", settings.meta.background_interval,
                                                 hostname=host)
    return schedule
