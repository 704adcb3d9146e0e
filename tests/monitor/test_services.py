"""Services: `systemctl show` parsing on recorded output, and transitions through a recording stand-in
`systemctl` on PATH (no systemd runs as PID 1 in the test machines)."""

from __future__ import annotations

import os

import pytest
from helpers import FIXTURES
from sqlalchemy import func, select
from fakes.systemctl import FakeSystemctl

from macha.config import load_settings
from macha.monitor.checks.services import run_services
from macha.monitor.collect.services import UnitState, parse_failed, parse_show
from macha.store.db import Store
from macha.store.models import ServiceStatus, TriggerEvent


def test_recorded_systemctl_show_output_is_parsed() -> None:
    states = parse_show((FIXTURES / "systemctl_show.txt").read_text())
    assert states == [
        UnitState("nginx.service", "loaded", "active", "running", "success", 0),
        UnitState("backup.service", "loaded", "failed", "failed", "exit-code", 5),
        UnitState("typo.service", "not-found", "inactive", "dead", "success", 0),
    ]
    assert parse_failed('[{"unit":"x.service","load":"loaded","active":"failed","sub":"failed"}]')[0].unit == \
        "x.service"


@pytest.fixture
def systemctl(tmp_path, monkeypatch):
    fake = FakeSystemctl(tmp_path / "bin", units={
        "sshd.service": {"load": "loaded", "active": "active", "sub": "running"},
        "nginx.service": {"load": "loaded", "active": "active", "sub": "running"},
    })
    monkeypatch.setenv("PATH", f"{fake.bindir}:{os.environ['PATH']}")
    return fake


def test_transitions_are_events_and_a_steady_failure_is_not_raised_again(systemctl, tmp_path, db_url) -> None:
    settings = load_settings(hostname="s1", state_dir=tmp_path / "s", critical_services=["sshd", "nginx", "ghost"])
    store = Store(db_url)
    first = run_services(store, settings)
    assert (first.failed, first.recovered) == ([], [])
    assert first.notes == ["criticalServices: ghost.service is not a unit on this host (check the name)"]

    systemctl.set_units({
        "sshd.service": {"load": "loaded", "active": "active", "sub": "running"},
        "nginx.service": {"load": "loaded", "active": "failed", "sub": "failed", "result": "exit-code"},
        "backup.service": {"load": "loaded", "active": "failed", "sub": "failed", "result": "timeout"},
    })
    second = run_services(store, settings)
    assert sorted(second.failed) == ["backup.service", "nginx.service"]
    assert run_services(store, settings).failed == []  # still failed: not raised again

    systemctl.set_units({"sshd.service": {"load": "loaded", "active": "active", "sub": "running"},
                         "nginx.service": {"load": "loaded", "active": "active", "sub": "running"}})
    fourth = run_services(store, settings)
    assert sorted(fourth.recovered) == ["backup.service", "nginx.service"]
    with store.session() as s:
        events = {(e.pattern_id, e.meta["unit"]): e.severity for e in s.execute(select(TriggerEvent)).scalars()}
        assert events == {("service_failed", "nginx.service"): "critical",  # a configured critical service
                          ("service_failed", "backup.service"): "high",
                          ("service_recovered", "nginx.service"): "info",
                          ("service_recovered", "backup.service"): "info"}
        assert s.execute(select(func.count()).select_from(ServiceStatus)).scalar() >= 8
    store.dispose()


def test_no_systemctl_is_a_note_not_a_crash(tmp_path, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    settings = load_settings(hostname="s2", state_dir=tmp_path / "s")
    store = Store(settings.effective_database_url)
    result = run_services(store, settings)
    assert result.checked == 0 and "systemctl is not installed" in result.notes[0]
    store.dispose()
