"""Escalation requests: Layer 3 stores the request for a deeper analysis, Layer 4 (macha.meta.analysis) reads it.

An escalation of an issue already under analysis, or analysed within ``meta.dedupWindow``, is stored attached to
that analysis instead of starting another; the issue is named by the worst events' groups (pattern, unit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from macha.config import Settings
from macha.core.severity import Severity
from macha.core.states import EscalationKind, EscalationStatus
from macha.store.models import Escalation, TriggerEvent, utcnow

#: The kinds, the most urgent first (the order a waiting escalation's kind is raised by).
KINDS: tuple[str, ...] = tuple(k.value for k in EscalationKind)


def root_of(event: TriggerEvent) -> int | None:
    """The root-cause event a correlation rule linked this event to (itself for a root), or None."""
    if event.trigger_type == "correlation":
        return event.id
    root = (event.meta or {}).get("root_event_id")
    return root if isinstance(root, int) else None


def worst_events(events: Iterable[TriggerEvent]) -> list[TriggerEvent]:
    """The critical and high events (all of them when there are none): what names the issue. Events a
    correlation folded into a root-cause event are named by their root, not by themselves."""
    events = list(events)
    events = [e for e in events if root_of(e) in (None, e.id)] or events
    return [e for e in events if e.severity in (Severity.CRITICAL, Severity.HIGH)] or events


def event_group(event: TriggerEvent) -> tuple[str | None, str | None]:
    """An event's group as issue keys count it: (pattern, unit)."""
    return (event.pattern_id or event.trigger_type), (event.meta or {}).get("unit")


def group_name(group: tuple[str | None, str | None]) -> str:
    return f"{group[0] or '-'}|{group[1] or '-'}"


def issue_key(groups: Iterable[tuple[str | None, str | None]]) -> str | None:
    """Names an issue by its event groups (pattern, unit): the same groups escalated again are the same issue."""
    keys = sorted({group_name(g) for g in groups})
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32] if keys else None


def issue_key_of_events(events: Iterable[TriggerEvent]) -> str | None:
    """The worst events' groups: more low-severity noise alongside does not make it another issue."""
    return issue_key(event_group(e) for e in worst_events(events))


def stale_after(settings: Settings) -> timedelta:
    """A run older than this has died (its worker was killed): its escalation may be taken again."""
    return timedelta(seconds=settings.meta.time_limit + 3 * settings.llm.timeout + 60)


def same_issue(session: Session, settings: Settings, hostname: str, key: str | None, exclude: int | None = None):
    if key is None:
        return None
    now = utcnow()
    recent = now - timedelta(seconds=settings.meta.dedup_window)
    q = select(Escalation).where(
        Escalation.hostname == hostname, Escalation.issue_key == key,
        or_(Escalation.status == EscalationStatus.REQUESTED,
            (Escalation.status == EscalationStatus.RUNNING) & (Escalation.started_at >= now - stale_after(settings)),
            (Escalation.status == EscalationStatus.DONE) & (Escalation.finished_at >= recent)))
    if exclude is not None:
        q = q.where(Escalation.id != exclude)
    return session.execute(q.order_by(Escalation.id).limit(1)).scalar_one_or_none()


def request(session: Session, settings: Settings, hostname: str, reason: str, *, kind: str = EscalationKind.ESCALATION,
            review_id: int | None = None, key: str | None = None) -> Escalation:
    """Store an escalation; one of an issue already under analysis (or just analysed) is stored as attached."""
    if kind not in KINDS:
        raise ValueError(f"escalation kind must be one of {KINDS}")
    first = same_issue(session, settings, hostname, key)
    esc = Escalation(hostname=hostname, review_id=review_id, reason=reason[:4000], kind=kind, issue_key=key,
                     status=EscalationStatus.ATTACHED if first else EscalationStatus.REQUESTED,
                     attached_to=first.id if first else None)
    session.add(esc)
    if first is not None and first.status == EscalationStatus.REQUESTED:
        # Not analysed yet: the analysis will read this reason too, and a critical one makes it critical.
        first.reason = f"{first.reason}\n(also: {reason})"[:4000]
        if KINDS.index(kind) < KINDS.index(first.kind):
            first.kind = kind
    session.flush()
    return esc
