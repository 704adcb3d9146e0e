"""Benchmark: what the correlation rules cost the journal check.

Input: the message text of Loghub samples as journal entries a second apart, stored through the real store_batch
(batches of 500, SQLite in a temporary directory): the Linux and OpenSSH samples (heavy on SSH authentication
failures: most lines are hits of the likely_compromise rule) and the HDFS, Apache and Thunderbird samples (no
line is a hit). Each input is stored with the built-in rules and, as the baseline in the same run, with none;
each figure is the median of the runs.

    .venv/bin/python bench/correlations.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from patterns import BUSY, QUIET, lines  # noqa: E402

from macha.monitor.checks.journal import CheckResult, ensure_host, store_batch  # noqa: E402
from macha.monitor.collect.journal import JournalEntry  # noqa: E402
from macha.monitor.detect.correlate import Correlator, default_correlator  # noqa: E402
from macha.monitor.detect.matcher import default_matcher  # noqa: E402
from macha.store.db import Store  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def once(messages: list[str], correlator: Correlator, tag: str) -> tuple[float, CheckResult]:
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{d}/bench.db")
        ensure_host(store, "h")
        entries = [JournalEntry(cursor=f"{tag}-{i}", time=T0 + timedelta(seconds=i), message=m, priority=6,
                                unit="sshd.service", identifier="sshd", pid=1, comm=None, boot_id=None,
                                hostname=None, transport="syslog", uid=0) for i, m in enumerate(messages)]
        result = CheckResult(hostname="h", source="bench", reason="bench")
        start = time.perf_counter()
        for i in range(0, len(entries), 500):
            store_batch(store, result, default_matcher(), "bench", entries[i:i + 500], 0, correlator=correlator)
        took = time.perf_counter() - start
        store.dispose()
    return took, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    none, rules = Correlator([], []), default_correlator()
    for label, names in (("Linux + OpenSSH", BUSY), ("HDFS + Apache + Thunderbird", QUIET)):
        messages = lines(sum(2000 for _ in names), names)
        once(messages[:500], rules, "warm")  # compile the scanners outside the timing
        base, with_rules = [], []
        for run in range(args.runs):  # interleaved: a noisy neighbour slows both alike
            base.append(once(messages, none, f"b{run}")[0])
            took, result = once(messages, rules, f"r{run}")
            with_rules.append(took)
        b, r = statistics.median(base), statistics.median(with_rules)
        roots = result.new_triggers
        print(f"{label}: {len(messages)} lines; without rules {b * 1e3:.0f} ms, with {r * 1e3:.0f} ms: "
              f"x{r / b:.2f}; events with rules {roots}")


if __name__ == "__main__":
    main()
