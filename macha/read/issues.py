"""Issues as the interfaces read them: the list (open and acknowledged by default) and one issue with its
timeline (events, reviews, meta analyses, actions and its state changes in time order).

Plain functions taking a Store; typed results. Text in them (an event's reason, a summary, a diagnosis) is stored
log and model text: untrusted, shown sanitized by whoever renders it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from macha.core.severity import SEVERITY_RANK, Severity
from macha.core.states import ACTIVE_ISSUE, IssueStatus
from macha.read.common import MAX_LIMIT, require_host
from macha.read.errors import NotFound, ReadError
from macha.review.issues import IssueError, load
from macha.store.db import Store
from macha.store.models import Action, ActionAudit, Escalation, Issue, IssueAudit, Review, TriggerEvent

#: The most events a timeline lists (the latest): a noisy issue has thousands of groups over weeks.
TIMELINE_EVENTS = 200
#: The most reviews, analyses and actions a timeline lists each (the latest).
TIMELINE_OTHERS = 200
_TEXT = 2000


class IssueSummary(BaseModel):
    """One issue as listed."""

    id: int
    hostname: str
    status: IssueStatus
    severity: Severity
    title: str
    #: The event groups ("pattern|unit") that name it.
    groups: list[str] = Field(default_factory=list)
    opened_at: datetime
    updated_at: datetime
    last_event_at: datetime
    #: Journal lines (and other events) its event groups stand for.
    event_count: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolve_reason: str | None = None
    #: How often it came back after it was resolved.
    reopened: int = 0

    @classmethod
    def from_row(cls, issue: Issue) -> IssueSummary:
        return cls(id=issue.id, hostname=issue.hostname, status=issue.status, severity=issue.severity,
                   title=issue.title, groups=list(issue.groups or []), opened_at=issue.opened_at,
                   updated_at=issue.updated_at, last_event_at=issue.last_event_at, event_count=issue.event_count,
                   acknowledged_by=issue.acknowledged_by, acknowledged_at=issue.acknowledged_at,
                   resolved_by=issue.resolved_by, resolved_at=issue.resolved_at, resolve_reason=issue.resolve_reason,
                   reopened=issue.reopened)


class TimelineEntry(BaseModel):
    """One thing that happened to an issue."""

    time: datetime
    kind: Literal["event", "review", "analysis", "action", "state"]
    #: The row's id (trigger_events, reviews, escalations, actions, issue_audit).
    id: int
    #: event: its severity; review: healthy/degraded/critical; analysis: its status; action: the decision (its
    #: audit event: queued, approved, executed...); state: the change (opened, acknowledged...).
    status: str
    #: One line about it (log or model text: untrusted).
    text: str
    detail: dict[str, Any] = Field(default_factory=dict)


class IssueDetail(IssueSummary):
    timeline: list[TimelineEntry] = Field(default_factory=list)
    #: Events of the issue left out of the timeline (only the latest TIMELINE_EVENTS are listed).
    events_not_shown: int = 0


def open_counts(session: Session, hostnames: list[str]) -> dict[str, int]:
    """Open and acknowledged issues per host (hosts without any are absent)."""
    if not hostnames:
        return {}
    return dict(session.execute(
        select(Issue.hostname, func.count()).where(Issue.status.in_(ACTIVE_ISSUE), Issue.hostname.in_(hostnames))
        .group_by(Issue.hostname)).all())


def list_issues(store: Store, *, include_resolved: bool = False, hostname: str | None = None,
                severity: Severity | str | None = None, limit: int = MAX_LIMIT) -> list[IssueSummary]:
    """Issues, the most recently active first: open and acknowledged ones, or all with ``include_resolved``;
    ``severity`` keeps those of that severity or worse. An unknown host is an UnknownHost error naming the known
    ones; a severity that is none a ReadError."""
    try:
        severity = Severity(severity) if severity is not None else None
    except ValueError:
        raise ReadError(f"severity: {str(severity)[:40]!r} is not one of "
                        f"{', '.join(s.value for s in Severity)}") from None
    q = select(Issue)
    if not include_resolved:
        q = q.where(Issue.status.in_(ACTIVE_ISSUE))
    if hostname:
        q = q.where(Issue.hostname == hostname)
    if severity is not None:
        rank = SEVERITY_RANK[Severity(severity)]
        q = q.where(Issue.severity.in_([s for s, r in SEVERITY_RANK.items() if r <= rank]))
    with store.session() as s:
        if hostname and s.execute(select(Issue.id).where(Issue.hostname == hostname).limit(1)).first() is None:
            require_host(s, hostname)
        rows = s.execute(q.order_by(Issue.updated_at.desc(), Issue.id.desc())
                         .limit(max(1, min(limit, MAX_LIMIT)))).scalars().all()
        return [IssueSummary.from_row(r) for r in rows]


def get_issue(store: Store, issue_id: int | str) -> IssueDetail:
    """One issue and its timeline, oldest first; an unknown or malformed id is a NotFound naming it."""
    with store.session() as s:
        try:
            issue = load(s, issue_id)
        except IssueError as exc:
            raise NotFound(str(exc)) from None
        entries: list[TimelineEntry] = []
        events = s.execute(select(TriggerEvent).where(TriggerEvent.issue_id == issue.id)
                           .order_by(TriggerEvent.id.desc()).limit(TIMELINE_EVENTS + 1)).scalars().all()
        more = len(events) > TIMELINE_EVENTS
        for e in events[:TIMELINE_EVENTS]:
            entries.append(TimelineEntry(
                time=e.time, kind="event", id=e.id, status=e.severity, text=e.trigger_reason[:_TEXT],
                detail={"pattern": e.pattern_id, "unit": (e.meta or {}).get("unit"), "count": e.count or 1,
                        "last_seen": e.last_seen, "review_id": e.review_id}))
        for r in _latest(s, Review, issue.id):
            entries.append(TimelineEntry(
                time=r.created_at, kind="review", id=r.id, status=r.status, text=r.summary[:_TEXT],
                detail={"reviewer": r.reviewer, "model": r.model, "events": r.event_count}))
        for e in _latest(s, Escalation, issue.id):
            result = e.result or {}
            text = str(result.get("diagnosis") or e.error or e.reason)
            entries.append(TimelineEntry(
                time=e.finished_at or e.created_at, kind="analysis", id=e.id, status=e.status, text=text[:_TEXT],
                detail={"kind": e.kind, "reason": e.reason[:_TEXT], "attached_to": e.attached_to,
                        "root_cause": result.get("root_cause"), "answered_by": result.get("answered_by"),
                        "review_id": e.review_id}))
        # An action's decisions as its audit log has them: proposed (scheduled, queued, recorded, refused), merged,
        # approved or rejected by whom, started, executed or failed.
        for h, a in reversed(s.execute(
                select(ActionAudit, Action).join(Action, Action.id == ActionAudit.action_id)
                .where(Action.issue_id == issue.id).order_by(ActionAudit.id.desc())
                .limit(TIMELINE_OTHERS)).all()):
            args = " ".join(f"{k}={v}" for k, v in sorted((a.arguments or {}).items()))
            entries.append(TimelineEntry(
                time=h.time, kind="action", id=a.id, status=h.event,
                text=f"{a.action} {args}".strip()[:_TEXT] + (f": {h.reason}"[:_TEXT] if h.reason else ""),
                detail={"actor": h.actor, "risk": a.risk, "status_now": a.status, "exit_code": a.exit_code
                        if h.event in ("executed", "failed") else None}))
        for h in s.execute(select(IssueAudit).where(IssueAudit.issue_id == issue.id)
                           .order_by(IssueAudit.id)).scalars():
            entries.append(TimelineEntry(time=h.time, kind="state", id=h.id, status=h.event,
                                         text=f"{h.event} by {h.actor}{f': {h.reason}' if h.reason else ''}"[:_TEXT],
                                         detail={"actor": h.actor}))
        order = {"event": 0, "review": 1, "analysis": 2, "action": 3, "state": 4}
        entries.sort(key=lambda t: (t.time, order[t.kind], t.id))
        total = s.execute(select(func.count()).where(TriggerEvent.issue_id == issue.id)).scalar() if more else 0
        return IssueDetail(**IssueSummary.from_row(issue).model_dump(), timeline=entries,
                           events_not_shown=max(total - TIMELINE_EVENTS, 0))


def _latest(s: Any, model: Any, issue_id: int) -> list[Any]:
    rows = s.execute(select(model).where(model.issue_id == issue_id).order_by(model.id.desc())
                     .limit(TIMELINE_OTHERS)).scalars().all()
    return list(reversed(rows))
