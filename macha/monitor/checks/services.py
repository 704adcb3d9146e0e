"""Layer 1 services: store each unit's state in service_status and raise events on transitions only.

A unit that goes from active (or anything) to failed is an event (critical for a configured critical service,
high otherwise); one that recovers is an info event; one that stays failed is not raised again every check. A
configured unit systemd does not know is a warning in the result, not a crash.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from macha.config import Settings
from macha.core.severity import Severity
from macha.core.units import ActiveState, UnitNameError, normalise
from macha.monitor.checks.journal import ensure_host
from macha.monitor.collect.services import ServiceError, UnitState, failed_units, show
from macha.monitor.detect.triggers import state_trigger
from macha.store.db import Store
from macha.store.models import ServiceStatus, TriggerEvent, utcnow
from macha.store.ops import insert_ignore


class ServicesResult(BaseModel):
    hostname: str
    checked: int = 0
    failed: list[str] = Field(default_factory=list)
    recovered: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    trigger_ids: list[int] = Field(default_factory=list)


def _critical_units(settings: Settings, notes: list[str]) -> list[str]:
    units = []
    for name in settings.critical_services:
        try:
            units.append(normalise(name))
        except UnitNameError as exc:
            notes.append(f"criticalServices: {exc}")
    return units


def run_services(store: Store, settings: Settings, hostname: str | None = None) -> ServicesResult:
    hostname = hostname or settings.hostname
    result = ServicesResult(hostname=hostname)
    critical = _critical_units(settings, result.notes)
    try:
        states = {s.unit: s for s in show(critical)}
        for s in failed_units():
            states.setdefault(s.unit, s)
    except ServiceError as exc:
        result.notes.append(str(exc))
        return result
    for unit in critical:
        if unit in states and states[unit].load == "not-found":
            result.notes.append(f"criticalServices: {unit} is not a unit on this host (check the name)")
            del states[unit]
    ensure_host(store, hostname)
    now = utcnow()
    with store.session() as s:
        last = _last_states(s, hostname)
        # Units that failed before and are no longer listed as failed (and are not shown) recovered too.
        for unit, previous in last.items():
            if previous == ActiveState.FAILED and unit not in states:
                states[unit] = UnitState(unit, "loaded", ActiveState.INACTIVE, "dead")
        for st in states.values():
            s.add(ServiceStatus(time=now, hostname=hostname, service_name=st.unit, status=st.sub,
                                active_state=st.active,
                                meta={"load": st.load, "result": st.result, "restarts": st.restarts}))
            before = last.get(st.unit)
            if st.active == ActiveState.FAILED and before != ActiveState.FAILED:
                severity = Severity.CRITICAL if st.unit in critical else Severity.HIGH
                reason = f"{st.unit} failed (result: {st.result or 'unknown'}; was {before or 'not seen'})"
                result.failed.append(st.unit)
            elif st.active != ActiveState.FAILED and before == ActiveState.FAILED:
                severity, reason = Severity.INFO, f"{st.unit} recovered: now {st.active}/{st.sub}"
                result.recovered.append(st.unit)
            else:
                continue
            kind = "service_failed" if severity != Severity.INFO else "service_recovered"
            row = state_trigger(hostname, now, "service_state", kind, severity, reason, st.unit,
                                {"subsystem": "systemd", "unit": st.unit})
            result.trigger_ids += [i for (i,) in insert_ignore(s, TriggerEvent.__table__, [row], returning=("id",))]
        result.checked = len(states)
    return result


def _last_states(s, hostname: str) -> dict[str, str]:
    latest = (select(ServiceStatus.service_name, func.max(ServiceStatus.id).label("id"))
              .where(ServiceStatus.hostname == hostname).group_by(ServiceStatus.service_name).subquery())
    rows = s.execute(select(ServiceStatus.service_name, ServiceStatus.active_state)
                     .join(latest, ServiceStatus.id == latest.c.id)).all()
    return {name: active for name, active in rows}
