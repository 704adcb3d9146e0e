"""The schema: the seed's four time-series tables plus hosts, journal cursors and reviews.

Every time column is timezone-aware UTC on every backend (SQLite stores it naive; UTCDateTime restores the zone).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from macha.core.states import ChatStatus, EscalationKind, EscalationStatus, IssueStatus, ReviewResult


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), unique=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    # The facts the fleet registry lists (macha-systems), recorded when the host checks its own journal; the rest
    # (uptime, CPUs, memory) stays in metadata. role is the operator's word for the host, NULL until set.
    role: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(255))
    kernel: Mapped[str | None] = mapped_column(String(255))
    nixos_generation: Mapped[str | None] = mapped_column(String(64))
    macha_version: Mapped[str | None] = mapped_column(String(64))
    facts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The fleet registry: the Macha roles run for this host (comma-separated: all, collector, brain, gpu), its
    # collector's last beat, and since when the brain has called it silent (NULL: not silent).
    macha_role: Mapped[str | None] = mapped_column(String(64))
    beat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    silent_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HostRelationship(Base):
    """An operator's statement about two hosts (``web1 depends-on db1``): shown by macha-systems and to the meta
    model. Hosts are named, not referenced by id, so a link may name a host before its first check."""

    __tablename__ = "host_relationships"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(255))
    target: Mapped[str] = mapped_column(String(255))
    # RelationshipKind
    kind: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("source", "target", "kind", name="uq_host_relationships"),
                      Index("ix_host_relationships_target", "target"))


class SystemMetric(Base):
    __tablename__ = "system_metrics"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    hostname: Mapped[str] = mapped_column(String(255))
    metric_name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(32))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    # Unique so that an import (SAR) run twice stores each sample once. The value rides in the index (INCLUDE on
    # PostgreSQL, a second index on SQLite, which has no INCLUDE): a chart's range scan never visits the table.
    __table_args__ = (
        Index("ix_system_metrics_host_name_time", "hostname", "metric_name", "time", unique=True,
              postgresql_include=["value"]),
        Index("ix_system_metrics_host_name_time_value", "hostname", "metric_name", "time", "value")
        .ddl_if(dialect="sqlite"),
    )


class ServiceStatus(Base):
    __tablename__ = "service_status"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    hostname: Mapped[str] = mapped_column(String(255))
    service_name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(64))
    active_state: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    __table_args__ = (Index("ix_service_status_host_service_time", "hostname", "service_name", "time"),)


class LogEvent(Base):
    """A journal entry worth keeping (it matched a pattern or has error priority)."""

    __tablename__ = "log_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    hostname: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(1024))
    # Identifies the journal entry so that a re-read stores nothing twice.
    entry_key: Mapped[str] = mapped_column(String(64))
    # The message's template (cluster id of this host, see LogTemplate), mined as the event is stored.
    template_id: Mapped[int | None] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    __table_args__ = (
        UniqueConstraint("hostname", "entry_key", name="uq_log_events_entry"),
        Index("ix_log_events_host_time", "hostname", "time"),
    )


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # ReviewStatus: healthy | degraded | critical
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    # "rules" when no model was used, else the backend name.
    reviewer: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    # ReviewResult: ok | failed
    outcome: Mapped[str] = mapped_column(String(16), default=ReviewResult.OK)
    error: Mapped[str | None] = mapped_column(Text)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # What the model server reported (prompt_eval_count for Ollama), how long the call took, and for a failed
    # review the raw answer that could not be used.
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    raw_output: Mapped[str | None] = mapped_column(Text)
    # Set once the review's issues and decisions are written to semantic memory (Chroma); the reconciler
    # re-sends the ones still NULL.
    remembered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The issue (issues.id) this belongs to; set when a review links it (macha.review.issues).
    issue_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_reviews_host_created", "hostname", "created_at"), Index("ix_reviews_issue", "issue_id"))


class TriggerEvent(Base):
    __tablename__ = "trigger_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    hostname: Mapped[str] = mapped_column(String(255))
    # journal_pattern | metric_threshold | service_state | error_rate | classifier | auth_storm | correlation
    trigger_type: Mapped[str] = mapped_column(String(32))
    trigger_reason: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    pattern_id: Mapped[str | None] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    log_event_id: Mapped[int | None] = mapped_column(ForeignKey("log_events.id"))
    # NULL until a review covers the event: the reconciler looks for old NULLs.
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    # The event is a group: repeats (same fingerprint) within the grouping window add to its count and move
    # last_seen instead of raising new events. The window lives here, in the database, so a restart re-alerts nothing.
    count: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The issue (issues.id) this belongs to; set when a review links it (macha.review.issues).
    issue_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("log_event_id", "pattern_id", name="uq_trigger_events_log_pattern"),
        Index("ix_trigger_events_issue", "issue_id"),
        Index("ix_trigger_events_host_review", "hostname", "review_id"),
        Index("ix_trigger_events_host_time", "hostname", "time"),
        Index("ix_trigger_events_group", "hostname", "fingerprint", "last_seen"),
        # A host's active groups (seen in the last hour) by range seek: the health score asks on every page.
        Index("ix_trigger_events_host_active", "hostname", text('coalesce(last_seen, "time")')),
    )


class JournalCursor(Base):
    __tablename__ = "journal_cursors"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    # "system", "file:/abs/path" or "dir:/abs/path"
    source: Mapped[str] = mapped_column(String(1024))
    cursor: Mapped[str] = mapped_column(Text)
    entries_read: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("hostname", "source", name="uq_journal_cursors_source"),)


class Action(Base):
    """One proposed catalog action, from proposal to outcome. Risk is copied from the catalog, never from a model.

    status (ActionStatus): refused | recorded (observe) | pending (awaits approval) | ready (to run) | running |
    succeeded | failed | interrupted (its worker died; never re-run) | rejected | expired
    """

    __tablename__ = "actions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # sha256 of action + canonical arguments: equal proposals merge while one is pending.
    dedup_key: Mapped[str] = mapped_column(String(64))
    risk: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    verdict_reason: Mapped[str] = mapped_column(Text, default="")
    proposer: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    merged_count: Mapped[int] = mapped_column(Integer, default=0)
    autonomy_level: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    argv: Mapped[list[Any] | None] = mapped_column(JSONType)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    stdout: Mapped[str | None] = mapped_column(Text)
    stderr: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float | None] = mapped_column(Float)
    # The issue (issues.id) this belongs to; set when a review links it (macha.review.issues).
    issue_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        Index("ix_actions_status", "status", "hostname"),
        Index("ix_actions_issue", "issue_id"),
        Index("ix_actions_host_action_time", "hostname", "action", "started_at"),
        # At most one pending proposal per (host, action, arguments): duplicates merge into it.
        Index(
            "uq_actions_pending",
            "hostname",
            "dedup_key",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )


class ActionAudit(Base):
    """Append-only: every decision about an action and why. The migration makes UPDATE and DELETE fail."""

    __tablename__ = "action_audit"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id"))
    hostname: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    # AuditEvent: scheduled | queued | recorded | merged | refused | approved | rejected | expired | started |
    # executed | failed | interrupted | escalated
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    autonomy_level: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    __table_args__ = (Index("ix_action_audit_action", "action_id"), Index("ix_action_audit_time", "time"))


class Escalation(Base):
    """A request for the meta model (Layer 4), stored before its task is sent: the gpu worker may be offline."""

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    reason: Mapped[str] = mapped_column(Text)
    # EscalationStatus: requested | running | done | failed | attached (to another analysis of the same issue)
    status: Mapped[str] = mapped_column(String(16), default=EscalationStatus.REQUESTED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # EscalationKind: critical | escalation | background: what orders the work on the gpu queue
    kind: Mapped[str] = mapped_column(String(16), default=EscalationKind.ESCALATION)
    # The issue this is about (its event groups): a second escalation of it attaches to the first.
    issue_key: Mapped[str | None] = mapped_column(String(64))
    attached_to: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"))
    model: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # The tool calls of the analysis (name, arguments, outcome), for the operator and for the next analysis.
    transcript: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # The issue (issues.id) this belongs to; set when a review links it (macha.review.issues).
    issue_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_escalations_status", "status", "hostname"),
                      Index("ix_escalations_issue", "hostname", "issue_key"),
                      Index("ix_escalations_issue_id", "issue_id"))


class Conversation(Base):
    """A chat with the meta model (macha-chat), possibly about an approval or an analysed issue."""

    __tablename__ = "chat_conversations"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id"))
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"))
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("chat_conversations.id"))
    # user | assistant
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    # ChatStatus of user messages: pending (not taken yet) | answering | answered | failed
    status: Mapped[str] = mapped_column(String(16), default=ChatStatus.ANSWERED)
    error: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(128))
    transcript: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_chat_messages_conversation", "conversation_id", "id"),)


class ThresholdState(Base):
    """Where each metric series stands against its threshold (streak of samples above, raised or not)."""

    __tablename__ = "threshold_states"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    series: Mapped[str] = mapped_column(String(512))
    streak: Mapped[int] = mapped_column(Integer, default=0)
    raised: Mapped[bool] = mapped_column(Boolean, default=False)
    value: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("hostname", "series", name="uq_threshold_states_series"),)


class BaselineState(Base):
    """One metric series' learned baseline between samples (detect/baselines.py): the recent and short-term
    models, the anomaly streak and whether it is raised. Compact: no history is kept or scanned."""

    __tablename__ = "baseline_states"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    series: Mapped[str] = mapped_column(String(512))
    samples: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fast: Mapped[float] = mapped_column(Float)
    mid: Mapped[float] = mapped_column(Float)
    center: Mapped[float] = mapped_column(Float)
    spread: Mapped[float] = mapped_column(Float)
    change_spread: Mapped[float] = mapped_column(Float)
    vol: Mapped[float] = mapped_column(Float)
    vol_recent: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    calm: Mapped[int] = mapped_column(Integer, default=0)
    raised: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("hostname", "series", name="uq_baseline_states_series"),)


class BaselineBucket(Base):
    """One metric series' usual level, spread and short-term dispersion in one hour of the day (bucket 0-23) or
    of the week (24 + 24 * weekday + hour)."""

    __tablename__ = "baseline_buckets"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    series: Mapped[str] = mapped_column(String(512))
    bucket: Mapped[int] = mapped_column(Integer)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    center: Mapped[float] = mapped_column(Float)
    spread: Mapped[float] = mapped_column(Float)
    vol: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("hostname", "series", "bucket", name="uq_baseline_buckets_bucket"),)


class ErrorRate(Base):
    """Each unit's usual rate of error-priority journal lines (errors a minute, an EWMA) and whether it spiked."""

    __tablename__ = "error_rates"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    unit: Mapped[str] = mapped_column(String(255))
    ewma: Mapped[float] = mapped_column(Float, default=0.0)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    raised: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("hostname", "unit", name="uq_error_rates_unit"),)


