"""The optional small-model classifier (useTriggerModel): error lines no pattern knows, one per message template,
are sorted by the trigger model into ignore | low | medium | high | critical, within a budget of calls a minute.

A verdict is kept per template, so the model is asked once about each kind of line; later lines of a template it
found worth raising become events without another call. When the model cannot be reached, Layer 1 carries on
without it and says so once per outage; the lines wait (the read position does not move past them).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exists, func, select

from macha.config import Settings, parse_duration
from macha.llm.base import Backend, LLMError
from macha.llm.parse import parse_json_as
from macha.llm.prompts import fence_lines, render
from macha.llm.schemas import model_schema
from macha.monitor.detect.grouping import store_triggers
from macha.store.db import Store
from macha.store.models import (
    ClassifiedTemplate,
    ClassifierCall,
    ClassifierState,
    LogEvent,
    LogTemplate,
    TriggerEvent,
    utcnow,
)
from macha.store.ops import insert_ignore, upsert

log = logging.getLogger(__name__)
#: The classifier model's verdict on a template: a severity, or "ignore" (not the Severity of an event).
VerdictSeverity = Literal["ignore", "low", "medium", "high", "critical"]
#: Lines read per run; the rest waits for the next run.
MAX_SCAN = 5000


class Verdict(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    severity: VerdictSeverity
    reason: str = Field("", max_length=300)


class Verdicts(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[Verdict] = Field(default_factory=list, max_length=50)


class ClassifyResult(BaseModel):
    hostname: str
    scanned: int = 0
    classified: int = 0
    calls: int = 0
    raised: list[int] = Field(default_factory=list)
    repeats: int = 0
    waiting: int = 0
    notes: list[str] = Field(default_factory=list)


def _unmatched(s, hostname: str, after: int, since) -> list[tuple[int, int | None, str, str | None, Any]]:
    """Error-priority (err) lines after the read position that no pattern or priority rule raised."""
    le, t = LogEvent, TriggerEvent
    priority = le.meta["priority"].as_integer()
    matched = func.coalesce(le.meta["matched"].as_integer(), 0)
    return list(s.execute(
        select(le.id, le.template_id, le.message, le.unit, le.time)
        .where(le.hostname == hostname, le.id > after, le.time >= since, priority == 3, matched == 0,
               ~exists().where(t.log_event_id == le.id))
        .order_by(le.id).limit(MAX_SCAN)
    ).all())


def classify_host(store: Store, settings: Settings, hostname: str, backend: Backend | None) -> ClassifyResult:
    result = ClassifyResult(hostname=hostname)
    now = utcnow()
    cfg = settings.classifier
    with store.session() as s:
        state = s.get(ClassifierState, hostname)
        after = state.last_log_event_id if state else 0
        upper = s.execute(select(func.max(LogEvent.id)).where(LogEvent.hostname == hostname)).scalar() or 0
        rows = [r for r in _unmatched(s, hostname, after, now - parse_duration(cfg.lookback)) if r[0] <= upper]
        if len(rows) == MAX_SCAN:
            upper = rows[-1][0]
        result.scanned = len(rows)
        tids = {r[1] for r in rows if r[1] is not None}
        verdicts = dict(s.execute(
            select(ClassifiedTemplate.template_id, ClassifiedTemplate.verdict)
            .where(ClassifiedTemplate.hostname == hostname, ClassifiedTemplate.template_id.in_(tids))
        ).all()) if tids else {}
        templates = dict(s.execute(
            select(LogTemplate.cluster_id, LogTemplate.template)
            .where(LogTemplate.hostname == hostname, LogTemplate.cluster_id.in_(tids))
        ).all()) if tids else {}
    unknown = sorted(tids - set(verdicts))
    if unknown:
        if backend is None:
            result.notes.append("useTriggerModel is on but no model backend is configured (llm.backend = none)")
        else:
            examples = {r[1]: r[2] for r in reversed(rows) if r[1] is not None}
            verdicts.update(_ask(store, settings, hostname, backend, unknown, templates, examples, result))
    waiting = [r for r in rows if r[1] is not None and r[1] not in verdicts]
    result.waiting = len(waiting)
    # Lines from the first one still without a verdict on wait for the next run, in order, so that no line is
    # raised twice and none is skipped.
    cutoff = min(r[0] for r in waiting) if waiting else upper + 1
    raise_rows = [r for r in rows if r[0] < cutoff and verdicts.get(r[1], "ignore") != "ignore"]
    with store.session() as s:
        reasons = dict(s.execute(
            select(ClassifiedTemplate.template_id, ClassifiedTemplate.reason)
            .where(ClassifiedTemplate.hostname == hostname,
                   ClassifiedTemplate.template_id.in_({r[1] for r in raise_rows}))
        ).all()) if raise_rows else {}
        triggers = [_trigger(hostname, r, verdicts[r[1]], reasons.get(r[1], ""), settings.trigger_model)
                    for r in raise_rows]
        stored = store_triggers(s, triggers, settings.grouping)
        result.raised = [tid for tid, _ in stored.new]
        result.repeats = stored.repeats
        position = cutoff - 1
        # Never backwards: another run may have moved it meanwhile.
        current = s.execute(select(ClassifierState.last_log_event_id)
                            .where(ClassifierState.hostname == hostname)).scalar() or 0
        upsert(s, ClassifierState.__table__,
               {"hostname": hostname, "last_log_event_id": max(position, after, current)}, keys=["hostname"])
    return result


def _ask(store: Store, settings: Settings, hostname: str, backend: Backend, unknown: list[int],
         templates: dict[int, str], examples: dict[int, str], result: ClassifyResult) -> dict[int, str]:
    cfg = settings.classifier
    got: dict[int, str] = {}
    for start in range(0, len(unknown), cfg.batch_size):
        with store.session() as s:
            recent = s.execute(select(func.count()).select_from(ClassifierCall).where(
                ClassifierCall.hostname == hostname, ClassifierCall.time >= utcnow() - timedelta(minutes=1))
            ).scalar()
            last = s.execute(select(ClassifierCall.ok).where(ClassifierCall.hostname == hostname)
                             .order_by(ClassifierCall.id.desc()).limit(1)).scalar()
        if recent >= cfg.calls_per_minute:
            result.notes.append(f"classifier budget of {cfg.calls_per_minute} call(s) a minute reached; "
                                f"{len(unknown) - start} template(s) wait for the next run")
            break
        batch = unknown[start:start + cfg.batch_size]
        lines = [f"{n}: {examples.get(tid, templates.get(tid, ''))[:400]}" for n, tid in enumerate(batch, 1)]
        prompt = render("classifier", hostname=hostname, lines=fence_lines("log lines", lines))
        try:
            reply = backend.chat(settings.trigger_model, [{"role": "user", "content": prompt}],
                                 schema=model_schema(Verdicts), num_ctx=min(settings.context_size, 8192),
                                 max_tokens=64 + 48 * len(batch))
        except LLMError as exc:
            _record(store, hostname, len(batch), str(exc))
            if last is not False:  # said once per outage: the previous call went through (or there was none)
                note = f"the trigger model is unreachable, Layer 1 carries on without it: {exc}"
                log.warning("%s", note)
                result.notes.append(note)
            break
        result.calls += 1
        parsed, error = parse_json_as(reply.content, Verdicts)
        _record(store, hostname, len(batch), None if parsed else f"unusable answer: {error}")
        if parsed is None:
            result.notes.append(f"the trigger model's answer was unusable ({error}); those templates wait")
            continue
        rows = []
        for v in parsed.items:
            if 1 <= v.id <= len(batch):
                tid = batch[v.id - 1]
                got[tid] = v.severity
                rows.append({"hostname": hostname, "template_id": tid, "verdict": v.severity,
                             "reason": v.reason[:300], "model": settings.trigger_model, "classified_at": utcnow()})
        with store.session() as s:
            insert_ignore(s, ClassifiedTemplate.__table__, rows, returning=("id",))
        result.classified += len(rows)
    return got


def _record(store: Store, hostname: str, templates: int, error: str | None) -> None:
    with store.session() as s:
        s.add(ClassifierCall(hostname=hostname, templates=templates, ok=error is None, error=error))


def _trigger(hostname: str, row: Any, severity: str, reason: str, model: str) -> dict[str, Any]:
    log_id, tid, message, unit, time = row
    return {
        "time": time, "hostname": hostname, "trigger_type": "classifier", "pattern_id": "classifier",
        "severity": severity, "log_event_id": log_id,
        "trigger_reason": f"classified {severity} by {model} ({reason[:200]}): {message[:300]}",
        "fingerprint": hashlib.sha256(f"classifier\x1f{unit or ''}\x1f{tid}".encode()).hexdigest()[:32],
        "metadata": {"subsystem": "classifier", "unit": unit, "template_id": tid},
    }
