"""Per-unit error rate against the unit's own baseline: errors a minute (journal priority err or worse) compared
with an exponentially weighted moving average of earlier checks. A unit that always logs 50 errors a minute is
its normal; one that goes from 1 to 60 is a spike. The averages live in the store (error_rates)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from macha.config import Settings
from macha.monitor.detect.triggers import state_trigger
from macha.store.models import ErrorRate, TriggerEvent
from macha.store.ops import insert_ignore, upsert

#: A check's window, for the rate: bounded so that a first check or a long outage does not dilute or inflate it.
MIN_WINDOW_S, MAX_WINDOW_S = 30.0, 3600.0


def is_spike(per_minute: float, ewma: float, factor: float, floor: float) -> bool:
    return per_minute >= floor and per_minute >= factor * max(ewma, 1.0)


def evaluate(s: Session, settings: Settings, hostname: str, counts: Counter[str], now: datetime) -> list[int]:
    """Update every known unit's average with this check's counts; return the ids of new spike events."""
    cfg = settings.error_rate
    if not cfg.enable:
        return []
    rows = {r.unit: r for r in s.execute(select(ErrorRate).where(ErrorRate.hostname == hostname)).scalars()}
    events = []
    for unit in set(counts) | set(rows):
        row = rows.get(unit)
        ewma, checks, raised = (row.ewma, row.checks, row.raised) if row else (0.0, 0, False)
        window = (now - row.updated_at).total_seconds() if row else MIN_WINDOW_S
        per_minute = counts.get(unit, 0) * 60.0 / min(max(window, MIN_WINDOW_S), MAX_WINDOW_S)
        spike = is_spike(per_minute, ewma, cfg.factor, cfg.min_per_minute)
        if spike and not raised:
            reason = (f"{unit} logged {counts[unit]} error-priority lines ({per_minute:.0f} a minute); its usual "
                      f"rate is {ewma:.1f} a minute")
            events.append(state_trigger(hostname, now, "error_rate", "error_rate", cfg.severity, reason, unit,
                                        {"subsystem": "journal", "unit": unit, "per_minute": round(per_minute, 2),
                                         "usual": round(ewma, 2)}))
        # The spike is not folded into the average at full weight while it lasts: the baseline stays the baseline.
        weight = cfg.alpha / 4 if spike else cfg.alpha
        upsert(s, ErrorRate.__table__,
               {"hostname": hostname, "unit": unit, "ewma": weight * per_minute + (1 - weight) * ewma,
                "checks": checks + 1, "raised": spike, "updated_at": now},
               keys=["hostname", "unit"])
    return [i for (i,) in insert_ignore(s, TriggerEvent.__table__, events, returning=("id",))]
