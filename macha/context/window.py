"""The review context of one host. For now: the pending (unreviewed) trigger events, summarised by severity.

Layer 2 grows this into a token-budgeted window; it stays derived from the store, so it survives restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import func, select

from macha.store.db import Store
from macha.store.models import TriggerEvent


@dataclass
class ContextSnapshot:
    hostname: str
    pending_events: int = 0
    # The newest pending event: the review covers events up to here, so events stored later wait for the next one.
    up_to_event_id: int | None = None
    pending_by_severity: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def build_context(store: Store, hostname: str) -> ContextSnapshot:
    with store.session() as s:
        rows = s.execute(
            select(TriggerEvent.severity, func.count(), func.max(TriggerEvent.id))
            .where(TriggerEvent.hostname == hostname, TriggerEvent.review_id.is_(None))
            .group_by(TriggerEvent.severity)
        ).all()
    snap = ContextSnapshot(hostname=hostname)
    for severity, count, max_id in rows:
        snap.pending_by_severity[severity] = count
        snap.pending_events += count
        snap.up_to_event_id = max(snap.up_to_event_id or 0, max_id)
    return snap
