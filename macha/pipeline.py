"""Plain functions behind the Celery tasks: the tasks load, call these, and dispatch what they ask for next; the
check -> context -> review chain carries a typed ChainState (JSON across the queue)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import select, update

from macha.config import Settings
from macha.context.recall import NoMemory
from macha.context.snapshot import build_context
from macha.core.followups import FollowUps, StepRun
from macha.core.severity import Severity
from macha.core.states import (ActionStatus, ChatEvent, ChatStatus, EscalationKind, EscalationStatus, LiveKind,
                               ReviewResult)
from macha.llm.factory import make_backend
from macha.monitor.checks.journal import CheckResult, run_check
from macha.monitor.collect.journal import JournalSource, host_name, journal_hostnames
from macha.review.run import ReviewOutcome, run_review
from macha.store.db import Store
from macha.store.models import TriggerEvent, utcnow

if TYPE_CHECKING:  # opened lazily: it loads Chroma and an embedding model
    from macha.context.memory.opening import Memory

log = logging.getLogger(__name__)


def journal_source(journal_file: str | None = None, journal_dir: str | None = None,
                   settings: Settings | None = None) -> JournalSource:
    if journal_file:
        return JournalSource.file(journal_file)
    if journal_dir:
        return JournalSource.directory(journal_dir)
    if settings is not None and settings.journal_directory:
        return JournalSource.directory(settings.journal_directory)
    return JournalSource()


class ChainState(BaseModel):
    """What travels along check -> context -> review (as JSON across Celery): each step fills its part."""

    hostname: str
    #: Why the chain runs: manual (an operator's check), live, schedule, tick, reconcile, metrics, services...
    reason: str = "tick"
    check: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    review: dict[str, Any] | None = None


def check_step(store: Store, settings: Settings, hostname: str, reason: str, source: JournalSource,
               host_from_journal: bool = False) -> ChainState:
    """One check of ``hostname``'s journal. ``host_from_journal``: a recorded journal file or directory is filed
    under the hosts that wrote it (its _HOSTNAME), not under the host that reads it (``hostname`` is then only
    the name for a journal without one): a recorded incident is not this machine's status."""
    if host_from_journal and source.kind != "system":
        hosts = journal_hostnames(source)
        if len(hosts) == 1:
            hostname = host_name(hosts[0])
        elif hosts:
            # Several hosts' journals in one directory: each is checked on its own entries (and cursor); the
            # chain goes on with the first, the review tick takes the others' events.
            for other in hosts[1:]:
                run_check(store, settings, hostname=host_name(other), source=replace(source, only_host=other),
                          reason=reason)
            hostname, source = host_name(hosts[0]), replace(source, only_host=hosts[0])
    result: CheckResult = run_check(store, settings, hostname=hostname, source=source, reason=reason)
    return ChainState(hostname=hostname, reason=reason, check=result.model_dump(mode="json"))


def context_step(store: Store, state: ChainState, settings: Settings) -> ChainState:
    context = build_context(store, state.hostname, settings.review_repeat_window).model_dump(mode="json")
    return state.model_copy(update={"context": context})


def review_due(state: ChainState, settings: Settings) -> str | None:
    """Why this state should be reviewed now, or None (nothing pending, or it can wait for the review tick).

    Now: an operator's manual check, a new critical group, enough new groups (reviewTriggerHighGroups high or
    reviewTriggerMediumGroups medium), the tick or the reconciler. More of an already reviewed group waits.
    """
    ctx = state.context or {}
    if not ctx.get("pending_events"):
        return None
    reason = state.reason
    if reason == "manual":
        return reason
    new = ctx.get("new_groups_by_severity", {})
    high_n = settings.review_trigger_high_groups
    medium_n = settings.review_trigger_medium_groups
    if new.get(Severity.CRITICAL):
        return "new critical group"
    high, medium = new.get(Severity.HIGH, 0), new.get(Severity.MEDIUM, 0)
    if high >= high_n or high + medium >= medium_n:
        return "new groups"
    return reason if reason in ("tick", "reconcile") else None


