"""What a check found, for people (a table) and scripts (JSON), and the exit code that sums it up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import select

from macha.core.severity import SEVERITIES, SEVERITY_RANK, Severity
from macha.core.states import EscalationStatus, ReviewStatus
from macha.pipeline import ChainState
from macha.read.approvals import pending_count
from macha.read.reviews import latest_review
from macha.store.db import Store
from macha.store.models import Action, Escalation, LogEvent, Review, TriggerEvent, utcnow

EXIT_HEALTHY, EXIT_PROBLEMS = 0, 1
#: A review older than this says nothing about "now" when this check found nothing new.
RECENT_REVIEW = timedelta(minutes=15)
MAX_LISTED = 50


class CheckReport(BaseModel):
    hostname: str
    source: str
    entries_read: int
    new_events: int
    severity_counts: dict[str, int]
    events: list[dict[str, Any]] = Field(default_factory=list)
    review: dict[str, Any] | None = None
    review_is_new: bool = False
    notes: list[str] = Field(default_factory=list)
    # What the review proposed and what the policy decided (action id, name, arguments, status, reason).
    actions: list[dict[str, Any]] = Field(default_factory=list)
    pending_approvals: int = 0
    # Escalations waiting for (or in) a meta analysis: id, kind, status, since, reason.
    escalations: list[dict[str, Any]] = Field(default_factory=list)

    @computed_field  # in the --json output too
    @property
    def exit_code(self) -> int:
        found = any(SEVERITY_RANK[s] <= Severity.MEDIUM.rank for s, n in self.severity_counts.items() if n)
        unhealthy = self.review is not None and self.review["status"] != ReviewStatus.HEALTHY
        return EXIT_PROBLEMS if found or unhealthy else EXIT_HEALTHY


def _review_dict(r: Review) -> dict[str, Any]:
    return {
        "id": r.id,
        "created_at": r.created_at.isoformat(),
        "status": r.status,
        "summary": r.summary,
        "reviewer": r.reviewer,
        "model": r.model,
        "event_count": r.event_count,
        "issues": (r.payload or {}).get("issues", []),
    }


def build_report(store: Store, state: ChainState) -> CheckReport:
    check = state.check or {}
    review_state = state.review or {}
    with store.session() as s:
        events = s.execute(
            select(TriggerEvent, LogEvent.message)
            .outerjoin(LogEvent, TriggerEvent.log_event_id == LogEvent.id)
            .where(TriggerEvent.id.in_(check["trigger_ids"][:MAX_LISTED]))
        ).all()
        review = None
        if review_state.get("review_id"):
            review = s.get(Review, review_state["review_id"])
        else:
            review = latest_review(s, state.hostname)
            if review is not None and utcnow() - review.created_at > RECENT_REVIEW:
                review = None
        pending = pending_count(s, state.hostname)
        waiting = s.execute(
            select(Escalation).where(
                Escalation.hostname == state.hostname,
                Escalation.status.in_((EscalationStatus.REQUESTED, EscalationStatus.RUNNING))).order_by(Escalation.id)
        ).scalars().all()
        escalations = [{"id": e.id, "kind": e.kind, "status": e.status, "since": e.created_at.isoformat(),
                        "reason": e.reason[:300], "error": e.error} for e in waiting]
        proposed = []
        for item in review_state.get("actions", []):
            row = s.get(Action, item["action_id"])
            if row is not None:
                proposed.append({"id": row.id, "action": row.action, "arguments": row.arguments,
                                 "risk": row.risk, "status": row.status, "reason": row.verdict_reason})
    listed = sorted(events, key=lambda row: (SEVERITY_RANK[row[0].severity], row[0].time))
    return CheckReport(
        hostname=state.hostname,
        source=check["source"],
        entries_read=check["entries_read"],
        new_events=check["new_triggers"],
        severity_counts={s: check["severity_counts"][s] for s in SEVERITIES if check["severity_counts"].get(s)},
        events=[
            {
                "id": e.id,
                "time": e.time.isoformat(),
                "severity": e.severity,
                "pattern": e.pattern_id,
                "unit": (e.meta or {}).get("unit"),
                "reason": e.trigger_reason,
                "message": message or e.trigger_reason,
            }
            for e, message in listed
        ],
        review=_review_dict(review) if review is not None else None,
        review_is_new=bool(review_state.get("review_id")),
        notes=list(check.get("notes", [])),
        actions=proposed,
        pending_approvals=pending,
        escalations=escalations,
    )
