"""Time-series queries, retention and TimescaleDB detection on real SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, inspect, select, text

from macha.store.db import Store
from macha.store.models import (
    AuthWindow,
    CorrelationState,
    ClassifierCall,
    LogEvent,
    Review,
    ServiceStatus,
    SystemMetric,
    TriggerEvent,
)
from macha.store.timeseries import (
    Bucket,
    _create_extension,
    _make_hypertable,
    apply_retention,
    bucketed,
    bucketed_many,
    hypertable_blockers,
    latest,
    setup_timescale,
    summary,
    timescale_status,
)

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
H, M = timedelta(hours=1), timedelta(minutes=1)


def _metrics(store: Store, rows: list[tuple[str, str, datetime, float]]) -> None:
    with store.session() as s:
        s.execute(SystemMetric.__table__.insert(),
                  [{"hostname": h, "metric_name": n, "time": t, "value": v, "unit": "%", "metadata": {}}
                   for h, n, t, v in rows])


def _ts(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


# --- bucketed --------------------------------------------------------------------------------------------------

BUCKET_ROWS = [
    ("h", "cpu", _ts("2026-01-05 11:59:59.999999"), 99.0),  # before `since`: out
    ("h", "cpu", _ts("2026-01-05 12:00:00"), 10.0),  # on `since`: in
    ("h", "cpu", _ts("2026-01-05 12:00:30.5"), 20.0),
    # A fraction that SQLite's strftime('%s') rounds up into the next second, and here the next bucket.
    ("h", "cpu", _ts("2026-01-05 12:00:59.9999"), 30.0),
    ("h", "cpu", _ts("2026-01-05 12:01:00"), 1.0),  # exactly on a boundary: starts the next bucket
    ("h", "cpu", _ts("2026-01-05 12:01:15.25"), 2.0),
    ("h", "cpu", _ts("2026-01-05 12:03:59"), 7.5),  # 12:02 has no sample, so no bucket
    ("h", "cpu", _ts("2026-01-05 12:04:00"), 99.0),  # on `until`: out
    ("h", "mem", _ts("2026-01-05 12:00:10"), 99.0),  # another metric
    ("other", "cpu", _ts("2026-01-05 12:00:10"), 99.0),  # another host
]
EXPECTED_MINUTES = [
    Bucket(_ts("2026-01-05 12:00:00"), 20.0, 30.0, 10.0, 3),
    Bucket(_ts("2026-01-05 12:01:00"), 1.5, 2.0, 1.0, 2),
    Bucket(_ts("2026-01-05 12:03:00"), 7.5, 7.5, 7.5, 1),
]


def test_bucketed_gives_the_same_hand_computed_buckets_on_sqlite_and_postgresql(sqlite_url: str,
                                                                                 pg_url: str) -> None:
    since, until = _ts("2026-01-05 12:00:00"), _ts("2026-01-05 12:04:00")
    for url in (sqlite_url, pg_url):
        store = Store(url)
        _metrics(store, BUCKET_ROWS)
        with store.session() as s:
            assert bucketed(s, "h", "cpu", since, until, 60) == EXPECTED_MINUTES, store.dialect
            # Buckets are aligned on the epoch (a Thursday), not on `since` nor on Monday as time_bucket's default.
            week = bucketed(s, "h", "cpu", since, until, 7 * 86400)
            assert week == [Bucket(_ts("2026-01-01 00:00:00"), 11.75, 30.0, 1.0, 6)], store.dialect
            assert all(b.start.tzinfo is not None and b.start.utcoffset() == timedelta(0) for b in week)
            assert bucketed(s, "h", "nope", since, until, 60) == []
            with pytest.raises(ValueError):
                bucketed(s, "h", "cpu", since, until, 0)
        store.dispose()


def test_bucketed_many_gives_each_series_its_own_buckets_in_one_query(db_url: str) -> None:
    store = Store(db_url)
    _metrics(store, BUCKET_ROWS + [("h", "mem", _ts("2026-01-05 12:03:10"), 1.0)])
    since, until = _ts("2026-01-05 12:00:00"), _ts("2026-01-05 12:04:00")
    with store.session() as s:
        many = bucketed_many(s, "h", ["mem", "cpu", "nope"], since, until, 60)
        assert list(many) == ["mem", "cpu", "nope"]
        assert many["cpu"] == EXPECTED_MINUTES and many["nope"] == []
        assert many["mem"] == [Bucket(_ts("2026-01-05 12:00:00"), 99.0, 99.0, 99.0, 1),
                               Bucket(_ts("2026-01-05 12:03:00"), 1.0, 1.0, 1.0, 1)]
        assert bucketed_many(s, "h", [], since, until, 60) == {}
        # The other host's cpu sample at 12:00:10 is not counted.
        assert sum(b.count for b in many["cpu"]) == 6
        # Migration 0012: the series index covers the value, so a chart reads the index alone.
        plan = " ".join(str(r) for r in s.execute(text(
            ("EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN ")
            + "SELECT value FROM system_metrics WHERE hostname = 'h' AND metric_name = 'cpu' AND time >= '2026-01-05'")))
        assert "COVERING INDEX" in plan if store.dialect == "sqlite" else "ix_system_metrics_host_name_time" in plan
        # (An expression index: SQLAlchemy's inspector leaves those out on SQLite.)
        indexes = set(s.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'") if store.dialect == "sqlite"
                                else text("SELECT indexname FROM pg_indexes")).scalars())
        assert "ix_trigger_events_host_active" in indexes
    store.dispose()


# --- latest and summary ------------------------------------------------------------------------------------------

SUMMARY_ROWS = [
    # cpu: the last hour's second half is above its first half.
    ("h", "cpu", NOW - 60 * M, 1000.0),  # on the 1 h window's open edge: only in the 24 h window
    ("h", "cpu", NOW - 55 * M, 10.0),
    ("h", "cpu", NOW - 45 * M, 10.0),
    ("h", "cpu", NOW - 30 * M, 10.0),  # the middle belongs to the first half
    ("h", "cpu", NOW - 25 * M, 20.0),
    ("h", "cpu", NOW - 15 * M, 20.0),
    ("h", "cpu", NOW, 30.0),
    # mem: within 5 % in both windows.
    ("h", "mem", NOW - 20 * H, 51.0),
    ("h", "mem", NOW - 50 * M, 50.0),
    ("h", "mem", NOW - 10 * M, 51.0),
    # disk: falling over the day, no sample in the last hour.
    ("h", "disk", NOW - 23 * H, 80.0),
    ("h", "disk", NOW - 2 * H, 60.0),
    # old: nothing in any window.
    ("h", "old", NOW - 48 * H, 5.0),
    ("other", "cpu", NOW - 5 * M, 999.0),
]


def test_latest_and_summary_give_each_metric_its_newest_sample_and_window_trends(db_url: str) -> None:
    store = Store(db_url)
    _metrics(store, SUMMARY_ROWS)
    with store.session() as s:
        assert latest(s, "h") == {"cpu": (NOW, 30.0), "disk": (NOW - 2 * H, 60.0), "mem": (NOW - 10 * M, 51.0),
                                  "old": (NOW - 48 * H, 5.0)}
        assert latest(s, "h", ["cpu", "absent"]) == {"cpu": (NOW, 30.0)}
        assert latest(s, "nobody") == {}
        trends = summary(s, "h", NOW)
        assert summary(s, "nobody", NOW) == {}
    assert set(trends) == {"cpu", "mem", "disk", "old"}
    day = 24 * H

    cpu = trends["cpu"]
    assert cpu.latest == (NOW, 30.0)
    w1 = cpu.windows[H]
    assert (w1.count, w1.max, w1.min, w1.direction) == (6, 30.0, 10.0, "rising")
    assert w1.avg == pytest.approx(100 / 6)
    w24 = cpu.windows[day]
    assert (w24.count, w24.max, w24.min) == (7, 1000.0, 10.0)
    assert w24.avg == pytest.approx(1100 / 7)
    assert w24.direction is None  # no sample in the day's first half

    mem = trends["mem"].windows
    assert (mem[H].count, mem[H].avg, mem[H].direction) == (2, 50.5, "steady")
    assert (mem[day].count, mem[day].direction) == (3, "steady")

    disk = trends["disk"]
    assert list(disk.windows) == [day]
    assert (disk.windows[day].avg, disk.windows[day].direction) == (70.0, "falling")

    assert trends["old"].latest == (NOW - 48 * H, 5.0) and trends["old"].windows == {}
    store.dispose()


def test_summary_tolerance_decides_steady(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    _metrics(store, [("h", "load", NOW - 40 * M, 1.0), ("h", "load", NOW - 5 * M, 1.04)])
    with store.session() as s:
        assert summary(s, "h", NOW, windows=[H])["load"].windows[H].direction == "steady"
        assert summary(s, "h", NOW, windows=[H], tolerance=0.01)["load"].windows[H].direction == "rising"
    store.dispose()


# --- retention ---------------------------------------------------------------------------------------------------


def test_retention_keeps_pending_events_and_what_they_refer_to(db_url: str) -> None:
    store = Store(db_url)
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=1)
    _metrics(store, [("h", "cpu", old + i * M, float(i)) for i in range(5)] + [("h", "cpu", recent, 1.0),
                                                                              ("h", "cpu", NOW, 2.0)])
    with store.session() as s:
        s.add_all([ServiceStatus(time=t, hostname="h", service_name="nginx", status="ok", active_state="active")
                   for t in (old, old + M, recent)])
        review = Review(hostname="h", status="healthy", summary="-", reviewer="rules")
        logs = {k: LogEvent(time=t, hostname="h", severity="high", message=k, unit=None, source="s", entry_key=k)
                for k, t in [("reviewed", old), ("pending", old), ("alone", old), ("recent", recent),
                             ("kept_by_recent", old)]}
        s.add_all([review, *logs.values()])
        s.flush()

        def trigger(name: str, t: datetime, log: str | None, reviewed: bool) -> TriggerEvent:
            return TriggerEvent(time=t, hostname="h", trigger_type="journal_pattern", trigger_reason=name,
                                severity="high", pattern_id="p", fingerprint=name,
                                log_event_id=logs[log].id if log else None,
                                review_id=review.id if reviewed else None)

        s.add_all([trigger("old_reviewed", old, "reviewed", True), trigger("old_pending", old, "pending", False),
                   trigger("recent_reviewed", recent, "kept_by_recent", True),
                   trigger("old_reviewed_no_log", old, None, True)])
        s.add_all([ClassifierCall(hostname="h", time=old, templates=1), ClassifierCall(hostname="h", time=recent),
                   AuthWindow(hostname="h", source="203.0.113.9", window_start=old, count=3),
                   AuthWindow(hostname="h", source="198.51.100.7", window_start=recent, count=1),
                   CorrelationState(hostname="h", rule_id="r", key="old", hits=[], updated_at=old),
                   CorrelationState(hostname="h", rule_id="r", key="recent", hits=[], updated_at=recent)])

    report = apply_retention(store, retention_days=30, now=NOW, batch=2)
    assert report.cutoff == NOW - timedelta(days=30)
    assert report.deleted == {"trigger_events": 2, "log_events": 2, "service_status": 2, "system_metrics": 5,
                              "classifier_calls": 1, "auth_windows": 1, "correlation_states": 1}
    assert report.skipped == {} and report.total == 14
    with store.session() as s:
        assert sorted(s.execute(select(TriggerEvent.trigger_reason)).scalars()) == ["old_pending",
                                                                                    "recent_reviewed"]
        assert sorted(s.execute(select(LogEvent.message)).scalars()) == ["kept_by_recent", "pending", "recent"]
        assert s.execute(select(func.count()).select_from(ServiceStatus)).scalar() == 1
        assert sorted(s.execute(select(SystemMetric.value)).scalars()) == [1.0, 2.0]
    again = apply_retention(store, retention_days=30, now=NOW)
    assert again.total == 0
    store.dispose()


# --- TimescaleDB -------------------------------------------------------------------------------------------------


def test_timescale_on_sqlite_is_not_available(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    for status in (timescale_status(store), setup_timescale(store, enable=True, retention_days=30)):
        assert (status.available, status.installed, status.version) == (False, False, None)
        assert "needs PostgreSQL" in status.note and "sqlite" in status.note
    store.dispose()


def _server_has(store: Store, extension: str) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = :n"),
                            {"n": extension}).first() is not None


def test_timescale_absent_from_the_server_leaves_plain_postgresql(pg_url: str) -> None:
    store = Store(pg_url)
    if _server_has(store, "timescaledb"):
        pytest.skip("this PostgreSQL server has TimescaleDB")
    status = setup_timescale(store, enable=True, retention_days=30)
    assert (status.available, status.installed, status.version) == (False, False, None)
    assert "not available" in status.note and "plain PostgreSQL" in status.note
    assert status == timescale_status(store)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")).scalar() == 0
        assert inspect(conn).get_pk_constraint("system_metrics")["constrained_columns"] == ["id"]
    store.dispose()


def test_no_right_to_create_an_extension_names_the_sql_for_a_superuser(pg_url: str) -> None:
    # TimescaleDB is not on this server, so the rights path is exercised with another untrusted extension.
    admin = Store(pg_url)
    if not _server_has(admin, "file_fdw"):
        pytest.skip("file_fdw (PostgreSQL contrib) is not installed")
    role = f"macha_ts_{uuid.uuid4().hex[:8]}"
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    user = Store(pg_url.replace("://postgres@", f"://{role}@", 1), auto_migrate=False)
    try:
        note = _create_extension(user, "file_fdw")
        database = admin.engine.url.database
        assert note == (f"no right to create the extension file_fdw: a superuser must run, in database {database}: "
                        "CREATE EXTENSION IF NOT EXISTS file_fdw;")
        # As that role, the TimescaleDB path still reports plainly instead of failing.
        assert setup_timescale(user, enable=True, retention_days=7).installed is False
    finally:
        user.dispose()
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_only_tables_without_incoming_keys_or_timeless_unique_keys_can_become_hypertables(pg_url: str) -> None:
    store = Store(pg_url)
    with store.engine.connect() as conn:
        assert hypertable_blockers(conn, "system_metrics") == []
        assert hypertable_blockers(conn, "service_status") == []
        assert hypertable_blockers(conn, "log_events") == ["trigger_events.log_event_id references it",
                                                           "unique key uq_log_events_entry lacks time"]
        assert hypertable_blockers(conn, "trigger_events") == ["unique key uq_trigger_events_log_pattern lacks time"]
    store.dispose()


def test_a_failed_conversion_leaves_the_table_as_it_was(pg_url: str) -> None:
    # Without the extension create_hypertable fails after the primary key was changed: the whole step rolls back.
    store = Store(pg_url)
    _metrics(store, [("h", "cpu", NOW, 1.0)])
    note = _make_hypertable(store, "system_metrics", 30)
    assert note.startswith("system_metrics stays a plain table (") and "create_hypertable" in note
    assert _make_hypertable(store, "log_events", 30).startswith("log_events stays a plain table (trigger_events.")
    with store.engine.connect() as conn:
        assert inspect(conn).get_pk_constraint("system_metrics")["constrained_columns"] == ["id"]
    with store.session() as s:
        assert latest(s, "h") == {"cpu": (NOW, 1.0)}
    store.dispose()
