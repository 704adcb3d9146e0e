"""The read layer over a store holding a recorded incident (the README's OOM journal), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.incident import record_incident
from sqlalchemy import select

from macha.core.severity import Severity
from macha.core.states import HealthColour
from macha.read import approvals, hosts, metrics, reviews
from macha.read.common import build
from macha.read.errors import NotFound, ReadError, UnknownHost
from macha.read.events import EventKind, EventQuery, TriggerQuery, list_triggers, query_events
from macha.store.db import Store
from macha.store.models import LogEvent, TriggerEvent, utcnow


@pytest.fixture
def incident(db_url: str, tmp_path: Path) -> Store:
    store = Store(db_url)
    record_incident(store, tmp_path)
    yield store
    store.dispose()


def test_fleet_lists_each_host_with_health_and_pending(incident: Store) -> None:
    listed = {h.hostname: h for h in hosts.list_hosts(incident)}
    assert set(listed) == {"web1", "db1"}
    # The recorded incident is old (2023): its events do not lower today's score; the threshold and the failed
    # unit do. nginx failed once but runs now.
    web = listed["web1"]
    assert web.health_score == 100 - hosts.THRESHOLD_PENALTY - hosts.FAILED_UNIT_PENALTY
    assert web.status == HealthColour.YELLOW and web.pending_approvals == 1 and web.open_issues == 0
    assert listed["db1"].health_score == 100 and listed["db1"].status == HealthColour.GREEN
    assert listed["db1"].pending_approvals == 0


def test_overview_says_why_the_score_is_low(incident: Store) -> None:
    with incident.session() as s:
        # The OOM group is seen again now: it counts against the host.
        oom = s.execute(select(TriggerEvent).where(TriggerEvent.pattern_id == "oom_kill")).scalar_one()
        oom.last_seen = utcnow()
        oom_id = oom.id
    o = hosts.host_overview(incident, "web1")
    kinds = {(r.kind, r.ref) for r in o.health.reasons}
    assert {("event", str(oom_id)), ("metric", "memory_percent"), ("unit", "postgresql.service")} <= kinds
    assert ("unit", "nginx.service") not in kinds
    assert o.health.score == 100 - sum(r.penalty for r in o.health.reasons) and o.status == HealthColour.RED
    assert [u.unit for u in o.failed_units] == ["postgresql.service"] and o.failed_units[0].result == "oom-kill"
    assert [m.name for m in o.metrics] == ["memory_percent"] and o.metrics[0].value == 50.0
    assert o.latest_review is None and o.pending_approvals == 1


def test_unknown_host_is_a_typed_error_naming_the_known_ones(incident: Store) -> None:
    with pytest.raises(UnknownHost) as err:
        hosts.host_overview(incident, "nosuch")
    assert "nosuch" in str(err.value) and "db1, web1" in str(err.value)
    with pytest.raises(UnknownHost):
        metrics.current_metrics(incident, "nosuch")


def test_events_filters(incident: Store) -> None:
    page = query_events(incident, EventQuery(host="web1"))
    assert page.entries and all(e.hostname == "web1" for e in page.entries)
    times = [e.time for e in page.entries]
    assert times == sorted(times, reverse=True)
    oom = query_events(incident, EventQuery(pattern="oom_kill")).entries
    assert len(oom) == 1 and "Killed process 4242" in oom[0].message and oom[0].severity == Severity.CRITICAL
    assert [t.pattern for t in oom[0].triggers] == ["oom_kill"]
    errs = query_events(incident, build(EventQuery, priority="err")).entries
    assert errs and all(e.priority is not None and e.priority <= 3 for e in errs)
    warn_only = query_events(incident, build(EventQuery, priority="warning..warning")).entries
    assert warn_only and all(e.priority == 4 for e in warn_only)
    # A substring, case-insensitive, never a pattern: % and _ are plain characters.
    assert len(query_events(incident, EventQuery(text="KILLED PROCESS")).entries) == 1
    assert query_events(incident, EventQuery(text="%")).entries == []
    assert query_events(incident, EventQuery(text="oom_score_adj")).entries
    crit = query_events(incident, EventQuery(severity=Severity.CRITICAL)).entries
    assert crit and all(e.severity == Severity.CRITICAL for e in crit)
    assert len(query_events(incident, EventQuery(limit=1)).entries) == 1
    assert query_events(incident, EventQuery(host="db1")).entries == []
    old = query_events(incident, build(EventQuery, since="-1h")).entries
    assert old == []  # the incident was recorded in 2023


def test_cursor_returns_only_what_came_after(incident: Store) -> None:
    page = query_events(incident, EventQuery())
    assert page.cursor.log_id == max(e.id for e in page.entries if e.kind == EventKind.LOG)
    assert query_events(incident, EventQuery(after=page.cursor)).entries == []
    with incident.session() as s:
        s.add(LogEvent(time=utcnow(), hostname="web1", severity="high", message="later line", unit="x.service",
                       source="system", entry_key="later"))
        s.add(TriggerEvent(time=utcnow(), hostname="web1", trigger_type="metric_threshold", severity="high",
                           trigger_reason="disk_percent 97 > 90", pattern_id="threshold:disk_percent",
                           fingerprint="f", meta={"unit": None}))
    nxt = query_events(incident, EventQuery(after=page.cursor))
    assert [(e.kind, e.message) for e in nxt.entries] == [(EventKind.LOG, "later line"),
                                                          (EventKind.TRIGGER, "disk_percent 97 > 90")]
    assert nxt.cursor.log_id > page.cursor.log_id and nxt.cursor.trigger_id > page.cursor.trigger_id
    assert query_events(incident, EventQuery(after=nxt.cursor)).entries == []


def test_bad_queries_are_one_line_read_errors() -> None:
    for fields, word in (({"since": "last tuesday"}, "since"), ({"priority": "loud"}, "priority"),
                         ({"limit": 10**6}, "limit"), ({"since": "-1h", "until": "-2h"}, "until"),
                         ({"severity": "bad"}, "severity"), ({"host": "h" * 300}, "host")):
        with pytest.raises(ReadError) as err:
            build(EventQuery, **fields)
        assert str(err.value).startswith(word) and "\n" not in str(err.value)


def test_triggers_and_metrics_and_approvals(incident: Store) -> None:
    rows = list_triggers(incident, TriggerQuery(host="web1"))
    assert {r.pattern for r in rows} >= {"oom_kill", "segfault"}
    assert next(r for r in rows if r.pattern == "oom_kill").message.startswith("Out of memory")
    series = metrics.series(incident, build(metrics.SeriesQuery, host="web1", name="memory_percent", since="-2h"))
    assert sum(p.count for p in series.points) == 60 and series.step_s >= metrics.MIN_STEP_S
    assert max(p.max for p in series.points) == 109.0
    with pytest.raises(NotFound, match="no metric series 'memory'.*memory_percent"):
        metrics.series(incident, build(metrics.SeriesQuery, host="web1", name="memory", since="-2h"))
    (pending,) = approvals.pending(incident)
    assert pending.action == "restart_service" and approvals.detail(incident, pending.id).action["id"] == pending.id
    assert reviews.latest(incident, "web1") is None
    with pytest.raises(NotFound):
        reviews.get_review(incident, 10**30)


def test_service_status_and_memory_search(incident: Store) -> None:
    from macha.context.recall import NoMemory
    from macha.read.memory import MemoryQuery, search
    from macha.read.services import service_status

    report = service_status(incident, "web1", "postgresql")
    assert [s.unit for s in report.states] == ["postgresql.service"] and report.states[0].result == "oom-kill"
    assert any("postgresql.service" in e.reason for e in report.events)
    nginx = service_status(incident, "web1", "nginx.service")
    assert [s.active_state for s in nginx.states] == ["active", "failed"]
    with pytest.raises(UnknownHost):
        service_status(incident, "nosuch", "nginx")
    with pytest.raises(ReadError, match="memory is off"):
        search(NoMemory("semantic memory is off"), MemoryQuery(query="oom"))
