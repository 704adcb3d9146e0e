"""Layer 3: review the pending trigger events of one host and store the review.

The review model writes it when one is configured and reachable; otherwise the deterministic rules reviewer does,
and says so. Proposed actions go through the catalog and the policy; escalations are stored for Layer 4.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from macha.config import Settings
from macha.context.recall import NoMemory, Recall
from macha.core.severity import SEVERITY_RANK, Severity
from macha.core.states import EscalationKind, EscalationStatus, ReviewResult, ReviewStatus
from macha.llm.base import Backend, LLMError
from macha.review.escalation import issue_key_of_events, request
from macha.review.issues import link_actions, link_review
from macha.review.model_turn import ModelAttempt, model_review
from macha.review.rules import MAX_EVIDENCE, covered, rules_review
from macha.review.schemas import ReviewReport
from macha.store.db import Store
from macha.store.models import Review, TriggerEvent, utcnow

log = logging.getLogger(__name__)
#: The least severity the rules reviewer covers while the model fails: critical and high cannot wait.
RULES_COVER_WHILE_MODEL_FAILS = Severity.HIGH


class ReviewOutcome(BaseModel):
    hostname: str
    review_id: int | None
    skipped: bool
    #: how the host looks (the review's status), or failed: the model's answer stayed unusable
    status: ReviewStatus | ReviewResult | None = None
    summary: str | None = None
    events_covered: int = 0
    #: the proposals' ProposalResults, as JSON
    actions: list[dict[str, Any]] = Field(default_factory=list)
    reviewer: str | None = None
    escalation_id: int | None = None
    #: requested (its task is to be sent) or attached (an analysis of the same issue is under way or recent)
    escalation_status: EscalationStatus | None = None
    escalation_kind: EscalationKind | None = None
    escalation_attached_to: int | None = None
    #: the issue the review's events belong to (opened or reopened by it, or going on)
    issue_id: int | None = None


def _pending(store: Store, hostname: str, up_to_event_id: int | None) -> list[TriggerEvent]:
    with store.session() as s:
        q = select(TriggerEvent).where(TriggerEvent.hostname == hostname, TriggerEvent.review_id.is_(None))
        if up_to_event_id is not None:
            q = q.where(TriggerEvent.id <= up_to_event_id)
        return list(s.execute(q.order_by(TriggerEvent.id)).scalars())


def run_review(store: Store, hostname: str, up_to_event_id: int | None = None,
               settings: Settings | None = None, backend: Backend | None = None,
               recall: Recall = NoMemory()) -> ReviewOutcome:
    """Review every pending event of the host (up to ``up_to_event_id``); no pending events means no review.

    With a backend the review model writes the review; an unreachable server or a missing model falls back to the
    rules reviewer (said in the review), and an answer that stays invalid after one repair is stored as a failed
    review while its events stay pending. After reviewModelFailureLimit such failures in a row the rules reviewer
    covers the critical and high events (labelled) and the model rests for a backoff (see ModelStreak). The
    caller holds the host's single-flight lock. The model is called outside any transaction; the review, the
    marking of its events and the intake of its proposed actions (when ``settings`` is given) then commit together.
    """
    events = _pending(store, hostname, up_to_event_id)
    if not events:
        return ReviewOutcome(hostname=hostname, review_id=None, skipped=True)
    attempt: ModelAttempt | None = None
    fallback_note = ""
    if backend is not None and settings is not None:
        with store.session() as s:
            streak = model_streak(s, hostname, settings)
        if streak.resting(utcnow()):
            # Asking again now would only repeat the garbage (and its minutes of model time) every tick.
            log.warning("review of %s without the model:%s", hostname, streak.note())
            return _rules_cover_urgent(store, hostname, events, settings, streak) or ReviewOutcome(
                hostname=hostname, review_id=None, skipped=True, summary=streak.note().strip())
        try:
            attempt = model_review(backend, settings, hostname, events, store, recall)
        except LLMError as exc:
            fallback_note = f" The review model was not used: {exc}"
            log.warning("review of %s by the rules reviewer: %s", hostname, exc)
        if attempt is not None and attempt.report is None:
            failed = _store_failed(store, hostname, events, attempt)
            with store.session() as s:
                streak = model_streak(s, hostname, settings)
            if streak.failures < settings.review_model_failure_limit:
                return failed
            log.warning("review of %s:%s", hostname, streak.note())
            return _rules_cover_urgent(store, hostname, events, settings, streak) or failed
    report = attempt.report if attempt is not None else rules_review(events, fallback_note)
    return _store_report(store, hostname, events, report, attempt, settings, fallback_note)


def _store_report(store: Store, hostname: str, events: list[TriggerEvent], report: ReviewReport,
                  attempt: ModelAttempt | None, settings: Settings | None, fallback_note: str) -> ReviewOutcome:
    """Store a usable review (the model's, or the rules reviewer's without ``attempt``) covering ``events``."""
    with store.session() as s:
        review = Review(
            hostname=hostname,
            status=report.status,
            summary=report.summary,
            reviewer=attempt.backend if attempt else "rules",
            model=attempt.model if attempt else None,
            outcome=ReviewResult.OK,
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
        issue = link_review(s, review, events)
        issue_id = issue.id if issue is not None else None
        actions = []
        escalation_id = None
        escalation_status = escalation_kind = None
        attached_to = None
        if settings is not None:
            from macha.actions.proposals import propose

            def evidence_for(arguments: dict[str, Any]) -> dict[str, Any]:
                # Called with arguments the catalog validated: a unit here is a checked unit name, never a model's
                # null, number or object.
                unit = arguments.get("unit")
                return {"event_ids": [e.id for e in events if unit and unit in e.trigger_reason][:MAX_EVIDENCE]}

            for proposal in report.proposed_actions[: settings.actions.max_proposals_per_review]:
                actions.append(
                    propose(s, settings, hostname, proposal, proposer=f"review:{review.reviewer}",
                            review_id=review.id, evidence_for=evidence_for).model_dump(mode="json")
                )
            link_actions(s, issue_id, [a["action_id"] for a in actions])
            reasons = [report.escalation_reason or "the reviewer asked for a deeper analysis"] if \
                report.should_escalate else []
            reasons += [f"action {a['action_id']} ({a['action']}): {a['reason']}" for a in actions if a["escalate"]]
            if reasons:
                esc = request(s, settings, hostname, "; ".join(reasons),
                              kind=EscalationKind.CRITICAL if report.status == ReviewStatus.CRITICAL
                              else EscalationKind.ESCALATION,
                              review_id=review.id, key=issue_key_of_events(events))
                esc.issue_id = issue_id
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
        issue_id=issue_id,
    )


@dataclass
class ModelStreak:
    """The review model's unusable answers in a row on a host: its failed reviews since its last good one.

    Read from the store, so a restart neither forgets a streak nor its backoff. From reviewModelFailureLimit failures
    the model is asked again only after review_interval x 1, 2, 4 ... (capped at reviewModelBackoffMax), counted
    from the start of the last failed call; meanwhile the rules reviewer covers what cannot wait."""

    failures: int = 0
    last_error: str | None = None
    #: Earliest time the model is asked again; None: at once.
    retry_at: datetime | None = None

    def resting(self, now: datetime) -> bool:
        return self.retry_at is not None and now < self.retry_at

    def note(self) -> str:
        when = f"{self.retry_at:%Y-%m-%d %H:%M:%S} UTC" if self.retry_at else "the next review"
        last = (self.last_error or "no reason given")[:300]
        return (f" The review model gave no usable answer {self.failures} times in a row (last: {last}); it is "
                f"asked again from {when}, and the medium and low events wait for it.")


def model_streak(session: Session, hostname: str, settings: Settings) -> ModelStreak:
    # A model review stores the model's name; the rules reviewer (also as the fallback of an unreachable server)
    # stores none, so it neither counts as a failure nor ends the streak.
    last_ok = session.execute(select(func.max(Review.id)).where(
        Review.hostname == hostname, Review.model.is_not(None), Review.outcome == ReviewResult.OK)).scalar()
    q = select(func.count(), func.max(Review.id)).where(
        Review.hostname == hostname, Review.model.is_not(None), Review.outcome == ReviewResult.FAILED)
    if last_ok is not None:
        q = q.where(Review.id > last_ok)
    failures, last_id = session.execute(q).one()
    limit, interval = settings.review_model_failure_limit, settings.review_interval
    if failures < limit:
        return ModelStreak(failures=failures)
    last = session.get(Review, last_id)
    delay = min(interval * 2 ** min(failures - limit, 32), settings.review_model_backoff_max)
    started = last.created_at - timedelta(seconds=last.duration_s or 0)
    # Reviews run on the tick: half an interval early still counts, or a tick that starts a moment before the
    # exact time would be skipped and every wait would be one interval longer than meant.
    return ModelStreak(failures=failures, last_error=last.error,
                       retry_at=started + timedelta(seconds=delay - min(interval, delay) / 2))


def _rules_cover_urgent(store: Store, hostname: str, events: list[TriggerEvent], settings: Settings,
                        streak: ModelStreak) -> ReviewOutcome | None:
    """The rules reviewer's review of the critical and high events, labelled with the model's streak; None when
    there are none. The rest stay pending: the model reviews them when it answers again (they can wait, and the
    rules reviewer would only say less about them)."""
    urgent = [e for e in events if SEVERITY_RANK[e.severity] <= RULES_COVER_WHILE_MODEL_FAILS.rank]
    if not urgent:
        return None
    note = streak.note()
    return _store_report(store, hostname, urgent, rules_review(urgent, note), None, settings, note)


def _store_failed(store: Store, hostname: str, events: list[TriggerEvent], attempt: ModelAttempt) -> ReviewOutcome:
    """The model's answer stayed unusable: keep it and the error; the events stay pending for the next review."""
    with store.session() as s:
        review = Review(
            hostname=hostname, status=ReviewStatus.DEGRADED, summary=f"The review failed: {attempt.error}"[:4000],
            reviewer=attempt.backend, model=attempt.model, outcome=ReviewResult.FAILED, error=attempt.error,
            event_count=0, payload={"pending_event_ids": [e.id for e in events][:200]},
            prompt_tokens=attempt.prompt_tokens, completion_tokens=attempt.completion_tokens,
            duration_s=attempt.duration_s, raw_output=attempt.raw[:100_000],
        )
        s.add(review)
        s.flush()
    return ReviewOutcome(hostname=hostname, review_id=review.id, skipped=False, status=ReviewResult.FAILED,
                         summary=review.summary, events_covered=0, reviewer=attempt.backend)

