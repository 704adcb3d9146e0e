"""macha-eval / python -m evals: run the incident eval suite and print its figures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from evals.runner import CORE, SCENARIOS, EvalError, ScenarioResult, as_json, default_jobs, figures, run_all, \
    scenario_dirs, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="macha-eval", description="Score Macha's detector and reviewers on the "
                                 "incident eval scenarios (real journal files read through journalctl).")
    ap.add_argument("only", nargs="*", help="run only the scenarios whose name holds one of these")
    ap.add_argument("--scenarios", type=Path, default=SCENARIOS, help="the scenarios folder")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--jobs", "-j", type=int, default=default_jobs(), help="scenarios run in parallel")
    ap.add_argument("--model-lane", action=argparse.BooleanOptionalAction,
                    default=os.environ.get("MACHA_TEST_MODEL_LANE") == "1",
                    help="also review with the real small model (default: on when MACHA_TEST_MODEL_LANE=1)")
    ap.add_argument("--cli", action="store_true", help="run each scenario through the macha-check command in a "
                    "process of its own (slower; the default calls the same functions in-process)")
    ap.add_argument("--verbose", "-v", action="store_true", help="show every missed incident and alarm")
    args = ap.parse_args(argv)
    try:
        dirs = scenario_dirs(args.scenarios, args.only or None)
        note = ""
        if args.model_lane:
            from evals import model_lane

            why = model_lane.missing()
            if why:
                note = f"model lane skipped: {why}"
                results = run_all(dirs, args.jobs, cli=args.cli)
            else:
                with model_lane.llama_server() as url:
                    results = run_all(dirs, 1, model_url=url)
        else:
            results = run_all(dirs, args.jobs, cli=args.cli)
    except EvalError as exc:
        print(f"macha-eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = as_json(results)
        if note:
            out["summary"]["note"] = note
        print(json.dumps(out, indent=2))
    else:
        print_report(results, args.verbose)
        if note:
            print(note)
    return 1 if any(r.error for r in results) else 0


def _pct(x: float | None) -> str:
    return "  -  " if x is None else f"{x * 100:5.1f}"


def print_report(results: list[ScenarioResult], verbose: bool = False) -> None:
    lanes = [lane for lane in ("rules", "model") if any(lane in r.reviews for r in results)]
    head = f"{'scenario':44} {'needs':11} {'found':>6} {'sev':>4} {'FA':>3} {'other':>5} " + " ".join(
        f"{'rev-' + lane:>9}" for lane in lanes) + f" {'s':>5}"
    print(head)
    print("-" * len(head))
    for r in results:
        found = sum(i.found for i in r.incidents)
        sev = sum(i.found and i.got_severity == i.severity for i in r.incidents)
        revs = " ".join(f"{r.reviews[lane]['score']:9.2f}" if lane in r.reviews else f"{'-':>9}" for lane in lanes)
        print(f"{r.name[:44]:44} {(r.needs or ''):11} {found:>3}/{len(r.incidents):<2} {sev:>4} "
              f"{len(r.false_alarms):>3} {len(r.other_alarms):>5} {revs} {r.seconds:5.1f}")
        if r.error:
            print(f"    ERROR {r.error}")
        if verbose:
            for i in r.incidents:
                if not i.found:
                    print(f"    missed [{i.group}] {i.subsystem}/{i.severity}: {i.key}")
                elif i.got_severity != i.severity:
                    print(f"    severity {i.got_severity} (want {i.severity}) via {i.pattern}: {i.key}")
            for a in r.false_alarms:
                print(f"    FALSE ALARM {a['severity']} {a['pattern']}: {a['line'][:120]}")
            for a in r.other_alarms:
                print(f"    other alarm {a['severity']} {a['pattern']}: {a['line'][:120]}")
    s = summary(results)
    print()
    print(f"{'group':14} {'incidents':>9} {'found':>6} {'recall%':>8} {'sev-exact%':>10} {'sev-±1%':>8} "
          f"{'FA':>4} {'other':>5} " + " ".join(f"{'rev-' + lane:>9}" for lane in lanes))
    for g in ["overall", CORE, *sorted(k for k in s if k not in ("overall", CORE, "scenarios", "errors", "families"))]:
        f = s.get(g) or figures([], g)
        revs = " ".join(f"{f[f'review_{lane}']:9.2f}" if f"review_{lane}" in f else f"{'':>9}" for lane in lanes)
        print(f"{g:14} {f['incidents']:>9} {f['found']:>6} {_pct(f['recall']):>8} {_pct(f['severity_agreement']):>10}"
              f" {_pct(f['severity_within_one']):>8} {f.get('false_alarms', ''):>4} {f.get('other_alarms', ''):>5} "
              f"{revs}")
    print()
    print(f"{'family':14} {'scenarios':>9} {'incidents':>9} {'found':>6} {'recall%':>8} {'sev-exact%':>10} {'FA':>4} "
          + " ".join(f"{'rev-' + lane:>9}" for lane in lanes))
    for fam, f in s["families"].items():
        revs = " ".join(f"{f[f'review_{lane}']:9.2f}" if f"review_{lane}" in f else f"{'':>9}" for lane in lanes)
        print(f"{fam:14} {f['scenarios']:>9} {f['incidents']:>9} {f['found']:>6} {_pct(f['recall']):>8} "
              f"{_pct(f['severity_agreement']):>10} {f['false_alarms']:>4} {revs}")
    if s["errors"]:
        print(f"{len(s['errors'])} scenario(s) failed to run")


if __name__ == "__main__":
    sys.exit(main())
