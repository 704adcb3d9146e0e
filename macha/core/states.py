"""The states of Macha's state machines, one StrEnum each.

Each is stored in a string column (store/models.py) and read by several layers (actions, review, meta, the
pipeline, the CLI), so the names live here, below all of them. A member is a ``str``: the database, JSON and
pydantic see the same strings as before, and ``Action.status == ActionStatus.PENDING`` is a plain comparison.
"""

from __future__ import annotations

from enum import StrEnum


class ActionStatus(StrEnum):
    """actions.status: from proposal to outcome."""

    REFUSED = "refused"
    RECORDED = "recorded"  # observe: written down, never run
    PENDING = "pending"  # awaits approval
    READY = "ready"  # to run
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its worker died; never re-run
    REJECTED = "rejected"
    EXPIRED = "expired"


class AuditEvent(StrEnum):
    """action_audit.event: every decision about an action."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RECORDED = "recorded"
    MERGED = "merged"
    REFUSED = "refused"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    STARTED = "started"
    EXECUTED = "executed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ESCALATED = "escalated"


class EscalationStatus(StrEnum):
    """escalations.status: a request for the meta model."""

    REQUESTED = "requested"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ATTACHED = "attached"  # to another analysis of the same issue


class EscalationKind(StrEnum):
    """escalations.kind: what orders the work on the gpu queue, the most urgent first."""

    CRITICAL = "critical"
    ESCALATION = "escalation"
    BACKGROUND = "background"


class ChatStatus(StrEnum):
    """chat_messages.status of a user message."""

    PENDING = "pending"  # no worker has taken it yet
    ANSWERING = "answering"  # a worker took it and is writing the answer
    ANSWERED = "answered"
    FAILED = "failed"


class ChatEvent(StrEnum):
    """The type of an entry in a chat answer's Redis stream (macha:chat:<message id>), as the asker reads it."""

    TOKEN = "token"  # a piece of the answer
    TOOL = "tool"  # a tool call, as it happens
    DONE = "done"  # the answer is stored (the text is its message id)
    ERROR = "error"  # the answer failed (the text says why)


class ReviewStatus(StrEnum):
    """reviews.status: how the host looks to the reviewer."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"


class ReviewResult(StrEnum):
    """reviews.outcome: whether the review itself worked (not ReviewOutcome, what a review run returns)."""

    OK = "ok"
    FAILED = "failed"


class IssueStatus(StrEnum):
    """issues.status: one problem of one host, from its first event to its end."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # an operator has seen it; it stays until it resolves or is closed
    RESOLVED = "resolved"  # its events stopped and reviews said healthy for issues.resolveAfter, or closed


#: The states an issue is still going on in: listed by default, linked to new events, resolved by the sweep.
ACTIVE_ISSUE = (IssueStatus.OPEN, IssueStatus.ACKNOWLEDGED)


class IssueEvent(StrEnum):
    """issue_audit.event: every change of an issue's state, and who made it."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"  # by the sweep: quiet and healthy for issues.resolveAfter
    CLOSED = "closed"  # by an operator, with a reason
    REOPENED = "reopened"  # it recurred, or an operator reopened it


class RelationshipKind(StrEnum):
    """How one host relates to another (macha-systems link A B --kind KIND): A KIND B."""

    DEPENDS_ON = "depends-on"
    RUNS_ON = "runs-on"
    BACKS_UP_TO = "backs-up-to"
    REPLICATES_TO = "replicates-to"


class HealthColour(StrEnum):
    """A host's status at a glance, from its health score (or grey: not heard from lately, or never checked)."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    GREY = "grey"


class LiveKind(StrEnum):
    """What an entry of the live feed (macha/broker/live.py) is about: what the pages and followers refresh."""

    EVENTS = "events"  # new log and trigger events of a host
    REVIEW = "review"
    ANALYSIS = "analysis"
    APPROVAL = "approval"  # an action queued, approved, rejected or expired
    ACTION = "action"  # an action's outcome
    METRICS = "metrics"  # a sample of a host's metrics
    ISSUE = "issue"  # an issue opened, acknowledged, resolved or reopened
