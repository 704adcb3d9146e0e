"""The approval queue: pending proposals, and what an operator does with them.

Approving re-validates everything (the catalog, the unit still exists, the rate limit, the autonomy level, the
expiry) before the action becomes ``ready``; the executing task checks it all once more on the host.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field, field_serializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from macha.actions import guard
from macha.actions.audit import audit, history
from macha.actions.catalog import ActionRefused, Catalog, default_catalog
from macha.actions.observe import LOCAL, HostProbe
from macha.actions.policy import Verdict, may_run
from macha.config import Settings
from macha.core.errors import MachaError
from macha.core.ids import parse_id
from macha.core.states import ActionStatus, AuditEvent
from macha.store.db import Store
from macha.store.models import Action, Host, LogEvent, Review, TriggerEvent, utcnow


class ApprovalError(MachaError):
    """An approval command that cannot be carried out (unknown id, not pending, refused on re-validation)."""


class PendingRow(BaseModel):
    id: int
    hostname: str
    action: str
    arguments: dict[str, Any]
    risk: str | None
    reason: str
    proposer: str
    created_at: datetime
    expires_at: datetime | None
    merged_count: int

    @field_serializer("created_at", "expires_at")
    def _iso_times(self, value: datetime | None) -> str | None:
        # As the rest of the JSON writes times (action_dict): isoformat, "+00:00" rather than pydantic's "Z".
        return _iso(value)


class ActionDetail(BaseModel):
    action: dict[str, Any]
    review: dict[str, Any] | None
    events: list[dict[str, Any]] = Field(default_factory=list)
    audit: list[dict[str, Any]] = Field(default_factory=list)
    rollback: str | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def action_dict(a: Action) -> dict[str, Any]:
    return {
        "id": a.id, "hostname": a.hostname, "action": a.action, "arguments": a.arguments, "risk": a.risk,
        "status": a.status, "verdict_reason": a.verdict_reason, "proposer": a.proposer, "reason": a.reason,
        "review_id": a.review_id, "merged_count": a.merged_count, "autonomy_level": a.autonomy_level,
        "created_at": _iso(a.created_at), "expires_at": _iso(a.expires_at), "decided_by": a.decided_by,
        "decided_at": _iso(a.decided_at), "argv": a.argv, "started_at": _iso(a.started_at),
        "finished_at": _iso(a.finished_at), "exit_code": a.exit_code, "stdout": a.stdout, "stderr": a.stderr,
        "duration_s": a.duration_s,
    }


def list_pending(session: Session, hostname: str | None = None) -> list[PendingRow]:
    q = select(Action).where(Action.status == ActionStatus.PENDING)
    if hostname:
        q = q.where(Action.hostname == hostname)
    return [
        PendingRow(id=a.id, hostname=a.hostname, action=a.action, arguments=a.arguments, risk=a.risk,
                   reason=a.reason or a.verdict_reason, proposer=a.proposer, created_at=a.created_at,
                   expires_at=a.expires_at, merged_count=a.merged_count)
        for a in session.execute(q.order_by(Action.id)).scalars()
    ]


def _load(session: Session, action_id: int) -> Action:
    try:
        # An id no database column can hold is "no such action", not a driver's overflow (web and MCP pass ids in).
        parse_id(action_id, "action")
    except ValueError as exc:
        raise ApprovalError(str(exc)) from None
    action = session.get(Action, action_id)
    if action is None:
        raise ApprovalError(f"no action with id {action_id} (see `macha-approve list`)")
    return action


def show(session: Session, action_id: int, catalog: Catalog | None = None) -> ActionDetail:
    action = _load(session, action_id)
    catalog = catalog or default_catalog()
    review = session.get(Review, action.review_id) if action.review_id else None
    event_ids = list((action.evidence or {}).get("event_ids", []))[-50:]
    if not event_ids and review is not None:
        event_ids = [
            ev.id for ev in session.execute(
                select(TriggerEvent).where(TriggerEvent.review_id == review.id).limit(50)
            ).scalars()
        ]
    events = []
    if event_ids:
        rows = session.execute(
            select(TriggerEvent, LogEvent)
            .outerjoin(LogEvent, LogEvent.id == TriggerEvent.log_event_id)
            .where(TriggerEvent.id.in_(event_ids))
            .order_by(TriggerEvent.id)
        ).all()
        for trig, log_event in rows:
            events.append({
                "id": trig.id, "time": trig.time.isoformat(), "severity": trig.severity, "pattern": trig.pattern_id,
                "unit": (trig.meta or {}).get("unit"),
                "message": log_event.message if log_event is not None else trig.trigger_reason,
            })
    entry = catalog.entries.get(action.action)
    return ActionDetail(
        action=action_dict(action),
        review=None if review is None else {
            "id": review.id, "status": review.status, "summary": review.summary, "reviewer": review.reviewer,
            "created_at": review.created_at.isoformat(),
        },
        events=events,
        audit=[
            {"time": h.time.isoformat(), "event": h.event, "actor": h.actor, "reason": h.reason}
            for h in history(session, action_id=action.id, limit=200)
        ],
        rollback=entry.rollback if entry else None,
    )


def _decide(session: Session, action: Action, status: ActionStatus, actor: str, now: datetime) -> bool:
    """Pending -> ``status`` in one conditional UPDATE: of two decisions at the same moment (approve and reject, two
    approvals, an approval and the expiry), exactly one matches ``status = 'pending'``; the other changes nothing."""
    won = session.execute(
        update(Action)
        .where(Action.id == action.id, Action.status == ActionStatus.PENDING)
        .values(status=status, decided_by=actor, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(action)
    return won


def _already(action: Action, verb: str) -> str:
    """What the loser of a decision is told: who decided what, and when."""
    who = f" by {action.decided_by}" if action.decided_by else ""
    when = f" at {action.decided_at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC" if action.decided_at else ""
    return f"action {action.id} is already {action.status}{who}{when}: nothing to {verb}"


def _expire_if_due(session: Session, action: Action, now: datetime) -> bool:
    if action.status == ActionStatus.PENDING and action.expires_at is not None and action.expires_at <= now:
        if _decide(session, action, ActionStatus.EXPIRED, "system", now):
            audit(session, action, AuditEvent.EXPIRED, "system", f"not approved before {action.expires_at.isoformat()}")
            return True
    return False


def approve(store: Store, settings: Settings, action_id: int, actor: str, *, catalog: Catalog | None = None,
            probe: HostProbe | None = LOCAL) -> dict[str, Any]:
    """Pending -> ready, after every check again. Returns the action; the caller enqueues its execution."""
    catalog = catalog or default_catalog()
    level = settings.autonomy_level
    refusal: str | None = None
    with store.session() as s:
        action = _load(s, action_id)
        now = utcnow()
        if _expire_if_due(s, action, now):
            refusal = f"action {action_id} expired at {action.expires_at.isoformat()[:19]} and cannot be approved"
        elif action.status != ActionStatus.PENDING:
            raise ApprovalError(_already(action, "approve"))
        else:
            try:
                validated = guard.validate(catalog, settings, action.hostname, action.action, action.arguments,
                                           probe)
                if action.risk is not None and validated.risk != action.risk:
                    raise ActionRefused(f"its risk changed from {action.risk} to {validated.risk}"
                                        f"{f' ({validated.risk_reason})' if validated.risk_reason else ''}; "
                                        "it must be proposed again")
                limited = guard.rate_limit_reason(s, validated, action.hostname, exclude_id=action.id)
                if limited:
                    raise ActionRefused(limited)
                decision = may_run(level, validated.risk, approved=True)
                if decision.verdict is not Verdict.EXECUTE:
                    raise ActionRefused(decision.reason)
            except ActionRefused as exc:
                # It stays pending: the reason may pass (a unit reinstalled, the rate window moving on).
                audit(s, action, AuditEvent.REFUSED, actor, f"approval refused: {exc}", level)
                refusal = f"cannot approve action {action_id}: {exc}"
            else:
                if not _decide(s, action, ActionStatus.READY, actor, now):
                    # Someone decided while we checked: theirs stands, and nothing of ours is written.
                    refusal = _already(action, "approve")
                else:
                    audit(s, action, AuditEvent.APPROVED, actor, decision.reason, level)
                    result = action_dict(action)
    if refusal:
        # Raised after the session committed, so the audit row of the refusal is kept.
        raise ApprovalError(refusal)
    return result


def reject(store: Store, action_id: int, actor: str, reason: str) -> dict[str, Any]:
    if not reason.strip():
        raise ApprovalError("give a reason for the rejection (--reason)")
    with store.session() as s:
        action = _load(s, action_id)
        if action.status != ActionStatus.PENDING or not _decide(s, action, ActionStatus.REJECTED, actor, utcnow()):
            raise ApprovalError(_already(action, "reject"))
        audit(s, action, AuditEvent.REJECTED, actor, reason.strip()[:2000])
        return action_dict(action)


def expire_ready_if_due(session: Session, action: Action, ready_for: timedelta, now: datetime) -> bool:
    """A ready action that has not started within ``ready_for`` (approvalTimeout) of its decision expires: its
    host's collector was down all that time, and what was approved then is not run on a host that changed since.
    One conditional UPDATE, so the executor starting it and the sweep cannot both win."""
    since = action.decided_at or action.created_at
    if action.status != ActionStatus.READY or since is None or since + ready_for > now:
        return False
    won = session.execute(
        update(Action).where(Action.id == action.id, Action.status == ActionStatus.READY)
        .values(status=ActionStatus.EXPIRED, updated_at=now).execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(action)
    if won:
        audit(session, action, AuditEvent.EXPIRED, "system",
              f"ready since {since.isoformat()[:19]} and not run on {action.hostname} within the approval timeout")
    return won


def expire_due(store: Store, ready_for: timedelta | None = None) -> list[int]:
    """Pending actions past their expiry; with ``ready_for``, also ready ones their host did not run in time."""
    now = utcnow()
    with store.session() as s:
        due = s.execute(
            select(Action).where(Action.status == ActionStatus.PENDING, Action.expires_at <= now)
        ).scalars()
        expired = [a.id for a in due if _expire_if_due(s, a, now)]
        if ready_for is not None:
            waiting = s.execute(select(Action).where(Action.status == ActionStatus.READY,
                                                     func.coalesce(Action.decided_at, Action.created_at)
                                                     <= now - ready_for)).scalars().all()
            expired += [a.id for a in waiting if expire_ready_if_due(s, a, ready_for, now)]
        return expired


def stale_ready(store: Store, older_than_s: int) -> list[tuple[int, str]]:
    """Ready actions whose execution task seems lost (a broker restart, a crash after approval). Not those of a
    silent host: their message waits in its queue, and copies sent every sweep would pile up behind it until it
    returns (then, if one was lost after all, the next sweep sends it)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    silent = select(Host.hostname).where(Host.silent_since.is_not(None))
    with store.session() as s:
        rows = list(s.execute(
            select(Action).where(Action.status == ActionStatus.READY, Action.updated_at < cutoff,
                                 Action.hostname.not_in(silent))
        ).scalars())
        for row in rows:
            # Sent again now; the next sweep waits a full period before sending another.
            row.updated_at = utcnow()
        return [(row.id, row.hostname) for row in rows]