def review_step(store: Store, state: ChainState, settings: Settings) -> ChainState:
    """The review, when one is due: the configured model writes it (the rules reviewer when there is none or it
    is unreachable) and its proposed actions go through the policy in the same transaction."""
    due = review_due(state, settings)
    if due is None:
        outcome = ReviewOutcome(hostname=state.hostname, review_id=None, skipped=True)
    else:
        backend = make_backend(settings)
        # Only a model reads the window, so only then is semantic memory opened (it loads an embedding model).
        recall = memory_for(settings) if backend is not None else NoMemory()
        outcome = run_review(store, state.hostname, (state.context or {}).get("up_to_event_id"),
                             settings, backend, recall=recall)
    return state.model_copy(update={"review": outcome.model_dump(mode="json")})


def hosts_with_pending_events(store: Store, older_than: timedelta | None = None) -> list[str]:
    q = select(TriggerEvent.hostname).distinct().where(TriggerEvent.review_id.is_(None))
    if older_than is not None:
        q = q.where(TriggerEvent.stored_at < utcnow() - older_than)
    with store.session() as s:
        return list(s.execute(q).scalars())


def actions_to_run(state: ChainState) -> list[int]:
    """Ids of the actions a review scheduled (policy said execute): the task sends each to its host's queue."""
    return [a["action_id"] for a in (state.review or {}).get("actions", []) if a["status"] == ActionStatus.READY]


def review_follow_ups(state: ChainState, settings: Settings) -> FollowUps:
    """What a review asks next: its ready actions to their host, the review to semantic memory, its escalation to
    Layer 4 (an escalation attached to a waiting analysis that is now critical is sent again at that priority)."""
    outcome = state.review or {}
    follow = FollowUps(execute=[(action_id, state.hostname) for action_id in actions_to_run(state)])
    if outcome.get("review_id") and settings.memory.enable:
        follow.remember.append(outcome["review_id"])
    if outcome.get("escalation_id") and outcome.get("escalation_status") == EscalationStatus.REQUESTED:
        follow.escalate.append((outcome["escalation_id"], outcome.get("escalation_kind") or EscalationKind.ESCALATION))
    elif outcome.get("escalation_attached_to") and outcome.get("escalation_kind") == EscalationKind.CRITICAL:
        follow.escalate.append((outcome["escalation_attached_to"], EscalationKind.CRITICAL))
    if outcome.get("review_id"):
        follow.tell(LiveKind.REVIEW, state.hostname, review_id=outcome["review_id"], status=outcome.get("status"))
    if any(a.get("status") == ActionStatus.PENDING for a in outcome.get("actions", [])):
        follow.tell(LiveKind.APPROVAL, state.hostname)
    if outcome.get("issue_id"):
        follow.tell(LiveKind.ISSUE, state.hostname, issue_id=outcome["issue_id"])
    return follow


