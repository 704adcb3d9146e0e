"""The MCP write tools' one path: a proposal through the catalog and the policy (macha.actions.proposals), the same
intake the review model's proposals take, with the MCP client as the proposer (``mcp:NAME``).

With ``mcpServer.respectAutonomy`` (the default) the client is judged exactly like the review model: observe
records, suggest queues (the result is the approval id), auto-safe and auto-full run what the policy table lets
them. Without it the client counts as an operator at the console: the catalog, protected units, preconditions and
rate limits still apply, but nothing waits for an approval, and the audit log says so. No path here approves or
rejects anything: approvals are for people (macha-approve).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from macha.actions.observe import LOCAL, HostProbe
from macha.actions.proposals import propose
from macha.config import Settings
from macha.core.followups import FollowUps
from macha.core.states import ActionStatus, LiveKind
from macha.store.db import Store

#: Sends what the proposal made ready to the host's worker (workers.dispatch in the server process).
Dispatch = Callable[[FollowUps], str]


class WriteOutcome(BaseModel):
    action_id: int
    action: str
    host: str
    status: ActionStatus
    reason: str
    risk: str | None = None
    #: Set when the action waits for an operator: the id to give `macha-approve approve`.
    approval_id: int | None = None
    merged: bool = False
    escalated: bool = False
    autonomy_level: str
    judged_as: str
    sent: str | None = None


def submit(store: Store, settings: Settings, client: str, host: str, action: str, arguments: dict[str, Any],
           reason: str, *, dispatch: Dispatch | None, probe: HostProbe | None = LOCAL) -> WriteOutcome:
    """Propose ``action`` on ``host`` for MCP client ``client``, and send it to the host's worker if it may run."""
    proposer = f"mcp:{client}"[:64]
    operator = not settings.mcp_server.respect_autonomy
    with store.session() as s:
        result = propose(s, settings, host, {"action": action, "arguments": arguments, "reason": reason},
                         proposer=proposer, probe=probe, as_operator=operator)
    outcome = WriteOutcome(
        action_id=result.action_id, action=result.action, host=host, status=result.status, reason=result.reason,
        risk=result.risk, merged=result.merged, escalated=result.escalate,
        approval_id=result.action_id if result.status == ActionStatus.PENDING else None,
        autonomy_level=settings.autonomy_level,
        judged_as="an operator (mcpServer.respectAutonomy = false)" if operator else "the review model's proposals",
    )
    if dispatch is not None and result.status in (ActionStatus.READY, ActionStatus.PENDING):
        follow = FollowUps().tell(LiveKind.APPROVAL, host, action_id=result.action_id)
        if result.status == ActionStatus.READY:
            follow.execute.append((result.action_id, host))
        sent = dispatch(follow)
        if result.status == ActionStatus.READY:
            outcome.sent = sent
    return outcome
