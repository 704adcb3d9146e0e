"""The approval queue as the interfaces read it: the readers of macha.actions.approvals (one implementation), and
the counts a fleet listing needs."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from macha.actions import approvals
from macha.actions.approvals import ActionDetail, ApprovalError, PendingRow
from macha.core.states import ActionStatus
from macha.store.db import Store
from macha.store.models import Action

__all__ = ["ActionDetail", "ApprovalError", "PendingRow", "detail", "pending", "pending_count", "pending_counts_for"]


def pending(store: Store, hostname: str | None = None, *, expire: bool = True) -> list[PendingRow]:
    """Actions waiting for an operator, oldest first; the ones past their time are expired first (so that no
    listing offers what can no longer be approved)."""
    if expire:
        approvals.expire_due(store)
    with store.session() as s:
        return approvals.list_pending(s, hostname)


def detail(store: Store, action_id: int) -> ActionDetail:
    """One action with its evidence, review, rollback note and audit trail; ApprovalError for an unknown id."""
    with store.session() as s:
        return approvals.show(s, action_id)


def pending_count(session: Session, hostname: str) -> int:
    """Pending approvals of one host."""
    return pending_counts_for(session, [hostname]).get(hostname, 0)


def pending_counts_for(session: Session, hostnames: list[str]) -> dict[str, int]:
    """Pending approvals per host (hosts with none are absent)."""
    return dict(session.execute(select(Action.hostname, func.count())
                                .where(Action.status == ActionStatus.PENDING, Action.hostname.in_(hostnames))
                                .group_by(Action.hostname)).all())
