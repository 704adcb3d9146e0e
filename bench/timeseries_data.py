"""Fill system_metrics with a host's samples quickly, for the time-series benchmark and tests.

    from bench.timeseries_data import fill_metrics
    fill_metrics(store, "bench-host", metrics=12, days=29, step_s=30, seed=1)   # ~1,000,000 rows

Run as a script to build a store and time summary() on it:

    .venv/bin/python bench/timeseries_data.py --url sqlite:////tmp/ts.db [--days 29] [--runs 50]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from macha.store.db import Store  # noqa: E402
from macha.store.models import SystemMetric  # noqa: E402

NAMES = ["cpu_percent", "memory_percent", "swap_percent", "load_per_core", "disk_percent", "inode_percent",
         "psi_cpu_some_avg10", "psi_memory_some_avg10", "psi_memory_full_avg10", "psi_io_some_avg10",
         "psi_io_full_avg10", "net_errors"]
CHUNK = 20_000


def metric_name(i: int) -> str:
    return NAMES[i] if i < len(NAMES) else f"metric_{i:03d}"


def fill_metrics(store: Store, hostname: str, metrics: int, days: float, step_s: int, seed: int,
                 end: datetime | None = None) -> int:
    """Insert ``metrics`` series sampled every ``step_s`` seconds for ``days`` up to ``end`` (default: now, whole
    seconds); each series is a daily wave plus a bounded random walk. Returns the number of rows inserted."""
    rng = random.Random(seed)
    end = (end or datetime.now(timezone.utc)).replace(microsecond=0)
    steps = int(days * 86400 // step_s)
    start = end - timedelta(seconds=(steps - 1) * step_s)
    names = [metric_name(i) for i in range(metrics)]
    level = {n: rng.uniform(10, 60) for n in names}
    table = SystemMetric.__table__
    rows: list[dict] = []
    total = 0
    for k in range(steps):
        t = start + timedelta(seconds=k * step_s)
        wave = 10 * math.sin(2 * math.pi * (k * step_s % 86400) / 86400)
        for n in names:
            level[n] = min(90.0, max(0.0, level[n] + rng.gauss(0, 0.5)))
            rows.append({"time": t, "hostname": hostname, "metric_name": n, "value": round(level[n] + wave, 3),
                         "unit": "%", "metadata": {}})
        if len(rows) >= CHUNK:
            total += _flush(store, table, rows)
    return total + _flush(store, table, rows)


def _flush(store: Store, table, rows: list[dict]) -> int:
    if rows:
        with store.session() as s:
            s.execute(table.insert(), rows)
    n = len(rows)
    rows.clear()
    return n


def main() -> None:
    from macha.store.timeseries import summary

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="SQLAlchemy URL of an empty (or already filled) store")
    p.add_argument("--host", default="bench-host")
    p.add_argument("--metrics", type=int, default=12)
    p.add_argument("--days", type=float, default=29)
    p.add_argument("--step", type=int, default=30)
    p.add_argument("--runs", type=int, default=50)
    args = p.parse_args()
    store = Store(args.url)
    with store.session() as s:
        have = s.execute(select(func.count()).select_from(SystemMetric)
                         .where(SystemMetric.hostname == args.host)).scalar()
    if not have:
        t0 = time.perf_counter()
        have = fill_metrics(store, args.host, args.metrics, args.days, args.step, seed=1)
        print(f"filled {have:,} rows in {time.perf_counter() - t0:.1f} s")
        if store.dialect == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE system_metrics")
        else:
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
    with store.session() as s:
        now = s.execute(select(func.max(SystemMetric.time)).where(SystemMetric.hostname == args.host)).scalar()
    times = []
    for _ in range(args.runs):
        with store.session() as s:
            t0 = time.perf_counter()
            result = summary(s, args.host, now)
            times.append((time.perf_counter() - t0) * 1000)
    first, ordered = times[0], sorted(times)
    print(f"{store.dialect}: {have:,} rows, {len(result)} metrics; summary() over {args.runs} runs: "
          f"first {first:.1f} ms, median {statistics.median(ordered):.1f} ms, "
          f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.1f} ms, max {ordered[-1]:.1f} ms")


if __name__ == "__main__":
    main()
