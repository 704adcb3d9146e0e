"""Run an approved or policy-scheduled action, at most once, on the host it concerns.

The action row is the idempotency key: a task claims it by moving it from ``ready`` to ``running`` in one
conditional UPDATE and commits before anything runs. A redelivered task (its worker died) finds ``running`` and
marks it ``interrupted`` instead of running it again: an action with side effects runs at most once.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import update

from macha.actions import guard
from macha.actions.approvals import expire_ready_if_due
from macha.actions.audit import audit
from macha.actions.catalog import ActionRefused, Catalog, default_catalog
from macha.actions.policy import Verdict, may_run
from macha.actions.runner import run_argv
from macha.actions.observe import LOCAL, HostProbe
from macha.config import Settings, parse_duration
from macha.core.states import ActionStatus, AuditEvent
from macha.store.db import Store
from macha.store.models import Action, utcnow

log = logging.getLogger(__name__)
ACTOR = "executor"


class ExecutionOutcome(BaseModel):
    action_id: int
    #: the action's status, or: there is no such action (missing), another task took it first (claimed)
    status: ActionStatus | Literal["missing", "claimed"]
    ran: bool
    exit_code: int | None = None
    reason: str = ""


def human_approved(action: Action) -> bool:
    return action.decided_by is not None and not action.decided_by.startswith("policy:")


def execute(store: Store, settings: Settings, action_id: int, *, catalog: Catalog | None = None,
            probe: HostProbe | None = LOCAL) -> ExecutionOutcome:
    catalog = catalog or default_catalog()
    level = settings.autonomy_level
    with store.session() as s:
        action = s.get(Action, action_id)
        if action is None:
            return ExecutionOutcome(action_id=action_id, status="missing", ran=False, reason="no such action")
        if action.status == ActionStatus.RUNNING:
            # Claimed before, and its worker is gone (we are the redelivery): never run it a second time.
            action.status = ActionStatus.INTERRUPTED
            action.finished_at = action.updated_at = utcnow()
            why = "its worker stopped while it ran; not run again, its outcome is unknown: check the host"
            audit(s, action, AuditEvent.INTERRUPTED, ACTOR, why, level)
            return ExecutionOutcome(action_id=action_id, status=ActionStatus.INTERRUPTED, ran=False, reason=why)
        if action.status != ActionStatus.READY:
            return ExecutionOutcome(action_id=action_id, status=action.status, ran=False,
                                    reason=f"already {action.status}")
        if action.hostname != settings.hostname:
            return ExecutionOutcome(action_id=action_id, status=action.status, ran=False,
                                    reason=f"belongs to host {action.hostname}, this is {settings.hostname}")
        # Its collector was down past the approval timeout: what was decided then is not run now.
        if expire_ready_if_due(s, action, parse_duration(settings.actions.approval_timeout), utcnow()):
            return ExecutionOutcome(action_id=action_id, status=ActionStatus.EXPIRED, ran=False,
                                    reason="not run within the approval timeout of its decision")
        # Settings, the catalog and the host may have changed since the proposal: everything again, here.
        try:
            validated = guard.validate(catalog, settings, action.hostname, action.action, action.arguments, probe)
            if validated.risk != action.risk:
                raise ActionRefused(f"the risk of {action.action} changed from {action.risk} to {validated.risk}"
                                    f"{f' ({validated.risk_reason})' if validated.risk_reason else ''}; "
                                    "propose it again")
            limited = guard.rate_limit_reason(s, validated, action.hostname, exclude_id=action.id)
            if limited:
                raise ActionRefused(limited)
            decision = may_run(level, validated.risk, approved=human_approved(action))
            if decision.verdict is not Verdict.EXECUTE:
                raise ActionRefused(decision.reason)
        except ActionRefused as exc:
            return _refuse(s, action, str(exc), level)
        now = utcnow()
        claimed = s.execute(
            update(Action)
            .where(Action.id == action_id, Action.status == ActionStatus.READY)
            .values(status=ActionStatus.RUNNING, started_at=now, updated_at=now, argv=validated.commands)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return ExecutionOutcome(action_id=action_id, status="claimed", ran=False, reason="another task claimed it")
        audit(s, action, AuditEvent.STARTED, ACTOR, decision.reason, level, argv=validated.commands)
    # Committed: from here on a crash leaves "running", which the redelivery turns into "interrupted".
    results = []
    for argv in validated.commands:
        log.info("action %s: running %s", action_id, argv)
        res = run_argv(argv, timeout=validated.entry.timeout, max_output=settings.actions.max_output_bytes,
                       head=validated.head, tail=validated.tail)
        results.append(res)
        if res.error or res.exit_code != 0:
            break
    last = results[-1]
    ok = last.error is None and last.exit_code == 0
    status = ActionStatus.SUCCEEDED if ok else ActionStatus.FAILED
    reason = "exit status 0" if ok else (last.error or f"exit status {last.exit_code}")
    duration = sum(r.duration_s for r in results)
    with store.session() as s:
        now = utcnow()
        # Conditional: a redelivery that found this action "running" while it ran (its worker looked dead) marked it
        # interrupted, and that stands; the outcome is still kept, in the audit log.
        finished = s.execute(
            update(Action)
            .where(Action.id == action_id, Action.status == ActionStatus.RUNNING)
            .values(status=status, finished_at=now, updated_at=now, exit_code=last.exit_code,
                    stdout="\n".join(r.stdout for r in results),
                    stderr="\n".join(filter(None, [r.stderr for r in results] + [last.error or ""])),
                    duration_s=duration)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        action = s.get(Action, action_id)
        if not finished:
            reason = f"{reason}; finished after it was marked {action.status}, which stands"
            status = action.status
        audit(s, action, AuditEvent.EXECUTED if ok else AuditEvent.FAILED, ACTOR, reason, level,
              exit_code=last.exit_code, duration_s=round(duration, 3))
    return ExecutionOutcome(action_id=action_id, status=status, ran=True, exit_code=last.exit_code, reason=reason)


def refuse(store: Store, action_id: int, reason: str) -> ExecutionOutcome:
    """Fail closed: a ready action that cannot be checked now (e.g. unreadable settings) does not run."""
    with store.session() as s:
        action = s.get(Action, action_id)
        if action is None or action.status != ActionStatus.READY:
            return ExecutionOutcome(action_id=action_id, status=action.status if action else "missing", ran=False,
                                    reason=reason)
        return _refuse(s, action, reason, None)


def _refuse(s, action: Action, reason: str, level: str | None) -> ExecutionOutcome:
    action.status = ActionStatus.REFUSED
    action.verdict_reason = reason
    action.updated_at = utcnow()
    audit(s, action, AuditEvent.REFUSED, ACTOR, f"at execution: {reason}", level)
    return ExecutionOutcome(action_id=action.id, status=ActionStatus.REFUSED, ran=False, reason=reason)
