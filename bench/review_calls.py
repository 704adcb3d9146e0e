"""Benchmark: model calls over a quiet 24 h trace, Macha vs the seed's fixed 60 s review schedule.

The trace is a real journal file (systemd-journal-remote) of one quiet day: a CRON line every 5 minutes and a few
incidents (an OOM kill, a segfault burst, disk I/O errors, a failed unit, a kernel panic). It is read once with
journalctl, then replayed on a simulated clock: a check every 30 s stores the entries of its window through
Macha's real detection and store code; an urgent (critical/high) line starts a live check at its own time, as the
journal follower does (its own latency is measured by bench/live_latency.py); a check's chain reviews at once when
a critical event is pending or the check is live; a review tick every 60 s reviews the rest when anything is
pending. The review model is the test suite's fake
Ollama (a real HTTP server), which counts the calls. The seed calls its model on every 60 s tick: 1,440 a day.

    .venv/bin/python bench/review_calls.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.ollama import FakeOllama  # noqa: E402
from helpers.journal import Entry, build_journal  # noqa: E402

from macha import pipeline  # noqa: E402
from macha.config import load_settings  # noqa: E402
from macha.core.severity import SEVERITY_RANK  # noqa: E402
from macha.monitor.checks.journal import CheckResult, ensure_host, store_batch  # noqa: E402
from macha.monitor.collect.follow import URGENT  # noqa: E402
from macha.monitor.collect.journal import JournalSource, read_batches  # noqa: E402
from macha.monitor.detect.matcher import default_matcher  # noqa: E402
from macha.monitor.detect.triggers import detect  # noqa: E402
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


def _urgent(entry, matcher) -> bool:
    det = detect(entry, matcher, "bench", "replay")
    return det is not None and any(SEVERITY_RANK[t["severity"]] <= URGENT for t in det.triggers)


def _review(store, settings, fake, state, at, reviews, review_wall) -> None:
    before = len(fake.chats())
    w0 = time.perf_counter()
    pipeline.review_step(store, pipeline.context_step(store, state, settings), settings)
    if len(fake.chats()) > before:
        review_wall.append(time.perf_counter() - w0)
        reviews.append((at, state.reason))


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
            # The live follower: an urgent line starts a check (reason live) at its own time, not at the schedule;
            # each part is stored and reviewed before the next arrives, as in real time.
            while window:
                cut_at = next((i for i, e in enumerate(window) if _urgent(e, matcher)), None)
                part, window = (window, []) if cut_at is None else (window[: cut_at + 1], window[cut_at + 1:])
                reason = "live" if cut_at is not None else "schedule"
                result = CheckResult(hostname="bench", source="replay", reason=reason)
                store_batch(store, result, matcher, "replay", part, 0)
                at = (part[-1].time - start).total_seconds() if cut_at is not None else now
                state = pipeline.ChainState(check=result.to_dict(), hostname="bench", reason=reason)
                _review(store, settings, fake, state, at, reviews, review_wall)
            if now % TICK_EVERY == 0:
                _review(store, settings, fake, pipeline.ChainState(hostname="bench"), now, reviews, review_wall)
        elapsed = time.perf_counter() - t0
        calls = len(fake.chats())
        print(f"trace: {len(entries)} journal entries over 24 h, {len(incidents)} incidents "
              f"({sum(c for _, c in incidents)} critical)")
        print(f"model calls: Macha {calls}, seed 1440 (fixed 60 s schedule): {1440 / max(calls, 1):.0f}x fewer")
        for at, critical in incidents:
            first = next((r for r in reviews if r[0] >= at), None)
            delay = first[0] - at if first else None
            print(f"  incident at {timedelta(seconds=at)}{' (critical)' if critical else ''}: reviewed by the "
                  f"{first[1] if first else '-'} run, {delay:.0f} s of simulated time after its line")
        print(f"review wall time (check stored -> review stored, fake model): "
              f"max {max(review_wall) * 1000:.0f} ms, mean {sum(review_wall) / len(review_wall) * 1000:.0f} ms")
        print(f"replay of 2,880 checks and 1,440 ticks: {elapsed:.1f} s")
        store.dispose()
    fake.close()


if __name__ == "__main__":
    main()
