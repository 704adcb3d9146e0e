"""Time-series queries and housekeeping for the four seed tables, on SQLite, PostgreSQL and TimescaleDB alike.

- bucketed(): avg/max/min/count per fixed-width bucket; time_bucket, date_bin and an SQLite equivalent give the
  same buckets (all aligned on the Unix epoch).
- latest() and summary(): what the review context shows of a host's metrics; index range scans only.
- apply_retention(): batched deletes that never drop an event still waiting for its review.
- timescale_status() and setup_timescale(): optional hypertables; plain PostgreSQL is always a valid setup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Interval,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from macha.store.db import Store
from macha.store.models import (
    AuthWindow,
    ClassifierCall,
    CorrelationState,
    LogEvent,
    ServiceStatus,
    SystemMetric,
    TriggerEvent,
    utcnow,
)

Direction = Literal["rising", "falling", "steady"]

HYPERTABLES = ("system_metrics", "service_status", "log_events", "trigger_events")
#: Compress system_metrics chunks once they are this old (they are only read, through summary and bucketed).
COMPRESS_AFTER = timedelta(days=7)
# Every bucketing is aligned here; time_bucket's own default (2000-01-03) would shift week-wide buckets.
_EPOCH_SQL = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


# --- TimescaleDB -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimescaleStatus:
    available: bool
    installed: bool
    version: str | None
    note: str


def timescale_status(store: Store) -> TimescaleStatus:
    if store.dialect != "postgresql":
        return TimescaleStatus(False, False, None,
                               f"TimescaleDB needs PostgreSQL; this store is {store.dialect}: plain tables are used")
    with store.engine.connect() as conn:
        return _status(conn)


def _status(conn: Connection) -> TimescaleStatus:
    installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).scalar()
    if installed is not None:
        return TimescaleStatus(True, True, installed, f"TimescaleDB {installed} is installed in this database")
    available = conn.execute(
        text("SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar()
    if available is not None:
        return TimescaleStatus(True, False, None,
                               f"TimescaleDB {available} is available but not installed in this database: "
                               "plain PostgreSQL tables are used")
    return TimescaleStatus(False, False, None,
                           "TimescaleDB is not available on this PostgreSQL server (not in pg_available_extensions): "
                           "plain PostgreSQL tables are used")


def setup_timescale(store: Store, enable: bool, retention_days: int) -> TimescaleStatus:
    """Make hypertables with retention (and compression for system_metrics) where TimescaleDB allows it.

    Acts when the extension is installed, or when ``enable`` is set and the server has it (then installs it). It
    never fails: whatever cannot be done is said in the returned note and the tables stay plain PostgreSQL.
    """
    status = timescale_status(store)
    if not status.available:
        return status
    if not status.installed:
        if not enable:
            return status
        problem = _create_extension(store, "timescaledb")
        if problem:
            return replace(status, note=problem)
        status = timescale_status(store)
    notes = [_make_hypertable(store, table, retention_days) for table in HYPERTABLES]
    return replace(status, note="; ".join([status.note, *notes]))


def _create_extension(store: Store, name: str) -> str | None:
    """CREATE EXTENSION, or the reason it could not be done (with the SQL for a superuser when rights lack)."""
    sql = f"CREATE EXTENSION IF NOT EXISTS {name}"
    try:
        with store.engine.begin() as conn:
            conn.execute(text(sql))
    except DBAPIError as exc:
        database = store.engine.url.database
        if _sqlstate(exc) == "42501":  # insufficient_privilege
            return (f"no right to create the extension {name}: a superuser must run, in database {database}: "
                    f"{sql};")
        return f"{sql} failed in database {database}: {_first_line(exc)}"
    return None


def _make_hypertable(store: Store, table: str, retention_days: int) -> str:
    try:
        with store.engine.begin() as conn:
            blockers = hypertable_blockers(conn, table)
            if blockers:
                return f"{table} stays a plain table ({'; '.join(blockers)})"
            q = conn.dialect.identifier_preparer.quote
            pk = inspect(conn).get_pk_constraint(table)
            if pk["constrained_columns"] != ["id", "time"]:
                # A hypertable's unique indexes must all contain its time column, the primary key included.
                conn.execute(text(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(pk['name'])}, "
                                  "ADD PRIMARY KEY (id, time)"))
            conn.execute(text("SELECT create_hypertable(CAST(:t AS regclass), 'time', migrate_data => true, "
                              "if_not_exists => true)"), {"t": table})
            # Remove first: add_retention_policy(if_not_exists) would keep an older interval.
            conn.execute(text("SELECT remove_retention_policy(CAST(:t AS regclass), if_exists => true)"),
                         {"t": table})
            conn.execute(text("SELECT add_retention_policy(CAST(:t AS regclass), CAST(:keep AS interval), "
                              "if_not_exists => true)"), {"t": table, "keep": f"{int(retention_days)} days"})
            if table == "system_metrics":
                _compress(conn, table)
    except DBAPIError as exc:
        return f"{table} stays a plain table ({_first_line(exc)})"
    return f"{table} is a hypertable (retention {retention_days} days)"


def _compress(conn: Connection, table: str) -> None:
    enabled = conn.execute(text("SELECT compression_enabled FROM timescaledb_information.hypertables "
                                "WHERE hypertable_name = :t AND hypertable_schema = current_schema()"),
                           {"t": table}).scalar()
    if not enabled:
        # Changing these settings fails once chunks are compressed, so set them only once.
        conn.execute(text(f"ALTER TABLE {table} SET (timescaledb.compress, "
                          "timescaledb.compress_segmentby = 'hostname, metric_name', "
                          "timescaledb.compress_orderby = 'time DESC')"))
    conn.execute(text("SELECT add_compression_policy(CAST(:t AS regclass), CAST(:after AS interval), "
                      "if_not_exists => true)"), {"t": table, "after": f"{COMPRESS_AFTER.days} days"})


def hypertable_blockers(conn: Connection, table: str) -> list[str]:
    """Why ``table`` cannot become a hypertable on ``time`` without changing its meaning (empty: it can).

    A foreign key pointing at the table needs a unique id, which a hypertable (unique only with time) cannot give;
    a unique key without time would have to be weakened. Foreign keys from the table to plain tables are fine.
    """
    insp = inspect(conn)
    why = [f"{other}.{','.join(fk['constrained_columns'])} references it"
           for other in insp.get_table_names() for fk in insp.get_foreign_keys(other)
           if fk["referred_table"] == table]
    uniques = [(u["name"], u["column_names"]) for u in insp.get_unique_constraints(table)]
    uniques += [(i["name"], i["column_names"]) for i in insp.get_indexes(table) if i["unique"]]
    why += [f"unique key {name} lacks time" for name, cols in dict(uniques).items() if "time" not in cols]
    return why


def _retained_by_timescale(session: Session) -> set[str]:
    """Hypertables whose rows a TimescaleDB retention policy already drops."""
    if session.get_bind().dialect.name != "postgresql" or not _timescale_installed(session):
        return set()
    rows = session.execute(text("SELECT hypertable_name FROM timescaledb_information.jobs "
                                "WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()"))
    return set(rows.scalars())


def _timescale_installed(session: Session) -> bool:
    return session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is not None


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)


def _first_line(exc: DBAPIError) -> str:
    msg = str(exc.orig).strip()
    return msg.splitlines()[0] if msg else type(exc.orig).__name__


# --- Queries -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    start: datetime
    avg: float
    max: float
    min: float
    count: int


def bucketed(session: Session, hostname: str, metric_name: str, since: datetime, until: datetime,
             bucket_seconds: int) -> list[Bucket]:
    """One metric's samples in [since, until) per bucket of ``bucket_seconds``, buckets aligned on the epoch."""
    return bucketed_many(session, hostname, [metric_name], since, until, bucket_seconds)[metric_name]


