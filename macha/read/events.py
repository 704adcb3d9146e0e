"""Stored log events and trigger events: filters, newest first, and a cursor for following new ones.

Two kinds of row: a log event is a stored journal entry (with the patterns that matched it); a trigger event
with no journal entry behind it (a metric threshold, a service state, an error rate) stands for itself. A journal
entry's triggers are shown with it, not again as rows of their own.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from macha.core.severity import SEVERITIES, SEVERITY_RANK, Severity
from macha.core.units import lookup_names
from macha.read.common import MAX_LIMIT, when
from macha.store.db import Store
from macha.store.models import LogEvent, TriggerEvent

#: syslog priorities as journalctl names them (``-p err``).
PRIORITIES = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}
_PRIORITY_ALIASES = {"panic": 0, "error": 3, "warn": 4}


def parse_priority(value: Any) -> tuple[int, int]:
    """``err`` (err and worse: 0..3), ``3``, or a range ``warning..err`` / ``4..3`` as journalctl takes them."""
    if isinstance(value, tuple | list) and len(value) == 2:
        return int(value[0]), int(value[1])
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("a priority is a name (emerg..debug) or a number 0..7")

    def one(text: str) -> int:
        t = text.strip().lower()
        if t.isdigit() and 0 <= int(t) <= 7:
            return int(t)
        level = PRIORITIES.get(t, _PRIORITY_ALIASES.get(t))
        if level is None:
            raise ValueError(f"priority {text[:20]!r} is not one of {', '.join(PRIORITIES)} or 0..7")
        return level

    if ".." in value:
        a, b = value.split("..", 1)
        lo, hi = sorted((one(a), one(b)))
        return lo, hi
    return 0, one(value)


class EventKind(StrEnum):
    LOG = "log"  # a stored journal entry
    TRIGGER = "trigger"  # an event raised without a journal entry (threshold, service state, error rate)


class Cursor(BaseModel):
    """Where a follower stands: the newest log event and trigger event it has seen."""

    log_id: int = Field(0, ge=0)
    trigger_id: int = Field(0, ge=0)

    def advance(self, entries: list[EventRow]) -> Cursor:
        log_ids = [e.id for e in entries if e.kind == EventKind.LOG]
        trig_ids = [e.id for e in entries if e.kind == EventKind.TRIGGER]
        return Cursor(log_id=max([self.log_id, *log_ids]), trigger_id=max([self.trigger_id, *trig_ids]))


Time = Annotated[AwareDatetime | None, BeforeValidator(when)]


class EventQuery(BaseModel):
    """A filter over stored events; every field is optional and they combine with AND."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, max_length=255)
    since: Time = None
    until: Time = None
    #: a unit name; "nginx" means nginx.service too
    unit: str | None = Field(None, max_length=255)
    #: syslog priority range (lo, hi), from "err" (0..3) or "warning..err"; only journal entries have one
    priority: Annotated[tuple[int, int] | None, BeforeValidator(lambda v: v if v is None else parse_priority(v))] = None
    #: this severity or worse
    severity: Severity | None = None
    #: a detection pattern's id (oom_kill, service_failed...)
    pattern: str | None = Field(None, max_length=128)
    #: a plain substring of the message, case-insensitive; never a regex
    text: str | None = Field(None, min_length=1, max_length=200)
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    #: only what was stored after this cursor, oldest first (a follower reads forward)
    after: Cursor | None = None
    #: which kinds of row to return
    kinds: tuple[EventKind, ...] = (EventKind.LOG, EventKind.TRIGGER)

    @field_validator("until")
    @classmethod
    def _ordered(cls, v: datetime | None, info: Any) -> datetime | None:
        since = info.data.get("since")
        if v is not None and since is not None and v < since:
            raise ValueError("is before since")
        return v


class Trigger(BaseModel):
    id: int
    pattern: str | None
    trigger_type: str
    severity: Severity
    reason: str
    count: int
    #: the template a novelty event is about (log_templates.id): an operator may mark it benign
    template_id: int | None = None


class EventRow(BaseModel):
    kind: EventKind
    #: the log event's id, or the trigger event's for kind "trigger"
    id: int
    time: datetime
    hostname: str
    #: the worst of the entry's own severity and its triggers'
    severity: Severity
    unit: str | None
    priority: int | None
    #: untrusted: journal text, shown escaped
    message: str
    #: the journal identifier (SYSLOG_IDENTIFIER or _COMM) when known
    identifier: str | None = None
    source: str | None = None
    triggers: list[Trigger] = Field(default_factory=list)
    #: repeats folded into a trigger-only event's group
    count: int = 1


