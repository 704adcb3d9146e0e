"""What is pending review on one host: the unreviewed trigger events by severity, and how many of their groups are
new. The pipeline decides from this whether a review is due; the prompt itself comes from window.py.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from macha.store.db import Store
from macha.store.models import TriggerEvent, utcnow


class ContextSnapshot(BaseModel):
    hostname: str
    pending_events: int = 0
    # The newest pending event: the review covers events up to here, so events stored later wait for the next one.
    up_to_event_id: int | None = None
    pending_by_severity: dict[str, int] = Field(default_factory=dict)
    # Distinct groups (fingerprints) among the pending events that no review covered in the repeat window:
    # what is new, as opposed to more of the same.
    new_groups_by_severity: dict[str, int] = Field(default_factory=dict)


def build_context(store: Store, hostname: str, repeat_window_s: int = 600) -> ContextSnapshot:
    with store.session() as s:
        rows = s.execute(
            select(TriggerEvent.severity, func.count(), func.max(TriggerEvent.id))
            .where(TriggerEvent.hostname == hostname, TriggerEvent.review_id.is_(None))
            .group_by(TriggerEvent.severity)
        ).all()
        groups = s.execute(
            select(TriggerEvent.severity, TriggerEvent.fingerprint).distinct()
            .where(TriggerEvent.hostname == hostname, TriggerEvent.review_id.is_(None))
        ).all()
        recent = set(s.execute(
            select(TriggerEvent.fingerprint).distinct()
            .where(TriggerEvent.hostname == hostname, TriggerEvent.review_id.is_not(None),
                   TriggerEvent.stored_at >= utcnow() - timedelta(seconds=repeat_window_s))
        ).scalars()) if groups else set()
    snap = ContextSnapshot(hostname=hostname)
    for severity, count, max_id in rows:
        snap.pending_by_severity[severity] = count
        snap.pending_events += count
        snap.up_to_event_id = max(snap.up_to_event_id or 0, max_id)
    for severity, fp in groups:
        if fp not in recent:
            snap.new_groups_by_severity[severity] = snap.new_groups_by_severity.get(severity, 0) + 1
    return snap
