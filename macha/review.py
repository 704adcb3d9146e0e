"""Layer 3: review the pending trigger events of one host and store the review.

The review model writes it when one is configured and reachable; otherwise the deterministic rules reviewer does,
and says so. Proposed actions go through the catalog and the policy; escalations are stored for Layer 4.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from macha.config import Settings
from macha.detect.patterns import SEVERITY_RANK
from macha.llm.backend import Backend, LLMError
from macha.llm.review_model import ModelAttempt, model_review
from macha.llm.schemas import ProposedAction, ReviewIssue, ReviewReport
from macha.store.db import Store
from macha.store.models import Review, TriggerEvent

log = logging.getLogger(__name__)
RULES_NOTE = "Rules reviewer (no model was used)"
MAX_EVIDENCE = 20
# "nginx.service: Failed with result 'exit-code'." -> nginx.service (the unit systemd reports, not the logger)
_FAILED_UNIT = re.compile(r"(\S+\.(?:service|socket|mount|timer)): (?:Failed with result|Main process exited)")


@dataclass
class ReviewOutcome:
    hostname: str
    review_id: int | None
    skipped: bool
    status: str | None = None
    summary: str | None = None
    events_covered: int = 0
    actions: list[dict] = field(default_factory=list)
    reviewer: str | None = None
    escalation_id: int | None = None
    #: requested (its task is to be sent) or attached (an analysis of the same issue is under way or recent)
    escalation_status: str | None = None
    escalation_kind: str | None = None
    escalation_attached_to: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def covered(events: list[TriggerEvent]) -> int:
    """Journal lines (and other events) a set of trigger events stands for: each is a group of repeats."""
    return sum(e.count or 1 for e in events)


def rules_review(events: list[TriggerEvent], note: str = "") -> ReviewReport:
    """One issue per group (pattern + unit); status from the worst severity."""
    groups: dict[tuple[str, str], list[TriggerEvent]] = defaultdict(list)
    for ev in events:
        groups[(ev.pattern_id or ev.trigger_type, (ev.meta or {}).get("unit") or "")].append(ev)
    issues = []
    for (pattern, unit), evs in groups.items():
        worst = min(evs, key=lambda e: SEVERITY_RANK[e.severity])
        title = worst.trigger_reason.split(":", 1)[0]
        issues.append(
            ReviewIssue(
                title=f"{title}{f' ({unit})' if unit else ''}"[:300],
                severity=worst.severity,
                subsystem=str((worst.meta or {}).get("subsystem", "other"))[:64],
                evidence_event_ids=[e.id for e in evs[:MAX_EVIDENCE]],
                occurrences=sum(e.count or 1 for e in evs),
            )
        )
    issues.sort(key=lambda i: (SEVERITY_RANK[i.severity], -i.occurrences))
    proposals = _fitting_actions(groups)
    worst_rank = SEVERITY_RANK[issues[0].severity] if issues else SEVERITY_RANK["info"]
    status = "critical" if worst_rank == 0 else "degraded" if worst_rank <= SEVERITY_RANK["medium"] else "healthy"
    if issues:
        top = "; ".join(f"{i.severity}: {i.title} x{i.occurrences}" for i in issues[:3])
        summary = f"{RULES_NOTE}.{note} {covered(events)} new event(s) in {len(issues)} group(s). {top}"
    else:
        summary = f"{RULES_NOTE}.{note} No new events."
    return ReviewReport(
        status=status,
        summary=summary[:4000],
        issues=issues,
        proposed_actions=proposals,
        should_escalate=status == "critical",
        escalation_reason="critical events" if status == "critical" else None,
    )


def _fitting_actions(groups: dict[tuple[str, str], list[TriggerEvent]]) -> list[ProposedAction]:
    """Catalog actions that fit a group: a failed unit gets a restart (the policy decides whether it runs)."""
    out: dict[str, ProposedAction] = {}
    for (pattern, _), evs in groups.items():
        if pattern != "unit_failed":
            continue
        for ev in evs:
            m = _FAILED_UNIT.search(ev.trigger_reason)
            if m and m[1] not in out:
                out[m[1]] = ProposedAction(
                    action="restart_service",
                    arguments={"unit": m[1]},
                    reason=f"{m[1]} failed ({len(evs)} event(s), e.g. #{ev.id})",
                )
    return list(out.values())


def _pending(store: Store, hostname: str, up_to_event_id: int | None) -> list[TriggerEvent]:
    with store.session() as s:
        q = select(TriggerEvent).where(TriggerEvent.hostname == hostname, TriggerEvent.review_id.is_(None))
        if up_to_event_id is not None:
            q = q.where(TriggerEvent.id <= up_to_event_id)
        return list(s.execute(q.order_by(TriggerEvent.id)).scalars())


def run_review(store: Store, hostname: str, up_to_event_id: int | None = None,
               settings: Settings | None = None, backend: Backend | None = None, memory: Any = None,
               memory_note: str | None = None) -> ReviewOutcome:
    """Review every pending event of the host (up to ``up_to_event_id``); no pending events means no review.

    With a backend the review model writes the review; an unreachable server or a missing model falls back to the
    rules reviewer (said in the review), and an answer that stays invalid after one repair is stored as a failed
    review while its events stay pending. The caller holds the host's single-flight lock. The model is called
    outside any transaction; the review, the marking of its events and the intake of its proposed actions (when
    ``settings`` is given) then commit together.
    """
    events = _pending(store, hostname, up_to_event_id)
    if not events:
        return ReviewOutcome(hostname=hostname, review_id=None, skipped=True)
    attempt: ModelAttempt | None = None
    fallback_note = ""
    if backend is not None and settings is not None:
        try:
            attempt = model_review(backend, settings, hostname, events, store, memory, memory_note)
        except LLMError as exc:
            fallback_note = f" The review model was not used: {exc}"
            log.warning("review of %s by the rules reviewer: %s", hostname, exc)
    if attempt is not None and attempt.report is None:
        return _store_failed(store, hostname, events, attempt)
    report = attempt.report if attempt is not None else rules_review(events, fallback_note)
    with store.session() as s:
        review = Review(
            hostname=hostname,
            status=report.status,
            summary=report.summary,
            reviewer=attempt.backend if attempt else "rules",
            model=attempt.model if attempt else None,
            outcome="ok",
            error=fallback_note.strip() or None,
            event_count=covered(events),
            payload=report.model_dump(mode="json"),
            prompt_tokens=attempt.prompt_tokens if attempt else None,
            completion_tokens=attempt.completion_tokens if attempt else None,
            duration_s=attempt.duration_s if attempt else None,
        )
        s.add(review)
        s.flush()
        ids = [e.id for e in events]
        for start in range(0, len(ids), 1000):  # bounded IN lists: SQLite caps bound parameters
            s.execute(
                update(TriggerEvent)
                .where(TriggerEvent.id.in_(ids[start : start + 1000]), TriggerEvent.review_id.is_(None))
                .values(review_id=review.id)
            )
        actions = []
        escalation_id = None
        escalation_status = escalation_kind = None
        attached_to = None
        if settings is not None:
            from macha.actions.proposals import propose

            for proposal in report.proposed_actions[: settings.actions.max_proposals_per_review]:
                evidence = {"event_ids": [e.id for e in events if proposal.arguments.get("unit", "\0") in
                                          e.trigger_reason][:MAX_EVIDENCE]}
                actions.append(
                    propose(s, settings, hostname, proposal, proposer=f"review:{review.reviewer}",
                            review_id=review.id, evidence=evidence).to_dict()
                )
            reasons = [report.escalation_reason or "the reviewer asked for a deeper analysis"] if \
                report.should_escalate else []
            reasons += [f"action {a['action_id']} ({a['action']}): {a['reason']}" for a in actions if a["escalate"]]
            if reasons:
                from macha.meta.analysis import issue_key_of_events, request

                esc = request(s, settings, hostname, "; ".join(reasons),
                              kind="critical" if report.status == "critical" else "escalation",
                              review_id=review.id, key=issue_key_of_events(events))
                escalation_id = esc.id
                escalation_status = esc.status
                escalation_kind = esc.kind
                attached_to = esc.attached_to
    return ReviewOutcome(
        hostname=hostname,
        review_id=review.id,
        skipped=False,
        status=report.status,
        summary=report.summary,
        events_covered=covered(events),
        actions=actions,
        reviewer=review.reviewer,
        escalation_id=escalation_id,
        escalation_status=escalation_status,
        escalation_kind=escalation_kind,
        escalation_attached_to=attached_to,
    )


def _store_failed(store: Store, hostname: str, events: list[TriggerEvent], attempt: ModelAttempt) -> ReviewOutcome:
    """The model's answer stayed unusable: keep it and the error; the events stay pending for the next review."""
    with store.session() as s:
        review = Review(
            hostname=hostname, status="degraded", summary=f"The review failed: {attempt.error}"[:4000],
            reviewer=attempt.backend, model=attempt.model, outcome="failed", error=attempt.error,
            event_count=0, payload={"pending_event_ids": [e.id for e in events][:200]},
            prompt_tokens=attempt.prompt_tokens, completion_tokens=attempt.completion_tokens,
            duration_s=attempt.duration_s, raw_output=attempt.raw[:100_000],
        )
        s.add(review)
        s.flush()
    return ReviewOutcome(hostname=hostname, review_id=review.id, skipped=False, status="failed",
                         summary=review.summary, events_covered=0, reviewer=attempt.backend)


def latest_review(session: Session, hostname: str) -> Review | None:
    return session.execute(
        select(Review).where(Review.hostname == hostname).order_by(Review.id.desc()).limit(1)
    ).scalar_one_or_none()
