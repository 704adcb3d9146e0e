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
    """The schedule of this host's role: a collector's own checks and beat (on its queue), the brain's ticks and
    the fleet watch, both for `all`; the gpu role runs no schedule."""
    role = settings.role
    schedule: dict[str, Any] = {}
    if role in ("all", "collector"):
        schedule.update(_host_entries(settings))
    if role in ("all", "brain"):
        schedule.update({
            "review-tick": _entry("macha.review_tick", settings.review_interval),
            "expire-approvals": _entry("macha.expire_approvals", 60),
            "reconcile": _entry("macha.reconcile", 60),
            "retention": _entry("macha.retention", 3600),
            "fleet-watch": _entry("macha.fleet_watch", settings.trigger_interval),
        })
    return schedule


def _host_entries(settings: Settings) -> dict[str, Any]:
    """What reads this machine: the journal check, the registered host checks, the config index and the beat."""
    host = settings.hostname
    tick = settings.trigger_interval
    check = _entry("macha.start_check", tick, hostname=host, reason="schedule")
    if settings.role == "collector":
        # The chain starts on the collector's own queue: its journal is read while the brain is away too.
        check["options"]["queue"] = f"host.{host}"
    beat = _entry("macha.heartbeat", tick, hostname=host)
    # Ahead of collection on its queue (as actions are): a busy collector is not a silent one.
    beat["options"]["priority"] = 1
    schedule = {"check-host": check, "heartbeat": beat}
    # The registered host checks, on this host's own queue (the route picks it), each as configured; one that only
    # reads the store (the classifier) goes to the review queue, to the brain, as does the background analysis.
    for c in HOST_CHECKS:
        if c.enabled(settings):
            when = crontab(**calendar_to_crontab(c.calendar(settings))) if c.calendar else None
            schedule[c.name] = _entry(c.task, c.every(settings), when, hostname=host)
    # Indexing the configuration writes semantic memory (Chroma and an embedding model): not on a collector.
    if settings.role == "all" and settings.memory.enable and settings.memory.config_paths:
        schedule["index-config"] = _entry("macha.index_config", 3600, hostname=host)
    if settings.meta.background_interval:
        schedule["background-analysis"] = _entry("macha.background_analysis", settings.meta.background_interval,
                                                 hostname=host)
    return schedule
