"""Benchmark: learned metric baselines on a replayed week with injected anomalies.

A host's 13 series (CPU, memory, swap, load, two mounts' space and inodes, five PSI averages) are generated every
30 s for two weeks: daily seasonality (busy office hours, quiet weekends), noise, hourly cron blips, a nightly
backup (02:00-02:40: CPU, I/O pressure, /var grows then shrinks back), a weekly RAID scrub (Sunday 03:00-04:30),
slow trends (disks fill, memory creeps), and day-to-day variation. Week 1 is learned; week 2 is replayed with
anomalies injected (level shifts, 5-minute spikes, slow leaks, flat lines, variance bursts). Every sample goes
through `run_metrics` into a real SQLite store, on a simulated clock, as the 30 s check does.

Reported: recall per anomaly kind (an `anomalous` event on the anomaly's series while it lasts), its delay, and
false alarms per day (an `anomalous` event on a series with no anomaly then, nor in the hour after one), in the
learned week's last five days (after the two-day learning period) and in the replayed week. The per-check cost is
a ratio against run_metrics with baselines disabled, measured in the same run.

    .venv/bin/python bench/baselines.py [--seed 1] [--sensitivity medium] [--sustain 5]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from macha.config import load_settings  # noqa: E402
from macha.monitor.checks.metrics import run_metrics  # noqa: E402
from macha.monitor.collect.metrics import MetricSample  # noqa: E402
from macha.store.db import Store  # noqa: E402
from macha.store.models import TriggerEvent  # noqa: E402

HOST = "bench-host"
STEP = timedelta(seconds=30)
#: A Monday, 00:00 UTC.
START = datetime(2026, 11, 2, tzinfo=timezone.utc)
WEEK = 7 * 24 * 120
#: An event this long after an anomaly ends, on its series, is its after-effect, not a false alarm.
AFTER = timedelta(hours=1)

#: name, labels, unit
SERIES = [
    ("cpu_percent", {}, "%"), ("memory_percent", {}, "%"), ("swap_percent", {}, "%"), ("load_per_core", {}, "load"),
    ("disk_percent", {"mount": "/"}, "%"), ("inode_percent", {"mount": "/"}, "%"),
    ("disk_percent", {"mount": "/var"}, "%"), ("inode_percent", {"mount": "/var"}, "%"),
    ("psi_cpu_some_avg10", {}, "%"), ("psi_memory_some_avg10", {}, "%"), ("psi_memory_full_avg10", {}, "%"),
    ("psi_io_some_avg10", {}, "%"), ("psi_io_full_avg10", {}, "%"),
]


def key(name: str, labels: dict[str, str]) -> str:
    return MetricSample(name, 0.0, "", labels).key


@dataclass(frozen=True)
class Anomaly:
    kind: str
    series: str
    start: datetime
    hours: float
    size: float

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


def anomalies() -> list[Anomaly]:
    """Week 2's injected anomalies: three or four of each kind, on different series, days and hours."""
    w2 = START + timedelta(days=7)

    def at(day: int, hour: float) -> datetime:
        return w2 + timedelta(days=day, hours=hour)

    return [
        Anomaly("level shift", "memory_percent", at(0, 10.2), 3, 14),
        Anomaly("level shift", "cpu_percent", at(1, 3.5), 2, 30),
        Anomaly("level shift", "load_per_core", at(2, 15.1), 2, 1.2),
        Anomaly("level shift", "psi_io_some_avg10", at(5, 11.3), 2, 15),
        Anomaly("spike 5 min", "cpu_percent", at(0, 16.4), 5 / 60, 95),
        Anomaly("spike 5 min", "psi_io_full_avg10", at(2, 9.7), 5 / 60, 45),
        Anomaly("spike 5 min", "load_per_core", at(3, 22.2), 5 / 60, 3.5),
        Anomaly("spike 5 min", "psi_memory_full_avg10", at(6, 13.1), 5 / 60, 30),
        Anomaly("slow leak", "memory_percent", at(3, 8.0), 8, 3.0),          # +3 points an hour
        Anomaly("slow leak", "disk_percent{mount=/var}", at(4, 1.0), 6, 1.5),
        Anomaly("slow leak", "swap_percent", at(5, 18.0), 6, 2.0),
        Anomaly("flat line", "cpu_percent", at(4, 13.0), 1, 0),
        Anomaly("flat line", "psi_cpu_some_avg10", at(1, 20.5), 1, 0),
        Anomaly("flat line", "load_per_core", at(6, 9.4), 1, 0),
        Anomaly("variance burst", "cpu_percent", at(2, 21.0), 0.5, 6),
        Anomaly("variance burst", "psi_io_some_avg10", at(3, 14.5), 0.5, 5),
        Anomaly("variance burst", "memory_percent", at(5, 4.2), 0.5, 8),
    ]


