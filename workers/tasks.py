"""Thin Celery tasks: load by id or name, call a plain function in macha/, return a small dict."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import chain

from macha import pipeline
from macha.actions import approvals, executor
from macha.broker.client import SingleFlight
from macha.config import load_settings
from macha.core.errors import MachaError
from macha.monitor.checks.metrics import run_metrics
from macha.monitor.checks.services import run_services
from macha.store.db import get_store
from workers.app import app, check_pipeline, send_escalate, send_execute, settings

log = logging.getLogger(__name__)
REVIEW_RETRY_S = 2


def _store():
    return get_store(settings.effective_database_url)


@app.task(name="macha.start_check")
def start_check(hostname: str, reason: str = "schedule") -> str:
    return check_pipeline(app, hostname, reason).apply_async().id


@app.task(name="macha.check_host", bind=True, max_retries=None)
def check_host(self, hostname: str, reason: str = "schedule", journal_file: str | None = None,
               journal_dir: str | None = None) -> dict:
    source = pipeline.journal_source(journal_file, journal_dir, settings)
    # One reader per journal source: two readers of one cursor would each read the same entries again.
    with SingleFlight(settings.effective_broker_url, f"check:{hostname}:{source.key}", settings.lock_ttl) as lock:
        if not lock.acquired:
            raise self.retry(countdown=2)
        return pipeline.check_step(_store(), settings, hostname, reason, source)


@app.task(name="macha.collect_metrics")
def collect_metrics(hostname: str) -> dict:
    """Runs on host.<hostname>: samples, thresholds, trigger events; a raised condition is reviewed as the
    review policy says (at once when it is a new critical or enough new groups, else at the tick)."""
    result = run_metrics(_store(), settings, hostname)
    if result.raised:
        _enqueue_reviews([hostname], reason="metrics")
    return result.to_dict()


@app.task(name="macha.check_services")
def check_services(hostname: str) -> dict:
    """Runs on host.<hostname>: critical units and failed units; transitions become events."""
    result = run_services(_store(), settings, hostname)
    for note in result.notes:
        log.warning("services: %s", note)
    if result.failed:
        _enqueue_reviews([hostname], reason="services")
    return result.to_dict()


@app.task(name="macha.update_context")
def update_context(state: dict) -> dict:
    return pipeline.context_step(_store(), state, settings)


@app.task(name="macha.review", bind=True, max_retries=None)
def review(self, state: dict) -> dict:
    with SingleFlight(settings.effective_broker_url, f"review:{state['hostname']}", settings.lock_ttl) as lock:
        if not lock.acquired:
            # Another review of this host is running (a model call may take minutes). Wait for it, then this one
            # finds only what it did not cover; past the task time limit, leave the events to the next tick.
            if (self.request.retries + 1) * REVIEW_RETRY_S >= settings.task_time_limit:
                return {**state, "review": {"hostname": state["hostname"], "skipped": True, "busy": True}}
            raise self.retry(countdown=REVIEW_RETRY_S)
        state = pipeline.review_step(_store(), state, settings)
    for action_id in pipeline.actions_to_run(state):
        send_execute(app, action_id, state["hostname"])
    review_id = (state.get("review") or {}).get("review_id")
    if review_id and settings.memory.enable:
        remember_review.delay(review_id)
    outcome = state.get("review") or {}
    if outcome.get("escalation_id") and outcome.get("escalation_status") == "requested":
        send_escalate(app, outcome["escalation_id"], outcome.get("escalation_kind") or "escalation")
    elif outcome.get("escalation_attached_to") and outcome.get("escalation_kind") == "critical":
        # Attached to a waiting analysis that is now critical: send it again at the critical priority.
        send_escalate(app, outcome["escalation_attached_to"], "critical")
    return state


@app.task(name="macha.escalate")
def escalate(escalation_id: int, fallback: bool = False) -> dict:
    """Layer 4 (queue gpu, ordered by kind): the meta model analyses the escalation with its read-only tools;
    actions the policy made ready go to their host. With ``fallback`` the review model answers, labelled."""
    return pipeline.escalate_step(_store(), settings, escalation_id, fallback,
                                  schedule=lambda action_id, host: send_execute(app, action_id, host),
                                  resend=lambda esc_id, kind: send_escalate(app, esc_id, kind))


@app.task(name="macha.background_analysis")
def background_analysis(hostname: str) -> dict:
    """A periodic look at a host by the meta model, behind every other kind of work on the gpu queue."""
    esc_id, status = pipeline.request_background(_store(), settings, hostname)
    if status == "requested":
        send_escalate(app, esc_id, "background")
    return {"hostname": hostname, "escalation_id": esc_id, "status": status}


@app.task(name="macha.chat_turn")
def chat_turn(message_id: int) -> dict:
    """Answer one chat question (queue gpu, after critical escalations), streaming tokens to the asker."""
    return pipeline.chat_step(_store(), settings, message_id,
                              schedule=lambda action_id, host: send_execute(app, action_id, host))


def _enqueue_reviews(hostnames: list[str], reason: str = "tick") -> list[str]:
    """context -> review for each host; the review decides from the context whether it is due."""
    for hostname in hostnames:
        chain(update_context.s({"hostname": hostname, "reason": reason}), review.s()).apply_async()
    return hostnames


@app.task(name="macha.review_tick")
def review_tick() -> list[str]:
    """Every reviewInterval: review hosts that have unreviewed events; nothing new, nothing sent."""
    return _enqueue_reviews(pipeline.hosts_with_pending_events(_store()))


@app.task(name="macha.reconcile")
def reconcile() -> dict:
    """The database is the truth: events no review covered after reconcile_after seconds get a review again, and
    ready actions whose task was lost are sent again (execution is idempotent), and so are reviews not yet written
    to semantic memory."""
    stale = pipeline.hosts_with_pending_events(_store(), timedelta(seconds=settings.reconcile_after))
    if stale:
        log.warning("re-enqueuing reviews for events left unreviewed: %s", ", ".join(stale))
    ready = approvals.stale_ready(_store(), settings.actions.redeliver_after)
    for action_id, hostname in ready:
        log.warning("re-sending action %s to host %s: it is ready but has not run", action_id, hostname)
        send_execute(app, action_id, hostname)
    forgotten = pipeline.reviews_to_remember(_store(), settings, timedelta(seconds=settings.reconcile_after))
    for review_id in forgotten:
        remember_review.delay(review_id)
    retry, fallback = pipeline.escalations_to_resend(_store(), settings)
    for esc_id, kind in retry:
        send_escalate(app, esc_id, kind)
    for esc_id, kind in fallback:
        log.warning("escalation %s: no gpu worker answered in %s s; the review model answers instead", esc_id,
                    settings.meta.fallback_after)
        send_escalate(app, esc_id, kind, fallback=True)
    return {"reviews": _enqueue_reviews(stale), "actions": [a for a, _ in ready], "remember": forgotten,
            "escalations": [e for e, _ in retry + fallback]}


@app.task(name="macha.execute_action")
def execute_action(action_id: int, hostname: str) -> dict:
    """Runs on host.<hostname>. The executor re-checks the policy and runs the action at most once."""
    # Read afresh: an operator who lowered autonomyLevel in the config file since the proposal is obeyed now.
    try:
        current = load_settings()
    except MachaError as exc:
        return executor.refuse(_store(), action_id, f"settings cannot be read: {exc}").to_dict()
    return executor.execute(_store(), current, action_id).to_dict()


@app.task(name="macha.expire_approvals")
def expire_approvals() -> list[int]:
    expired = approvals.expire_due(_store())
    if expired:
        log.info("expired unapproved actions: %s", expired)
    return expired



@app.task(name="macha.import_sar")
def import_sar(hostname: str) -> dict:
    """Runs on host.<hostname>: yesterday's and today's SAR files into system_metrics."""
    return pipeline.sar_step(_store(), settings, hostname)


@app.task(name="macha.retention")
def retention() -> dict:
    return pipeline.retention_step(_store(), settings)


@app.task(name="macha.remember_review")
def remember_review(review_id: int) -> dict:
    """A stored review's issues and decision into semantic memory (queue review)."""
    return pipeline.remember_step(_store(), settings, review_id)


@app.task(name="macha.index_config")
def index_config(hostname: str) -> dict:
    """Runs on host.<hostname>: its NixOS configuration files into semantic memory (config_files)."""
    return pipeline.index_config_step(settings, hostname)


@app.task(name="macha.classify")
def classify(hostname: str) -> dict:
    """Error lines no pattern knows, sorted by the small trigger model; what it raises is reviewed as usual."""
    # One run per host at a time: runs overlapping would ask the model twice and race its budget.
    with SingleFlight(settings.effective_broker_url, f"classify:{hostname}", settings.lock_ttl) as lock:
        if not lock.acquired:
            return {"hostname": hostname, "skipped": "a classifier run of this host is under way"}
        result = pipeline.classify_step(_store(), settings, hostname)
    if result.get("raised"):
        _enqueue_reviews([hostname], reason="classifier")
    return result
