"""Plain functions behind the Celery tasks: the tasks only load settings, call these and pass small dicts on."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from macha.check import CheckResult, run_check
from macha.collect.journal import JournalSource
from macha.config import Settings
from macha.context.window import build_context
from macha.llm.backend import make_backend
from macha.review import ReviewOutcome, run_review
from macha.store.db import Store
from macha.store.models import TriggerEvent, utcnow

log = logging.getLogger(__name__)


def journal_source(journal_file: str | None = None, journal_dir: str | None = None) -> JournalSource:
    if journal_file:
        return JournalSource.file(journal_file)
    if journal_dir:
        return JournalSource.directory(journal_dir)
    return JournalSource()


def check_step(store: Store, settings: Settings, hostname: str, reason: str, source: JournalSource) -> dict:
    result: CheckResult = run_check(store, settings, hostname=hostname, source=source, reason=reason)
    return {"check": result.to_dict(), "hostname": hostname, "reason": reason}


def context_step(store: Store, state: dict) -> dict:
    return {**state, "context": build_context(store, state["hostname"]).to_dict()}


#: Check reasons that review at once; a scheduled check leaves non-critical events to the review tick.
REVIEW_NOW = ("manual", "live", "tick", "reconcile")


def review_due(state: dict) -> str | None:
    """Why this state should be reviewed now, or None (nothing pending, or it can wait for the tick)."""
    ctx = state.get("context") or {}
    if not ctx.get("pending_events"):
        return None
    if ctx.get("pending_by_severity", {}).get("critical"):
        return "critical event"
    reason = state.get("reason", "tick")
    return reason if reason in REVIEW_NOW else None


def review_step(store: Store, state: dict, settings: Settings | None = None) -> dict:
    """The review, when one is due; with ``settings`` the configured model writes it (the rules reviewer when
    there is none or it is unreachable) and its proposed actions go through the policy in the same transaction."""
    due = review_due(state)
    if due is None:
        outcome = ReviewOutcome(hostname=state["hostname"], review_id=None, skipped=True)
    else:
        backend = make_backend(settings) if settings is not None else None
        outcome = run_review(store, state["hostname"], (state.get("context") or {}).get("up_to_event_id"),
                             settings, backend)
    return {**state, "review": outcome.to_dict()}


def hosts_with_pending_events(store: Store, older_than: timedelta | None = None) -> list[str]:
    q = select(TriggerEvent.hostname).distinct().where(TriggerEvent.review_id.is_(None))
    if older_than is not None:
        q = q.where(TriggerEvent.stored_at < utcnow() - older_than)
    with store.session() as s:
        return list(s.execute(q).scalars())


def actions_to_run(state: dict) -> list[int]:
    """Ids of the actions a review scheduled (policy said execute): the task sends each to its host's queue."""
    return [a["action_id"] for a in (state.get("review") or {}).get("actions", []) if a["status"] == "ready"]


def escalation_received(store: Store, escalation_id: int) -> dict:
    """Until Layer 4 exists, an escalation stays ``requested`` in the store, where the meta model will find it."""
    from macha.store.models import Escalation

    with store.session() as s:
        esc = s.get(Escalation, escalation_id)
        if esc is None:
            return {"escalation_id": escalation_id, "status": "missing"}
        log.info("escalation %s for %s stored: %s (the meta model is not built yet)", esc.id, esc.hostname,
                 esc.reason)
        return {"escalation_id": esc.id, "status": esc.status}