class LogTemplate(Base):
    """One message template of a host. These rows are the miner's whole state: the parser is rebuilt from them, so
    no pickled object is ever loaded from the database. A template merged into another keeps its row (its id is
    never handed out again) with an empty template and ``merged_into`` set to the surviving id."""

    __tablename__ = "log_templates"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    cluster_id: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    merged_into: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("hostname", "cluster_id", name="uq_log_templates_cluster"),)


class TemplateState(Base):
    """A version per host, bumped by every write to its templates: miners in other processes see it changed and
    reload, and the bump serialises concurrent miners of one host."""

    __tablename__ = "template_state"
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class TokenCalibration(Base):
    """How many of a model's tokens one cl100k token is, learned from the prompt sizes the model server reports."""

    __tablename__ = "token_calibration"
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    factor: Mapped[float] = mapped_column(Float, default=1.0)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthWindow(Base):
    """Authentication failures from one source in the current window: a storm is raised once per window."""

    __tablename__ = "auth_windows"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(255))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)
    # Not a foreign key: retention may delete the old storm event while this row lives on.
    storm_event_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("hostname", "source", name="uq_auth_windows_source"),)


class CorrelationState(Base):
    """One correlation rule's sequence for one key (a source, a unit, the host) on one host: the step hits seen in
    its window and the root-cause event it raised, so that a window spanning batches, processes and restarts is
    neither forgotten nor raised twice (macha.monitor.detect.correlate)."""

    __tablename__ = "correlation_states"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    rule_id: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    #: the step hits of the window: [{"step", "time", "entry", "log_id", "event_id", "fields", "text"}]
    hits: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Not a foreign key: retention may delete the old root event while this row lives on.
    root_event_id: Mapped[int | None] = mapped_column(BigInteger)
    #: the last hit that joined the root event: the sequence stays open a window after it
    root_last: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("hostname", "rule_id", "key", name="uq_correlation_states_key"),)