class EventPage(BaseModel):
    entries: list[EventRow]
    #: pass as ``after`` to get what is stored next
    cursor: Cursor


def _worse_or_equal(column: Any, severity: Severity) -> Any:
    return column.in_([s.value for s in SEVERITIES[: severity.rank + 1]])


def _log_select(q: EventQuery) -> Any:
    e = LogEvent
    stmt = select(e)
    if q.host:
        stmt = stmt.where(e.hostname == q.host)
    if q.since:
        stmt = stmt.where(e.time >= q.since)
    if q.until:
        stmt = stmt.where(e.time <= q.until)
    if q.unit:
        stmt = stmt.where(e.unit.in_(lookup_names(q.unit)))
    if q.priority:
        prio = e.meta["priority"].as_integer()
        stmt = stmt.where(prio.between(*q.priority))
    if q.text:
        stmt = stmt.where(func.lower(e.message).contains(q.text.lower(), autoescape=True))
    trig = TriggerEvent
    if q.pattern:
        stmt = stmt.where(exists().where(trig.log_event_id == e.id, trig.pattern_id == q.pattern))
    if q.severity:
        stmt = stmt.where(or_(_worse_or_equal(e.severity, q.severity),
                              exists().where(trig.log_event_id == e.id, _worse_or_equal(trig.severity, q.severity))))
    if q.after is not None:
        stmt = stmt.where(e.id > q.after.log_id)
    return stmt


def _trigger_select(q: EventQuery) -> Any:
    t = TriggerEvent
    stmt = select(t).where(t.log_event_id.is_(None))
    if q.priority:
        return None  # only journal entries have a priority
    if q.host:
        stmt = stmt.where(t.hostname == q.host)
    if q.since:
        stmt = stmt.where(t.time >= q.since)
    if q.until:
        stmt = stmt.where(t.time <= q.until)
    if q.unit:
        stmt = stmt.where(t.meta["unit"].as_string().in_(lookup_names(q.unit)))
    if q.text:
        stmt = stmt.where(func.lower(t.trigger_reason).contains(q.text.lower(), autoescape=True))
    if q.pattern:
        stmt = stmt.where(t.pattern_id == q.pattern)
    if q.severity:
        stmt = stmt.where(_worse_or_equal(t.severity, q.severity))
    if q.after is not None:
        stmt = stmt.where(t.id > q.after.trigger_id)
    return stmt


def _priority(meta: dict[str, Any] | None) -> int | None:
    p = (meta or {}).get("priority")
    return p if isinstance(p, int) and not isinstance(p, bool) else None


def _trigger(t: TriggerEvent) -> Trigger:
    template = (t.meta or {}).get("template_id")
    return Trigger(id=t.id, pattern=t.pattern_id, trigger_type=t.trigger_type, severity=Severity(t.severity),
                   reason=t.trigger_reason, count=t.count or 1,
                   template_id=template if isinstance(template, int) and not isinstance(template, bool) else None)


def _log_row(e: LogEvent, triggers: list[TriggerEvent]) -> EventRow:
    sevs = [e.severity, *(t.severity for t in triggers)]
    meta = e.meta or {}
    ident = meta.get("identifier") or meta.get("comm")
    return EventRow(kind=EventKind.LOG, id=e.id, time=e.time, hostname=e.hostname,
                    severity=Severity(min(sevs, key=SEVERITY_RANK.__getitem__)), unit=e.unit,
                    priority=_priority(meta), message=e.message, identifier=str(ident) if ident else None,
                    source=e.source, triggers=[_trigger(t) for t in triggers])


def _trigger_row(t: TriggerEvent) -> EventRow:
    unit = (t.meta or {}).get("unit")
    return EventRow(kind=EventKind.TRIGGER, id=t.id, time=t.time, hostname=t.hostname, severity=Severity(t.severity),
                    unit=str(unit) if unit else None, priority=None, message=t.trigger_reason,
                    triggers=[_trigger(t)], count=t.count or 1)


