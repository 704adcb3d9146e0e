"""The periodic schedule, built from Settings (triggerInterval, reviewInterval, sarCollectFrequency...)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from macha.config import Settings
from macha.core.calendar import calendar_to_crontab


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
    # Work on this host's own queue (the route picks it) every triggerInterval, and the rest as configured.
    optional = (
        ("collect-metrics", settings.collect_metrics, lambda: _entry("macha.collect_metrics", tick, hostname=host)),
        ("check-services", settings.check_services, lambda: _entry("macha.check_services", tick, hostname=host)),
        ("classify", settings.use_trigger_model, lambda: _entry("macha.classify", tick, hostname=host)),
        # A run that lands while sadc is writing sees a cut-off record (a note); the next run picks it up.
        ("import-sar", settings.enable_sar, lambda: _entry(
            "macha.import_sar", 600, crontab(**calendar_to_crontab(settings.sar_collect_frequency)), hostname=host)),
        ("index-config", settings.memory.enable and bool(settings.memory.config_paths),
         lambda: _entry("macha.index_config", 3600, hostname=host)),
        ("background-analysis", bool(settings.meta.background_interval),
         lambda: _entry("macha.background_analysis", settings.meta.background_interval, hostname=host)),
    )
    for key, enabled, build in optional:
        if enabled:
            schedule[key] = build()
    return schedule
