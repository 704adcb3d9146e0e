"""Plain functions behind the Celery tasks: the tasks only load settings, call these and pass small dicts on."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from macha.check import CheckResult, run_check
from macha.collect.journal import JournalSource
from macha.config import Settings
from macha.context.window import build_context
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
    return {"check": result.to_dict(), "hostname": hostname}


def context_step(store: Store, state: dict) -> dict:
    return {**state, "context": build_context(store, state["hostname"]).to_dict()}


def review_step(store: Store, state: dict, settings: Settings | None = None) -> dict:
    """The review; with ``settings``, its proposed actions go through the policy in the same transaction."""
    ctx = state.get("context") or {}
    if not ctx.get("pending_events"):
        outcome = ReviewOutcome(hostname=state["hostname"], review_id=None, skipped=True)
    else:
        outcome = run_review(store, state["hostname"], ctx.get("up_to_event_id"), settings)
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
