"""Novelty: a message template never seen on this host before is an event, when its line is error-ish.

This is how Layer 1 catches what no pattern names. Every kept line and every error-ish line (journal PRIORITY
warning or worse, or error words from ``novelty.toml``) is mined into the host's templates as the batch is
stored (``assign_templates``: a template id per message; a new cluster is a new template). A host first learns:
for ``detection.noveltyLearning`` from its first template, templates are only recorded. After that, a template
first seen is *new* for ``detection.noveltyNewFor``: its error-ish lines raise a ``novel_template`` event (low;
medium when the line is err or worse or says a strong error word; never high), at most one per unit per
``detection.noveltyRateLimit`` and per batch (a burst of new templates from one unit is one event, which counts
the others). A line that a pattern or an unnamed-line rule already raised, or that a benign entry recognises,
raises nothing more. An operator marks a template benign (``macha-templates benign ID``, the dashboard): it is
learned and never raises again; the mark is audited in ``template_audit``.

Times are the journal's: a replayed journal learns as it ran. The state (novelty_hosts, novelty_templates,
novelty_units) is in the store and is written in the batch's transaction, under the host's miner lock.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from macha.config import DetectionSettings, parse_duration
from macha.core.errors import MachaError
from macha.core.severity import Severity
from macha.core.text import cap, one_line
from macha.monitor.collect.journal import JournalEntry
from macha.monitor.detect.triggers import Detection, entry_key, fingerprint, sender
from macha.monitor.templates import assign_templates, short_template
from macha.store.db import Store
from macha.store.models import (
    LogTemplate,
    NoveltyHost,
    NoveltyTemplate,
    NoveltyUnit,
    TemplateAudit,
    utcnow,
)
from macha.store.ops import insert_ignore, upsert

PATTERN_ID = "novel_template"
TRIGGER_TYPE = "journal_novelty"
VOCABULARY_FILE = Path(__file__).with_name("novelty.toml")
#: Characters of a template shown in an event's reason.
SHOWN = 240
#: PRIORITY warning (4) or worse makes a line error-ish; err (3) or worse makes its event medium.
WARNING, ERR = 4, 3


class NoveltyError(MachaError):
    pass


@dataclass(frozen=True)
class Vocabulary:
    error: re.Pattern[str]
    strong: re.Pattern[str]
    examples: dict[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    with open(VOCABULARY_FILE, "rb") as fh:
        data = tomllib.load(fh)["vocabulary"]
    return Vocabulary(re.compile(data["error"], re.I), re.compile(data["strong"], re.I),
                      {k: tuple(data[k]) for k in ("error_examples", "strong_examples", "plain_examples")})


def error_ish(priority: int | None, message: str) -> bool:
    return (priority is not None and priority <= WARNING) or vocabulary().error.search(message) is not None


def severity_of(priority: int | None, message: str) -> Severity:
    """Medium for an err-or-worse line or a strong error word, else low: never high (see the module's doc)."""
    if (priority is not None and priority <= ERR) or vocabulary().strong.search(message) is not None:
        return Severity.MEDIUM
    return Severity.LOW


def _unit(entry: JournalEntry) -> str:
    return cap(one_line(entry.unit or entry.identifier or "?"), 255)


def _quiet_since(last: datetime | None, now: datetime, limit: timedelta) -> bool:
    """Whether the unit's last novelty event is at least ``limit`` away (either way: a clock that went back)."""
    return last is None or abs(now - last) >= limit


def observe(s: Session, cfg: DetectionSettings, hostname: str, source_key: str, batch: Sequence[JournalEntry],
            detections: list[Detection]) -> list[Detection]:
    """Mine the batch's kept and error-ish lines (their log rows get their ``template_id``), record their
    templates, and add novelty events: to a kept line's detection, or as a new detection for a line that was not
    kept. Runs in the batch's transaction; returns the detections to store."""
    if not cfg.novelty or not batch:
        return detections
    # By cursor: hashing every line's entry key would cost more than the rest of this for a quiet batch.
    kept = {d.log_row["metadata"].get("cursor"): d for d in detections}
    lines: list[tuple[JournalEntry, str, Detection | None]] = []
    for e in batch:
        d = kept.get(e.cursor)
        if d is not None:
            lines.append((e, d.log_row["entry_key"], d))
        elif error_ish(e.priority, e.message):
            lines.append((e, entry_key(e), None))
    # Learning starts with the first line the host sent, whatever it said: a host that rarely logs an error-ish
    # line has still been watched since then, and its quiet lines are part of what it was seen to do.
    insert_ignore(s, NoveltyHost.__table__, [{"hostname": hostname, "learning_since": batch[0].time}],
                  returning=("hostname",))
    if not lines:
        return detections
    ids = assign_templates(s, hostname, [e.message for e, _, _ in lines])
    for (_, _, d), tid in zip(lines, ids):
        if d is not None:
            d.log_row["template_id"] = tid

    learning_since = s.execute(
        select(NoveltyHost.learning_since).where(NoveltyHost.hostname == hostname)).scalar_one()
    learned_at = learning_since + parse_duration(cfg.novelty_learning)
    first: dict[int, dict[str, Any]] = {}
    for (e, _, _), tid in zip(lines, ids):
        first.setdefault(tid, {"hostname": hostname, "cluster_id": tid, "first_seen": e.time,
                               "first_unit": _unit(e), "benign": False, "events": 0})
    insert_ignore(s, NoveltyTemplate.__table__, list(first.values()), returning=("id",))
    known = {r.cluster_id: r for r in s.execute(
        select(NoveltyTemplate.cluster_id, NoveltyTemplate.first_seen, NoveltyTemplate.benign)
        .where(NoveltyTemplate.hostname == hostname, NoveltyTemplate.cluster_id.in_(first)))}

    new_for = parse_duration(cfg.novelty_new_for)
    # The lines that would raise: error-ish, not raised or recognised already, of a template new at their time.
    novel: list[tuple[JournalEntry, str, Detection | None, int]] = []
    for (e, key, d), tid in zip(lines, ids):
        t = known[tid]
        if t.benign or t.first_seen < learned_at or not (t.first_seen <= e.time < t.first_seen + new_for):
            continue
        if d is not None and (d.triggers or d.log_row["metadata"].get("benign")):
            continue
        if not error_ish(e.priority, e.message):
            continue
        novel.append((e, key, d, tid))
    if not novel:
        return detections

    units = {u for u in (_unit(e) for e, _, _, _ in novel)}
    last = dict(s.execute(select(NoveltyUnit.unit, NoveltyUnit.last_event_at)
                          .where(NoveltyUnit.hostname == hostname, NoveltyUnit.unit.in_(units))).all())
    limit = parse_duration(cfg.novelty_rate_limit)
    # One event per unit in a batch, the first line of its new templates; it counts the others.
    chosen: dict[str, tuple[JournalEntry, str, Detection | None, int]] = {}
    others: dict[str, set[int]] = {}
    for item in novel:
        unit = _unit(item[0])
        if unit in chosen:
            if item[3] != chosen[unit][3]:
                others.setdefault(unit, set()).add(item[3])
            continue
        if _quiet_since(last.get(unit), item[0].time, limit):
            chosen[unit] = item
    if not chosen:
        return detections
    templates = {r.cluster_id: r for r in s.execute(
        select(LogTemplate.id, LogTemplate.cluster_id, LogTemplate.template)
        .where(LogTemplate.hostname == hostname, LogTemplate.cluster_id.in_({c[3] for c in chosen.values()})))}
    out = list(detections)
    for unit, (e, key, d, tid) in chosen.items():
        tpl = templates[tid]
        trigger = _trigger(e, hostname, unit, tpl.id, tid, tpl.template, len(others.get(unit, ())))
        if d is not None:
            d.triggers.append(trigger)
        else:
            out.append(Detection(_log_row(e, hostname, source_key, key, trigger["severity"], unit, tid, tpl.id),
                                 [trigger]))
        upsert(s, NoveltyUnit.__table__, {"hostname": hostname, "unit": unit, "last_event_at": e.time},
               keys=["hostname", "unit"])
        s.execute(update(NoveltyTemplate).where(NoveltyTemplate.hostname == hostname,
                                                NoveltyTemplate.cluster_id == tid)
                  .values(events=NoveltyTemplate.events + 1))
    return out


def _trigger(e: JournalEntry, hostname: str, unit: str, template_id: int, cluster_id: int, template: str,
             more: int) -> dict[str, Any]:
    shown = short_template(one_line(template), SHOWN)
    also = f" (and {more} more new template{'s' if more != 1 else ''} from it)" if more else ""
    return {
        "time": e.time,
        "hostname": hostname,
        "trigger_type": TRIGGER_TYPE,
        "trigger_reason": f"A message template never seen on this host before, from {unit}{also}: {shown} "
                          f"[template {template_id}; `macha-templates benign {template_id}` if it is normal]",
        "severity": severity_of(e.priority, e.message),
        "pattern_id": PATTERN_ID,
        "fingerprint": fingerprint(PATTERN_ID, unit, template),
        "metadata": {"subsystem": "journal", "unit": unit, "template_id": template_id, "cluster_id": cluster_id,
                     "template": cap(template, 2000), "more_new_templates": more, "sender": sender(e)},
    }


def _log_row(e: JournalEntry, hostname: str, source_key: str, key: str, severity: str, unit: str,
             cluster_id: int, template_id: int) -> dict[str, Any]:
    """The log event of a line only novelty keeps (an error-ish line no pattern or rule kept)."""
    return {"time": e.time, "hostname": hostname, "severity": severity, "message": e.message, "unit": unit,
            "source": source_key, "entry_key": key, "template_id": cluster_id,
            "metadata": {**e.fields(), "matched": 0, "novel_template": template_id}}


# --- the operator's side: list templates, mark one benign ---

class TemplateInfo(BaseModel):
    #: log_templates.id: what an operator names
    id: int
    hostname: str
    #: untrusted: made of journal text
    template: str
    lines: int
    first_seen: datetime | None
    first_unit: str | None
    #: new (first seen after the learning period) | learned | benign
    state: str
    events: int
    benign_by: str | None
    benign_at: datetime | None


def _state(cfg: DetectionSettings, learning_since: datetime | None, t: Any) -> str:
    if t.benign:
        return "benign"
    if learning_since is None or t.first_seen is None:
        return "learned"
    return "new" if t.first_seen >= learning_since + parse_duration(cfg.novelty_learning) else "learned"


def list_templates(store: Store, cfg: DetectionSettings, host: str | None = None, *, only_new: bool = False,
                   limit: int = 100) -> list[TemplateInfo]:
    """The hosts' templates as novelty sees them, newest first: "new" ones were first seen after their host's
    learning period (their error-ish lines raise for noveltyNewFor from then), "learned" ones during it."""
    lt, nt = LogTemplate, NoveltyTemplate
    stmt = (select(lt.id, lt.hostname, lt.template, lt.size, nt.first_seen, nt.first_unit, nt.benign, nt.events,
                   nt.benign_by, nt.benign_at)
            .outerjoin(nt, (nt.hostname == lt.hostname) & (nt.cluster_id == lt.cluster_id))
            .order_by(nt.first_seen.desc().nulls_last(), lt.id.desc()))
    if host:
        stmt = stmt.where(lt.hostname == host)
    if only_new:
        # The newest first: the new ones of each host come before its learned ones, so reading stops early.
        stmt = stmt.where(nt.benign.is_(False), nt.first_seen.is_not(None))
    else:
        stmt = stmt.limit(limit)
    out: list[TemplateInfo] = []
    with store.session() as s:
        since = dict(s.execute(select(NoveltyHost.hostname, NoveltyHost.learning_since)).all())
        result = s.execute(stmt.execution_options(yield_per=500))
        try:
            for r in result:
                state = _state(cfg, since.get(r.hostname), r)
                if only_new and state != "new":
                    continue
                out.append(TemplateInfo(id=r.id, hostname=r.hostname, template=r.template, lines=r.size,
                                        first_seen=r.first_seen, first_unit=r.first_unit, state=state,
                                        events=r.events or 0, benign_by=r.benign_by, benign_at=r.benign_at))
                if len(out) >= limit:
                    break
        finally:
            result.close()
    return out


def mark_benign(store: Store, template_id: int, actor: str, reason: str = "") -> TemplateInfo:
    """Mark a template benign (learned: its lines never raise a novelty event again), audited under ``actor``.
    Marking one already benign changes nothing and writes no second audit row."""
    now = utcnow()
    with store.session() as s:
        tpl = s.execute(select(LogTemplate).where(LogTemplate.id == template_id)).scalar_one_or_none()
        if tpl is None:
            raise NoveltyError(f"there is no template {template_id} (see `macha-templates list`)")
        insert_ignore(s, NoveltyTemplate.__table__,
                      [{"hostname": tpl.hostname, "cluster_id": tpl.cluster_id, "first_seen": tpl.first_seen,
                        "first_unit": None, "benign": False, "events": 0}], returning=("id",))
        changed = s.execute(
            update(NoveltyTemplate)
            .where(NoveltyTemplate.hostname == tpl.hostname, NoveltyTemplate.cluster_id == tpl.cluster_id,
                   NoveltyTemplate.benign.is_(False))
            .values(benign=True, benign_by=actor[:128], benign_at=now)).rowcount
        if changed:
            s.add(TemplateAudit(time=now, hostname=tpl.hostname, template_id=tpl.id, cluster_id=tpl.cluster_id,
                                event="benign", actor=actor[:128], reason=reason[:2000], template=tpl.template))
        row = s.execute(select(NoveltyTemplate).where(NoveltyTemplate.hostname == tpl.hostname,
                                                      NoveltyTemplate.cluster_id == tpl.cluster_id)).scalar_one()
        return TemplateInfo(id=tpl.id, hostname=tpl.hostname, template=tpl.template, lines=tpl.size,
                            first_seen=row.first_seen, first_unit=row.first_unit, state="benign", events=row.events,
                            benign_by=row.benign_by, benign_at=row.benign_at)


def audit(store: Store, host: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    with store.session() as s:
        stmt = select(TemplateAudit).order_by(TemplateAudit.id.desc()).limit(limit)
        if host:
            stmt = stmt.where(TemplateAudit.hostname == host)
        return [{"time": r.time, "host": r.hostname, "template_id": r.template_id, "event": r.event,
                 "actor": r.actor, "reason": r.reason, "template": r.template} for r in s.execute(stmt).scalars()]
