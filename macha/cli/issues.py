"""macha-issues: the issues of the fleet (amtool style). List, show one with its timeline, acknowledge, close,
reopen; ``-o simple|extended|json``, ``-q`` for ids only."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from macha.cli.common import id_type, operator_name, parser, plain, run, settings_from, setup_logging
from macha.core.severity import SEVERITIES, Severity
from macha.core.states import IssueStatus
from macha.read.issues import IssueDetail, IssueSummary, get_issue, list_issues
from macha.review import issues as lifecycle
from macha.store.db import Store
from macha.store.models import utcnow

PROG = "macha-issues"
SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
                  Severity.LOW: "cyan", Severity.INFO: "dim"}
STATUS_STYLE = {IssueStatus.OPEN: "bold", IssueStatus.ACKNOWLEDGED: "yellow", IssueStatus.RESOLVED: "green"}
OUTPUTS = ("simple", "extended", "json")


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(PROG, "The issues Macha tracks: the events, reviews, analyses and actions of one problem on one host.")
    _output_options(p, None)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    ls = sub.add_parser("list", help="open and acknowledged issues (the default)")
    ls.add_argument("--all", action="store_true", help="resolved issues too")
    ls.add_argument("--host", help="only this host")
    ls.add_argument("--severity", choices=[s.value for s in SEVERITIES], help="only this severity or worse")
    issue_id = id_type("issue")
    sh = sub.add_parser("show", help="one issue and its timeline: events, reviews, analyses, actions")
    sh.add_argument("id", type=issue_id)
    ak = sub.add_parser("ack", help="acknowledge an open issue (it stays until it resolves or is closed)")
    ak.add_argument("id", type=issue_id)
    cl = sub.add_parser("close", help="resolve an issue by hand; it reopens if it recurs")
    cl.add_argument("id", type=issue_id)
    cl.add_argument("--reason", required=True, help="why (kept in the issue's history)")
    ro = sub.add_parser("reopen", help="reopen a resolved issue")
    ro.add_argument("id", type=issue_id)
    for sp in (ls, sh, ak, cl, ro):
        # After the command too (`macha-issues list -o json`), as amtool takes them.
        _output_options(sp, argparse.SUPPRESS)
    args = p.parse_args(argv)
    run(PROG, lambda: _main(args))


def _output_options(p: argparse.ArgumentParser, suppress: str | None) -> None:
    """-o and -q, on the command and on each subcommand; a subcommand's are suppressed unless given, so that they
    do not overwrite the ones given before it."""
    p.add_argument("-o", "--output", choices=OUTPUTS, default=suppress or "simple",
                   help="simple (the default), extended or json")
    p.add_argument("-q", "--quiet", action="store_true", default=suppress or False,
                   help="only the ids, one a line (for scripts)")


def _main(args: Any) -> int:
    setup_logging(args.verbose)
    settings = settings_from(args)
    store = Store(settings.effective_database_url)
    console = Console(width=None if sys.stdout.isatty() else 200)
    command = args.command or "list"
    if command == "list":
        host = getattr(args, "host", None)
        rows = list_issues(store, include_resolved=getattr(args, "all", False), hostname=host,
                           severity=getattr(args, "severity", None))
        if args.quiet:
            print("\n".join(str(r.id) for r in rows))
        elif args.output == "json":
            print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        else:
            _render_list(console, rows, extended=args.output == "extended", all_=getattr(args, "all", False))
        return 0
    if command == "show":
        detail = get_issue(store, args.id)
        if args.quiet:
            print(detail.id)
        elif args.output == "json":
            print(json.dumps(detail.model_dump(mode="json"), indent=2))
        else:
            _render_show(console, detail, extended=args.output == "extended")
        return 0
    actor = operator_name()
    if command == "ack":
        issue = lifecycle.acknowledge(store, args.id, actor)
        done = "Acknowledged"
    elif command == "close":
        issue = lifecycle.close(store, args.id, actor, args.reason)
        done = "Closed"
    elif command == "reopen":
        issue = lifecycle.reopen(store, args.id, actor)
        done = "Reopened"
    else:  # pragma: no cover - argparse allows no other
        raise AssertionError(command)
    summary = IssueSummary.from_row(issue)
    if args.quiet:
        print(summary.id)
    elif args.output == "json":
        print(json.dumps(summary.model_dump(mode="json"), indent=2))
    else:
        console.print(Text.assemble(f"{done} issue {summary.id} on ", plain(summary.hostname), ": ",
                                    plain(_short(summary.title, 120), one_line=True)))
    return 0


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _age(when: datetime) -> str:
    secs = max(int((utcnow() - when).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def _time(when: datetime | None) -> str:
    return when.isoformat()[:19].replace("T", " ") if when else ""


# Everything below shows stored text (log lines, model summaries, operator reasons): each value goes into Rich as
# plain() Text, never into a markup string, so that it can neither drive the terminal nor be read as markup.


def _render_list(console: Console, rows: list[IssueSummary], *, extended: bool, all_: bool) -> None:
    if not rows:
        console.print("No issues." if all_ else "No open issues (`macha-issues list --all` shows resolved ones too).")
        return
    table = Table(title="Issues" if all_ else "Open issues")
    cols = ["ID", "Host", "Severity", "Status", "Title", "Last event"]
    if extended:
        cols += ["Opened (UTC)", "Events", "Reopened", "By", "Groups"]
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in rows:
        cells: list[Any] = [str(r.id), plain(r.hostname), plain(r.severity, SEVERITY_STYLE.get(r.severity, "")),
                            plain(r.status, STATUS_STYLE.get(r.status, "")),
                            plain(_short(r.title, 300 if extended else 80), one_line=True), _age(r.last_event_at)]
        if extended:
            by = r.resolved_by if r.status == IssueStatus.RESOLVED else r.acknowledged_by
            cells += [_time(r.opened_at), str(r.event_count), str(r.reopened), plain(by or ""),
                      plain(", ".join(r.groups), one_line=True)]
        table.add_row(*cells)
    console.print(table)
    console.print("Show one with `macha-issues show ID`; `ack ID`, `close ID --reason TEXT`, `reopen ID`.",
                  markup=False, highlight=False)


def _render_show(console: Console, d: IssueDetail, *, extended: bool) -> None:
    console.print(Text.assemble((f"Issue {d.id}", "bold"), " on ", plain(d.hostname), ": ",
                                plain(_short(d.title, 300), one_line=True)))
    lines: list[tuple[str, Any]] = [
        ("Status", plain(d.status, STATUS_STYLE.get(d.status, ""))),
        ("Severity", plain(d.severity, SEVERITY_STYLE.get(d.severity, ""))),
        ("Opened", _time(d.opened_at) + " UTC"),
        ("Last event", f"{_time(d.last_event_at)} UTC ({_age(d.last_event_at)})"),
        ("Events", str(d.event_count)),
    ]
    if d.acknowledged_by:
        lines.append(("Acknowledged", plain(f"by {d.acknowledged_by} at {_time(d.acknowledged_at)} UTC")))
    if d.status == IssueStatus.RESOLVED:
        lines.append(("Resolved", plain(f"by {d.resolved_by} at {_time(d.resolved_at)} UTC: {d.resolve_reason or ''}",
                                        one_line=True)))
    if d.reopened:
        lines.append(("Reopened", f"{d.reopened} time(s)"))
    if extended:
        lines.append(("Groups", plain(", ".join(d.groups), one_line=True)))
    for label, value in lines:
        console.print(Text.assemble(f"  {label}: ", value))
    table = Table(title="Timeline")
    cols = ["Time (UTC)", "What", "ID", "Status", "Text"] + (["Detail"] if extended else [])
    for col in cols:
        table.add_column(col, overflow="fold")
    for t in d.timeline:
        style = SEVERITY_STYLE.get(t.status, "") if t.kind == "event" else ""
        cells: list[Any] = [_time(t.time), t.kind, str(t.id), plain(t.status, style),
                            plain(t.text if extended else _short(t.text, 200), one_line=not extended)]
        if extended:
            cells.append(plain(", ".join(f"{k}={v}" for k, v in t.detail.items() if v not in (None, "")),
                               one_line=True))
        table.add_row(*cells)
    console.print(table)
    if d.events_not_shown:
        console.print(f"({d.events_not_shown} older event(s) not shown; -o json has the same limit)")


if __name__ == "__main__":  # pragma: no cover
    main()
