"""A unit's recorded states and the events that name it: what `service_status` answers (MCP, the meta model's
tool, the dashboard's services list)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select

from macha.core.units import lookup_names
from macha.read.common import require_host
from macha.store.db import Store
from macha.store.models import ServiceStatus, TriggerEvent

MAX_STATES = 20


class UnitState(BaseModel):
    time: datetime
    unit: str
    active_state: str | None
    status: str
    result: Any = None
    restarts: Any = None


class UnitEvent(BaseModel):
    id: int
    time: datetime
    severity: str
    #: untrusted where it quotes a log line
    reason: str


class ServiceReport(BaseModel):
    host: str
    unit: str
    states: list[UnitState] = Field(default_factory=list)
    events: list[UnitEvent] = Field(default_factory=list)


def service_status(store: Store, hostname: str, unit: str, limit: int = 5) -> ServiceReport:
    """The unit's newest recorded states and events, newest first; UnknownHost for a host never seen."""
    names = lookup_names(unit[:255])
    limit = max(1, min(limit, MAX_STATES))
    with store.session() as s:
        require_host(s, hostname)
        states = s.execute(select(ServiceStatus).where(
            ServiceStatus.hostname == hostname, ServiceStatus.service_name.in_(names))
            .order_by(ServiceStatus.id.desc()).limit(limit)).scalars().all()
        events = s.execute(select(TriggerEvent).where(
            TriggerEvent.hostname == hostname,
            or_(TriggerEvent.meta["unit"].as_string().in_(names),
                *[TriggerEvent.trigger_reason.contains(n, autoescape=True) for n in names]))
            .order_by(TriggerEvent.id.desc()).limit(limit)).scalars().all()
        return ServiceReport(
            host=hostname, unit=unit,
            states=[UnitState(time=r.time, unit=r.service_name, active_state=r.active_state, status=r.status,
                              result=(r.meta or {}).get("result"), restarts=(r.meta or {}).get("restarts"))
                    for r in states],
            events=[UnitEvent(id=e.id, time=e.time, severity=e.severity, reason=e.trigger_reason) for e in events])


def unit_states(store: Store, hostname: str) -> list[UnitState]:
    """The newest recorded state of each unit of the host (the critical services and the units seen failed), by
    name; UnknownHost for a host never seen."""
    with store.session() as s:
        require_host(s, hostname)
        newest = (select(ServiceStatus.service_name, func.max(ServiceStatus.id).label("id"))
                  .where(ServiceStatus.hostname == hostname).group_by(ServiceStatus.service_name).subquery())
        rows = s.execute(select(ServiceStatus).join(newest, ServiceStatus.id == newest.c.id)
                         .order_by(ServiceStatus.service_name)).scalars()
        return [UnitState(time=r.time, unit=r.service_name, active_state=r.active_state, status=r.status,
                          result=(r.meta or {}).get("result"), restarts=(r.meta or {}).get("restarts"))
                for r in rows]
