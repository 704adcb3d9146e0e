"""Issues: the events, reviews, meta analyses and actions of one problem on one host, and their lifecycle.

An issue is named like an escalation, by the groups (pattern, unit) of the worst events a review covered
(macha.review.escalation.issue_key_of_events), and there is one per (host, key) for good: a review that finds the
host unwell opens it, links its events and itself to it, and a later review of the same groups links to it again,
reopening it when it was resolved. The escalation, the analysis and the actions that follow carry its id.

open -> acknowledged (an operator saw it) -> resolved: by the sweep (``resolve_quiet``) when no event of it came
and no review of it said anything but healthy for ``issues.resolveAfter``, or by an operator (close, with a reason).
Every change is one conditional UPDATE on the state it was read in, so of two at the same moment one wins and the
other is told what happened; each is written to ``issue_audit`` with who made it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from macha.config import Settings, parse_duration
from macha.core.errors import MachaError
from macha.core.ids import parse_id
from macha.core.severity import SEVERITY_RANK, worst
from macha.core.states import ACTIVE_ISSUE, IssueEvent, IssueStatus, ReviewResult, ReviewStatus
from macha.review.escalation import event_group, group_name, issue_key_of_events, root_of, worst_events
from macha.store.db import Store
from macha.store.models import Action, Issue, IssueAudit, Review, TriggerEvent, utcnow
from macha.store.ops import insert_ignore

log = logging.getLogger(__name__)
#: The actor of the changes Macha makes itself (opening, reopening on recurrence, resolving when quiet).
SYSTEM = "macha"
_TITLE_CHARS = 300


class IssueError(MachaError):
    """An issue command that cannot be carried out (unknown id, a transition its state does not allow)."""


def _audit(s: Session, issue_id: int, event: IssueEvent, actor: str, reason: str = "", now: datetime | None = None):
    s.add(IssueAudit(time=now or utcnow(), issue_id=issue_id, event=event, actor=actor[:128], reason=reason[:2000]))


def _event_time(e: TriggerEvent) -> datetime:
    return e.last_seen or e.time


def link_review(s: Session, review: Review, events: list[TriggerEvent], now: datetime | None = None) -> Issue | None:
    """Link a stored review and the events it covered to their issue; returns it, or None (no issue).

    A review that says degraded or critical opens the issue of its worst groups, or reopens it when it was
    resolved (it recurred). A healthy review opens nothing, but its events still join an issue of theirs that is
    going on: they are more of it, and it is not quiet. Events of a correlation (a root-cause event and the
    events linked to it, macha.monitor.detect.correlate) whose chain already has an issue join that one, whatever
    their own groups: one issue with its root cause. Runs in the review's own transaction."""
    if review.outcome != ReviewResult.OK:
        return None
    now = now or utcnow()
    joined = None
    for issue_id, members in _chain_issues(s, events).items():
        chain_issue = s.get(Issue, issue_id)
        if chain_issue is None:
            continue
        _attach(s, chain_issue, members, now)
        joined = joined or chain_issue
        events = [e for e in events if e not in members]
    if not events:
        if joined is not None:
            review.issue_id = joined.id
            s.flush()
        return joined
    key = issue_key_of_events(events)
    if key is None:
        return joined
    unwell = review.status != ReviewStatus.HEALTHY
    issue = _by_key(s, review.hostname, key)
    if issue is None:
        if not unwell:
            return joined
        worst_ones = worst_events(events)
        first = min(worst_ones, key=lambda e: (SEVERITY_RANK.get(e.severity, 9), e.id))
        inserted = insert_ignore(s, Issue.__table__, [{
            "hostname": review.hostname, "issue_key": key,
            "groups": sorted({group_name(event_group(e)) for e in worst_ones}),
            "title": (first.trigger_reason or first.pattern_id or "")[:_TITLE_CHARS],
            "severity": worst(e.severity for e in events).value, "status": IssueStatus.OPEN,
            "opened_at": now, "updated_at": now, "last_event_at": max(_event_time(e) for e in events),
            "event_count": 0, "reopened": 0,
        }], returning=("id",))
        issue = _by_key(s, review.hostname, key)
        if inserted:  # else another review opened it a moment ago, and said so
            _audit(s, issue.id, IssueEvent.OPENED, SYSTEM, f"review #{review.id} ({review.status})", now)
    elif issue.status == IssueStatus.RESOLVED:
        if not unwell:
            return joined
        won = s.execute(update(Issue).where(Issue.id == issue.id, Issue.status == IssueStatus.RESOLVED).values(
            status=IssueStatus.OPEN, reopened=Issue.reopened + 1, updated_at=now, acknowledged_by=None,
            acknowledged_at=None, resolved_by=None, resolved_at=None, resolve_reason=None,
        ).execution_options(synchronize_session=False)).rowcount
        if won:
            _audit(s, issue.id, IssueEvent.REOPENED, SYSTEM, f"it recurred: review #{review.id} ({review.status})",
                   now)
        s.refresh(issue)
    _attach(s, issue, events, now)
    review.issue_id = issue.id
    s.flush()
    return issue