def bucketed_many(session: Session, hostname: str, metric_names: Sequence[str], since: datetime, until: datetime,
                  bucket_seconds: int) -> dict[str, list[Bucket]]:
    """Several metrics' buckets (as bucketed()) in one query: a chart's series cost one round trip and one index
    range scan per series. Every name is a key; a name without samples in the range has an empty list."""
    if bucket_seconds < 1 or int(bucket_seconds) != bucket_seconds:
        raise ValueError("bucket_seconds must be a positive whole number")
    m = SystemMetric
    out: dict[str, list[Bucket]] = {name: [] for name in metric_names}
    if not out:
        return out
    start = _bucket_start(session, int(bucket_seconds)).label("start")
    rows = (select(m.metric_name, start, m.value)
            .where(m.hostname == hostname, m.metric_name.in_(list(out)), m.time >= since, m.time < until)
            .subquery())
    q = (select(rows.c.metric_name, rows.c.start, func.avg(rows.c.value), func.max(rows.c.value),
                func.min(rows.c.value), func.count())
         .group_by(rows.c.metric_name, rows.c.start).order_by(rows.c.metric_name, rows.c.start))
    for name, b, avg, hi, lo, n in session.execute(q):
        out[name].append(Bucket(_as_utc(b), float(avg), float(hi), float(lo), int(n)))
    return out


