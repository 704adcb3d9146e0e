"""Intake of proposed actions (from a review, a model, an operator): validate, decide, store, audit.

The proposal is untrusted input. Only its action name and arguments are used; fields by which a model claims a
risk or a permission are dropped and noted. Every proposal is stored, including the refused ones, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from macha.actions import guard
from macha.actions.audit import audit
from macha.actions.catalog import ActionRefused, Catalog, dedup_key, default_catalog
from macha.actions.policy import Decision, Verdict, decide
from macha.actions.observe import LOCAL, HostProbe
from macha.actions.schemas import ProposedAction
from macha.config import Settings, parse_duration
from macha.core.risk import Risk
from macha.core.states import ActionStatus, AuditEvent
from macha.store.models import Action, utcnow

#: Fields a model may add to claim safety. They never count; they are dropped and the audit says so.
ADVISORY_KEYS = frozenset(
    {"risk", "risk_level", "safe", "safety", "severity", "approved", "auto_approve", "priority", "confidence",
     "requires_approval"}
)
MAX_STORED_ARGS = 4096

STATUS_FOR = {Verdict.EXECUTE: ActionStatus.READY, Verdict.QUEUE: ActionStatus.PENDING,
              Verdict.RECORD: ActionStatus.RECORDED, Verdict.REFUSE: ActionStatus.REFUSED}
AUDIT_EVENT = {Verdict.EXECUTE: AuditEvent.SCHEDULED, Verdict.QUEUE: AuditEvent.QUEUED,
               Verdict.RECORD: AuditEvent.RECORDED, Verdict.REFUSE: AuditEvent.REFUSED}


class ProposalResult(BaseModel):
    action_id: int
    action: str
    status: ActionStatus
    reason: str
    risk: Risk | None = None
    merged: bool = False
    escalate: bool = False


def propose(
    session: Session,
    settings: Settings,
    hostname: str,
    raw: Any,
    *,
    proposer: str,
    review_id: int | None = None,
    evidence: dict[str, Any] | None = None,
    evidence_for: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    catalog: Catalog | None = None,
    probe: HostProbe | None = LOCAL,
    as_operator: bool = False,
) -> ProposalResult:
    """Validate, rate-limit and judge one proposal, and store it with its verdict.

    ``as_operator``: the proposer counts as an operator at the console (an MCP client with
    ``mcpServer.respectAutonomy = false``): the catalog, protected units, preconditions and rate limits apply as
    always, but what the autonomy level would queue for approval is scheduled at once, decided by the proposer, and
    the audit log says so. Under observe nothing runs, whoever asks."""
    catalog = catalog or default_catalog()
    level = settings.autonomy_level
    notes: list[str] = []
    name, arguments, reason = _raw_fields(raw)
    try:
        proposal = _parse(raw, notes)
        validated = guard.validate(catalog, settings, hostname, proposal.action, proposal.arguments, probe)
    except ActionRefused as exc:
        return _store(session, settings, hostname, name, arguments, None, Verdict.REFUSE, str(exc), proposer, level,
                      review_id, evidence, reason, notes)
    risk = validated.risk
    if validated.risk_reason:
        notes.append(validated.risk_reason)
    if evidence_for is not None:
        evidence = {**(evidence or {}), **evidence_for(validated.arguments)}
    limited = guard.rate_limit_reason(session, validated, hostname)
    if limited:
        result = _store(session, settings, hostname, validated.entry.name, validated.arguments, risk, Verdict.REFUSE,
                        limited, proposer, level, review_id, evidence, proposal.reason, notes)
        result.escalate = True
        row = session.get(Action, result.action_id)
        audit(session, row, AuditEvent.ESCALATED, proposer, "rate limit reached: a human or the meta model should look",
              level)
        return result
    decision = decide(level, risk)
    decided_by = None
    if as_operator and decision.verdict is Verdict.QUEUE:
        decision = Decision(Verdict.EXECUTE, f"{proposer} counts as an operator at the console (respectAutonomy is "
                                             f"off): no approval asked, though {decision.reason}")
        decided_by = proposer
    why = f"{decision.reason} ({validated.risk_reason})" if validated.risk_reason else decision.reason
    return _store(session, settings, hostname, validated.entry.name, validated.arguments, risk, decision.verdict,
                  why, proposer, level, review_id, evidence, proposal.reason, notes, decided_by=decided_by)


def _raw_fields(raw: Any) -> tuple[str, Any, str]:
    """Best-effort name/arguments/reason for storing a proposal that fails parsing."""
    if isinstance(raw, ProposedAction):
        return raw.action, raw.arguments, raw.reason
    if isinstance(raw, dict):
        return str(raw.get("action", "?"))[:64], raw.get("arguments", {}), str(raw.get("reason", ""))[:500]
    return "?", {}, ""


def _parse(raw: Any, notes: list[str]) -> ProposedAction:
    if isinstance(raw, ProposedAction):
        return raw
    if not isinstance(raw, dict):
        raise ActionRefused(f"a proposal must be an object with an action name and arguments, got "
                            f"{type(raw).__name__}")
    cleaned = {}
    for key, value in raw.items():
        if key in ADVISORY_KEYS:
            notes.append(f"ignored the proposer's {key!r} field ({str(value)[:40]!r}): the catalog sets risk and "
                         "the policy decides what runs")
        else:
            cleaned[key] = value
    try:
        return ProposedAction.model_validate(cleaned)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "proposal"
        raise ActionRefused(f"malformed proposal: {where}: {err.get('msg')}") from None


def _storable(arguments: Any) -> dict[str, Any]:
    try:
        text = json.dumps(arguments, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(arguments)
    if len(text) > MAX_STORED_ARGS or not isinstance(arguments, dict):
        return {"_unparsed": text[:MAX_STORED_ARGS]}
    return json.loads(text)


def _store(session: Session, settings: Settings, hostname: str, name: str, arguments: Any, risk: Risk | None,
           verdict: Verdict, reason: str, proposer: str, level: str, review_id: int | None,
           evidence: dict[str, Any] | None, proposal_reason: str, notes: list[str],
           decided_by: str | None = None) -> ProposalResult:
    now = utcnow()
    ttl = parse_duration(settings.actions.approval_timeout)
    args = _storable(arguments)
    key = dedup_key(name, args)
    if verdict is Verdict.QUEUE:
        existing = session.execute(
            select(Action).where(Action.hostname == hostname, Action.dedup_key == key,
                                 Action.status == ActionStatus.PENDING)
            .with_for_update()
        ).scalar_one_or_none()
        if existing is not None:
            # The same proposal again: one approval, with the new evidence attached, instead of a pile.
            existing.merged_count += 1
            existing.updated_at = now
            ev = dict(existing.evidence or {})
            ev["event_ids"] = sorted(set(ev.get("event_ids", [])) | set((evidence or {}).get("event_ids", [])))[-200:]
            ev["review_ids"] = sorted(set(ev.get("review_ids", [])) | ({review_id} if review_id else set()))[-50:]
            existing.evidence = ev
            audit(session, existing, AuditEvent.MERGED, proposer, f"proposed again ({existing.merged_count + 1} times)",
                  level, review_id=review_id, notes=notes)
            return ProposalResult(action_id=existing.id, action=name, status=ActionStatus.PENDING,
                                  reason=existing.verdict_reason, risk=risk, merged=True)
    ev = dict(evidence or {})
    if review_id:
        ev["review_ids"] = [review_id]
    row = Action(
        hostname=hostname,
        action=name[:64],
        arguments=args,
        dedup_key=key,
        risk=risk,
        status=STATUS_FOR[verdict],
        verdict_reason=reason,
        proposer=proposer[:64],
        reason=proposal_reason[:2000],
        review_id=review_id,
        evidence=ev,
        merged_count=0,
        autonomy_level=level,
        created_at=now,
        updated_at=now,
        expires_at=now + ttl if verdict is Verdict.QUEUE else None,
        # An operator's own decision counts as an approval when the executor checks the policy again.
        decided_by=decided_by or (f"policy:{level}" if verdict is not Verdict.QUEUE else None),
        decided_at=now if verdict is not Verdict.QUEUE else None,
    )
    session.add(row)
    session.flush()
    audit(session, row, AUDIT_EVENT[verdict], proposer, reason, level, risk=risk, notes=notes)
    return ProposalResult(action_id=row.id, action=row.action, status=row.status, reason=reason, risk=risk)