def fetch(session: Session, q: EventQuery) -> list[EventRow]:
    """The rows matching ``q``: newest first, or after ``q.after`` oldest first; at most ``q.limit``."""
    forward = q.after is not None
    rows: list[EventRow] = []
    if EventKind.LOG in q.kinds:
        stmt = _log_select(q)
        order = (LogEvent.id.asc(),) if forward else (LogEvent.time.desc(), LogEvent.id.desc())
        logs = list(session.execute(stmt.order_by(*order).limit(q.limit)).scalars())
        by_log: dict[int, list[TriggerEvent]] = {}
        if logs:
            for t in session.execute(select(TriggerEvent).where(TriggerEvent.log_event_id.in_([e.id for e in logs]))
                                     .order_by(TriggerEvent.id)).scalars():
                by_log.setdefault(t.log_event_id, []).append(t)
        rows += [_log_row(e, by_log.get(e.id, [])) for e in logs]
    trig_stmt = _trigger_select(q) if EventKind.TRIGGER in q.kinds else None
    if trig_stmt is not None:
        order = (TriggerEvent.id.asc(),) if forward else (TriggerEvent.time.desc(), TriggerEvent.id.desc())
        rows += [_trigger_row(t) for t in session.execute(trig_stmt.order_by(*order).limit(q.limit)).scalars()]
    if forward:
        # Followers print in the order things were stored; the two id sequences are merged by time.
        rows.sort(key=lambda r: (r.time, r.kind, r.id))
        return rows[: q.limit]
    rows.sort(key=lambda r: (r.time, r.id), reverse=True)
    return rows[: q.limit]


def query_events(store: Store, q: EventQuery) -> EventPage:
    """One page of ``q`` and the cursor to follow from. Without ``after``, the cursor is the newest stored ids (not
    just the page's), so that a follower starting from it misses nothing stored after this read."""
    with store.session() as s:
        entries = fetch(s, q)
        if q.after is None:
            cursor = Cursor(log_id=s.execute(select(func.coalesce(func.max(LogEvent.id), 0))).scalar_one(),
                            trigger_id=s.execute(select(func.coalesce(func.max(TriggerEvent.id), 0))).scalar_one())
        else:
            cursor = q.after.advance(entries)
    return EventPage(entries=entries, cursor=cursor)


class TriggerQuery(BaseModel):
    """Trigger events (what Layer 1 raised), journal-backed or not, e.g. for an events timeline."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, max_length=255)
    since: Time = None
    until: Time = None
    severity: Severity | None = None
    pattern: str | None = Field(None, max_length=128)
    #: only events no review has covered yet
    unreviewed: bool = False
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    after_id: int = Field(0, ge=0)
    #: only these events (a review's or an analysis's evidence)
    ids: list[int] | None = Field(None, max_length=MAX_LIMIT)


class TriggerRow(BaseModel):
    id: int
    time: datetime
    last_seen: datetime | None
    hostname: str
    trigger_type: str
    severity: Severity
    pattern: str | None
    reason: str
    unit: str | None
    count: int
    review_id: int | None
    log_event_id: int | None
    #: the journal line behind it (untrusted), when there is one
    message: str | None


def list_triggers(store: Store, q: TriggerQuery) -> list[TriggerRow]:
    """Newest first (or after ``after_id``, oldest first), each with its journal line."""
    t = TriggerEvent
    stmt = select(t, LogEvent.message).outerjoin(LogEvent, LogEvent.id == t.log_event_id)
    conds = []
    if q.host:
        conds.append(t.hostname == q.host)
    if q.since:
        conds.append(func.coalesce(t.last_seen, t.time) >= q.since)
    if q.until:
        conds.append(t.time <= q.until)
    if q.severity:
        conds.append(_worse_or_equal(t.severity, q.severity))
    if q.pattern:
        conds.append(t.pattern_id == q.pattern)
    if q.unreviewed:
        conds.append(t.review_id.is_(None))
    if q.after_id:
        conds.append(t.id > q.after_id)
    if q.ids is not None:
        conds.append(t.id.in_(q.ids))
    stmt = stmt.where(and_(True, *conds))
    stmt = stmt.order_by(t.id.asc() if q.after_id else t.id.desc()).limit(q.limit)
    with store.session() as s:
        return [TriggerRow(id=r.id, time=r.time, last_seen=r.last_seen, hostname=r.hostname,
                           trigger_type=r.trigger_type, severity=Severity(r.severity), pattern=r.pattern_id,
                           reason=r.trigger_reason, unit=(r.meta or {}).get("unit"), count=r.count or 1,
                           review_id=r.review_id, log_event_id=r.log_event_id, message=msg)
                for r, msg in s.execute(stmt)]


def count_events(session: Session, q: EventQuery) -> int:
    """How many log events match ``q`` in all (the page shows ``limit`` of them)."""
    return int(session.execute(select(func.count()).select_from(_log_select(q).subquery())).scalar_one())


__all__ = ["Cursor", "EventKind", "EventPage", "EventQuery", "EventRow", "TriggerQuery", "TriggerRow",
           "count_events", "fetch", "list_triggers", "parse_priority", "query_events"]
