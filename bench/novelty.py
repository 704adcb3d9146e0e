"""Benchmark: what novelty costs a journal check (lines per second, novelty on against off, in the same run).

Input: the message text of the Loghub Linux and OpenSSH samples, repeated to --lines entries of a real journal file
(systemd-journal-remote), with journal priorities as a busy host writes them: most lines info, one in 20 a
warning, one in 50 an error. Each run checks the file into a fresh SQLite store (the embedded default), in one
process, with novelty off and then on; the host has learned (learning 0 s) so that every path of novelty runs.

    .venv/bin/python bench/novelty.py [--lines 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.journal import Entry, build_journal  # noqa: E402

from macha.config import load_settings  # noqa: E402
from macha.monitor.checks.journal import run_check  # noqa: E402
from macha.monitor.collect.journal import JournalSource  # noqa: E402
from macha.monitor.templates import forget_miners  # noqa: E402
from macha.store.db import Store  # noqa: E402

LOGHUB = ROOT.parent / "shared" / "data" / "loghub"
FILES = ("Linux/Linux_2k.log_structured.csv", "OpenSSH/OpenSSH_2k.log_structured.csv")


def messages() -> list[str]:
    out = []
    for name in FILES:
        with open(LOGHUB / name, newline="", encoding="utf-8", errors="replace") as fh:
            out += [row["Content"] for row in csv.DictReader(fh)]
    return out


def entries(n: int) -> list[Entry]:
    texts = messages()
    units = ("sshd.service", "cron.service", "app.service", "kernel")
    return [Entry(texts[i % len(texts)], priority=3 if i % 50 == 0 else 4 if i % 20 == 0 else 6,
                  identifier=units[i % 4].split(".")[0], unit=units[i % 4], transport="stdout")
            for i in range(n)]


def once(journal: Path, novelty: bool, work: Path) -> float:
    forget_miners()
    state = Path(tempfile.mkdtemp(dir=work))
    settings = load_settings(state_dir=state, hostname="bench", detection={"novelty": novelty,
                                                                          "novelty_learning": "0s"})
    store = Store(settings.effective_database_url)
    start = time.perf_counter()
    result = run_check(store, settings, hostname="bench", source=JournalSource.file(journal))
    took = time.perf_counter() - start
    store.dispose()
    assert result.entries_read == len_entries, result
    return took


def main() -> None:
    global len_entries
    p = argparse.ArgumentParser()
    p.add_argument("--lines", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    len_entries = args.lines
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        journal = build_journal(entries(args.lines), work / "bench.journal")
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeat):
            for novelty in (False, True):
                times[novelty].append(once(journal, novelty, work))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.lines} lines, median of {args.repeat}: novelty off {off:.2f} s ({args.lines / off:,.0f} lines/s), "
          f"on {on:.2f} s ({args.lines / on:,.0f} lines/s); on/off {on / off:.2f}")


len_entries = 0

if __name__ == "__main__":
    main()
