"""The periodic schedule, built from Settings (triggerInterval, reviewInterval, sarCollectFrequency...)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from macha.collect.sar import calendar_to_crontab
from macha.config import Settings


def build_beat_schedule(settings: Settings) -> dict[str, Any]:
    schedule = {
        "check-host": {
            "task": "macha.start_check",
            "schedule": float(settings.trigger_interval),
            "kwargs": {"hostname": settings.hostname, "reason": "schedule"},
            # A check older than its interval is superseded by the next one.
            "options": {"expires": float(settings.trigger_interval)},
        },
        "review-tick": {
            "task": "macha.review_tick",
            "schedule": float(settings.review_interval),
            "options": {"expires": float(settings.review_interval)},
        },
        "expire-approvals": {
            "task": "macha.expire_approvals",
            "schedule": 60.0,
            "options": {"expires": 60.0},
        },
        "reconcile": {
            "task": "macha.reconcile",
            "schedule": 60.0,
            "options": {"expires": 60.0},
        },
    }
    # Work that must run on this host, every triggerInterval, on its own queue (the route picks it).
    for key, task, enabled in (("collect-metrics", "macha.collect_metrics", settings.collect_metrics),
                               ("check-services", "macha.check_services", settings.check_services)):
        if enabled:
            schedule[key] = {
                "task": task,
                "schedule": float(settings.trigger_interval),
                "kwargs": {"hostname": settings.hostname},
                "options": {"expires": float(settings.trigger_interval)},
            }
    if settings.use_trigger_model:
        schedule["classify"] = {
            "task": "macha.classify",
            "schedule": float(settings.trigger_interval),
            "kwargs": {"hostname": settings.hostname},
            "options": {"expires": float(settings.trigger_interval)},
        }
    if settings.enable_sar:
        # A run that lands while sadc is writing sees a cut-off record (a note); the next run picks it up.
        schedule["import-sar"] = {
            "task": "macha.import_sar",
            "schedule": crontab(**calendar_to_crontab(settings.sar_collect_frequency)),
            "kwargs": {"hostname": settings.hostname},
            "options": {"expires": 600.0},
        }
    if settings.memory.enable and settings.memory.config_paths:
        schedule["index-config"] = {
            "task": "macha.index_config",
            "schedule": 3600.0,
            "kwargs": {"hostname": settings.hostname},
            "options": {"expires": 3600.0},
        }
    if settings.meta.background_interval:
        schedule["background-analysis"] = {
            "task": "macha.background_analysis",
            "schedule": float(settings.meta.background_interval),
            "kwargs": {"hostname": settings.hostname},
            "options": {"expires": float(settings.meta.background_interval)},
        }
    schedule["retention"] = {"task": "macha.retention", "schedule": 3600.0, "options": {"expires": 3600.0}}
    return schedule
