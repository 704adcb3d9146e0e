"""Layer 4 analyses: an escalation (or a background analysis) read by the meta model with the full context window
and its read-only tools; the validated MetaAnalysis is stored, remembered, fed back into later windows, and its
proposed actions go through the catalog and the policy like anyone's.

The escalation row is the truth. It is stored (by Layer 3, macha.review.escalation) before its task is sent, claimed (requested -> running) before the
model is called, and an escalation of an issue already under analysis, or analysed within ``meta.dedupWindow``,
attaches to that analysis instead of starting another.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from macha.config import Settings
from macha.context.recall import NoMemory, Recall
from macha.context.tokens import count, observe
from macha.context.window import build_window
from macha.core.followups import FollowUps
from macha.core.severity import Severity
from macha.core.states import EscalationKind, EscalationStatus
from macha.llm.base import Backend
from macha.llm.parse import parse_json_as
from macha.llm.prompts import fence, render
from macha.llm.schemas import model_schema
from macha.meta import tools
from macha.meta.loop import Limits, Stopped, run_loop
from macha.meta.schemas import MetaAnalysis
from macha.review.escalation import same_issue, stale_after
from macha.review.issues import link_actions
from macha.review.model_turn import catalog_lines, prompt_budget
from macha.store.db import Store
from macha.store.models import Escalation, TriggerEvent, utcnow

log = logging.getLogger(__name__)


class AnalysisOutcome(BaseModel):
    escalation_id: int
    #: the escalation's status, or missing: there is no such escalation
    status: EscalationStatus | Literal["missing"]
    attached_to: int | None = None
    diagnosis: str | None = None
    answered_by: str | None = None
    stopped: str | None = None
    tool_calls: int = 0
    actions: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    #: an escalation attached to this failed one, requested again: its task is to be sent
    reopened: int | None = None


def _claim(store: Store, settings: Settings, escalation_id: int, model: str) -> tuple[Escalation | None, str]:
    """Take the escalation for this run, or say why not (done, attached, running elsewhere, missing).

    The claim is a conditional UPDATE on the row as it was read, so of two workers (a resent message, the
    review-model fallback) exactly one wins, on SQLite as on PostgreSQL."""
    now = utcnow()
    with store.session() as s:
        esc = s.get(Escalation, escalation_id)
        if esc is None:
            return None, "missing"
        if esc.status in (EscalationStatus.DONE, EscalationStatus.FAILED, EscalationStatus.ATTACHED):
            return None, esc.status
        if esc.status == EscalationStatus.RUNNING and esc.started_at and now - esc.started_at < stale_after(settings):
            return None, EscalationStatus.RUNNING
        seen = (esc.status, esc.updated_at)
        first = same_issue(s, settings, esc.hostname, esc.issue_key, exclude=esc.id)
        attach = first is not None and first.id < esc.id
        values: dict[str, Any] = (
            {"status": EscalationStatus.ATTACHED, "attached_to": first.id, "updated_at": now} if attach else
            # "running" left by a run that died: run again (the model call itself has no side effect).
            {"status": EscalationStatus.RUNNING, "started_at": now, "updated_at": now, "model": model, "error": None})
        won = s.execute(update(Escalation).where(
            Escalation.id == escalation_id, Escalation.status == seen[0], Escalation.updated_at == seen[1])
            .values(**values).execution_options(synchronize_session=False)).rowcount
        if won != 1:
            return None, EscalationStatus.RUNNING
        if attach:
            return None, EscalationStatus.ATTACHED
        s.expire(esc)
        s.refresh(esc)
        s.expunge(esc)
        return esc, EscalationStatus.RUNNING


def _known_event_ids(store: Store, hostname: str, ids: list[int]) -> list[int]:
    if not ids:
        return []
    with store.session() as s:
        found = set(s.execute(select(TriggerEvent.id).where(TriggerEvent.hostname == hostname,
                                                            TriggerEvent.id.in_(ids[:200]))).scalars())
    return [i for i in ids if i in found]


def run_escalation(store: Store, settings: Settings, escalation_id: int, backend: Backend, *,
                   recall: Recall = NoMemory(), follow: FollowUps | None = None,
                   fallback: bool = False) -> AnalysisOutcome:
    """Analyse one escalation. Raises LLMError when the model server cannot be used: the escalation is then
    ``requested`` again, for the task to retry later (nothing is lost).

    Diagnostics the tools made ready during the run are added to ``follow`` as they happen, so that those of a
    run whose model server fails later are still sent (None, or a crash: the reconciler sends them)."""
    from macha.llm.base import LLMError

    model = settings.review_model if fallback else settings.meta_model
    esc, why = _claim(store, settings, escalation_id, model)
    if esc is None:
        return AnalysisOutcome(escalation_id=escalation_id, status=why)
    label = (f"answered by the review model {model}, not the meta model: no gpu worker took this escalation "
             f"within {settings.meta.fallback_after} s") if fallback else None
    try:
        outcome = _analyse(store, settings, esc, backend, model, recall,
                           follow if follow is not None else FollowUps(), label)
    except LLMError as exc:
        _release(store, esc.id, EscalationStatus.REQUESTED, str(exc))
        raise
    except BaseException as exc:
        # Anything else (a store error, the task's time limit): the run is over and says why; the escalation's
        # issue is open again for the next escalation, instead of attaching to a run that will never end.
        _release(store, esc.id, EscalationStatus.FAILED, f"the analysis stopped: {type(exc).__name__}: {exc}")
        raise
    if outcome.status == EscalationStatus.DONE and recall.absent is None:
        _remember(recall, esc, outcome)
    if outcome.status == EscalationStatus.FAILED:
        outcome.reopened = reopen_attached(store, esc.id)
    return outcome


def _release(store: Store, escalation_id: int, status: EscalationStatus, error: str) -> None:
    try:
        with store.session() as s:
            s.execute(update(Escalation)
                      .where(Escalation.id == escalation_id, Escalation.status == EscalationStatus.RUNNING)
                      .values(status=status, error=error[:2000], updated_at=utcnow(), finished_at=utcnow()))
    except Exception as exc:  # noqa: BLE001 - the original error matters more; the stale-run rule covers this
        log.error("escalation %s could not be released: %s", escalation_id, exc)


def reopen_attached(store: Store, escalation_id: int) -> int | None:
    """After a failed analysis, the oldest escalation attached to it is requested again (its id, to send)."""
    with store.session() as s:
        nxt = s.execute(select(Escalation).where(Escalation.attached_to == escalation_id,
                                                 Escalation.status == EscalationStatus.ATTACHED)
                        .order_by(Escalation.id).limit(1)).scalar_one_or_none()
        if nxt is None:
            return None
        nxt.status, nxt.attached_to, nxt.updated_at = EscalationStatus.REQUESTED, None, utcnow()
        return nxt.id


def _analyse(store: Store, settings: Settings, esc: Escalation, backend: Backend, model: str, recall: Recall,
             follow: FollowUps, label: str | None) -> AnalysisOutcome:
    plan, key = prompt_budget(store, backend, settings, model)
    now = utcnow()
    system = render("meta_system", hostname=esc.hostname, catalog=catalog_lines(), tools=", ".join(tools.TOOLS),
                    max_tool_calls=settings.meta.max_tool_calls)
    values = dict(hostname=esc.hostname, now=now.isoformat()[:19], autonomy_level=settings.autonomy_level,
                  reason=fence("escalation reason", esc.reason), label=label)
    frame = render("meta", **values, sections="")
    # Tool answers join the conversation later: keep room for them.
    tool_room = min(settings.meta.max_tool_calls * settings.meta.tool_result_tokens, plan.prompt_tokens // 3)
    room = plan.prompt_tokens - count(system) - count(frame) - count(render("meta_final")) - tool_room - 64
    window = build_window(store, esc.hostname, max(room, 128), autonomy_level=settings.autonomy_level,
                          recall=recall, similar_issues=settings.memory.similar_issues)
    user = render("meta", **values, sections=window.text)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    ctx = tools.ToolContext(store, settings, esc.hostname, recall=recall, proposer=f"meta:{model}"[:64],
                            follow=follow, now=now, issue_id=esc.issue_id)
    limits = Limits(settings.meta.max_tool_calls, settings.meta.max_tokens, settings.meta.time_limit,
                    settings.meta.tool_result_tokens, plan.answer_tokens)
    loop = run_loop(backend, model, messages, ctx, limits, num_ctx=plan.num_ctx)
    observe(store, key, count(system) + count(user), loop.prompt_tokens if loop.calls == 1 else None)

    analysis, error = parse_json_as(loop.content, MetaAnalysis) if loop.stopped == Stopped.ANSWERED else (None, None)
    raw = [loop.content]
    schema = model_schema(MetaAnalysis)
    final_messages = loop.messages + ([{"role": "assistant", "content": loop.content}] if loop.content else [])
    for attempt in range(2):
        if analysis is not None:
            break
        ask = render("meta_final") if error is None else render(
            "repair", error=error, previous=fence("your previous answer", raw[-1][:4000]))
        reply = backend.chat(model, final_messages + [{"role": "user", "content": ask}], schema=schema,
                             num_ctx=plan.num_ctx, max_tokens=plan.answer_tokens)
        raw.append(reply.content)
        analysis, error = parse_json_as(reply.content, MetaAnalysis)

    with store.session() as s:
        row = s.get(Escalation, esc.id)
        row.updated_at = row.finished_at = utcnow()
        row.transcript = loop.transcript
        if analysis is None:
            row.status, row.error = EscalationStatus.FAILED, f"the answer is unusable: {error}"
            row.result = {"raw": "\n--- next ---\n".join(raw)[-20000:], "stopped": loop.stopped}
            return AnalysisOutcome(escalation_id=esc.id, status=EscalationStatus.FAILED, error=row.error,
                                   stopped=loop.stopped, tool_calls=loop.tool_calls)
        analysis.evidence.event_ids = _known_event_ids(store, esc.hostname, analysis.evidence.event_ids)
        answered_by = label or f"meta model {loop.model or model}"
        row.status, row.error = EscalationStatus.DONE, None
        row.result = {**analysis.model_dump(mode="json"), "answered_by": answered_by, "stopped": loop.stopped,
                      "tool_calls": loop.tool_calls, "refused_tool_calls": loop.refused}
        actions = _propose(s, settings, row, analysis, model)
    return AnalysisOutcome(escalation_id=esc.id, status=EscalationStatus.DONE, diagnosis=analysis.diagnosis,
                           answered_by=answered_by, stopped=loop.stopped, tool_calls=loop.tool_calls, actions=actions)


def _propose(s: Session, settings: Settings, esc: Escalation, analysis: MetaAnalysis, model: str) -> list[dict]:
    from macha.actions.proposals import propose

    evidence = {"escalation_id": esc.id, "event_ids": analysis.evidence.event_ids,
                "analysis": {"diagnosis": analysis.diagnosis[:1000], "root_cause": analysis.root_cause[:1000],
                             "confidence": analysis.confidence, "rollback_plan": analysis.rollback_plan[:1000]}}
    results = [propose(s, settings, esc.hostname, p.model_dump(), proposer=f"meta:{model}"[:64],
                       review_id=esc.review_id, evidence=evidence).model_dump(mode="json")
               for p in analysis.proposed_actions[: settings.actions.max_proposals_per_review]]
    link_actions(s, esc.issue_id, [a["action_id"] for a in results])
    return results


def _remember(recall: Recall, esc: Escalation, outcome: AnalysisOutcome) -> None:
    """Best effort: the analysis is in the store already; memory only helps later recall."""
    try:
        meta = {"escalation_id": esc.id, "issue_id": esc.issue_id, "hostname": esc.hostname,
                "created_at": utcnow().isoformat(),
                "kind": esc.kind, "title": (outcome.diagnosis or "")[:300], "severity":
                (Severity.CRITICAL if esc.kind == EscalationKind.CRITICAL else Severity.HIGH).value}
        recall.remember("issues", f"escalation-{esc.id}", outcome.diagnosis or "", meta)
        actions = "; ".join(f"{a['action']} -> {a['status']}" for a in outcome.actions)
        recall.remember("decisions", f"escalation-{esc.id}",
                        f"{outcome.diagnosis}\nActions: {actions or 'none'}", meta)
    except Exception as exc:  # noqa: BLE001 - memory is an aid; its failure must not undo a stored analysis
        log.warning("analysis %s not written to semantic memory: %s", esc.id, exc)


def pending(store: Store, hostname: str | None = None) -> list[Escalation]:
    """Escalations still waiting for (or in) an analysis: what macha-check shows as pending."""
    with store.session() as s:
        q = select(Escalation).where(Escalation.status.in_((EscalationStatus.REQUESTED, EscalationStatus.RUNNING)))
        if hostname:
            q = q.where(Escalation.hostname == hostname)
        rows = list(s.execute(q.order_by(Escalation.id)).scalars())
        for r in rows:
            s.expunge(r)
        return rows


def waiting_too_long(store: Store, older_than: timedelta) -> list[int]:
    """Requested escalations no worker has taken for ``older_than``: for the review-model fallback."""
    with store.session() as s:
        return list(s.execute(select(Escalation.id).where(
            Escalation.status == EscalationStatus.REQUESTED, Escalation.created_at < utcnow() - older_than)
            .order_by(Escalation.id)).scalars())
