"""Benchmark: the dashboard's reads on a big store, through a real `macha-web` process over HTTP.

The store holds ~1,000,000 metric rows (12 series every 30 s for 29 days, bench/timeseries_data.py) and 100,000
events (log events, a fifth of them with a trigger event) of one host, plus nine quieter hosts. Measured per
request, client side (httpx on loopback, token auth):

- host page: /api/v1/hosts/HOST (health score and reasons, failed units, latest review, current metrics)
- 24 h chart: 5 series in one request, /api/v1/hosts/HOST/chart?name=..x5&since=-24h (what the host page asks);
  for comparison the same 5 series as 5 requests of /api/v1/metrics (how the page asked before)
- events page with filters: /events?host&severity=high&unit&since=-24h (the server-rendered page)
- fleet page: / (every host, pending approvals)

The baseline, in the same run and process, is /healthz: the cost of a request through uvicorn, FastAPI and the
guards with no database work. The machine's load average is printed with the results: on a shared machine the
ratios to the baseline are steadier than the milliseconds. Also the web process's resident memory when idle:
after start-up and one request of each kind, and again after the run.

    .venv/bin/python bench/web_read.py --url sqlite:////tmp/web-bench.db [--requests 200]
    .venv/bin/python bench/web_read.py --url postgresql+psycopg2://postgres@127.0.0.1:5432/macha_bench
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psutil
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timeseries_data import fill_metrics  # noqa: E402
from macha.store.db import Store  # noqa: E402
from macha.store.models import Host, LogEvent, SystemMetric, TriggerEvent  # noqa: E402

HOST = "bench-host"
UNITS = ["nginx.service", "postgresql.service", "sshd.service", "cron.service", "app@1.service"]
SEVERITIES = ["info", "low", "medium", "high", "critical"]


def fill_events(store: Store, hostname: str, n: int, days: float, seed: int) -> int:
    rng = random.Random(seed)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    with store.session() as s:
        first = (s.execute(select(func.max(LogEvent.id))).scalar() or 0) + 1
    logs, triggers = [], []
    for i in range(n):
        t = start + timedelta(seconds=span * i / n)
        sev = rng.choices(SEVERITIES, weights=[50, 25, 15, 8, 2])[0]
        unit = rng.choice(UNITS)
        logs.append({"id": first + i, "time": t, "stored_at": t, "hostname": hostname, "severity": sev,
                     "message": f"{unit}: request {rng.randint(1, 10**6)} took {rng.randint(1, 5000)} ms "
                                f"(worker {rng.randint(1, 64)})",
                     "unit": unit, "source": "journal", "entry_key": f"k{first + i}", "metadata": {"priority": 3}})
        if i % 5 == 0:
            triggers.append({"time": t, "stored_at": t, "hostname": hostname, "trigger_type": "journal_pattern",
                             "trigger_reason": f"{unit} slow", "severity": sev, "pattern_id": "slow_request",
                             "fingerprint": f"f{i % 97}", "log_event_id": first + i, "metadata": {"unit": unit},
                             "count": 1 + i % 7, "last_seen": t})
        if len(logs) >= 20_000:
            _flush(store, logs, triggers)
    _flush(store, logs, triggers)
    return n


def _flush(store: Store, logs: list[dict], triggers: list[dict]) -> None:
    with store.session() as s:
        if logs:
            s.execute(LogEvent.__table__.insert(), logs)
        if triggers:
            s.execute(TriggerEvent.__table__.insert(), triggers)
    logs.clear()
    triggers.clear()


def build(url: str) -> None:
    store = Store(url)
    with store.session() as s:
        have = s.execute(select(func.count()).select_from(SystemMetric)).scalar()
    if have < 900_000:
        print("filling the store (once per URL)...", flush=True)
        now = datetime.now(timezone.utc)
        with store.session() as s:
            for i in range(10):
                s.add(Host(hostname=HOST if i == 0 else f"quiet-{i}", first_seen=now - timedelta(days=30),
                           last_seen=now))
        fill_metrics(store, HOST, metrics=12, days=29, step_s=30, seed=1)
        fill_events(store, HOST, 100_000, days=29, seed=2)
    with store.session() as s:
        rows = s.execute(select(func.count()).select_from(SystemMetric)).scalar()
        events = s.execute(select(func.count()).select_from(LogEvent)).scalar()
    print(f"store: {rows:,} metric rows, {events:,} log events")
    store.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(client: httpx.Client, paths: list[str], n: int) -> list[float]:
    for path in paths:  # warm: first-request costs (imports, plans) are not the steady state
        assert client.get(path).status_code == 200, (path, client.get(path).text[:300])
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    build(args.url)
    state = Path(tempfile.mkdtemp(prefix="macha-web-bench-"))
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k != "MACHA_BENCH_REDIS"}, "MACHA_STATE_DIR": str(state), "MACHA_DATABASE_URL": args.url,
           "MACHA_BROKER_URL": os.environ.get("MACHA_BENCH_REDIS", "redis://127.0.0.1:6379/14"),
           "MACHA_WEB_INTERFACE__PORT": str(port), "MACHA_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "macha.cli.web"], env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", headers={"host": "localhost"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("macha-web did not start")
            time.sleep(0.2)
        token = (state / "secrets" / "web-token").read_text().strip()
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}", "host": "localhost"},
                              timeout=30)
        five = ("cpu_percent", "memory_percent", "swap_percent", "load_per_core", "disk_percent")
        charts = [f"/api/v1/metrics?host={HOST}&name={n}&since=-24h" for n in five]
        chart = f"/api/v1/hosts/{HOST}/chart?since=-24h" + "".join(f"&name={n}" for n in five)
        cases = {
            "baseline /healthz": ["/healthz"],
            "host page API": [f"/api/v1/hosts/{HOST}"],
            "24 h chart, 5 series": [chart],
            "  (as 5 requests)": charts,
            "events page, filtered": [f"/events?host={HOST}&severity=high&unit=nginx&since=-24h"],
            "events API, text filter": [f"/api/v1/events?host={HOST}&text=worker%2042&since=-7d&limit=100"],
            "fleet page": ["/"],
        }
        for paths in cases.values():  # one of each, then the idle memory of a process that has served them all
            for path in paths:
                client.get(path)
        time.sleep(2)
        web = psutil.Process(proc.pid)
        idle_rss = web.memory_info().rss / 2**20
        load_before = os.getloadavg()[0]
        results = {name: timed(client, paths, args.requests) for name, paths in cases.items()}
        load_after = os.getloadavg()[0]
        base = results["baseline /healthz"]
        base_p50, base_p99 = statistics.median(base), pct(base, 99)
        print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {args.url.split(':')[0]}, {os.cpu_count()} cores, "
              f"load average {load_before:.1f} before and {load_after:.1f} after the run")
        print(f"{args.requests} requests each, milliseconds (client side)")
        print(f"{'request':26} {'p50':>8} {'p99':>8} {'max':>8} {'p50 / base':>11} {'p99 / base':>11}")
        for name, values in results.items():
            p50, p99 = statistics.median(values), pct(values, 99)
            print(f"{name:26} {p50:8.1f} {p99:8.1f} {max(values):8.1f} {p50 / base_p50:11.1f} {p99 / base_p99:11.1f}")
        time.sleep(2)
        print(f"web process RSS: {idle_rss:.0f} MiB idle after start-up (one request of each kind), "
              f"{web.memory_info().rss / 2**20:.0f} MiB after the run")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
