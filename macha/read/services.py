"""Service states as the checks recorded them (`systemctl show` of the critical services and of failed units):
the newest state of each unit of a host, or the recent history of one unit with the events that name it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select

from macha.core.units import lookup_names
from macha.read.common import require_host
from macha.store.db import Store
from macha.store.models import ServiceStatus, TriggerEvent

#: States of one unit shown, newest first.
HISTORY = 10


class UnitState(BaseModel):
    unit: str
    time: datetime
    status: str
    active_state: str | None
    result: str | None = None
    restarts: int | None = None


class UnitEvent(BaseModel):
    id: int
    time: datetime
    severity: str
    pattern: str | None
    #: untrusted where it quotes a journal line
    reason: str


class ServiceReport(BaseModel):
    host: str
    #: the newest state of each unit (all units, or the one asked for and its history)
    states: list[UnitState]
    #: for one unit: the newest trigger events that name it
    events: list[UnitEvent] = Field(default_factory=list)
    note: str | None = None


def _state(r: ServiceStatus) -> UnitState:
    meta = r.meta or {}
    restarts = meta.get("restarts")
    return UnitState(unit=r.service_name, time=r.time, status=r.status, active_state=r.active_state,
                     result=meta.get("result"), restarts=restarts if isinstance(restarts, int) else None)


def service_status(store: Store, hostname: str, unit: str | None = None) -> ServiceReport:
    """Every recorded unit's newest state, or (``unit``: ``nginx`` means nginx.service too) that unit's recent
    states and the events naming it. UnknownHost for a host the store does not hold."""
    with store.session() as s:
        require_host(s, hostname)
        if unit is None:
            newest = (select(ServiceStatus.service_name, func.max(ServiceStatus.id).label("id"))
                      .where(ServiceStatus.hostname == hostname).group_by(ServiceStatus.service_name).subquery())
            rows = s.execute(select(ServiceStatus).join(newest, ServiceStatus.id == newest.c.id)
                             .order_by(ServiceStatus.service_name)).scalars()
            states = [_state(r) for r in rows]
            return ServiceReport(host=hostname, states=states,
                                 note=None if states else "no service state recorded for this host yet")
        names = lookup_names(unit)
        rows = s.execute(select(ServiceStatus).where(ServiceStatus.hostname == hostname,
                                                     ServiceStatus.service_name.in_(names))
                         .order_by(ServiceStatus.id.desc()).limit(HISTORY)).scalars()
        events = s.execute(select(TriggerEvent).where(
            TriggerEvent.hostname == hostname,
            or_(*[TriggerEvent.trigger_reason.contains(n, autoescape=True) for n in names]))
            .order_by(TriggerEvent.id.desc()).limit(HISTORY)).scalars()
        report = ServiceReport(
            host=hostname, states=[_state(r) for r in rows],
            events=[UnitEvent(id=e.id, time=e.time, severity=e.severity, pattern=e.pattern_id,
                              reason=e.trigger_reason) for e in events])
    if not report.states and not report.events:
        report.note = f"nothing recorded about {unit} on {hostname} (not a checked service, never failed)"
    return report
