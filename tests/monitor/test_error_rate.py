"""Error rate per unit against its own baseline (EWMA), over a scripted sequence of checks, with its state in
the store."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from macha.config import load_settings
from macha.monitor.detect import error_rate
from macha.store.db import Store
from macha.store.models import TriggerEvent, utcnow


def test_a_spike_against_the_units_own_baseline_raises_once(db_url, tmp_path) -> None:
    settings = load_settings(hostname="e1", state_dir=tmp_path / "s")
    store = Store(db_url)
    t = utcnow()
    # Per 30 s check: "chatty" always logs 40 errors (80 a minute: its normal); "quiet" logs 1, then bursts.
    script = [{"chatty": 40, "quiet": 1}] * 6 + [{"chatty": 40, "quiet": 60}] * 2 + [{"chatty": 40}] * 3 \
        + [{"chatty": 45, "quiet": 3}]
    raised_at = []
    for i, counts in enumerate(script):
        if i == 9:
            store.dispose()
            store = Store(db_url)  # a restart: baselines come back from the store
        with store.session() as s:
            ids = error_rate.evaluate(s, settings, "e1", Counter(counts), t + timedelta(seconds=30 * (i + 1)))
        raised_at += [i] * len(ids)
    with store.session() as s:
        events = list(s.execute(select(TriggerEvent)).scalars())
    # chatty's first check is a spike (nothing known yet); after that its 80 a minute is normal. quiet's burst
    # raises once, however long it lasts; its return to normal and a small rise later raise nothing.
    assert raised_at == [0, 6]
    assert [e.meta["unit"] for e in events] == ["chatty", "quiet"]
    assert "quiet logged 60 error-priority lines (120 a minute); its usual rate is" in events[1].trigger_reason
    assert events[1].severity == "medium" and events[1].trigger_type == "error_rate"
    store.dispose()


def test_below_the_floor_nothing_is_a_spike(tmp_path) -> None:
    settings = load_settings(hostname="e2", state_dir=tmp_path / "s", error_rate={"min_per_minute": 20})
    store = Store(settings.effective_database_url)
    with store.session() as s:
        assert error_rate.evaluate(s, settings, "e2", Counter({"app": 5}), utcnow()) == []  # 10 a minute
    store.dispose()
