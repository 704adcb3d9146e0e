"""The fleet: each host's facts, status and health, and one host's overview.

The health score starts at 100 and loses points for what is wrong now: event groups active in the last hour (by
severity), metric series past their thresholds, failed units. Each lost point has its reason, so that a page or
an answer can say why a host is not green.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from macha.core.severity import SEVERITY_RANK, Severity
from macha.core.states import HealthColour, RelationshipKind
from macha.read import approvals, issues
from macha.read.common import require_host
from macha.read.metrics import MetricValue, current
from macha.read.reviews import ReviewSummary, latest_review, summary_of
from macha.store import relationships
from macha.store.db import Store
from macha.store.models import Host, ServiceStatus, ThresholdState, TriggerEvent, utcnow

#: Event groups seen within this window count against the health score.
ACTIVE_WINDOW = timedelta(hours=1)
#: A host not heard from for this long is grey, whatever its last score.
STALE_AFTER = timedelta(minutes=30)
EVENT_PENALTY = {Severity.CRITICAL: 40, Severity.HIGH: 20, Severity.MEDIUM: 8, Severity.LOW: 2, Severity.INFO: 0}
THRESHOLD_PENALTY = 15
FAILED_UNIT_PENALTY = 20
#: Below these scores a host is yellow, then red.
YELLOW_BELOW, RED_BELOW = 90, 50
MAX_REASONS = 30


class ReasonKind(StrEnum):
    EVENT = "event"
    METRIC = "metric"
    UNIT = "unit"


class HealthReason(BaseModel):
    kind: ReasonKind
    #: the trigger event's id, the metric series or the unit
    ref: str
    #: untrusted where it quotes an event
    text: str
    penalty: int
    severity: Severity | None = None


class Health(BaseModel):
    score: int
    colour: HealthColour
    reasons: list[HealthReason] = Field(default_factory=list)
    #: reasons not listed (past MAX_REASONS); their points are counted
    more: int = 0


class Relationship(BaseModel):
    source: str
    target: str
    kind: RelationshipKind
    created_by: str
    created_at: datetime


class HostSummary(BaseModel):
    hostname: str
    role: str | None
    os: str | None
    kernel: str | None
    nixos_generation: str | None
    macha_version: str | None
    first_seen: datetime
    last_seen: datetime
    #: The Macha roles run for this host (all, collector, brain, gpu), its collector's last beat, and since when
    #: the brain calls it silent (None: not silent).
    macha_roles: list[str] = Field(default_factory=list)
    last_beat: datetime | None = None
    silent_since: datetime | None = None
    status: HealthColour
    health_score: int
    open_issues: int
    pending_approvals: int


class FailedUnit(BaseModel):
    unit: str
    since: datetime
    active_state: str | None
    status: str
    result: str | None = None


class HostOverview(HostSummary):
    facts: dict[str, object]
    health: Health
    latest_review: ReviewSummary | None
    failed_units: list[FailedUnit]
    metrics: list[MetricValue]
    relationships: list[Relationship]


def failed_units(session: Session, hostname: str) -> list[FailedUnit]:
    """Units whose newest recorded state is failed."""
    newest = (select(ServiceStatus.service_name, func.max(ServiceStatus.id).label("id"))
              .where(ServiceStatus.hostname == hostname).group_by(ServiceStatus.service_name).subquery())
    rows = session.execute(select(ServiceStatus).join(newest, ServiceStatus.id == newest.c.id)
                           .where(ServiceStatus.active_state == "failed").order_by(ServiceStatus.service_name))
    return [FailedUnit(unit=r.service_name, since=r.time, active_state=r.active_state, status=r.status,
                       result=(r.meta or {}).get("result")) for r in rows.scalars()]


def health(session: Session, host: Host, now: datetime | None = None,
           failed: list[FailedUnit] | None = None) -> Health:
    """The host's score and reasons; ``failed`` is its failed_units() when the caller has them already."""
    now = now or utcnow()
    reasons: list[HealthReason] = []
    groups = session.execute(
        select(TriggerEvent).where(TriggerEvent.hostname == host.hostname,
                                   func.coalesce(TriggerEvent.last_seen, TriggerEvent.time) >= now - ACTIVE_WINDOW)
        .order_by(TriggerEvent.id.desc()).limit(500)).scalars().all()
    for g in sorted(groups, key=lambda g: (SEVERITY_RANK.get(g.severity, 9), -g.id)):
        penalty = EVENT_PENALTY.get(Severity(g.severity), 0) if g.severity in SEVERITY_RANK else 0
        if penalty:
            repeats = f" (x{g.count})" if (g.count or 1) > 1 else ""
            reasons.append(HealthReason(kind=ReasonKind.EVENT, ref=str(g.id), severity=Severity(g.severity),
                                        text=f"{g.severity} event {g.pattern_id or g.trigger_type}: "
                                             f"{g.trigger_reason[:200]}{repeats}", penalty=penalty))
    for t in session.execute(select(ThresholdState).where(ThresholdState.hostname == host.hostname,
                                                          ThresholdState.raised.is_(True))
                             .order_by(ThresholdState.series)).scalars():
        value = f" (last {t.value:.4g})" if t.value is not None else ""
        reasons.append(HealthReason(kind=ReasonKind.METRIC, ref=t.series, penalty=THRESHOLD_PENALTY,
                                    text=f"{t.series} is past its threshold{value}"))
    for u in failed_units(session, host.hostname) if failed is None else failed:
        reasons.append(HealthReason(kind=ReasonKind.UNIT, ref=u.unit, penalty=FAILED_UNIT_PENALTY,
                                    text=f"{u.unit} failed{f' ({u.result})' if u.result else ''}"))
    score = max(0, 100 - sum(r.penalty for r in reasons))
    if now - host.last_seen > STALE_AFTER:
        colour = HealthColour.GREY
    elif score < RED_BELOW:
        colour = HealthColour.RED
    elif score < YELLOW_BELOW:
        colour = HealthColour.YELLOW
    else:
        colour = HealthColour.GREEN
    return Health(score=score, colour=colour, reasons=reasons[:MAX_REASONS], more=max(0, len(reasons) - MAX_REASONS))


