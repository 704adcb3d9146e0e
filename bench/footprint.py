"""Benchmark: idle footprint of `macha-ai` on the embedded default at the 30 s interval.

Starts a real `macha-ai` with the defaults: embedded Redis, worker with beat, live follower, metrics and services.
It follows an empty journal directory, so the host's own journal does not feed it. After a warm-up the
benchmark measures, over a window:
- the CPU time of the whole process tree (supervisor, worker and its children, beat, follower, journalctl,
  Redis), as a percent of one core;
- the sum of the tree's resident memory (RSS), and its proportional set size (PSS: pages shared between
  processes, such as a forked pool child's, counted once);
- both per process.

The baseline, measured in the same run, is a bare `python -c "import time; time.sleep(...)"` process: what one
Python process costs when idle. The floor, also measured, is a process that has only imported Macha's Celery app
and tasks: what any one worker costs before it runs anything.

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


def pss_mb(procs: list[psutil.Process]) -> float:
    """Proportional set size: shared pages (a forked child's, a library's) counted once over the processes."""
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
            pass
    return total / 2**20


def label(p: psutil.Process) -> str:
    try:
        cmd = p.cmdline()
    except psutil.NoSuchProcess:
        return "?"
    text = " ".join(cmd)
    for key, name in (("redis-server", "redis-server (embedded)"), ("journalctl", "journalctl -f"),
                      ("macha.cli.follow", "follower"), ("--queues gpu", "gpu worker"),
                      ("celery", "worker"), ("macha-ai", "macha-ai (supervisor)")):
        if key in text:
            return name
    return text[:40]


def processes(pid: int, extra: list[int]) -> list[psutil.Process]:
    procs = {p.pid: p for p in tree(pid)}
    for other in extra:
        if other not in procs and psutil.pid_exists(other):
            procs[other] = psutil.Process(other)
    return list(procs.values())


def measure(pid: int, extra: list[int], warmup: float, window: float, detail: bool = False):
    time.sleep(warmup)
    procs = processes(pid, extra)
    start = {p.pid: cpu_seconds([p]) for p in procs}
    c0, t0 = cpu_seconds(procs), time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    procs = processes(pid, extra)
    if detail:
        print(f"{'process':28} {'pid':>7} {'CPU %':>6} {'RSS MB':>7} {'PSS MB':>7}")
        for p in procs:
            cpu = 100 * (cpu_seconds([p]) - start.get(p.pid, 0.0)) / elapsed
            print(f"{label(p):28} {p.pid:7} {cpu:6.2f} {rss_mb([p]):7.1f} {pss_mb([p]):7.1f}")
    return 100 * (cpu_seconds(procs) - c0) / elapsed, rss_mb(procs), pss_mb(procs), len(procs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--window", type=float, default=180)
    args = ap.parse_args()
    from helpers.journal import Entry, build_journal

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
        # The floor of any Celery worker of Macha's: a process that has only imported the app and its tasks.
        floor = subprocess.Popen([sys.executable, "-c", "import workers.tasks, time; time.sleep(100000)"],
                                 env=env, cwd=ROOT)
        try:
            # The embedded Redis daemonises out of the tree: find it by its socket path.
            time.sleep(10)
            redis = [p.pid for p in psutil.process_iter(["cmdline"])
                     if "redis-server" in " ".join(p.info["cmdline"] or []) and tmp in " ".join(p.info["cmdline"])]
            cpu, rss, pss, n = measure(ai.pid, redis, args.warmup, args.window, detail=True)
            base_cpu, base_rss, base_pss, _ = measure(idle.pid, [], 0, min(args.window, 30))
            floor_rss = rss_mb(tree(floor.pid))
        finally:
            floor.kill()
            os.killpg(ai.pid, signal.SIGTERM)
            ai.wait(timeout=60)
            idle.kill()
    print(f"macha-ai (embedded default, {n} processes): CPU {cpu:.2f}% of one core, RSS {rss:.0f} MB, "
          f"PSS {pss:.0f} MB")
    print(f"baseline (one idle Python process): CPU {base_cpu:.2f}%, RSS {base_rss:.0f} MB, PSS {base_pss:.0f} MB")
    print(f"floor (one Python process with Macha's Celery app and tasks imported, nothing run): RSS {floor_rss:.0f} MB")
    print(f"ratio: CPU {cpu / max(base_cpu, 0.01):.0f}x, RSS {rss / base_rss:.1f}x the idle Python process")


if __name__ == "__main__":
    main()
