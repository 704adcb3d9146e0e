"""The audit log: one appended row per decision about an action. Nothing here updates or deletes (the database
refuses it too)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from macha.core.states import AuditEvent
from macha.store.models import Action, ActionAudit, utcnow


def audit(session: Session, action: Action, event: AuditEvent, actor: str, reason: str = "",
          autonomy_level: str | None = None, **detail: Any) -> None:
    session.add(
        ActionAudit(
            time=utcnow(),
            action_id=action.id,
            hostname=action.hostname,
            action=action.action,
            event=event,
            actor=actor[:128],
            autonomy_level=autonomy_level,
            reason=reason,
            detail=detail,
        )
    )


def history(session: Session, *, action_id: int | None = None, hostname: str | None = None,
            limit: int = 50) -> list[ActionAudit]:
    q = select(ActionAudit)
    if action_id is not None:
        q = q.where(ActionAudit.action_id == action_id)
    if hostname is not None:
        q = q.where(ActionAudit.hostname == hostname)
    rows = session.execute(q.order_by(ActionAudit.id.desc()).limit(limit)).scalars()
    return list(reversed(list(rows)))
