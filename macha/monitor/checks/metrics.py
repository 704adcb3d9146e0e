"""Layer 1 metrics: store every sample in system_metrics, judge the thresholds (hysteresis, sustain) and the learned
baselines (checks/baselines.py) against the stored state, and turn raised or cleared conditions into trigger
events, all in one transaction."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import select

from macha.config import Settings
from macha.core.severity import Severity
from macha.monitor.checks import baselines
from macha.monitor.checks.journal import ensure_host
from macha.monitor.collect.metrics import MetricSample, sample
from macha.monitor.detect.correlate import correlator_for
from macha.monitor.detect.thresholds import SeriesState, Threshold, evaluate
from macha.monitor.detect.triggers import state_trigger
from macha.store.db import Store
from macha.store.models import SystemMetric, ThresholdState, TriggerEvent, utcnow
from macha.store.ops import insert_ignore, upsert


class MetricsResult(BaseModel):
    hostname: str
    samples: int = 0
    raised: list[str] = Field(default_factory=list)
    cleared: list[str] = Field(default_factory=list)
    anomalous: list[str] = Field(default_factory=list)
    normal: list[str] = Field(default_factory=list)
    trigger_ids: list[int] = Field(default_factory=list)


def thresholds_from(settings: Settings) -> dict[str, Threshold]:
    return {name: Threshold(t.raise_at, t.clear_at, t.sustain, t.severity) for name, t in settings.thresholds.items()}


def run_metrics(store: Store, settings: Settings, hostname: str | None = None,
                samples: list[MetricSample] | None = None, now: datetime | None = None) -> MetricsResult:
    """``now``: when the samples were taken (a replay's clock; default the present)."""
    hostname = hostname or settings.hostname
    samples = sample() if samples is None else samples
    result = MetricsResult(hostname=hostname, samples=len(samples))
    ensure_host(store, hostname)
    now = now or utcnow()
    with store.session() as s:
        # Named by series (disk_percent{mount=/var}): one row per series and time, and trends per mount.
        s.add_all(SystemMetric(time=now, hostname=hostname, metric_name=m.key[:128], value=m.value, unit=m.unit,
                               meta={"labels": m.labels, "series": m.key}) for m in samples)
        rows = s.execute(select(ThresholdState).where(ThresholdState.hostname == hostname)).scalars()
        states = {r.series: SeriesState(r.streak, r.raised) for r in rows}
        new_states, transitions = evaluate(samples, states, thresholds_from(settings))
        values = {m.key: m.value for m in samples}
        for series, st in new_states.items():
            if series in values and st != states.get(series):
                upsert(s, ThresholdState.__table__,
                       {"hostname": hostname, "series": series, "streak": st.streak, "raised": st.raised,
                        "value": values[series], "updated_at": now},
                       keys=["hostname", "series"])
        for tr in transitions:
            t = tr.threshold
            if tr.kind == "raise":
                reason = (f"{tr.series} is {tr.value:g}{tr.unit if tr.unit == '%' else ''}: at or above {t.raise_at:g} "
                          f"for {t.sustain} sample(s) (clears below {t.clear_at:g})")
                severity = t.severity
                result.raised.append(tr.series)
            else:
                reason = f"{tr.series} is back to {tr.value:g}, below {t.clear_at:g}"
                severity = Severity.INFO
                result.cleared.append(tr.series)
            row = state_trigger(hostname, now, "metric_threshold", f"metric_{tr.kind}:{tr.name}", severity, reason,
                                tr.series, {"subsystem": "metrics", "series": tr.series, "value": tr.value})
            result.trigger_ids += [i for (i,) in insert_ignore(s, TriggerEvent.__table__, [row], returning=("id",))]
            if tr.kind == "raise":
                # A full disk by its metric starts a correlation as its journal line does (disk_full_cascade).
                correlator, _ = correlator_for(settings.correlations_file)
                seen = {"hostname": hostname, "time": now, "entry_key": f"metric\x1f{tr.series}\x1f{now.isoformat()}",
                        "message": reason, "unit": None}
                result.trigger_ids += [i for i, _ in correlator.observe(s, [(seen, None, [row["pattern_id"]])], [row])]
        learned = baselines.evaluate(s, settings, hostname, samples, now)
        result.anomalous, result.normal = learned.anomalous, learned.normal
        result.trigger_ids += learned.trigger_ids
    return result
