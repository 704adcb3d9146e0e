"""Benchmark: idle footprint of `macha-ai` on the embedded default at the 30 s interval.

Starts a real `macha-ai` with the defaults: embedded Redis, worker with beat, live follower, metrics and services.
It follows an empty journal directory, so the host's own journal does not feed it. After a warm-up the
benchmark measures, over a window:
- the CPU time of the whole process tree (supervisor, worker and its children, beat, follower, journalctl,
  Redis), as a percent of one core;
- the sum of the tree's resident memory.

The baseline, measured in the same run, is a bare `python -c "import time; time.sleep(...)"` process: what one
Python process costs when idle.

    .venv/bin/python bench/footprint.py [--warmup 60] [--window 180]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BIN = Path(sys.executable).parent


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def measure(pid: int, extra: list[int], warmup: float, window: float) -> tuple[float, float, int]:
    time.sleep(warmup)
    procs = tree(pid) + [psutil.Process(p) for p in extra if psutil.pid_exists(p)]
    c0, t0 = cpu_seconds(procs), time.monotonic()
    time.sleep(window)
    procs = tree(pid) + [psutil.Process(p) for p in extra if psutil.pid_exists(p)]
    return 100 * (cpu_seconds(procs) - c0) / (time.monotonic() - t0), rss_mb(procs), len(procs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--window", type=float, default=180)
    args = ap.parse_args()
    from journal_export import Entry, build_journal

    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, warm-up {args.warmup:.0f} s, "
          f"window {args.window:.0f} s")
    with tempfile.TemporaryDirectory(prefix="mf-", dir="/tmp") as tmp:
        jdir = Path(tmp) / "j"
        jdir.mkdir()
        build_journal([Entry("boot", priority=6)], jdir / "system.journal")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MACHA_")}
        env.update(MACHA_STATE_DIR=f"{tmp}/s", MACHA_JOURNAL_DIRECTORY=str(jdir), MACHA_HOSTNAME="footprint",
                   MACHA_LLM__BACKEND="none", PATH=f"{BIN}:{env['PATH']}")
        ai = subprocess.Popen([str(BIN / "macha-ai")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100000)"])
        try:
            # The embedded Redis daemonises out of the tree: find it by its socket path.
            time.sleep(10)
            redis = [p.pid for p in psutil.process_iter(["cmdline"])
                     if "redis-server" in " ".join(p.info["cmdline"] or []) and tmp in " ".join(p.info["cmdline"])]
            cpu, rss, n = measure(ai.pid, redis, args.warmup, args.window)
            base_cpu, base_rss, _ = measure(idle.pid, [], 0, min(args.window, 30))
        finally:
            os.killpg(ai.pid, signal.SIGTERM)
            ai.wait(timeout=60)
            idle.kill()
    print(f"macha-ai (embedded default, {n} processes): CPU {cpu:.2f}% of one core, RSS {rss:.0f} MB")
    print(f"baseline (one idle Python process): CPU {base_cpu:.2f}%, RSS {base_rss:.0f} MB")
    print(f"ratio: CPU {cpu / max(base_cpu, 0.01):.0f}x, RSS {rss / base_rss:.1f}x the idle Python process")


if __name__ == "__main__":
    main()