def _attach(s: Session, issue: Issue, events: list[TriggerEvent], now: datetime) -> None:
    ids = [e.id for e in events]
    for start in range(0, len(ids), 1000):  # bounded IN lists: SQLite caps bound parameters
        s.execute(update(TriggerEvent).where(TriggerEvent.id.in_(ids[start:start + 1000]),
                                             TriggerEvent.issue_id.is_(None)).values(issue_id=issue.id))
    for e in events:
        if e.issue_id is None:
            e.issue_id = issue.id
    seen = max(_event_time(e) for e in events)
    issue.last_event_at = max(issue.last_event_at, seen)
    issue.severity = worst([issue.severity, *(e.severity for e in events)]).value
    issue.event_count = (issue.event_count or 0) + sum(e.count or 1 for e in events)
    issue.updated_at = now
    s.flush()


def _chain_issues(s: Session, events: list[TriggerEvent]) -> dict[int, list[TriggerEvent]]:
    """Issue id -> the events of correlation chains that already have an issue: the issue of their root event,
    or of an event linked to the root (the full disk reviewed before the database failed after it)."""
    chains: dict[int, list[TriggerEvent]] = {}
    for e in events:
        if (root := root_of(e)) is not None:
            chains.setdefault(root, []).append(e)
    out: dict[int, list[TriggerEvent]] = {}
    for root_id, members in chains.items():
        root = s.get(TriggerEvent, root_id)
        if root is None:
            continue
        related = {root_id, *((root.meta or {}).get("linked_events") or [])}
        issue_id = s.execute(select(TriggerEvent.issue_id).where(
            TriggerEvent.id.in_(sorted(related)[:1000]), TriggerEvent.issue_id.is_not(None))
            .order_by(TriggerEvent.id).limit(1)).scalar()
        if issue_id is not None:
            out.setdefault(issue_id, []).extend(members)
    return out


def _by_key(s: Session, hostname: str, key: str) -> Issue | None:
    return s.execute(select(Issue).where(Issue.hostname == hostname, Issue.issue_key == key)).scalar_one_or_none()


def link_actions(s: Session, issue_id: int | None, action_ids: Iterable[int]) -> None:
    """The actions proposed about an issue (by its review or its analysis) carry its id; one already linked to
    another issue (a merged proposal) keeps it."""
    ids = list(action_ids)
    if issue_id is None or not ids:
        return
    s.execute(update(Action).where(Action.id.in_(ids), Action.issue_id.is_(None)).values(issue_id=issue_id)
              .execution_options(synchronize_session=False))


def resolve_quiet(store: Store, settings: Settings, now: datetime | None = None) -> list[int]:
    """Resolve the issues whose events stopped and whose reviews said healthy for ``issues.resolveAfter``.

    Quiet means: no event of the issue seen since, no review of it since that said degraded or critical (a
    recorded journal's old events are reviewed now: the review keeps the issue open), and no event of its groups
    still waiting for a review (the model may be down: that is not health). Returns the ids resolved."""
    now = now or utcnow()
    after = parse_duration(settings.issues.resolve_after)
    cutoff = now - after
    resolved: list[int] = []
    with store.session() as s:
        active = s.execute(select(Issue).where(Issue.status.in_(ACTIVE_ISSUE)).order_by(Issue.id)).scalars().all()
        # Repeats join an event group after its review (grouping.window): the group's last_seen moves, the issue
        # learns it here.
        latest = dict(s.execute(
            select(TriggerEvent.issue_id, func.max(func.coalesce(TriggerEvent.last_seen, TriggerEvent.time)))
            .join(Issue, Issue.id == TriggerEvent.issue_id).where(Issue.status.in_(ACTIVE_ISSUE))
            .group_by(TriggerEvent.issue_id)).all())
        pending: dict[str, set[str]] = {}
        for issue in active:
            seen = latest.get(issue.id)
            if seen is not None and seen > issue.last_event_at:
                # Same conditional form: a link committed meanwhile moved it already.
                s.execute(update(Issue).where(Issue.id == issue.id, Issue.last_event_at == issue.last_event_at)
                          .values(last_event_at=seen).execution_options(synchronize_session=False))
                s.refresh(issue)
            if issue.last_event_at > cutoff:
                continue
            loud = s.execute(select(Review.id).where(
                Review.issue_id == issue.id, Review.outcome == ReviewResult.OK, Review.created_at > cutoff,
                Review.status != ReviewStatus.HEALTHY).limit(1)).first()
            if loud is not None:
                continue
            if issue.hostname not in pending:
                pending[issue.hostname] = {group_name(event_group(e)) for e in s.execute(select(TriggerEvent).where(
                    TriggerEvent.hostname == issue.hostname, TriggerEvent.review_id.is_(None))).scalars()}
            if pending[issue.hostname] & set(issue.groups or []):
                continue
            reason = f"no event and no unhealthy review for {settings.issues.resolve_after}"
            # On the state and last event as read: an issue linked to a new event meanwhile stays as it is.
            won = s.execute(update(Issue).where(
                Issue.id == issue.id, Issue.status == issue.status, Issue.last_event_at == issue.last_event_at,
            ).values(status=IssueStatus.RESOLVED, resolved_by=SYSTEM, resolved_at=now, resolve_reason=reason,
                     updated_at=now).execution_options(synchronize_session=False)).rowcount
            if won:
                _audit(s, issue.id, IssueEvent.RESOLVED, SYSTEM, reason, now)
                resolved.append(issue.id)
    if resolved:
        log.info("issues resolved (quiet for %s): %s", settings.issues.resolve_after, resolved)
    return resolved


