"""Layer 1 check of one host: read the journal since the stored cursor, detect, store (events first)."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timezone

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from macha.broker.live import Feed, LiveKind
from macha.config import DetectionSettings, GroupingSettings, Settings, parse_duration
from macha.core.severity import Severity
from macha.core.text import cap, one_line, storable_value
from macha.monitor.collect.hostinfo import host_facts
from macha.monitor.collect.journal import CursorInvalid, JournalSource, cursor_time, read_batches
from macha.monitor.detect import error_rate, novelty
from macha.monitor.detect.correlate import Correlator, correlator_for, default_correlator
from macha.monitor.detect.grouping import store_triggers
from macha.monitor.detect.matcher import Matcher, matcher_for
from macha.monitor.detect.triggers import Detection, detect, fingerprint, signals_of, with_signals
from macha.monitor.templates import assign_templates
from macha.store.db import Store
from macha.store.models import Host, JournalCursor, LogEvent, utcnow
from macha.store.ops import insert_ignore, savepoint, upsert

log = logging.getLogger(__name__)

#: Trigger ids carried in a check result are capped: results travel through the broker.
MAX_IDS_IN_RESULT = 200
#: The event that stands for a journal entry the database refused: it says why and shows the entry as read.
UNSTORABLE_PATTERN = "unstorable_entry"
#: How much of a refused entry's message its event shows.
UNSTORABLE_SHOWN = 2000


class CheckResult(BaseModel):
    hostname: str
    source: str
    reason: str
    entries_read: int = 0
    new_log_events: int = 0
    new_triggers: int = 0
    #: matches that joined an event group of the grouping window instead of raising a new event
    repeats: int = 0
    severity_counts: dict[str, int] = Field(default_factory=dict)
    trigger_ids: list[int] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    #: error-priority lines per unit in this check (for the error-rate baselines; not sent through the broker)
    error_counts: Counter[str] = Field(default_factory=Counter, repr=False, exclude=True)


#: The facts the fleet registry shows as columns (macha-systems list), each capped to its column.
FACT_COLUMNS = {"os": 255, "kernel": 255, "nixos_generation": 64, "macha_version": 64}


def ensure_host(store: Store, hostname: str, facts: dict | None = None) -> None:
    """Register the host; ``facts`` (OS, kernel, uptime...) replace the stored ones when given."""
    with store.session() as s:
        now = utcnow()
        row = {"hostname": hostname, "first_seen": now, "last_seen": now, "metadata": facts or {}}
        update_ = ["last_seen"]
        if facts:
            columns = {k: cap(one_line(str(facts[k])), n) if facts.get(k) is not None else None
                       for k, n in FACT_COLUMNS.items()}
            row.update(columns, facts_at=now)
            update_ += ["metadata", *columns, "facts_at"]
        upsert(s, Host.__table__, row, keys=["hostname"], update=update_)


def run_check(
    store: Store,
    settings: Settings,
    *,
    hostname: str | None = None,
    source: JournalSource | None = None,
    reason: str = "schedule",
    matcher: Matcher | None = None,
) -> CheckResult:
    hostname = hostname or settings.hostname
    source = source or JournalSource()
    result = CheckResult(hostname=hostname, source=source.key, reason=reason)
    if matcher is None:
        matcher, problems = matcher_for(settings.patterns_file)
        result.notes.extend(problems)
    correlator, problems = correlator_for(settings.correlations_file)
    result.notes.extend(problems)
    # Facts are the local machine's: only a check of this host's own journal may describe it.
    ensure_host(store, hostname, host_facts() if hostname == settings.hostname else None)

    with store.session() as s:
        row = s.execute(
            select(JournalCursor).where(JournalCursor.hostname == hostname, JournalCursor.source == source.key)
        ).scalar_one_or_none()
        cursor = row.cursor if row else None
        total_before = row.entries_read if row else 0

    since = None
    if cursor is None and source.kind == "system":
        # The first read of a live system journal starts a bounded time ago, not at the dawn of the journal.
        since = datetime.now(timezone.utc) - parse_duration(settings.journal_initial_lookback)
    try:
        _ingest(store, settings, result, matcher, source, cursor, since, total_before, correlator)
    except CursorInvalid as exc:
        restart = cursor_time(cursor or "") or since
        note = f"{exc}; re-reading from {restart.isoformat() if restart else 'the start'} (duplicates are skipped)"
        log.warning(note)
        result.notes.append(note)
        _ingest(store, settings, result, matcher, source, None, restart, total_before, correlator)
    with store.session() as s:
        ids = error_rate.evaluate(s, settings, hostname, result.error_counts, utcnow())
    if ids:
        Feed(settings.effective_broker_url).publish(LiveKind.EVENTS, hostname)
        result.new_triggers += len(ids)
        result.severity_counts[settings.error_rate.severity] = (
            result.severity_counts.get(settings.error_rate.severity, 0) + len(ids))
        result.trigger_ids.extend(ids[: max(0, MAX_IDS_IN_RESULT - len(result.trigger_ids))])
    return result


def _ingest(
    store: Store,
    settings: Settings,
    result: CheckResult,
    matcher: Matcher,
    source: JournalSource,
    cursor: str | None,
    since: datetime | None,
    total_before: int,
    correlator: Correlator | None = None,
) -> None:
    feed = Feed(settings.effective_broker_url)
    for batch in read_batches(source, after_cursor=cursor, since=since, batch_size=settings.journal_batch_size,
                              max_message=settings.journal_max_message):
        stored_before = result.new_log_events + result.new_triggers + result.repeats
        store_batch(store, result, matcher, source.key, batch, total_before, settings.grouping, correlator,
                    settings.detection)
        if result.new_log_events + result.new_triggers + result.repeats > stored_before:
            # After the batch's commit: a follower woken now finds it in the database.
            feed.publish(LiveKind.EVENTS, result.hostname)


def insert_detections(s: Session, detections: list[Detection], grouping: GroupingSettings | None = None,
                      refused: list[str] | None = None, correlator: Correlator | None = None,
                      ) -> tuple[list, list, int]:
    """Log events (each with its message's template) and their triggers: a repeat within the grouping window adds
    to its group's count. An entry stored before (same entry key) is skipped, with its triggers. The entries
    stored then go through the correlation rules (``correlator``; the built-in ones when None), whose root-cause
    events count as new trigger events.

    No single entry can stop the others: if the database refuses the detections, they are split until the entry
    it refuses is found, and that entry is stored as an ``unstorable_entry`` event instead (its reason appended to
    ``refused``). Each attempt runs in a savepoint, so the caller's transaction (with the cursor) goes on.

    Returns the inserted log events, the new trigger events (id, severity) and how many repeats joined groups."""
    if not detections:
        return [], [], 0
    try:
        with savepoint(s):
            return _insert_detections(s, detections, grouping, correlator)
    except Exception as exc:  # noqa: BLE001 - narrowed by _refused; anything else is re-raised
        if not _refused(exc):
            raise
        if len(detections) > 1:
            half = len(detections) // 2
            first = insert_detections(s, detections[:half], grouping, refused, correlator)
            second = insert_detections(s, detections[half:], grouping, refused, correlator)
            return first[0] + second[0], first[1] + second[1], first[2] + second[2]
        reason = _reason(exc)
        log.warning("journal entry %s could not be stored (%s); stored as an %s event",
                    detections[0].log_row["metadata"].get("cursor"), reason, UNSTORABLE_PATTERN)
        if refused is not None:
            refused.append(reason)
        # Not guarded: this event is storable by construction, so the database refusing it is no entry's fault.
        with savepoint(s):
            return _insert_detections(s, [unstorable(detections[0], reason)], grouping, correlator)


def _insert_detections(s: Session, detections: list[Detection], grouping: GroupingSettings | None,
                       correlator: Correlator | None = None) -> tuple[list, list, int]:
    by_host: dict[str, list[dict]] = {}
    for d in detections:
        by_host.setdefault(d.log_row["hostname"], []).append(d.log_row)
    for hostname, rows in by_host.items():
        # Rows that novelty already mined carry their template.
        rows = [r for r in rows if "template_id" not in r]
        for row, template_id in zip(rows, assign_templates(s, hostname, [r["message"] for r in rows])):
            row["template_id"] = template_id
    inserted = insert_ignore(s, LogEvent.__table__, [d.log_row for d in detections], returning=("id", "entry_key"))
    ids = {key: log_id for log_id, key in inserted}
    trigger_rows = [
        {**t, "log_event_id": ids[d.log_row["entry_key"]]}
        for d in detections
        if d.log_row["entry_key"] in ids
        for t in d.triggers
    ]
    stored = store_triggers(s, trigger_rows, grouping or GroupingSettings())
    correlator = correlator or default_correlator()
    entries = [(d.log_row, ids[d.log_row["entry_key"]], [t["pattern_id"] for t in d.triggers] + signals_of(d.log_row))
               for d in detections if d.log_row["entry_key"] in ids]
    roots = correlator.observe(s, entries, trigger_rows)
    return inserted, stored.new + roots, stored.repeats


def _refused(exc: BaseException) -> bool:
    """Whether the database refused the data sent (a value it cannot store: the entry's fault), as opposed to
    failing as a whole (connection lost, lock timeout, deadlock, a corrupt file), which must stop the batch so
    that it is read again."""
    if isinstance(exc, DataError | IntegrityError):
        return not exc.connection_invalidated
    if isinstance(exc, DBAPIError):
        return False
    # psycopg2 raises ValueError for a NUL before anything is sent; drivers raise UnicodeEncodeError (a
    # ValueError) for a lone surrogate; SQLAlchemy wraps what its type processors refuse in StatementError.
    return isinstance(exc, StatementError | ValueError)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return cap(one_line(text.splitlines()[0] if text else type(orig).__name__), 300)


def unstorable(d: Detection, reason: str) -> Detection:
    """What stands for an entry the database refused, storable whatever the entry held: its message as a Python
    repr (quoted, every unprintable character escaped), every other text as one printable line. The entry key
    is the entry's own, so a re-read skips it; its triggers are kept (the line may be an OOM) and one more says
    that an entry could not be stored."""
    row = d.log_row
    unit = cap(one_line(row["unit"]), 255) if row.get("unit") else None
    shown = repr(row["message"][:UNSTORABLE_SHOWN]) + (" …" if len(row["message"]) > UNSTORABLE_SHOWN else "")
    message = f"journal entry could not be stored ({reason}); as read: {shown}"
    meta = storable_value(row.get("metadata") or {}, names=True)
    log_row = {"time": row["time"], "hostname": row["hostname"], "severity": row["severity"], "message": message,
               "unit": unit, "source": row["source"], "entry_key": row["entry_key"],
               "metadata": {**meta, "matched": 1, "unstorable": reason}}
    kept = [{**t, "trigger_reason": cap(one_line(t["trigger_reason"]), 400),
             "metadata": storable_value(t.get("metadata") or {}, names=True)} for t in d.triggers]
    sender = next((t["metadata"].get("sender") for t in kept if "sender" in t["metadata"]), None)
    failure = {
        "time": row["time"],
        "hostname": row["hostname"],
        "trigger_type": "journal_unstorable",
        "trigger_reason": cap(message, 400),
        "severity": Severity.MEDIUM,
        "pattern_id": UNSTORABLE_PATTERN,
        "fingerprint": fingerprint(UNSTORABLE_PATTERN, unit, reason),
        "metadata": {"subsystem": "journal", "unit": unit, "error": reason,
                     **({"sender": sender} if sender is not None else {})},
    }
    return Detection(log_row, kept + [failure])


def _is_error(d: Detection) -> bool:
    priority = d.log_row["metadata"].get("priority")
    return isinstance(priority, int) and priority <= 3


def store_batch(store: Store, result: CheckResult, matcher: Matcher, source_key: str, batch: list,
                total_before: int, grouping: GroupingSettings | None = None,
                correlator: Correlator | None = None, detection: DetectionSettings | None = None) -> None:
    """Detect and store one batch of journal entries; its events and the cursor commit in one transaction."""
    severities: Counter[str] = Counter(result.severity_counts)
    correlator = correlator or default_correlator()
    # The whole batch through the pattern engine at once (one Hyperscan pass when it is installed).
    messages = [e.message for e in batch]
    matched = matcher.match_many(messages)
    detections = []
    for e, m, signals in zip(batch, matched, correlator.match_signals(messages)):
        d = detect(e, matcher, result.hostname, source_key, m)
        if signals:
            d = with_signals(d, e, result.hostname, source_key, signals)
        if d is not None:
            detections.append(d)
    result.error_counts.update(d.log_row["unit"] or "?" for d in detections if _is_error(d))
    refused: list[str] = []
    with store.session() as s:
        detections = novelty.observe(s, detection or DetectionSettings(), result.hostname, source_key, batch,
                                     detections)
        inserted, new_triggers, repeats = insert_detections(s, detections, grouping, refused, correlator)
        upsert(
            s,
            JournalCursor.__table__,
            {
                "hostname": result.hostname,
                "source": source_key,
                "cursor": batch[-1].cursor,
                "entries_read": total_before + result.entries_read + len(batch),
                "updated_at": utcnow(),
            },
            keys=["hostname", "source"],
        )
        s.execute(update(Host).where(Host.hostname == result.hostname).values(last_seen=utcnow()))
    if refused:
        result.notes.append(f"{len(refused)} journal entr{'y' if len(refused) == 1 else 'ies'} could not be stored "
                            f"as read (first: {refused[0]}); stored as {UNSTORABLE_PATTERN} events")
    result.entries_read += len(batch)
    result.new_log_events += len(inserted)
    result.new_triggers += len(new_triggers)
    result.repeats += repeats
    for tid, sev in new_triggers:
        severities[sev] += 1
        if len(result.trigger_ids) < MAX_IDS_IN_RESULT:
            result.trigger_ids.append(tid)
    result.severity_counts = dict(severities)
