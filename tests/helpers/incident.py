"""A store holding a recorded incident, for the read layer and the commands that show it."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from macha.config import load_settings
from macha.core.states import ActionStatus
from macha.monitor.checks.journal import ensure_host, run_check
from macha.monitor.collect.journal import JournalSource
from macha.store.db import Store
from macha.store.models import Action, ServiceStatus, SystemMetric, ThresholdState, utcnow

OOM_JOURNAL = Path(__file__).resolve().parent.parent / "fixtures" / "oom.journal"


def record_incident(store: Store, tmp_path: Path) -> None:
    """web1 read the README's OOM journal; its memory is past its threshold, postgresql failed (nginx failed and
    came back), sixty memory samples, one action waits for approval; db1 is registered and quiet."""
    journal = tmp_path / "oom.journal"
    shutil.copyfile(OOM_JOURNAL, journal)
    settings = load_settings(state_dir=tmp_path / "state", hostname="web1")
    run_check(store, settings, hostname="web1", source=JournalSource.file(str(journal)))
    ensure_host(store, "db1")
    now = utcnow()
    with store.session() as s:
        s.add_all([
            ThresholdState(hostname="web1", series="memory_percent", streak=3, raised=True, value=97.5),
            ServiceStatus(time=now, hostname="web1", service_name="postgresql.service", status="failed",
                          active_state="failed", meta={"result": "oom-kill"}),
            ServiceStatus(time=now - timedelta(minutes=5), hostname="web1", service_name="nginx.service",
                          status="failed", active_state="failed"),
            ServiceStatus(time=now, hostname="web1", service_name="nginx.service", status="running",
                          active_state="active"),
            *[SystemMetric(time=now - timedelta(minutes=m), hostname="web1", metric_name="memory_percent",
                           value=50.0 + m, unit="%") for m in range(60)],
            Action(hostname="web1", action="restart_service", arguments={"unit": "postgresql.service"},
                   dedup_key="k1", risk="low", status=ActionStatus.PENDING, proposer="review", reason="oom",
                   autonomy_level="suggest"),
        ])
