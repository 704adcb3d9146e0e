"""The checks every stage repeats (proposal, approval, execution): catalog validation with this host's facts, and
the rate limit counted from the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from macha.actions.catalog import Catalog, ValidationContext, Validated, protected_patterns
from macha.actions.observe import HostProbe
from macha.config import Settings
from macha.core.states import ActionStatus
from macha.store.models import Action, utcnow

#: Statuses that mean "ran, runs, or is about to run": what a rate limit counts.
COUNTED = (ActionStatus.READY, ActionStatus.RUNNING, ActionStatus.SUCCEEDED, ActionStatus.FAILED,
           ActionStatus.INTERRUPTED)


def context_for(catalog: Catalog, settings: Settings, hostname: str, probe: HostProbe | None) -> ValidationContext:
    """A unit's state and a disk's use can only be asked on its own host; elsewhere the executing task asks."""
    return ValidationContext(
        protected=protected_patterns(
            settings.actions.protected_units,
            database_url=settings.effective_database_url,
            broker_url=settings.effective_broker_url,
            catalog=catalog,
        ),
        tmp_roots=tuple(settings.actions.clean_tmp_roots),
        probe=probe if hostname == settings.hostname else None,
        disk_pressure_at=settings.thresholds["disk_percent"].raise_at,
        inode_pressure_at=settings.thresholds["inode_percent"].raise_at,
    )


def validate(catalog: Catalog, settings: Settings, hostname: str, action: str, arguments: object,
             probe: HostProbe | None) -> Validated:
    return catalog.validate(action, arguments, context_for(catalog, settings, hostname, probe))


def rate_limit_reason(session: Session, v: Validated, hostname: str, *, exclude_id: int | None = None,
                      now: datetime | None = None) -> str | None:
    rl = v.entry.rate_limit
    if rl is None:
        return None
    cutoff = (now or utcnow()) - timedelta(seconds=rl.per)
    q = select(Action).where(
        Action.hostname == hostname,
        Action.action == v.entry.name,
        Action.status.in_(COUNTED),
        Action.updated_at >= cutoff,
    )
    if exclude_id is not None:
        q = q.where(Action.id != exclude_id)
    rows = session.execute(q).scalars()
    key = v.rate_key
    count = sum(1 for row in rows if key is None or str((row.arguments or {}).get(rl.key)) == key)
    if count >= rl.max:
        target = f" of {key}" if key is not None else ""
        return (f"rate limit: {count} {v.entry.name}{target} in the last {_span(rl.per)} (at most {rl.max}); "
                "escalating instead of repeating it")
    return None


def _span(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{seconds} s"
