"""Questions tests ask of the store."""

from __future__ import annotations

from sqlalchemy import select

from macha.store.db import Store
from macha.store.models import Review, TriggerEvent


def review_of(store: Store, pattern_id: str) -> Review | None:
    """A review that covered an event of this pattern, or None (yet)."""
    with store.session() as s:
        return s.execute(
            select(Review).join(TriggerEvent, TriggerEvent.review_id == Review.id)
            .where(TriggerEvent.pattern_id == pattern_id)
        ).scalar()
