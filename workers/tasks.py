"""Thin Celery tasks: load by id or name, call a plain function in macha/, dispatch what it asks for next
(workers/dispatch.py), return a small dict."""

from __future__ import annotations

import logging

from macha import pipeline
from macha.pipeline import ChainState
from macha.actions import executor
from macha.broker.client import SingleFlight
from macha.config import load_settings
from macha.core.errors import MachaError
from macha.monitor.checks import fleet
from macha.monitor.checks.registry import HOST_CHECKS, HostCheck
from macha.store.db import get_store
from workers.app import app, check_collector_imports, check_pipeline, settings
from workers.dispatch import dispatch

log = logging.getLogger(__name__)
REVIEW_RETRY_S = 2


def _store():
    return get_store(settings.effective_database_url)


@app.task(name="macha.start_check")
def start_check(hostname: str, reason: str = "schedule") -> str:
    return check_pipeline(app, hostname, reason).apply_async().id


@app.task(name="macha.check_host", bind=True, max_retries=None)
def check_host(self, hostname: str, reason: str = "schedule", journal_file: str | None = None,
               journal_dir: str | None = None, host_from_journal: bool = False) -> dict:
    source = pipeline.journal_source(journal_file, journal_dir, settings)
    # One reader per journal source: two readers of one cursor would each read the same entries again.
    with SingleFlight(settings.effective_broker_url, f"check:{hostname}:{source.key}", settings.lock_ttl) as lock:
        if not lock.acquired:
            raise self.retry(countdown=2)
        return pipeline.check_step(_store(), settings, hostname, reason, source,
                                   host_from_journal).model_dump(mode="json")


def _host_check_task(check: HostCheck):
    """The task of one registered host check (runs on host.<hostname>): load, call, dispatch. What it raised is
    reviewed as the review policy says (at once when it is a new critical or enough new groups, else at the tick)."""

    def run(hostname: str) -> dict:
        outcome = check.run(_store(), settings, hostname)
        dispatch(app, outcome.follow_ups)
        return outcome.result

    run.__name__ = run.__qualname__ = check.task.split(".", 1)[1]
    run.__doc__ = f"Runs on host.<hostname>: {check.description}."
    return app.task(name=check.task)(run)


#: One task per registered host check (macha.collect_metrics, macha.check_services, macha.classify, ...).
HOST_CHECK_TASKS = {check.name: _host_check_task(check) for check in HOST_CHECKS}


def _summarize_pending(state: dict) -> dict:
    """Layer 2's part of the chain: the summary of pending events the review decides on (the window itself is
    built by the review, from the store)."""
    return pipeline.context_step(_store(), ChainState.model_validate(state), settings).model_dump(mode="json")


summarize_pending = app.task(name="macha.summarize_pending")(_summarize_pending)
#: The task's former name ("update_context" updated nothing): messages queued by an older install still run.
update_context = app.task(name="macha.update_context")(_summarize_pending)


@app.task(name="macha.review", bind=True, max_retries=None)
def review(self, state: dict) -> dict:
    chained = ChainState.model_validate(state)
    with SingleFlight(settings.effective_broker_url, f"review:{chained.hostname}", settings.lock_ttl) as lock:
        if not lock.acquired:
            # Another review of this host is running (a model call may take minutes). Wait for it, then this one
            # finds only what it did not cover; past the task time limit, leave the events to the next tick.
            if (self.request.retries + 1) * REVIEW_RETRY_S >= settings.task_time_limit:
                busy = {"hostname": chained.hostname, "skipped": True, "busy": True}
                return chained.model_copy(update={"review": busy}).model_dump(mode="json")
            raise self.retry(countdown=REVIEW_RETRY_S)
        chained = pipeline.review_step(_store(), chained, settings)
    dispatch(app, pipeline.review_follow_ups(chained, settings))
    return chained.model_dump(mode="json")


@app.task(name="macha.escalate")
def escalate(escalation_id: int, fallback: bool = False) -> dict:
    """Layer 4 (queue gpu, ordered by kind): the meta model analyses the escalation with its read-only tools;
    actions the policy made ready go to their host. With ``fallback`` the review model answers, labelled."""
    step = pipeline.escalate_step(_store(), settings, escalation_id, fallback)
    dispatch(app, step.follow_ups)
    return step.result


@app.task(name="macha.background_analysis")
def background_analysis(hostname: str) -> dict:
    """A periodic look at a host by the meta model, behind every other kind of work on the gpu queue."""
    step = pipeline.background_step(_store(), settings, hostname)
    dispatch(app, step.follow_ups)
    return step.result


@app.task(name="macha.chat_turn")
def chat_turn(message_id: int) -> dict:
    """Answer one chat question (queue gpu, after critical escalations), streaming tokens to the asker."""
    step = pipeline.chat_step(_store(), settings, message_id)
    dispatch(app, step.follow_ups)
    return step.result


@app.task(name="macha.review_tick")
def review_tick() -> list[str]:
    """Every reviewInterval: review hosts that have unreviewed events; nothing new, nothing sent."""
    step = pipeline.review_tick_step(_store())
    dispatch(app, step.follow_ups)
    return step.result["hosts"]


@app.task(name="macha.reconcile")
def reconcile() -> dict:
    """What a lost message left undone is sent again (pipeline.reconcile_step says what)."""
    step = pipeline.reconcile_step(_store(), settings)
    dispatch(app, step.follow_ups)
    return step.result


@app.task(name="macha.execute_action")
def execute_action(action_id: int, hostname: str) -> dict:
    """Runs on host.<hostname>. The executor re-checks the policy and runs the action at most once."""
    # Read afresh: an operator who lowered autonomyLevel in the config file since the proposal is obeyed now.
    try:
        current = load_settings()
    except MachaError as exc:
        return executor.refuse(_store(), action_id, f"settings cannot be read: {exc}").model_dump(mode="json")
    step = pipeline.execute_step(_store(), current, action_id, hostname)
    dispatch(app, step.follow_ups)
    return step.result


@app.task(name="macha.heartbeat")
def heartbeat(hostname: str) -> dict:
    """Runs on host.<hostname> every triggerInterval: the collector's beat in the fleet registry."""
    if settings.role == "collector":
        # After the checks and actions it ran: still none of what a collector never loads.
        check_collector_imports("after its tasks", quiet=True)
    return fleet.beat(_store(), hostname).result


@app.task(name="macha.fleet_watch")
def fleet_watch() -> dict:
    """The brain, every triggerInterval: collectors silent for fleet.silentAfter raise "host silent"; back, cleared."""
    step = fleet.watch(_store(), settings)
    dispatch(app, step.follow_ups)
    return step.result


@app.task(name="macha.expire_approvals")
def expire_approvals() -> list[int]:
    step = pipeline.expire_step(_store(), settings)
    dispatch(app, step.follow_ups)
    return step.result["expired"]



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