class ClassifiedTemplate(Base):
    """The trigger model's verdict on a message template (error lines no pattern knows): asked once per template."""

    __tablename__ = "classified_templates"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    template_id: Mapped[int] = mapped_column(Integer)
    # ignore | low | medium | high | critical
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(128))
    classified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("hostname", "template_id", name="uq_classified_templates"),)


class ClassifierCall(Base):
    """One call of the trigger model: the budget counts these, and an outage is reported once, not every check."""

    __tablename__ = "classifier_calls"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    templates: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_classifier_calls_host_time", "hostname", "time"),)


class ClassifierState(Base):
    """How far the classifier has read a host's stored log events."""

    __tablename__ = "classifier_state"
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_log_event_id: Mapped[int] = mapped_column(BigInteger, default=0)


class Issue(Base):
    """One problem on one host: its events, reviews, analyses and actions carry its id (their issue_id columns,
    not foreign keys: added to existing tables without rebuilding them, and trigger_events may be a hypertable).

    Named like escalations by the worst event groups (issue_key): one row per (host, key) for good, so a problem
    that recurs reopens its issue and keeps its history.
    """

    __tablename__ = "issues"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    issue_key: Mapped[str] = mapped_column(String(64))
    # The groups the key is made of ("pattern|unit"): a pending event of one of them keeps the issue going.
    groups: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # The worst event's reason when it opened (log text: shown sanitized).
    title: Mapped[str] = mapped_column(Text)
    # The worst severity of its events so far.
    severity: Mapped[str] = mapped_column(String(16))
    # IssueStatus: open | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(16), default=IssueStatus.OPEN)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last time one of its events was seen (an event group's last_seen): the quiet period counts from here.
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_reason: Mapped[str | None] = mapped_column(Text)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        UniqueConstraint("hostname", "issue_key", name="uq_issues_key"),
        Index("ix_issues_status", "status", "hostname"),
    )


