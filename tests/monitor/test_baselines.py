"""Metric baselines through run_metrics and the real store, on a simulated clock: nothing during the learning
period, one anomalous event for a sustained anomaly and its clearing, nothing for one spike or the daily cycle,
and the learned state back from the database after a restart."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from macha.config import load_settings
from macha.monitor.checks.metrics import run_metrics
from macha.monitor.collect.metrics import MetricSample
from macha.store.db import Store
from macha.store.models import BaselineBucket, TriggerEvent

START = datetime(2026, 11, 2, tzinfo=timezone.utc)
STEP = timedelta(seconds=30)
DAY = 2880  # samples


def _cpu(i: int, rng: random.Random) -> float:
    """A daily cycle: 10% at night, about 50% in the afternoon, with noise."""
    hour = (i % DAY) / 120
    return round(10 + 40 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) + rng.gauss(0, 2), 2)


def _settings(tmp_path, **baselines):
    # cpu_percent's fixed threshold is moved out of the way: only the baseline judges here.
    return load_settings(hostname="b1", state_dir=tmp_path / "s", detection={"baselines": baselines},
                         thresholds={"cpu_percent": {"raise_at": 1000, "clear_at": 999}})


def _replay(store, settings, start: int, stop: int, rng, shift=lambda i, x: x) -> list[tuple[int, list, list]]:
    out = []
    for i in range(start, stop):
        r = run_metrics(store, settings, samples=[MetricSample("cpu_percent", shift(i, _cpu(i, rng)), "%")],
                        now=START + i * STEP)
        if r.anomalous or r.normal:
            out.append((i, r.anomalous, r.normal))
    return out


def _events(store):
    with store.session() as s:
        return [(e.pattern_id, e.severity, e.trigger_reason) for e in s.execute(
            select(TriggerEvent).where(TriggerEvent.trigger_type == "metric_anomaly").order_by(TriggerEvent.id)
        ).scalars()]


def test_learning_period_raises_nothing(db_url, tmp_path) -> None:
    # A day's learning period: a big level shift in its last hours is learned, not raised.
    settings = _settings(tmp_path, learning_period="1d")
    store = Store(db_url)
    rng = random.Random(1)
    changes = _replay(store, settings, 0, DAY, rng, lambda i, x: x + 40 if i > DAY - 240 else x)
    assert changes == [] and _events(store) == []
    with store.session() as s:
        assert s.execute(select(BaselineBucket)).scalars().first() is not None  # it did learn
    store.dispose()


def test_daily_cycle_is_normal_a_sustained_anomaly_raises_once_and_clears_and_state_survives(db_url,
                                                                                             tmp_path) -> None:
    settings = _settings(tmp_path, learning_period="1d", sustain=5)
    store = Store(db_url)
    rng = random.Random(2)
    learned = _replay(store, settings, 0, DAY + DAY // 2, rng)
    # Day 2's first half, after the learning period: the daily cycle itself raises nothing.
    assert learned == []
    # A restart: a new Store, the state comes back from the database.
    store.dispose()
    store = Store(db_url)
    day4 = DAY + DAY // 2
    spike, shift_at = day4 + 120, day4 + 360           # 13:00 and 15:00 on day 2
    def inject(i: int, x: float) -> float:
        if i == spike:
            return 99.0                                 # one sample: nothing
        if shift_at <= i < shift_at + 60:
            return min(100.0, x + 45)                   # 30 minutes well above this hour's band
        return x
    changes = _replay(store, settings, day4, day4 + 600, rng, inject)
    raised = [i for i, a, _ in changes if a]
    cleared = [i for i, _, n in changes if n]
    assert len(raised) == 1 and shift_at + 4 <= raised[0] <= shift_at + 10, changes   # sustained: 5 in a row
    assert len(cleared) == 1 and shift_at + 60 <= cleared[0] <= shift_at + 90, changes
    events = _events(store)
    assert [(p, sev) for p, sev, _ in events] == [("metric_anomalous:cpu_percent", "medium"),
                                                   ("metric_normal:cpu_percent", "info")]
    reason = events[0][2]
    assert "cpu_percent is" in reason and "expected band" in reason and "seasonal" in reason, reason
    assert "models agree" in reason
    store.dispose()


def test_state_is_reloaded_from_the_database(db_url, tmp_path) -> None:
    # Learned in one store; a second store on the same database (another process, after a restart) raises at once
    # on a shifted sample stream, which it could not do from scratch (it would be learning).
    settings = _settings(tmp_path, learning_period="1d", sustain=3)
    first = Store(db_url)
    rng = random.Random(3)
    assert _replay(first, settings, 0, DAY + 240, rng) == []
    first.dispose()
    second = Store(db_url)
    changes = _replay(second, settings, DAY + 240, DAY + 260, rng, lambda i, x: x + 60)
    assert [a for _, a, _ in changes] == [["cpu_percent"]]
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert _replay(fresh, settings, DAY + 240, DAY + 260, rng, lambda i, x: x + 60) == []
    second.dispose()
    fresh.dispose()


def test_disabled_learns_nothing(tmp_path) -> None:
    settings = _settings(tmp_path, enable=False)
    store = Store(f"sqlite:///{tmp_path / 'off.db'}")
    _replay(store, settings, 0, 10, random.Random(4))
    with store.session() as s:
        assert s.execute(select(BaselineBucket)).scalars().first() is None
    store.dispose()
