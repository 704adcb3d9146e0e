"""Meta analyses (Layer 4): what the big model concluded about an escalation, with its tool transcript."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from macha.core.ids import parse_id
from macha.read.errors import NotFound
from macha.store.db import Store
from macha.store.models import Escalation

MAX_LIMIT = 500


class AnalysisSummary(BaseModel):
    id: int
    hostname: str
    kind: str
    status: str
    #: untrusted: built from log text
    reason: str
    created_at: datetime
    finished_at: datetime | None
    review_id: int | None
    attached_to: int | None
    #: untrusted: a model wrote it
    diagnosis: str | None


class AnalysisDetail(AnalysisSummary):
    model: str | None
    error: str | None
    root_cause: str | None
    confidence: float | None
    answered_by: str | None
    event_ids: list[int] = Field(default_factory=list)
    proposed_actions: list[Any] = Field(default_factory=list)
    config_suggestions: list[Any] = Field(default_factory=list)
    rollback_plan: str | None = None
    #: the tool calls: name, arguments, ok, refused, result (cut at 2,000 characters)
    transcript: list[Any] = Field(default_factory=list)


class AnalysisQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, max_length=255)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


def _summary(e: Escalation) -> dict[str, Any]:
    result = e.result or {}
    return {"id": e.id, "hostname": e.hostname, "kind": e.kind, "status": e.status, "reason": e.reason,
            "created_at": e.created_at, "finished_at": e.finished_at, "review_id": e.review_id,
            "attached_to": e.attached_to, "diagnosis": result.get("diagnosis")}


def list_analyses(store: Store, q: AnalysisQuery) -> list[AnalysisSummary]:
    stmt = select(Escalation).order_by(Escalation.id.desc()).limit(q.limit)
    if q.host:
        stmt = stmt.where(Escalation.hostname == q.host)
    with store.session() as s:
        return [AnalysisSummary(**_summary(e)) for e in s.execute(stmt).scalars()]


def get_analysis(store: Store, analysis_id: int) -> AnalysisDetail:
    try:
        parse_id(analysis_id, "analysis")
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    with store.session() as s:
        e = s.get(Escalation, analysis_id)
        if e is None:
            raise NotFound(f"no analysis with id {analysis_id}")
        r = e.result or {}
        evidence = r.get("evidence") if isinstance(r.get("evidence"), dict) else {}
        return AnalysisDetail(
            **_summary(e), model=e.model, error=e.error, root_cause=r.get("root_cause"),
            confidence=r.get("confidence"), answered_by=r.get("answered_by"),
            event_ids=[i for i in evidence.get("event_ids", []) if isinstance(i, int)],
            proposed_actions=list(r.get("proposed_actions", [])),
            config_suggestions=list(r.get("config_suggestions", [])), rollback_plan=r.get("rollback_plan"),
            transcript=list(e.transcript or []))
