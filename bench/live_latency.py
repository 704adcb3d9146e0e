"""Benchmark: live latency of a critical journal line, on the embedded default, with a real `macha-ai`.

A journal directory is written to with systemd-journal-remote (append mode), `macha-ai` follows it
(MACHA_JOURNAL_DIRECTORY); for each critical line we measure the time from the append to the stored trigger event
(the follower) and to the stored review (live check -> review). The baseline, measured in the same run, is the
schedule alone (`macha-ai --no-follow`, the seed's 30 s check interval).

    .venv/bin/python bench/live_latency.py [--samples 40] [--baseline-samples 4]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.journal import JOURNAL_REMOTE, Entry, export_bytes  # noqa: E402
from sqlalchemy import select  # noqa: E402

from macha.store.db import Store  # noqa: E402
from macha.store.models import Review, TriggerEvent  # noqa: E402

BIN = Path(sys.executable).parent


def append(directory: Path, message: str) -> float:
    """Returns the time the line was written (just before systemd-journal-remote starts appending it)."""
    export = directory.parent / "append.export"
    export.write_bytes(export_bytes([Entry(message, priority=0)], start_usec=int(time.time() * 1e6)))
    at = time.time()
    subprocess.run([JOURNAL_REMOTE, "-o", str(directory / "remote.journal"), str(export)], check=True,
                   capture_output=True)
    return at


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(samples: int, follow: bool, interval: int) -> tuple[list[float], list[float], float]:
    with tempfile.TemporaryDirectory(prefix="mb-", dir="/tmp") as tmp:
        state, jdir = Path(tmp) / "s", Path(tmp) / "j"
        jdir.mkdir()
        append(jdir, "Started bench.")  # the directory needs a journal before journalctl can follow it
        env = {k: v for k, v in os.environ.items() if not k.startswith("MACHA_")}
        env.update(MACHA_STATE_DIR=str(state), MACHA_JOURNAL_DIRECTORY=str(jdir), MACHA_LLM__BACKEND="none",
                   MACHA_TRIGGER_INTERVAL=str(interval), MACHA_HOSTNAME="bench", PATH=f"{BIN}:{env['PATH']}")
        log = open(Path(tmp) / "ai.log", "wb")
        ai = subprocess.Popen([str(BIN / "macha-ai"), *([] if follow else ["--no-follow"])], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + 90
            while b"following the journal" not in (Path(tmp) / "ai.log").read_bytes() if follow else \
                    b" ready." not in (Path(tmp) / "ai.log").read_bytes():
                if time.time() > deadline:
                    raise SystemExit((Path(tmp) / "ai.log").read_text()[-2000:])
                time.sleep(0.2)
            time.sleep(3)
            store = Store(f"sqlite:///{state / 'macha.db'}")
            stored, reviewed = [], []
            t_start = time.time()
            for i in range(samples):
                # A new critical group each time (letters: numbers and hex are masked in fingerprints, and a
                # repeat of a group reviewed minutes ago waits for the review tick, by design).
                word = "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(12))
                marker = f"Kernel panic - not syncing: bench {word}"
                at = append(jdir, marker)
                ev_time = rv_time = None
                while rv_time is None and time.time() - at < interval * 2 + 30:
                    with store.session() as s:
                        row = s.execute(select(TriggerEvent).where(TriggerEvent.trigger_reason.contains(marker))
                                        ).scalar()
                        if row is not None:
                            ev_time = ev_time or row.stored_at.timestamp()
                            if row.review_id:
                                rv_time = s.get(Review, row.review_id).created_at.timestamp()
                    time.sleep(0.02)
                stored.append(ev_time - at)
                reviewed.append(rv_time - at)
                time.sleep(random.uniform(0.5, 1.5) if follow else random.uniform(0, interval))
            store.dispose()
            return stored, reviewed, time.time() - t_start
        finally:
            os.killpg(ai.pid, signal.SIGTERM)
            ai.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--baseline-samples", type=int, default=4)
    args = ap.parse_args()
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    live_s, live_r, _ = run(args.samples, follow=True, interval=30)
    base_s, base_r, _ = run(args.baseline_samples, follow=False, interval=30)
    for name, stored, reviewed in (("live follower", live_s, live_r), ("schedule only (30 s)", base_s, base_r)):
        print(f"{name:22} n={len(stored):3}  line -> stored event p50 {pct(stored, 50):6.2f} s  "
              f"p99 {pct(stored, 99):6.2f} s  |  line -> review p50 {pct(reviewed, 50):6.2f} s  "
              f"p99 {pct(reviewed, 99):6.2f} s")
    print(f"ratio (schedule / live), line -> stored event, p50: "
          f"{statistics.median(base_s) / statistics.median(live_s):.0f}x")


if __name__ == "__main__":
    main()
