"""Benchmark: building the context window from a big store.

The store: 1,000,000 system_metrics rows (12 metrics every 30 s for ~29 days), 100,000 journal events with their
log events and templates (98,000 reviewed over the last 3 days, 2,000 pending: a burst of failed logins plus a
few dozen other templates). The window: the whole default section set, 30,000-token budget, no semantic memory
(its cost is the embedding model's, measured in bench/memory if at all).

Baseline, measured in the same run: loading the same pending and last-24-h events as ORM rows and grouping them
in Python, the way the first review prompt did before the window existed.

    .venv/bin/python bench/window.py --url sqlite:////tmp/macha-bench-window.db [--runs 20]
    .venv/bin/python bench/window.py --url postgresql+psycopg2://postgres@127.0.0.1/macha_bench

The store is filled once (reused when it already holds the data).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timeseries_data import fill_metrics  # noqa: E402
from macha.context.window import build_window  # noqa: E402
from macha.monitor.checks.journal import ensure_host  # noqa: E402
from macha.monitor.templates import assign_templates  # noqa: E402
from macha.store.db import Store  # noqa: E402
from macha.store.models import LogEvent, Review, SystemMetric, TriggerEvent  # noqa: E402

HOST = "bench-host"
END = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
EVENTS = 100_000
PENDING = 2_000
MESSAGES = [
    ("auth_failure", "medium", "sshd.service", "Failed password for {u} from 203.0.{a}.{b} port {p} ssh2"),
    ("auth_failure", "medium", "sshd.service", "Invalid user {u} from 198.51.{a}.{b} port {p}"),
    ("oom_kill", "critical", None, "Out of memory: Killed process {p} (java) total-vm:{a}kB, anon-rss:{b}kB"),
    ("segfault", "high", "app.service", "app[{p}]: segfault at {a} ip 00007f{b:06x} sp 00007ffc error 4 in libc.so.6"),
    ("io_error", "high", None, "blk_update_request: I/O error, dev sd{d}, sector {p} op 0x0:(READ)"),
    ("unit_failed", "high", "nginx.service", "nginx.service: Failed with result 'exit-code'."),
    ("disk_full", "high", None, "EXT4-fs warning (device sd{d}1): ext4_dx_add_entry: Directory index full!"),
] + [("error_priority", "low", f"svc{i}.service", f"svc{i} worker {{p}} request {{a}} failed: timeout after {{b}} ms")
     for i in range(40)]


def fill_events(store: Store) -> None:
    rng = random.Random(3)
    users = ["root", "admin", "oracle", "test", "ubuntu", "git", "postgres"]
    with store.session() as s:
        review = Review(hostname=HOST, status="degraded", summary="bench", reviewer="rules", event_count=0,
                        payload={"issues": [{"title": f"issue {i}", "severity": "high", "occurrences": 3}
                                            for i in range(10)]}, created_at=END - timedelta(minutes=5))
        s.add(review)
        s.flush()
        review_id = review.id
    for start in range(0, EVENTS, 5_000):
        batch = []
        for i in range(start, min(start + 5_000, EVENTS)):
            pending = i >= EVENTS - PENDING
            pattern, sev, unit, fmt = MESSAGES[0] if pending and rng.random() < 0.9 else rng.choice(MESSAGES)
            msg = fmt.format(u=rng.choice(users), a=rng.randint(0, 255), b=rng.randint(1, 254),
                             p=rng.randint(1024, 65535), d="abc"[rng.randint(0, 2)])
            t = END - timedelta(minutes=rng.uniform(0, 10)) if pending else END - timedelta(hours=rng.uniform(0.2, 72))
            batch.append((i, pending, pattern, sev, unit, msg, t))
        with store.session() as s:
            tids = assign_templates(s, HOST, [b[5] for b in batch])
            s.execute(insert(LogEvent), [
                {"time": t, "hostname": HOST, "severity": sev, "message": msg, "unit": unit, "source": "bench",
                 "entry_key": f"e{i}", "template_id": tid, "meta": {}}
                for (i, _, _, sev, unit, msg, t), tid in zip(batch, tids)])
            ids = dict(s.execute(select(LogEvent.entry_key, LogEvent.id)
                                 .where(LogEvent.entry_key.in_([f"e{b[0]}" for b in batch]))).all())
            s.execute(insert(TriggerEvent), [
                {"time": t, "hostname": HOST, "trigger_type": "journal_pattern", "trigger_reason": msg[:300],
                 "severity": sev, "pattern_id": pattern, "fingerprint": f"{pattern}:{unit}",
                 "log_event_id": ids[f"e{i}"], "review_id": None if pending else review_id, "meta": {}}
                for i, pending, pattern, sev, unit, msg, t in batch])


def baseline(store: Store) -> int:
    """Load the pending and last-24-h events as rows and group them in Python, as the first prompt did."""
    with store.session() as s:
        rows = list(s.execute(select(TriggerEvent).where(
            TriggerEvent.hostname == HOST,
            (TriggerEvent.review_id.is_(None)) | (TriggerEvent.time >= END - timedelta(hours=24)))).scalars())
        groups: dict[tuple, list] = defaultdict(list)
        for ev in rows:
            groups[(ev.pattern_id, (ev.meta or {}).get("unit") or "")].append(ev)
        lines = [f"{k} x{len(v)} {v[0].trigger_reason[:400]}" for k, v in groups.items()]
    return len("\n".join(lines))


def measure(fn, runs: int) -> tuple[float, float]:
    """Median seconds and peak traced memory (MiB) of ``fn``."""
    times = []
    fn()  # warm caches (SQLite pages, tokenizer) once
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), peak


def fresh_process_rss(url: str, budget: int) -> str:
    """RSS of a new process before and after building windows: the memory a worker pays for them."""
    # VmHWM, not ru_maxrss: the latter survives exec and would report this (parent) process's peak.
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from bench.window import HOST, END
from macha.context.window import build_window
from macha.store.db import Store
import psutil
from macha.context.tokens import count
count("warm")  # the cl100k tables (~40 MiB) are loaded once per process, whatever the window
store = Store({url!r})
before = psutil.Process().memory_info().rss / 2**20
for _ in range(5):
    build_window(store, HOST, {budget}, now=END)
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024
print(f"RSS {{before:.0f}} MiB after imports and tokenizer, peak {{hwm:.0f}} MiB (+{{hwm - before:.0f}} MiB)")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return out.stdout.strip() or out.stderr.strip()[-300:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="sqlite:////tmp/macha-bench-window.db")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--budget", type=int, default=30_000)
    args = ap.parse_args()
    store = Store(args.url)
    ensure_host(store, HOST, {"os": "NixOS 25.05 (Warbler)", "kernel": "Linux 6.12.1 x86_64", "uptime": "12d 3h"})
    with store.session() as s:
        have_metrics = s.execute(select(func.count()).select_from(SystemMetric)).scalar()
        have_events = s.execute(select(func.count()).select_from(TriggerEvent)).scalar()
    if have_metrics < 1_000_000:
        t0 = time.perf_counter()
        fill_metrics(store, HOST, metrics=12, days=29, step_s=30, seed=1, end=END)
        print(f"filled metrics in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if have_events < EVENTS:
        t0 = time.perf_counter()
        fill_events(store)
        print(f"filled events in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    with store.session() as s:
        n_metrics = s.execute(select(func.count()).select_from(SystemMetric)).scalar()
        n_events = s.execute(select(func.count()).select_from(TriggerEvent)).scalar()

    window = build_window(store, HOST, args.budget, now=END)
    ours, ours_peak = measure(lambda: build_window(store, HOST, args.budget, now=END), args.runs)
    base, base_peak = measure(lambda: baseline(store), max(3, args.runs // 4))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fresh = fresh_process_rss(args.url, args.budget)
    print(f"store: {store.dialect}, {n_metrics:,} metric rows, {n_events:,} events ({PENDING:,} pending)")
    print(f"window: {window.tokens:,} of {args.budget:,} tokens, {len(window.sections)} sections, "
          f"notes: {'; '.join(window.notes) or 'none'}")
    print(f"build_window: median {ours * 1000:.0f} ms, peak traced memory {ours_peak:.1f} MiB")
    print(f"baseline (rows grouped in Python): median {base * 1000:.0f} ms, peak traced memory {base_peak:.1f} MiB")
    print(f"ratio: window is {base / ours:.1f}x faster than the baseline; this process's max RSS {rss:.0f} MiB "
          f"(it also filled the store and ran the baseline)")
    print(f"a fresh process building 5 windows: {fresh}")
    store.dispose()


if __name__ == "__main__":
    main()
