"""Metrics: real psutil and /proc/pressure samples, and thresholds with hysteresis and sustain over a scripted
sequence, with their state kept in the store across a restart."""

from __future__ import annotations

from sqlalchemy import func, select

from macha.config import load_settings
from macha.monitor.checks.metrics import run_metrics
from macha.monitor.collect.metrics import MetricSample, sample
from macha.store.db import Store
from macha.store.models import SystemMetric, TriggerEvent


def test_a_real_sample_has_the_host_vitals() -> None:
    samples = {s.key: s for s in sample()}
    for name in ("cpu_percent", "memory_percent", "swap_percent", "disk_percent{mount=/}", "inode_percent{mount=/}"):
        assert name in samples and 0 <= samples[name].value <= 100, name
    assert samples["load_per_core"].value >= 0


def test_pressure_stall_information_is_read_where_present(tmp_path) -> None:
    (tmp_path / "memory").write_text("some avg10=1.50 avg60=0.80 avg300=0.20 total=1234\n"
                                     "full avg10=12.25 avg60=3.00 avg300=1.00 total=999\n")
    values = {s.name: s.value for s in sample(pressure_dir=tmp_path)}
    assert values["psi_memory_some_avg10"] == 1.5 and values["psi_memory_full_avg10"] == 12.25


def _memory(value: float) -> list[MetricSample]:
    return [MetricSample("memory_percent", value, "%")]


def test_hysteresis_and_sustain_over_a_scripted_sequence(db_url, tmp_path) -> None:
    # memory_percent: raise at 90 for 3 samples in a row, clear below 80.
    settings = load_settings(hostname="m1", state_dir=tmp_path / "s")
    sequence = [95, 50,            # a single spike: nothing
                92, 93, 94,        # three in a row: raised (at the third)
                89, 85, 91, 88,    # hovering between 80 and 90, even touching 91: stays raised, no new alert
                79,                # below 80: cleared
                95, 95]            # two in a row: not yet
    store = Store(db_url)
    kinds = []
    for i, value in enumerate(sequence):
        if i == 7:
            store.dispose()
            store = Store(db_url)  # a restart: the state comes back from the store
        result = run_metrics(store, settings, samples=_memory(value))
        kinds.append(("raise" if result.raised else "") + ("clear" if result.cleared else ""))
    assert kinds == ["", "", "", "", "raise", "", "", "", "", "clear", "", ""]
    with store.session() as s:
        events = list(s.execute(select(TriggerEvent).order_by(TriggerEvent.id)).scalars())
        assert [(e.pattern_id, e.severity) for e in events] == [("metric_raise:memory_percent", "high"),
                                                                ("metric_clear:memory_percent", "info")]
        assert "memory_percent is 94%: at or above 90 for 3 sample(s)" in events[0].trigger_reason
        assert s.execute(select(func.count()).select_from(SystemMetric)).scalar() == len(sequence)
    store.dispose()


def test_operators_thresholds_change_one_series_and_keep_the_rest(tmp_path) -> None:
    settings = load_settings(hostname="m2", state_dir=tmp_path / "s",
                             thresholds={"disk_percent": {"raise_at": 50, "clear_at": 40, "sustain": 1}})
    assert settings.thresholds["disk_percent"].raise_at == 50
    assert settings.thresholds["memory_percent"].raise_at == 90  # a default kept
    store = Store(settings.effective_database_url)
    samples = [MetricSample("disk_percent", 55.0, "%", {"mount": "/var"}),
               MetricSample("disk_percent", 30.0, "%", {"mount": "/"})]
    assert run_metrics(store, settings, samples=samples).raised == ["disk_percent{mount=/var}"]
    assert run_metrics(store, settings, samples=samples).raised == []  # steady: not raised again every check
    store.dispose()
