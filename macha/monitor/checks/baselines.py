"""Layer 1 metric baselines against the store: load each sampled series' state and its two seasonal buckets (this
hour of the day and of the week), judge and learn the sample (detect/baselines.py), write the state back and turn
raised or cleared anomalies into trigger events. A few rows a series per sample, never a scan of history."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from macha.config import Settings, parse_duration
from macha.core.severity import Severity
from macha.monitor.collect.metrics import MetricSample
from macha.monitor.detect import baselines as model
from macha.monitor.detect.triggers import state_trigger
from macha.store.models import BaselineBucket, BaselineState, TriggerEvent
from macha.store.ops import insert_ignore, upsert_many

_STATE_COLUMNS = [f.name for f in fields(model.State)]


def _columns(obj: Any) -> dict[str, Any]:
    """A dataclass's fields by name, shallow (dataclasses.asdict deep-copies: a third of a check's time)."""
    return dict(vars(obj))


@dataclass
class BaselineResult:
    anomalous: list[str] = field(default_factory=list)
    normal: list[str] = field(default_factory=list)
    trigger_ids: list[int] = field(default_factory=list)


def evaluate(s: Session, settings: Settings, hostname: str, samples: list[MetricSample],
             now: datetime) -> BaselineResult:
    cfg = settings.detection.baselines
    result = BaselineResult()
    if not cfg.enable or not samples:
        return result
    latest = {m.key[:512]: m for m in samples}
    day_b, week_b = model.buckets_of(now)
    # Plain rows, not ORM objects: this runs every 30 s for every series.
    st, bt = BaselineState.__table__, BaselineBucket.__table__
    states = {r.series: r for r in s.execute(select(st).where(
        st.c.hostname == hostname, st.c.series.in_(latest)))}
    buckets = {(r.series, r.bucket): r for r in s.execute(select(bt).where(
        bt.c.hostname == hostname, bt.c.series.in_(latest), bt.c.bucket.in_((day_b, week_b))))}
    learning = parse_duration(cfg.learning_period)
    z = model.Z[cfg.sensitivity]
    state_rows, bucket_rows, events = [], [], []
    for series, m in latest.items():
        row = states.get(series)
        state = model.State(**{c: getattr(row, c) for c in _STATE_COLUMNS}) if row else model.State()
        day, week = (_bucket(buckets.get((series, b))) for b in (day_b, week_b))
        verdict = model.judge(state, day, week, m.value, m.unit, z)
        learned = state.first_at is not None and now - state.first_at >= learning
        state, day, week = model.learn(state, day, week, m.value, m.unit, now, verdict.anomalous and learned)
        state, kind = model.step(state, verdict, cfg.sustain, learned)
        state_rows.append({"hostname": hostname, "series": series, **_columns(state), "updated_at": now})
        bucket_rows += [{"hostname": hostname, "series": series, "bucket": b, **_columns(bk)}
                        for b, bk in ((day_b, day), (week_b, week))]
        if kind == "raise":
            result.anomalous.append(series)
            events.append(_event(hostname, now, m, verdict, cfg.sustain))
        elif kind == "clear":
            result.normal.append(series)
            events.append(state_trigger(
                hostname, now, "metric_anomaly", f"metric_normal:{m.name}", Severity.INFO,
                f"{series} is back to normal ({_num(m)}) for {cfg.sustain} sample(s)", series,
                {"subsystem": "metrics", "series": series, "value": m.value}))
    upsert_many(s, BaselineState.__table__, state_rows, keys=["hostname", "series"],
                update=[c for c in state_rows[0] if c not in ("hostname", "series", "first_at")])
    upsert_many(s, BaselineBucket.__table__, bucket_rows, keys=["hostname", "series", "bucket"],
                update=["samples", "center", "spread", "vol"])
    result.trigger_ids = [i for (i,) in insert_ignore(s, TriggerEvent.__table__, events, returning=("id",))]
    return result


def _bucket(row: Any) -> model.Bucket:
    return model.Bucket(row.samples, row.center, row.spread, row.vol) if row else model.Bucket()


def _num(m: MetricSample) -> str:
    return f"{m.value:g}{'%' if m.unit == '%' else ''}"


def _event(hostname: str, now: datetime, m: MetricSample, v: model.Verdict, sustain: int) -> dict:
    series = m.key[:512]
    # Severity is how far out the series is: medium, or low while it is only just outside its band.
    severity = Severity.MEDIUM if v.excess >= 0.5 else Severity.LOW
    agree = ", ".join(v.models[:-1]) + " and " + v.models[-1] if len(v.models) > 1 else v.models[0]
    if v.kind == "level":
        what = f"{series} is {_num(m)}, outside its expected band {v.low:.4g} to {v.high:.4g} at this time"
    else:
        shape = "bursts" if v.scatter > v.usual_scatter else "has gone flat"
        what = (f"{series} {shape}: it is {_num(m)} and moves {v.scatter:.3g} between samples, against a usual "
                f"{v.usual_scatter:.3g} (expected band {v.low:.4g} to {v.high:.4g} at this time)")
    reason = f"{what}; the {agree} models agree, for {sustain} sample(s) in a row"
    return state_trigger(hostname, now, "metric_anomaly", f"metric_anomalous:{m.name}", severity, reason, series,
                         {"subsystem": "metrics", "series": series, "value": m.value,
                          "expected": [round(v.low, 4), round(v.high, 4)], "models": list(v.models),
                          "kind": v.kind})