def escalate_step(store: Store, settings: Settings, escalation_id: int, fallback: bool = False) -> StepRun:
    """One Layer 4 analysis, and what it asks next: the actions the policy made ready (diagnostics its tools ran
    and proposals of its answer) to their host, and an escalation attached to it that a failed run requested again.
    A model server that is down leaves the escalation requested (with the error) for the reconciler to send again;
    nothing is lost."""
    from macha.llm.base import LLMError
    from macha.meta.analysis import run_escalation
    from macha.store.models import Action, Escalation

    backend = make_backend(settings)
    if backend is None:
        with store.session() as s:
            s.execute(update(Escalation)
                      .where(Escalation.id == escalation_id, Escalation.status == EscalationStatus.REQUESTED)
                      .values(error="no model is configured (llm.backend = none)", updated_at=utcnow()))
        return StepRun(result={"escalation_id": escalation_id, "status": EscalationStatus.REQUESTED,
                               "error": "no model is configured"})
    follow = FollowUps()
    try:
        outcome = run_escalation(store, settings, escalation_id, backend, recall=memory_for(settings),
                                 follow=follow, fallback=fallback)
    except LLMError as exc:
        log.warning("escalation %s waits: %s", escalation_id, exc)
        return StepRun(result={"escalation_id": escalation_id, "status": EscalationStatus.REQUESTED,
                               "error": str(exc)}, follow_ups=follow)
    with store.session() as s:
        for action in outcome.actions:
            if action["status"] == ActionStatus.READY:
                follow.execute.append((action["action_id"], s.get(Action, action["action_id"]).hostname))
        if outcome.reopened:
            follow.escalate.append((outcome.reopened, s.get(Escalation, outcome.reopened).kind))
        esc = s.get(Escalation, escalation_id)
        if esc is not None:
            follow.tell(LiveKind.ANALYSIS, esc.hostname, escalation_id=escalation_id, status=outcome.status)
        if any(a.get("status") == ActionStatus.PENDING for a in outcome.actions):
            follow.tell(LiveKind.APPROVAL, esc.hostname if esc is not None else "")
    return StepRun(result=outcome.model_dump(mode="json"), follow_ups=follow)


def chat_step(store: Store, settings: Settings, message_id: int) -> StepRun:
    """Answer one chat question, streaming to its asker; a model server that is down is the answer's error. What
    it asks next: the diagnostics its tools made ready, to their host."""
    from macha.meta.chat import answer, redis_publisher
    from macha.store.models import ChatMessage

    publish = redis_publisher(settings.effective_broker_url, message_id)
    backend = make_backend(settings)
    if backend is None:
        error = "no model is configured (llm.backend = none): chat needs the meta model"
        with store.session() as s:
            row = s.get(ChatMessage, message_id)
            if row is not None and row.status == ChatStatus.PENDING:
                row.status, row.error = ChatStatus.FAILED, error
        publish(ChatEvent.ERROR, error)
        return StepRun(result={"message_id": message_id, "status": ChatStatus.FAILED, "error": error})
    # answer() says a failure in its result (and to the asker): what the tools made ready before it is sent too.
    follow = FollowUps()
    result = answer(store, settings, message_id, backend, publish=publish, recall=memory_for(settings),
                    follow=follow)
    return StepRun(result=result.model_dump(mode="json"), follow_ups=follow)


def execute_step(store: Store, settings: Settings, action_id: int, hostname: str) -> StepRun:
    """Run one ready action (the executor re-checks the policy and runs it at most once) and say how it went."""
    from macha.actions import executor

    outcome = executor.execute(store, settings, action_id)
    return StepRun(result=outcome.model_dump(mode="json"),
                   follow_ups=FollowUps().tell(LiveKind.ACTION, hostname, action_id=action_id, status=outcome.status))


def expire_step(store: Store, settings: Settings | None = None) -> StepRun:
    """Approvals past approvalTimeout expire, and (with settings) ready actions a down collector did not run
    within it; the pages showing them are told."""
    from macha.actions.approvals import expire_due
    from macha.config import parse_duration

    ready_for = parse_duration(settings.actions.approval_timeout) if settings is not None else None
    expired = expire_due(store, ready_for)
    follow = FollowUps()
    if expired:
        log.info("expired unapproved actions: %s", expired)
        follow.tell(LiveKind.APPROVAL, "*")  # every host's approval lists
    return StepRun(result={"expired": expired}, follow_ups=follow)


def request_background(store: Store, settings: Settings, hostname: str) -> tuple[int, str]:
    """A background analysis of the host; one still waiting (no gpu worker for a while) is not doubled."""
    from macha.review.escalation import request

    with store.session() as s:
        esc = request(s, settings, hostname, "periodic background analysis: look for slow trends, recurring "
                      "problems and risks in the last 24 hours", kind=EscalationKind.BACKGROUND,
                      key=f"background:{hostname}"[:64])
        return esc.id, esc.status


