"""Stored reviews (Layer 3) of a host: the latest, a listing, one with its evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from macha.core.ids import parse_id
from macha.read.common import MAX_LIMIT
from macha.read.errors import NotFound
from macha.store.db import Store
from macha.store.models import Review, TriggerEvent


class ReviewSummary(BaseModel):
    id: int
    hostname: str
    created_at: datetime
    status: str
    #: untrusted: a model wrote it
    summary: str
    reviewer: str
    model: str | None
    outcome: str
    event_count: int
    issues: list[Any] = Field(default_factory=list)


class ReviewDetail(ReviewSummary):
    proposed_actions: list[Any] = Field(default_factory=list)
    error: str | None = None
    event_ids: list[int] = Field(default_factory=list)


class ReviewQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, max_length=255)
    limit: int = Field(20, ge=1, le=MAX_LIMIT)


def summary_of(r: Review) -> ReviewSummary:
    return ReviewSummary(id=r.id, hostname=r.hostname, created_at=r.created_at, status=r.status, summary=r.summary,
                         reviewer=r.reviewer, model=r.model, outcome=r.outcome, event_count=r.event_count,
                         issues=list((r.payload or {}).get("issues", [])))


def latest_review(session: Session, hostname: str) -> Review | None:
    """The host's newest review (failed ones too: they say the model could not judge)."""
    return session.execute(
        select(Review).where(Review.hostname == hostname).order_by(Review.id.desc()).limit(1)
    ).scalar_one_or_none()


def latest(store: Store, hostname: str) -> ReviewSummary | None:
    with store.session() as s:
        r = latest_review(s, hostname)
        return summary_of(r) if r is not None else None


def list_reviews(store: Store, q: ReviewQuery) -> list[ReviewSummary]:
    stmt = select(Review).order_by(Review.id.desc()).limit(q.limit)
    if q.host:
        stmt = stmt.where(Review.hostname == q.host)
    with store.session() as s:
        return [summary_of(r) for r in s.execute(stmt).scalars()]


def get_review(store: Store, review_id: int) -> ReviewDetail:
    try:
        parse_id(review_id, "review")
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    with store.session() as s:
        r = s.get(Review, review_id)
        if r is None:
            raise NotFound(f"no review with id {review_id}")
        ids = list(s.execute(select(TriggerEvent.id).where(TriggerEvent.review_id == r.id)
                             .order_by(TriggerEvent.id).limit(MAX_LIMIT)).scalars())
        return ReviewDetail(**summary_of(r).model_dump(), proposed_actions=list((r.payload or {}).get(
            "proposed_actions", [])), error=r.error, event_ids=ids)
