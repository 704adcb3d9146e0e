"""Benchmark: model calls over a quiet 24 h trace, Macha vs the seed's fixed 60 s review schedule.

The trace is a real journal file (systemd-journal-remote) of one quiet day: a CRON line every 5 minutes and a few
incidents (an OOM kill, a segfault burst, disk I/O errors, a failed unit, a kernel panic). It is read once with
journalctl, then replayed on a simulated clock: a check every 30 s stores the entries of its window through
Macha's real detection and store code, the check's chain reviews at once when a critical event is pending, and a
review tick every 60 s reviews the rest when anything is pending. The review model is the test suite's fake
Ollama (a real HTTP server), which counts the calls. The seed calls its model on every 60 s tick: 1,440 a day.

    .venv/bin/python bench/review_calls.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_ollama import FakeOllama  # noqa: E402
from journal_export import BASE_USEC, Entry, build_journal, export_bytes  # noqa: E402,F401

from macha import pipeline  # noqa: E402
from macha.check import CheckResult, ensure_host, store_batch  # noqa: E402
from macha.collect.journal import JournalSource, read_batches  # noqa: E402
from macha.config import load_settings  # noqa: E402
from macha.detect.patterns import default_matcher  # noqa: E402
from macha.store.db import Store  # noqa: E402

DAY = 86400
CHECK_EVERY, TICK_EVERY = 30, 60
INCIDENTS = [  # (second of the day, entries, critical?)
    (3 * 3600 + 12 * 60 + 5, [Entry("Out of memory: Killed process 4242 (postgres) total-vm:8123456kB")], True),
    (9 * 3600 + 40 * 60, [Entry(f"app[{900 + i}]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in "
                                f"libfoo.so[7f0+1000]") for i in range(20)], False),
    (15 * 3600 + 5 * 60, [Entry(f"blk_update_request: I/O error, dev sda, sector {i * 8}", priority=3)
                          for i in range(5)], False),
    (18 * 3600 + 30 * 60, [Entry("nginx.service: Failed with result 'exit-code'.", priority=3,
                                 identifier="systemd")], False),
    (21 * 3600 + 30 * 60, [Entry("Kernel panic - not syncing: Fatal exception in interrupt", priority=0)], True),
]


def build_trace(path: Path) -> tuple[Path, list[tuple[int, bool]]]:
    """Entries of one day with their offsets; systemd-journal-remote keeps the timestamps we give."""
    timed: list[tuple[int, Entry]] = [
        (t, Entry(f"({t // 300}) CMD (run-parts /etc/cron.hourly)", priority=6, identifier="CRON",
                  transport="syslog")) for t in range(0, DAY, 300)
    ]
    for at, entries, _ in INCIDENTS:
        timed += [(at + i, e) for i, e in enumerate(entries)]
    timed.sort(key=lambda te: te[0])
    return build_journal([e for _, e in timed], path, offsets_usec=[t * 1_000_000 for t, _ in timed]), \
        [(at, crit) for at, _, crit in INCIDENTS]


def main() -> None:
    fake = FakeOllama()
    with tempfile.TemporaryDirectory(prefix="macha-bench-") as tmp:
        trace, incidents = build_trace(Path(tmp) / "day.journal")
        entries = [e for batch in read_batches(JournalSource.file(trace), after_cursor=None, since=None,
                                               batch_size=10_000) for e in batch]
        settings = load_settings(hostname="bench", state_dir=Path(tmp) / "state", ollama_url=fake.url)
        store = Store(settings.effective_database_url)
        ensure_host(store, "bench")
        matcher, start = default_matcher(), entries[0].time
        reviews: list[tuple[float, str]] = []  # (simulated second, why)
        review_wall: list[float] = []
        t0 = time.perf_counter()
        idx = 0
        for now in range(CHECK_EVERY, DAY + CHECK_EVERY, CHECK_EVERY):
            cut = start + timedelta(seconds=now)
            window = []
            while idx < len(entries) and entries[idx].time < cut:
                window.append(entries[idx])
                idx += 1
            state = None
            if window:
                result = CheckResult(hostname="bench", source="replay", reason="schedule")
                store_batch(store, result, matcher, "replay", window, 0)
                state = {"check": result.to_dict(), "hostname": "bench", "reason": "schedule"}
            runs = [state] if state else []
            if now % TICK_EVERY == 0:
                runs.append({"hostname": "bench", "reason": "tick"})
            for st in runs:
                before = len(fake.chats())
                w0 = time.perf_counter()
                out = pipeline.review_step(store, pipeline.context_step(store, st), settings)
                if len(fake.chats()) > before:
                    review_wall.append(time.perf_counter() - w0)
                    reviews.append((now, st["reason"] if not out["review"]["skipped"] else "?"))
        elapsed = time.perf_counter() - t0
        calls = len(fake.chats())
        print(f"trace: {len(entries)} journal entries over 24 h, {len(incidents)} incidents "
              f"({sum(c for _, c in incidents)} critical)")
        print(f"model calls: Macha {calls}, seed 1440 (fixed 60 s schedule): {1440 / max(calls, 1):.0f}x fewer")
        for at, critical in incidents:
            first = next((r for r in reviews if r[0] >= at), None)
            delay = first[0] - at if first else None
            print(f"  incident at {timedelta(seconds=at)}{' (critical)' if critical else ''}: reviewed by the "
                  f"{first[1] if first else '-'} run, {delay} s of simulated time after its line")
        print(f"review wall time (check stored -> review stored, fake model): "
              f"max {max(review_wall) * 1000:.0f} ms, mean {sum(review_wall) / len(review_wall) * 1000:.0f} ms")
        print(f"replay of 2,880 checks and 1,440 ticks: {elapsed:.1f} s")
        store.dispose()
    fake.close()


if __name__ == "__main__":
    main()