def _bucket_start(session: Session, width: int) -> ColumnElement[Any]:
    t = SystemMetric.time
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff'. strftime('%s') of the whole string rounds to the millisecond
        # (:29.9999 becomes :30, maybe the next bucket); of the whole seconds alone it floors, as date_bin does.
        # Buckets of whole seconds starting on whole seconds lose nothing by dropping the fraction.
        epoch = cast(func.strftime("%s", func.substr(t, 1, 19)), Integer)
        return (epoch // width) * width
    if dialect != "postgresql":
        raise NotImplementedError(f"database dialect {dialect!r} is not supported (use SQLite or PostgreSQL)")
    interval = bindparam("bucket_width", timedelta(seconds=width), type_=Interval())
    if _timescale_installed(session):
        return func.time_bucket(interval, t, literal_column(f"origin => {_EPOCH_SQL}"))
    return func.date_bin(interval, t, literal_column(_EPOCH_SQL))


def _as_utc(value: datetime | int) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(value, timezone.utc)


def _names(hostname: str) -> Any:
    """The host's metric names as a recursive CTE (column ``name``; a last NULL row ends the recursion): a loose
    index scan, one index seek per name however many samples there are."""
    m = SystemMetric

    def after(prev: Any) -> Any:
        return (select(m.metric_name).where(m.hostname == hostname, m.metric_name > prev)
                .order_by(m.metric_name).limit(1).scalar_subquery())

    first = (select(m.metric_name).where(m.hostname == hostname).order_by(m.metric_name).limit(1)
             .scalar_subquery())
    names = select(first.label("name")).cte("names", recursive=True)
    return names.union_all(select(after(names.c.name)).where(names.c.name.is_not(None)))


def metric_names(session: Session, hostname: str) -> list[str]:
    """The host's metric names, in order."""
    names = _names(hostname)
    return list(session.execute(select(names.c.name).where(names.c.name.is_not(None))).scalars())


def latest(session: Session, hostname: str, names: Sequence[str] | None = None) -> dict[str, tuple[datetime, float]]:
    """The newest (time, value) of each metric (all of the host's when ``names`` is None), in one query: per name,
    a backward seek on (hostname, metric_name, time). (A query per name cost more in round trips and statement
    handling than the seeks themselves: 12 series took 19 ms on SQLite, the seeks under 1 ms.)"""
    m = SystemMetric
    n = _names(hostname)

    def newest(column: Any) -> Any:
        return (select(column).where(m.hostname == hostname, m.metric_name == n.c.name)
                .order_by(m.time.desc()).limit(1).correlate(n).scalar_subquery())

    q = select(n.c.name, newest(m.time), newest(m.value)).where(n.c.name.is_not(None))
    if names is not None:
        if not names:
            return {}
        q = q.where(n.c.name.in_(list(names)))
    out: dict[str, tuple[datetime, float]] = {}
    for name, t, v in session.execute(q):
        if t is not None:
            out[name] = (_as_utc(t), float(v))
    return out


@dataclass(frozen=True)
class WindowStats:
    avg: float
    max: float
    min: float
    count: int
    #: The second half of the window against the first; None when a half has no sample.
    direction: Direction | None


@dataclass
class MetricTrend:
    metric_name: str
    latest: tuple[datetime, float]
    #: Only the windows that have samples.
    windows: dict[timedelta, WindowStats] = field(default_factory=dict)


DEFAULT_WINDOWS = (timedelta(hours=1), timedelta(hours=24))


def summary(session: Session, hostname: str, now: datetime,
            windows: Sequence[timedelta] = DEFAULT_WINDOWS, tolerance: float = 0.05) -> dict[str, MetricTrend]:
    """Each metric's latest sample and, per window ending at ``now``, avg/max/min and its direction.

    A window is (now - w, now]. The direction is "steady" while the second half's mean is within ``tolerance``
    (relative) of the first half's.
    """
    newest = latest(session, hostname)
    trends = {name: MetricTrend(name, value) for name, value in newest.items()}
    if not newest or not windows:
        return trends
    m = SystemMetric
    for w in windows:
        # The metric names in the condition make this one range scan of the index per metric; without them the
        # scan would cover every sample of the host. One query per window: the short windows then read few rows,
        # and each row meets fewer CASEs than in one query for all windows (SQLite took half the time this way).
        half = m.time > now - w / 2
        q = (select(m.metric_name, func.avg(m.value), func.max(m.value), func.min(m.value), func.count(),
                    func.avg(case((~half, m.value))), func.avg(case((half, m.value))))
             .where(m.hostname == hostname, m.metric_name.in_(list(newest)), m.time > now - w, m.time <= now)
             .group_by(m.metric_name))
        for name, avg, hi, lo, n, first, second in session.execute(q):
            trends[name].windows[w] = WindowStats(avg, hi, lo, n, _direction(first, second, tolerance))
    return trends


def _direction(first: float | None, second: float | None, tolerance: float) -> Direction | None:
    if first is None or second is None:
        return None
    if abs(second - first) <= tolerance * max(abs(first), abs(second)):
        return "steady"
    return "rising" if second > first else "falling"


# --- Retention ---------------------------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    cutoff: datetime
    deleted: dict[str, int] = field(default_factory=dict)
    #: Tables left alone, and why (a TimescaleDB retention policy drops their chunks).
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


RETENTION_BATCH = 10_000


def apply_retention(store: Store, retention_days: int, now: datetime | None = None,
                    batch: int = RETENTION_BATCH) -> RetentionReport:
    """Delete what is older than ``retention_days``, in transactions of at most ``batch`` rows.

    Trigger events waiting for their review are never deleted, nor the log events any trigger event refers to.
    """
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    report = RetentionReport(cutoff)
    with store.session() as s:
        retained = _retained_by_timescale(s)
    referenced = exists().where(TriggerEvent.log_event_id == LogEvent.id)
    # Trigger events first: a reviewed one going frees its log event for the step after.
    plan: list[tuple[Table, ColumnElement[bool]]] = [
        (TriggerEvent.__table__, and_(TriggerEvent.time < cutoff, TriggerEvent.review_id.is_not(None))),
        (LogEvent.__table__, and_(LogEvent.time < cutoff, ~referenced)),
        (ServiceStatus.__table__, ServiceStatus.time < cutoff),
        (SystemMetric.__table__, SystemMetric.time < cutoff),
        # Bookkeeping that grows with time: the classifier's call log, authentication windows of old sources.
        (ClassifierCall.__table__, ClassifierCall.time < cutoff),
        (AuthWindow.__table__, AuthWindow.window_start < cutoff),
        (CorrelationState.__table__, CorrelationState.updated_at < cutoff),
    ]
    for table, condition in plan:
        if table.name in retained:
            report.skipped[table.name] = "a TimescaleDB retention policy drops its chunks"
            continue
        report.deleted[table.name] = _delete_in_batches(store, table, condition, batch)
    return report


def _delete_in_batches(store: Store, table: Table, condition: ColumnElement[bool], batch: int) -> int:
    # Walk the primary key once: each batch deletes the next ``batch`` matching ids, so no batch rescans the rows
    # an earlier one kept. The condition is checked again by the DELETE itself, so a row that changed in between
    # (a pending event reviewed meanwhile, or the reverse) is judged as it is now.
    total, last = 0, 0
    while True:
        with store.session() as s:
            ids = (select(table.c.id).where(table.c.id > last, condition).order_by(table.c.id).limit(batch)
                   .subquery())
            upper = s.execute(select(func.max(ids.c.id))).scalar()
            if upper is None:
                return total
            total += s.execute(delete(table).where(table.c.id > last, table.c.id <= upper, condition)).rowcount
        last = upper
