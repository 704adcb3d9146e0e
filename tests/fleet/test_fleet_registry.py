"""The fleet registry on both databases: roles recorded per host, a silent collector raised once and cleared when
it beats again, the same event on several hosts shown together in each one's review context, and the shared URLs
read from files (brokerUrlFile, databaseUrlFile)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from macha.config import load_settings
from macha.context.window import build_window
from macha.core.errors import ConfigError
from macha.monitor.checks import fleet
from macha.monitor.detect.triggers import state_trigger
from macha.store.db import Store
from macha.store.models import Host, TriggerEvent, utcnow
from macha.store.ops import insert_ignore


def _host(store: Store, name: str) -> Host:
    with store.session() as s:
        return s.execute(select(Host).where(Host.hostname == name)).scalar_one()


def _events(store: Store, name: str) -> list[tuple[str, str]]:
    with store.session() as s:
        return [(e.pattern_id, e.severity) for e in s.execute(
            select(TriggerEvent).where(TriggerEvent.hostname == name).order_by(TriggerEvent.id)).scalars()]


def test_a_silent_collector_is_raised_once_and_cleared_when_it_beats(db_url, tmp_path) -> None:
    store = Store(db_url)
    settings = load_settings(hostname="c1", state_dir=tmp_path, trigger_interval=10)
    assert settings.silent_after == 30  # 3 intervals unless fleet.silentAfter says
    fleet.register(store, settings, "collector")
    fleet.register(store, settings.model_copy(update={"role": "brain"}), "brain")
    assert fleet.roles_of(_host(store, "c1").macha_role) == {"brain", "collector"}
    fleet.register(store, load_settings(hostname="g1", state_dir=tmp_path), "gpu")
    assert _host(store, "c1").beat_at is None  # its worker beats, not its supervisor

    fleet.beat(store, "c1")
    beat_at = _host(store, "c1").beat_at
    assert fleet.watch(store, settings, beat_at + timedelta(seconds=29)).result["silent"] == []
    step = fleet.watch(store, settings, beat_at + timedelta(seconds=31))
    assert step.result["silent"] == ["c1"] and step.follow_ups.review_hosts == ["c1"]
    assert fleet.watch(store, settings, beat_at + timedelta(seconds=62)).result["silent"] == []  # once
    assert _events(store, "c1") == [("host_silent", "high")]
    assert _host(store, "c1").silent_since is not None
    assert _events(store, "g1") == []  # a gpu worker does not beat: never silent

    fleet.beat(store, "c1")
    back = fleet.watch(store, settings, _host(store, "c1").beat_at + timedelta(seconds=1))
    assert back.result["back"] == ["c1"] and _host(store, "c1").silent_since is None
    assert _events(store, "c1") == [("host_silent", "high"), ("host_back", "info")]
    store.dispose()


def test_the_same_event_on_several_hosts_is_one_line_in_each_review_context(db_url) -> None:
    store = Store(db_url)
    now = utcnow()
    with store.session() as s:
        for host in ("web1", "web2", "web3", "db1"):
            s.add(Host(hostname=host))
        rows = [state_trigger(h, now, "journal", "disk_full", "high", "No space left on device", "/var", {})
                for h in ("web1", "web2", "web3")]
        rows.append(state_trigger("db1", now, "journal", "oom", "high", "Out of memory", "x", {}))
        insert_ignore(s, TriggerEvent.__table__, rows, returning=("id",))
    text = build_window(store, "web1", 8000, include={"fleet"}).text
    assert "disk_full also on 2 other host(s): web2 (x1), web3 (x1)" in text
    assert "db1" not in text
    alone = build_window(store, "db1", 8000, include={"fleet"}).text
    assert "no other host logged these events" in alone
    store.dispose()


def test_shared_urls_are_read_from_files(tmp_path, monkeypatch) -> None:
    broker, database = tmp_path / "broker", tmp_path / "database"
    broker.write_text("redis://:secret@10.0.0.5:6379/0\n")
    database.write_text("postgresql+psycopg2://macha:secret@10.0.0.5/macha\n")
    settings = load_settings(state_dir=tmp_path, broker_url_file=broker, database_url_file=database)
    assert settings.effective_broker_url == "redis://:secret@10.0.0.5:6379/0"
    assert settings.effective_database_url.endswith("@10.0.0.5/macha") and not settings.embedded_broker

    for kwargs, message in (
        ({"broker_url_file": tmp_path / "missing"}, "brokerUrlFile"),
        ({"broker_url_file": database}, "must hold a Redis URL"),
        ({"broker_url_file": broker, "broker_url": "redis://x"}, "set brokerUrl or brokerUrlFile, not both"),
    ):
        with pytest.raises(ConfigError, match=message) as err:
            load_settings(state_dir=tmp_path, **kwargs)
        assert "secret" not in str(err.value)


def test_each_role_runs_its_part_of_the_schedule(tmp_path) -> None:
    from beat_schedule import build_beat_schedule

    from workers.app import route

    def schedule(role: str) -> dict:
        return build_beat_schedule(load_settings(hostname="h1", state_dir=tmp_path, role=role, use_trigger_model=True,
                                                 collect_metrics=True, check_services=True))

    everything, collector, brain = schedule("all"), schedule("collector"), schedule("brain")
    assert schedule("gpu") == {}
    assert {"heartbeat", "check-host", "collect-metrics", "check-services", "classify"} <= set(collector)
    assert not {"review-tick", "reconcile", "expire-approvals", "fleet-watch"} & set(collector)
    assert {"review-tick", "reconcile", "expire-approvals", "retention", "fleet-watch"} == set(brain)
    # Indexing the configuration loads semantic memory: the all-in-one host does it, a collector does not.
    assert set(everything) == set(collector) | set(brain) | {"index-config"}
    # A collector's journal check starts on its own queue; what reads the machine goes there too, the
    # classifier (it reads the store and asks a model) to the review queue.
    assert collector["check-host"]["options"]["queue"] == "host.h1"
    assert "queue" not in everything["check-host"]["options"]
    for name in ("heartbeat", "collect-metrics", "check-services"):
        entry = collector[name]
        assert route(entry["task"], (), entry["kwargs"], {}) == {"queue": "host.h1"}, name
    assert route("macha.classify", (), {"hostname": "h1"}, {}) is None


def test_a_fleet_role_without_the_shared_servers_is_one_line(tmp_path) -> None:
    from helpers.processes import macha_env, run_cli

    proc = run_cli("macha-ai", "--role", "collector", env=macha_env(tmp_path / "state"), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "macha-ai: --role collector is one part of a fleet: set brokerUrl and databaseUrl (or brokerUrlFile and "
        "databaseUrlFile) to the Redis and PostgreSQL every role shares"]
