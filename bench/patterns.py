"""Benchmark: the pattern engine's lines per second on real log lines.

Input: the message text (Content) of the Loghub Linux and OpenSSH samples, repeated to at least 1,000,000 lines.
Engines:
- Macha's batch matcher, as the journal reader uses it, with the compiled module (macha.monitor.detect._hsmatch): each
  batch of 1,000 lines is scanned in C by Hyperscan in one pass, and each line comes back with its patterns;
- the same batch matcher without the compiled module, with the hyperscan wheel: one pass flags lines, which RE2's
  RegexSet then matches exactly, with a Python call per match;
- Macha's combined matcher line by line, with RE2's RegexSet;
- the same matcher with its pure-Python fallback (one combined regex as a filter);
- the baseline, measured in the same run: the seed's way, a loop that tries 8 regexes on every line.

    .venv/bin/python bench/patterns.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from macha.monitor.detect.catalog import load_builtin
from macha.monitor.detect.matcher import Matcher

LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"
SEED_REGEXES = [  # the kind of list the seed loops over, one search per regex per line
    r"(?i)kernel panic", r"(?i)out of memory", r"(?i)segfault", r"(?i)i/o error", r"(?i)failed password",
    r"(?i)authentication failure", r"(?i)error", r"(?i)failed",
]


BUSY = ("Linux/Linux_2k.log_structured.csv", "OpenSSH/OpenSSH_2k.log_structured.csv")
QUIET = ("HDFS/HDFS_2k.log_structured.csv", "Apache/Apache_2k.log_structured.csv",
         "Thunderbird/Thunderbird_2k.log_structured.csv")


def lines(n: int, names: tuple[str, ...] = BUSY) -> list[str]:
    sample = []
    for name in names:
        with open(LOGHUB / name, encoding="utf-8", errors="replace", newline="") as fh:
            sample += [row["Content"] for row in csv.DictReader(fh)]
    return (sample * (n // len(sample) + 1))[:n]


def rate(fn, data: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    hits = fn(data)
    return len(data) / (time.perf_counter() - start), hits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    catalog = load_builtin()  # the patterns and the known-benign entries: what the journal reader runs
    re2m, pym = Matcher(catalog, engine="re2"), Matcher(catalog, engine="python")
    seed = [re.compile(r) for r in SEED_REGEXES]

    def with_matcher(m):
        return lambda d: sum(1 for line in d if m.match(line))

    def batched(m, size=1000):
        # As the journal reader hands them over: batches of journalBatchSize (1000) lines.
        return lambda d: sum(sum(map(bool, m.match_many(d[i:i + size]))) for i in range(0, len(d), size))

    def baseline(d):
        return sum(1 for line in d if [r for r in seed if r.search(line)])

    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {len(catalog)} patterns")
    compiled, wheel = Matcher(catalog), Matcher(catalog)
    wheel._compiled = False  # the batch path as it is without the compiled module
    engines = [("Macha, batch (wheel + RE2)", batched(wheel)), ("Macha, RE2 set", with_matcher(re2m)),
               ("Macha, Python fallback", with_matcher(pym))]
    if compiled._compiled_scanner() is not None:
        engines.insert(0, ("Macha, batch (compiled)", batched(compiled)))
    else:
        print("the compiled module is not built (libhyperscan-dev missing?): its line is left out")
    for label, names in (("Linux + OpenSSH (the issue's sample; about half the lines match)", BUSY),
                         ("HDFS + Apache + Thunderbird (quiet logs; no line matches)", QUIET)):
        data = lines(args.lines, names)
        print(f"\n{label}, {len(data):,} lines")
        base_rate, base_hits = rate(baseline, data)
        for name, fn in engines:
            r, hits = rate(fn, data)
            print(f"{name:26} {r:12,.0f} lines/s  {r / base_rate:5.1f}x the baseline  ({hits:,} lines matched)")
        print(f"{'baseline: 8 regexes/line':26} {base_rate:12,.0f} lines/s   1.0x             "
              f"({base_hits:,} lines matched)")

if __name__ == "__main__":
    main()