class IssueAudit(Base):
    """Append-only: every change of an issue's state and who made it (the migration makes UPDATE and DELETE
    fail)."""

    __tablename__ = "issue_audit"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"))
    # IssueEvent: opened | acknowledged | resolved | closed | reopened
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_issue_audit_issue", "issue_id", "time"),)


class NoveltyHost(Base):
    """When novelty began learning a host's templates: a new one is an event only after the learning period."""

    __tablename__ = "novelty_hosts"
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    learning_since: Mapped[datetime] = mapped_column(UTCDateTime)


class NoveltyTemplate(Base):
    """Novelty's record of one of a host's message templates (a log_templates cluster): when its first error-ish
    or kept line came, and whether an operator said it is benign (learned: it never raises again)."""

    __tablename__ = "novelty_templates"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    cluster_id: Mapped[int] = mapped_column(Integer)
    # The journal time of its first line (not the time it was read), so that a replayed journal learns as it ran.
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    first_unit: Mapped[str | None] = mapped_column(String(255))
    benign: Mapped[bool] = mapped_column(Boolean, default=False)
    benign_by: Mapped[str | None] = mapped_column(String(128))
    benign_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Novelty events its lines raised.
    events: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("hostname", "cluster_id", name="uq_novelty_templates_cluster"),)


class NoveltyUnit(Base):
    """The last novelty event of a unit: the rate limit is per unit, in the store, so a restart re-raises nothing."""

    __tablename__ = "novelty_units"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    unit: Mapped[str] = mapped_column(String(255))
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("hostname", "unit", name="uq_novelty_units_unit"),)


class TemplateAudit(Base):
    """Append-only: who marked a template benign, and why (the migration makes UPDATE and DELETE fail)."""

    __tablename__ = "template_audit"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    hostname: Mapped[str] = mapped_column(String(255))
    # log_templates.id: what the operator named
    template_id: Mapped[int] = mapped_column(BigInteger)
    cluster_id: Mapped[int] = mapped_column(Integer)
    # benign
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_template_audit_host_time", "hostname", "time"),)