def background_step(store: Store, settings: Settings, hostname: str) -> StepRun:
    """A periodic look at a host by the meta model: requested (unless one is waiting already), then sent behind
    every other kind of work on the gpu queue."""
    esc_id, status = request_background(store, settings, hostname)
    follow = FollowUps(escalate=[(esc_id, EscalationKind.BACKGROUND)] if status == EscalationStatus.REQUESTED else [])
    return StepRun(result={"hostname": hostname, "escalation_id": esc_id, "status": status}, follow_ups=follow)


def review_tick_step(store: Store) -> StepRun:
    """Every reviewInterval: the hosts that have unreviewed events go through context -> review."""
    hosts = hosts_with_pending_events(store)
    return StepRun(result={"hosts": hosts}, follow_ups=FollowUps(review_hosts=hosts))


def reconcile_step(store: Store, settings: Settings) -> StepRun:
    """The database is the truth: what a lost message left undone is sent again. Events no review covered after
    reconcile_after seconds get a review; ready actions whose task was lost run (execution is idempotent); reviews
    not yet in semantic memory are written; escalations are sent again, or to the review model's fallback. Issues
    quiet and healthy for issues.resolveAfter are resolved here too (every minute)."""
    from macha.actions.approvals import stale_ready

    stale = hosts_with_pending_events(store, timedelta(seconds=settings.reconcile_after))
    if stale:
        log.warning("re-enqueuing reviews for events left unreviewed: %s", ", ".join(stale))
    ready = stale_ready(store, settings.actions.redeliver_after)
    for action_id, hostname in ready:
        log.warning("re-sending action %s to host %s: it is ready but has not run", action_id, hostname)
    forgotten = reviews_to_remember(store, settings, timedelta(seconds=settings.reconcile_after))
    retry, fallback = escalations_to_resend(store, settings)
    for esc_id, _ in fallback:
        log.warning("escalation %s: no gpu worker answered in %s s; the review model answers instead", esc_id,
                    settings.meta.fallback_after)
    resolved = resolve_issues_step(store, settings)
    return StepRun(result={"reviews": stale, "actions": [a for a, _ in ready], "remember": forgotten,
                           "escalations": [e for e, _ in retry + fallback], "issues_resolved": resolved},
                   follow_ups=FollowUps(execute=ready, remember=forgotten, escalate=retry, fallback=fallback,
                                        review_hosts=stale))