class Host:
    """The host's series at a time, with noise, from a seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.day_scale: dict[int, float] = {}
        self.swap = 2.0
        self.last: dict[str, float] = {}
        self.stuck: dict[Anomaly, float] = {}

    def activity(self, t: datetime) -> float:
        """0 at night, up to about 1 in office hours; weekends are quieter; each day a little different."""
        day = (t - START).days
        if day not in self.day_scale:
            self.day_scale[day] = self.rng.uniform(0.8, 1.2)
        h = t.hour + t.minute / 60
        act = max(0.0, math.sin(math.pi * (h - 7) / 14)) ** 1.5 if 7 <= h <= 21 else 0.0
        return act * self.day_scale[day] * (0.35 if t.weekday() >= 5 else 1.0)

    def values(self, t: datetime, noisy: bool = True) -> dict[str, float]:
        g = self.rng.gauss if noisy else (lambda mu, sigma: mu)
        days = (t - START).total_seconds() / 86400
        act = self.activity(t)
        h = t.hour + t.minute / 60
        backup = 2.0 <= h < 2 + 40 / 60
        scrub = t.weekday() == 6 and 3.0 <= h < 4.5
        cron = t.minute == 0
        if noisy and self.rng.random() < 0.0005:  # swap moves now and then by a little
            self.swap = max(0.0, self.swap + self.rng.choice((-0.1, 0.1)))
        return {
            "cpu_percent": 6 + 32 * act + 25 * backup + 8 * scrub + 12 * cron + g(0, 1.5 + 3 * act),
            "memory_percent": 38 + 16 * act + 0.3 * days + 4 * backup + g(0, 0.4),
            "swap_percent": self.swap,
            "load_per_core": 0.08 + 0.7 * act + 0.6 * backup + 0.3 * scrub + abs(g(0, 0.04 + 0.08 * act)),
            # Logs grow through the day and are rotated and compressed at midnight; the disk fills slowly.
            "disk_percent{mount=/}": 55 + 0.2 * int(days) + 0.3 * (days % 1) + g(0, 0.005),
            "inode_percent{mount=/}": 12 + 0.02 * days,
            # The backup writes its archive to /var and ships it off.
            "disk_percent{mount=/var}": 40 + 0.5 * days + (2.5 * (h - 2) / (40 / 60) if backup else 0) + g(0, 0.01),
            "inode_percent{mount=/var}": 8 + 0.05 * days + (0.5 if backup else 0),
            "psi_cpu_some_avg10": (0.3 + 9 * act + 12 * backup) * math.exp(g(0, 0.35)),
            "psi_memory_some_avg10": 0.05 * math.exp(g(0, 0.5)) + (2.0 * math.exp(g(0, 0.5)) if backup else 0),
            "psi_memory_full_avg10": 0.8 * math.exp(g(0, 0.5)) if backup else 0.0,
            "psi_io_some_avg10": (0.8 + 3 * act + 28 * backup + 35 * scrub) * math.exp(g(0, 0.3)),
            "psi_io_full_avg10": (0.2 + 1 * act + 14 * backup + 18 * scrub) * math.exp(g(0, 0.35)),
        }

    def inject(self, t: datetime, v: dict[str, float], active: list[Anomaly]) -> None:
        base = self.values(t, noisy=False) if active else {}
        for a in active:
            x = v[a.series]
            if a.kind == "level shift":
                x += a.size
            elif a.kind == "spike 5 min":
                x = a.size * math.exp(self.rng.gauss(0, 0.05))
            elif a.kind == "slow leak":
                x += a.size * (t - a.start).total_seconds() / 3600
            elif a.kind == "flat line":  # the collector is stuck: the last value, again and again
                x = self.stuck.setdefault(a, self.last.get(a.series, x))
            elif a.kind == "variance burst":
                x = base[a.series] + (x - base[a.series]) * a.size
            v[a.series] = x
        self.last.update(v)


def clip(name: str, x: float) -> float:
    return min(max(x, 0.0), 100.0) if not name.startswith("load") else max(x, 0.0)


def samples_at(host: Host, t: datetime, injected: list[Anomaly]) -> list[MetricSample]:
    v = host.values(t)
    host.inject(t, v, [a for a in injected if a.start <= t < a.end])
    return [MetricSample(n, round(clip(n, v[key(n, lab)]), 3), u, lab) for n, lab, u in SERIES]


def replay(store: Store, settings, seed: int, injected: list[Anomaly], steps: int) -> float:
    """Every sample through run_metrics; returns the wall seconds."""
    host = Host(seed)
    started = time.perf_counter()
    for i in range(steps):
        t = START + i * STEP
        run_metrics(store, settings, HOST, samples_at(host, t, injected), now=t)
        if i % 2880 == 0:
            print(f"  day {i // 2880 + 1}", file=sys.stderr, flush=True)
    return time.perf_counter() - started


def cost(tmp: Path, seed: int, enable: bool, steps: int = 1500) -> float:
    settings = load_settings(hostname=HOST, state_dir=tmp / f"cost-{enable}",
                             detection={"baselines": {"enable": enable}})
    store = Store(f"sqlite:///{tmp / f'cost-{enable}.db'}")
    seconds = replay(store, settings, seed, [], steps)
    store.dispose()
    return seconds / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sensitivity", default="medium", choices=["low", "medium", "high"])
    ap.add_argument("--sustain", type=int, default=None, help="default: the setting's default")
    ap.add_argument("--no-cost", action="store_true", help="skip the per-check cost comparison")
    args = ap.parse_args()
    injected = anomalies()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        baselines = {"sensitivity": args.sensitivity}
        if args.sustain:
            baselines["sustain"] = args.sustain
        settings = load_settings(hostname=HOST, state_dir=tmp / "s", detection={"baselines": baselines})
        store = Store(f"sqlite:///{tmp / 'macha.db'}")
        seconds = replay(store, settings, args.seed, injected, 2 * WEEK)
        with store.session() as s:
            events = [(e.time, e.meta["series"], e.severity, e.trigger_reason) for e in s.execute(
                select(TriggerEvent).where(TriggerEvent.pattern_id.like("metric_anomalous:%"))
                .order_by(TriggerEvent.time)).scalars()]
        store.dispose()
        per_check = (cost(tmp, args.seed, False), cost(tmp, args.seed, True)) if not args.no_cost else None
    report(settings, injected, events, seconds, per_check)


def report(settings, injected: list[Anomaly], events: list, seconds: float, per_check) -> None:
    cfg = settings.detection.baselines
    week2 = START + timedelta(days=7)
    print(f"baselines: sensitivity {cfg.sensitivity}, sustain {cfg.sustain}, learning period {cfg.learning_period}; "
          f"{len(SERIES)} series, {2 * WEEK} checks replayed in {seconds:.0f} s")
    found: dict[Anomaly, datetime] = {}
    false, after = [], []
    for t, series, severity, reason in events:
        hits = [a for a in injected if a.series == series and a.start <= t < a.end]
        if hits:
            found.setdefault(hits[0], t)
        elif any(a.series == series and a.end <= t < a.end + AFTER for a in injected):
            after.append((t, series, reason))
        else:
            false.append((t, series, severity, reason))
    by_kind: dict[str, list[Anomaly]] = defaultdict(list)
    for a in injected:
        by_kind[a.kind].append(a)
    print("\n| anomaly | injected | detected | recall | median delay |\n| --- | --- | --- | --- | --- |")
    total = 0
    for kind, items in by_kind.items():
        hit = [a for a in items if a in found]
        total += len(hit)
        delays = sorted((found[a] - a.start).total_seconds() / 60 for a in hit)
        delay = f"{delays[len(delays) // 2]:.1f} min" if delays else "-"
        print(f"| {kind} | {len(items)} | {len(hit)} | {len(hit) / len(items):.2f} | {delay} |")
    print(f"| all | {len(injected)} | {total} | {total / len(injected):.2f} | |")
    for a in injected:
        if a not in found:
            print(f"  missed: {a.kind} on {a.series} at {a.start:%a %H:%M} for {a.hours:g} h")
    week1 = [f for f in false if START + timedelta(days=2) <= f[0] < week2]
    week2_false = [f for f in false if f[0] >= week2]
    print(f"\nfalse alarms: learned week (days 3-7) {len(week1)} = {len(week1) / 5:.2f} a day; "
          f"replayed week {len(week2_false)} = {len(week2_false) / 7:.2f} a day (goal <= 1 a day per host)")
    print(f"after-effects (an event on the series within {AFTER} after its anomaly ended): {len(after)}")
    for t, series, severity, reason in false:
        print(f"  false: {t:%a %d %H:%M} {severity} {reason[:160]}")
    sev = defaultdict(int)
    for _, _, severity, _ in events:
        sev[severity] += 1
    print(f"anomalous events by severity: {dict(sev)}")
    if per_check:
        off, on = per_check
        print(f"\nper check ({len(SERIES)} series, SQLite): {off * 1000:.2f} ms without baselines, "
              f"{on * 1000:.2f} ms with ({on / off:.2f}x)")


if __name__ == "__main__":
    main()
