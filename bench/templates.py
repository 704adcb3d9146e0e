"""Benchmark: template mining against Loghub's labelled 2k samples (grouping accuracy, templates, speed).

Loghub's grouping accuracy: a line counts when its cluster holds exactly the lines of its true template. Speed is
``mine_offline`` over the 2,000 lines, masking included, best of ``--repeat`` runs. With ``--baseline FILE`` (an
older ``macha/monitor/templates.py``, e.g. from ``git show REV:macha/monitor/templates.py``) the same figures are
measured for it in the same run, so that the speed ratio is not the machine's load.

    .venv/bin/python bench/templates.py [--loghub DIR] [--baseline OLD_TEMPLATES_PY] [--repeat 5]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType

from macha.monitor import templates

LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"
DATA_SETS = ("Linux", "OpenSSH", "HDFS", "Apache", "Thunderbird")


def accuracy(labels: list[str], ids: list[int]) -> float:
    truth: dict[str, set[int]] = defaultdict(set)
    found: dict[int, set[int]] = defaultdict(set)
    for i, (label, cid) in enumerate(zip(labels, ids)):
        truth[label].add(i)
        found[cid].add(i)
    return sum(len(lines) for lines in truth.values() if found[ids[min(lines)]] == lines) / len(labels)


def measure(modules: list[ModuleType], messages: list[str], labels: list[str], repeat: int,
            ) -> list[tuple[float, int, float]]:
    """Accuracy, templates found and best time of each miner; their runs alternate, so that a burst of load on a
    shared machine falls on both."""
    best = [float("inf")] * len(modules)
    results: list[tuple[list[int], dict]] = [([], {})] * len(modules)
    for _ in range(repeat):
        for i, module in enumerate(modules):
            start = time.perf_counter()
            results[i] = module.mine_offline(messages)
            best[i] = min(best[i], time.perf_counter() - start)
    return [(accuracy(labels, ids), len(found), seconds) for (ids, found), seconds in zip(results, best)]


def load_baseline(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_templates", path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loghub", type=Path, default=LOGHUB)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    contenders = [("now", templates)]
    if args.baseline:
        contenders.insert(0, ("baseline", load_baseline(args.baseline)))
    print("| data | miner | accuracy | templates found / labelled | time | lines/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in DATA_SETS:
        path = args.loghub / name / f"{name}_2k.log_structured.csv"
        if not path.exists():
            sys.exit(f"Loghub data not found at {path}")
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
        messages, labels = [r["Content"] for r in rows], [r["EventId"] for r in rows]
        figures = measure([m for _, m in contenders], messages, labels, args.repeat)
        for (label, _), (acc, found, seconds) in zip(contenders, figures):
            print(f"| {name}_2k | {label} | {acc:.3f} | {found} / {len(set(labels))} | {seconds * 1000:.0f} ms "
                  f"| {len(rows) / seconds:,.0f} |")


if __name__ == "__main__":
    main()