def escalations_to_resend(store: Store, settings: Settings) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(retry, fallback): requested escalations whose run failed on the model server a while ago, or whose
    message may be lost (ten minutes untouched for a critical one, an hour for others), and runs that died with
    their worker; and, with meta.reviewModelFallback, those no gpu worker took within meta.fallbackAfter. Each one
    sent is touched, so it is not sent again at once (a duplicate message is harmless: the claim is atomic)."""
    from macha.review.escalation import stale_after
    from macha.store.models import Escalation

    now = utcnow()
    with store.session() as s:
        dead = s.execute(select(Escalation).where(
            Escalation.status == EscalationStatus.RUNNING,
            Escalation.started_at < now - stale_after(settings))).scalars().all()
        for e in dead:
            e.status, e.error = EscalationStatus.REQUESTED, "its run stopped without an answer (the worker died?)"
        rows = s.execute(select(Escalation).where(Escalation.status == EscalationStatus.REQUESTED)).scalars().all()
        retry, fallback = [], []
        for e in rows:
            idle = now - e.updated_at
            lost_after = timedelta(minutes=10) if e.kind == EscalationKind.CRITICAL else timedelta(hours=1)
            if settings.meta.review_model_fallback and e.kind != EscalationKind.BACKGROUND and \
                    now - e.created_at >= timedelta(seconds=settings.meta.fallback_after) and \
                    idle >= timedelta(seconds=settings.meta.fallback_after):
                fallback.append((e.id, e.kind))
            elif (e.error and idle >= timedelta(minutes=5)) or idle >= lost_after:
                retry.append((e.id, e.kind))
            else:
                continue
            e.updated_at = now
    return retry, fallback


def retention_step(store: Store, settings: Settings) -> dict:
    """Rows older than timescaledb.retentionDays go, on every backend; pending events never do."""
    from macha.store.timeseries import apply_retention

    report = apply_retention(store, settings.timescaledb.retention_days)
    if report.total:
        log.info("retention: deleted %s (older than %s)", report.deleted, report.cutoff.isoformat()[:19])
    return {"cutoff": report.cutoff.isoformat(), "deleted": report.deleted, "skipped": report.skipped}


def resolve_issues_step(store: Store, settings: Settings) -> list[int]:
    """Issues quiet and healthy for issues.resolveAfter are resolved (macha.review.issues.resolve_quiet)."""
    from macha.review.issues import resolve_quiet

    return resolve_quiet(store, settings)


def memory_for(settings: Settings) -> Memory | NoMemory:
    """This process's semantic memory, or NoMemory saying why (switched off, or it cannot open: said, not
    raised)."""
    if not settings.memory.enable:
        return NoMemory("semantic memory is off (memory.enable = false)")
    from macha.context.memory.errors import MemoryUnavailable
    from macha.context.memory.opening import open_memory

    m = settings.memory
    try:
        return open_memory(settings.state_dir, m.chroma_url, m.embedding, m.embedding_model, settings.ollama_url)
    except MemoryUnavailable as exc:
        log.warning("semantic memory unavailable: %s", exc)
        return NoMemory(f"semantic memory unavailable: {exc}")


def remember_step(store: Store, settings: Settings, review_id: int) -> dict:
    """Write a stored review's issues and decision to semantic memory, once (ids make a repeat harmless)."""
    from macha.store.models import Review

    with store.session() as s:
        review = s.get(Review, review_id)
        if review is None or review.outcome != ReviewResult.OK or review.remembered_at is not None:
            return {"review_id": review_id, "remembered": False}
        data = dict(hostname=review.hostname, created_at=review.created_at, status=review.status,
                    summary=review.summary, issues=(review.payload or {}).get("issues", []),
                    actions=(review.payload or {}).get("proposed_actions", []), issue_id=review.issue_id)
    memory = memory_for(settings)
    if isinstance(memory, NoMemory):
        return {"review_id": review_id, "remembered": False, "note": memory.absent}
    written = memory.remember_review(review_id, **data)
    with store.session() as s:
        s.execute(update(Review).where(Review.id == review_id).values(remembered_at=utcnow()))
    return {"review_id": review_id, "remembered": True, "records": written}


def reviews_to_remember(store: Store, settings: Settings, older_than: timedelta, limit: int = 50) -> list[int]:
    """Reviews whose memory task was lost (or failed): the reconciler sends them again."""
    from macha.store.models import Review

    if not settings.memory.enable:
        return []
    with store.session() as s:
        return list(s.execute(
            select(Review.id).where(Review.outcome == ReviewResult.OK, Review.remembered_at.is_(None),
                                    Review.created_at < utcnow() - older_than).order_by(Review.id).limit(limit)
        ).scalars())


def index_config_step(settings: Settings, hostname: str) -> dict:
    memory = memory_for(settings)
    if isinstance(memory, NoMemory):
        return {"hostname": hostname, "indexed": False, "note": memory.absent}
    report = memory.index_config_files(settings.memory.config_paths, hostname)
    for n in report.notes:
        log.info("config index: %s", n)
    return {"hostname": hostname, "indexed": True, "files": report.files, "chunks": report.chunks,
            "upserted": report.upserted, "removed": report.removed, "notes": report.notes[:20]}