def open_issue_counts(session: Session, hostnames: list[str]) -> dict[str, int]:
    """Open (and acknowledged) issues per host (macha.read.issues)."""
    return issues.open_counts(session, hostnames)


def _summary(host: Host, h: Health, issues: int, pending: int) -> HostSummary:
    return HostSummary(hostname=host.hostname, role=host.role, os=host.os, kernel=host.kernel,
                       nixos_generation=host.nixos_generation, macha_version=host.macha_version,
                       first_seen=host.first_seen, last_seen=host.last_seen,
                       macha_roles=sorted(r for r in (host.macha_role or "").split(",") if r),
                       last_beat=host.beat_at, silent_since=host.silent_since, status=h.colour,
                       health_score=h.score, open_issues=issues, pending_approvals=pending)


def hostnames(store: Store) -> list[str]:
    """Every registered host's name, in order: for a filter's choices (list_hosts scores each host, queries apiece)."""
    with store.session() as s:
        return list(s.execute(select(Host.hostname).order_by(Host.hostname)).scalars())


def list_hosts(store: Store, now: datetime | None = None) -> list[HostSummary]:
    """Every registered host, by name."""
    with store.session() as s:
        hosts = list(s.execute(select(Host).order_by(Host.hostname)).scalars())
        names = [h.hostname for h in hosts]
        issues = open_issue_counts(s, names)
        pending = approvals.pending_counts_for(s, names) if names else {}
        return [_summary(h, health(s, h, now), issues.get(h.hostname, 0), pending.get(h.hostname, 0))
                for h in hosts]


def relationships_of(session: Session, hostname: str) -> list[Relationship]:
    return [Relationship(source=r.source, target=r.target, kind=RelationshipKind(r.kind), created_by=r.created_by,
                         created_at=r.created_at) for r in relationships.of_host(session, hostname)]


def host_overview(store: Store, hostname: str, now: datetime | None = None) -> HostOverview:
    """One host: its facts, health with reasons, latest review, failed units, current metrics and relationships.
    UnknownHost (one line naming the known hosts) when the store has no such host."""
    with store.session() as s:
        host = require_host(s, hostname)
        # Each query is a round trip: on a busy PostgreSQL server the trips, not the queries, are the page's cost.
        failed = failed_units(s, hostname)
        h = health(s, host, now, failed)
        review = latest_review(s, hostname)
        return HostOverview(
            **_summary(host, h, open_issue_counts(s, [hostname]).get(hostname, 0),
                       approvals.pending_count(s, hostname)).model_dump(),
            facts=dict(host.meta or {}), health=h,
            latest_review=summary_of(review) if review is not None else None,
            failed_units=failed, metrics=current(s, hostname),
            relationships=relationships_of(s, hostname))