# What an operator does: acknowledge, close, reopen. Each returns the issue as it now is (detached).


def load(s: Session, issue_id: int | str) -> Issue:
    try:
        # An id no database column can hold is "no such issue", not a driver's overflow (web and MCP pass ids in).
        issue_id = parse_id(issue_id, "issue")
    except ValueError as exc:
        raise IssueError(str(exc)) from None
    issue = s.get(Issue, issue_id)
    if issue is None:
        raise IssueError(f"no issue with id {issue_id} (see `macha-issues list --all`)")
    return issue


def _already(issue: Issue, verb: str) -> str:
    """What the loser of a change is told: the state the issue is in, who put it there and when."""
    who, when = {
        IssueStatus.ACKNOWLEDGED: (issue.acknowledged_by, issue.acknowledged_at),
        IssueStatus.RESOLVED: (issue.resolved_by, issue.resolved_at),
    }.get(IssueStatus(issue.status), (None, None))
    by = f" by {who}" if who else ""
    at = f" at {when.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC" if when else ""
    return f"issue {issue.id} is {issue.status}{by}{at}: nothing to {verb}"


def _change(store: Store, issue_id: int | str, actor: str, verb: str, allowed: tuple[IssueStatus, ...],
            event: IssueEvent, reason: str, values: dict) -> Issue:
    now = utcnow()
    with store.session() as s:
        issue = load(s, issue_id)
        if issue.status not in allowed:
            raise IssueError(_already(issue, verb))
        won = s.execute(update(Issue).where(Issue.id == issue.id, Issue.status == issue.status)
                        .values(**values, updated_at=now).execution_options(synchronize_session=False)).rowcount
        s.refresh(issue)
        if won != 1:
            # Someone changed it while we looked: theirs stands.
            raise IssueError(_already(issue, verb))
        _audit(s, issue.id, event, actor, reason, now)
        s.flush()
        s.expunge(issue)
        return issue


def acknowledge(store: Store, issue_id: int | str, actor: str) -> Issue:
    """open -> acknowledged: an operator has seen it. It goes on collecting events and resolves as before."""
    now = utcnow()
    return _change(store, issue_id, actor, "acknowledge", (IssueStatus.OPEN,), IssueEvent.ACKNOWLEDGED, "",
                   {"status": IssueStatus.ACKNOWLEDGED, "acknowledged_by": actor[:128], "acknowledged_at": now})


def close(store: Store, issue_id: int | str, actor: str, reason: str) -> Issue:
    """open or acknowledged -> resolved, by an operator, with a reason. It reopens if it recurs."""
    reason = (reason or "").strip()
    if not reason:
        raise IssueError("give a reason for closing the issue (--reason)")
    return _change(store, issue_id, actor, "close", ACTIVE_ISSUE, IssueEvent.CLOSED, reason,
                   {"status": IssueStatus.RESOLVED, "resolved_by": actor[:128], "resolved_at": utcnow(),
                    "resolve_reason": reason[:2000]})


def reopen(store: Store, issue_id: int | str, actor: str) -> Issue:
    """resolved -> open, by an operator (the sweep resolves it again once it is quiet for resolveAfter again)."""
    return _change(store, issue_id, actor, "reopen", (IssueStatus.RESOLVED,), IssueEvent.REOPENED, "",
                   {"status": IssueStatus.OPEN, "reopened": Issue.reopened + 1, "acknowledged_by": None,
                    "acknowledged_at": None, "resolved_by": None, "resolved_at": None, "resolve_reason": None,
                    "last_event_at": utcnow()})
