"""Benchmark: the pattern engine's lines per second on real log lines.

Input: the message text (Content) of the Loghub Linux and OpenSSH samples, repeated to at least 1,000,000 lines.
Engines:
- Macha's combined matcher over the whole catalog, with RE2's RegexSet;
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

from macha.detect.patterns import Matcher, load_catalog

LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"
SEED_REGEXES = [  # the kind of list the seed loops over, one search per regex per line
    r"(?i)kernel panic", r"(?i)out of memory", r"(?i)segfault", r"(?i)i/o error", r"(?i)failed password",
    r"(?i)authentication failure", r"(?i)error", r"(?i)failed",
]


def lines(n: int) -> list[str]:
    sample = []
    for name in ("Linux/Linux_2k.log_structured.csv", "OpenSSH/OpenSSH_2k.log_structured.csv"):
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
    data = lines(args.lines)
    catalog = load_catalog()
    re2m, pym = Matcher(catalog, engine="re2"), Matcher(catalog, engine="python")
    seed = [re.compile(r) for r in SEED_REGEXES]

    def with_matcher(m):
        return lambda d: sum(1 for line in d if m.match(line))

    def baseline(d):
        return sum(1 for line in d if [r for r in seed if r.search(line)])

    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {len(data):,} lines, "
          f"{len(catalog)} patterns")
    base_rate, base_hits = rate(baseline, data)
    for name, fn in (("Macha, RE2 set", with_matcher(re2m)), ("Macha, Python fallback", with_matcher(pym))):
        r, hits = rate(fn, data)
        print(f"{name:24} {r:12,.0f} lines/s  {r / base_rate:5.1f}x the baseline  ({hits:,} lines matched)")
    print(f"{'baseline: 8 regexes/line':24} {base_rate:12,.0f} lines/s   1.0x            ({base_hits:,} lines matched)")


if __name__ == "__main__":
    main()
