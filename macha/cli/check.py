"""macha-check: run one check of this host through the pipeline (or in-process with --local) and report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from macha.cli.common import parser, plain, run, seconds_type, settings_from, setup_logging
from macha.cli.report import CheckReport, build_report
from macha.core.errors import BrokerError
from macha.core.severity import Severity
from macha.core.states import EscalationStatus, ReviewStatus
from macha.pipeline import ChainState
from macha.store.db import Store

SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan",
                  Severity.INFO: "dim"}
STATUS_STYLE = {ReviewStatus.HEALTHY: "green", ReviewStatus.DEGRADED: "yellow", ReviewStatus.CRITICAL: "bold red"}


def main() -> None:
    p = parser("macha-check", "Run one Macha check of this host and print what it found.")
    p.add_argument("--local", action="store_true", help="run in this process, without the broker and workers")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--journal-file", help="read this journal file (*.journal) instead of the system journal")
    src.add_argument("--journal-dir", help="read the journal files in this directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--timeout", type=seconds_type, default=120.0,
                   help="seconds to wait for the pipeline (default 120)")
    p.add_argument("--hostname", "--host", dest="hostname",
                   help="the host name to file events under (default: this host; for --journal-file and "
                   "--journal-dir, the hosts that wrote the journal)")
    args = p.parse_args()
    run("macha-check", lambda: _main(args))


def _main(args: Any) -> int:
    setup_logging(args.verbose)
    settings = settings_from(args, hostname=args.hostname)
    store = Store(settings.effective_database_url)
    if args.local:
        from macha import pipeline

        source = pipeline.journal_source(args.journal_file, args.journal_dir, settings)
        state = pipeline.check_step(store, settings, settings.hostname, "manual", source, _host_from_journal(args))
        state = pipeline.review_step(store, pipeline.context_step(store, state, settings), settings)
    else:
        state = _through_pipeline(settings, args)
    report = build_report(store, state)
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        # Piped output (logs, mail, scripts) is not wrapped at 80 columns.
        render(report, Console(width=None if sys.stdout.isatty() else 200))
    return report.exit_code


def _through_pipeline(settings: Any, args: Any) -> ChainState:
    from celery.exceptions import TimeoutError as CeleryTimeout

    from macha.broker.client import ensure_reachable
    from workers.app import check_pipeline, create_app, host_queue

    hint = (
        "; start the pipeline with `macha-ai`, or run `macha-check --local`"
        if settings.embedded_broker
        else "; check broker_url, or run `macha-check --local`"
    )
    ensure_reachable(settings.effective_broker_url, hint)
    celery = create_app(settings)
    journal_file = str(_abs(args.journal_file)) if args.journal_file else None
    journal_dir = str(_abs(args.journal_dir)) if args.journal_dir else None
    result = check_pipeline(
        celery, settings.hostname, "manual", journal_file=journal_file, journal_dir=journal_dir,
        host_from_journal=_host_from_journal(args),
    ).apply_async()
    try:
        return ChainState.model_validate(result.get(timeout=args.timeout, propagate=True))
    except CeleryTimeout:
        raise BrokerError(
            f"no result within {args.timeout:.0f} s: is a worker consuming the queues "
            f"{host_queue(settings.hostname)} and review? (`macha-ai` runs one)"
        ) from None


def _host_from_journal(args: Any) -> bool:
    """A recorded journal's entries belong to the hosts that wrote them, unless --hostname names one."""
    return args.hostname is None and bool(args.journal_file or args.journal_dir)


def _abs(path: str) -> Path:
    # The worker may run in another directory: send absolute paths.
    return Path(path).resolve()


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(report: CheckReport, console: Console) -> None:
    """The report for people. Every value that comes from the journal, the model or the store (messages, units,
    patterns, summaries, arguments, reasons, notes, even the host and source names) goes into Rich as plain() Text:
    a line holding "[/]" or an escape sequence is shown as it is, it neither stops the report nor drives the
    terminal."""
    console.print(Text.assemble(plain(report.hostname, "bold"), plain(
        f"  source: {report.source}  entries read: {report.entries_read}  new events: {report.new_events}")))
    for note in report.notes:
        console.print(Text.assemble(("note:", "yellow"), " ", plain(note)))
    if report.severity_counts:
        table = Table(title="Events found by this check")
        table.add_column("Severity")
        table.add_column("Count", justify="right")
        for severity, count in report.severity_counts.items():
            table.add_row(plain(severity, SEVERITY_STYLE.get(severity, "")), str(count))
        console.print(table)
        detail = Table(title="Events (worst first)", show_lines=False)
        for col in ("Time (UTC)", "Severity", "Pattern", "Unit", "Message"):
            detail.add_column(col, overflow="fold")
        for ev in report.events:
            detail.add_row(
                ev["time"][:19].replace("T", " "),
                plain(ev["severity"], SEVERITY_STYLE.get(ev["severity"], "")),
                plain(ev["pattern"]),
                # One line per event: a unit name holding a newline must not open a row of its own.
                plain(ev["unit"], one_line=True),
                plain(_short(ev["message"] or "")),
            )
        console.print(detail)
        if report.new_events > len(report.events):
            console.print(f"... and {report.new_events - len(report.events)} more (see --json or the database)",
                          markup=False, highlight=False)
    else:
        console.print("No new events.")
    review = report.review
    if review is None:
        console.print("No recent review.")
    else:
        fresh = "this check" if report.review_is_new else f"latest, {review['created_at'][:19]}"
        console.print(Text.assemble(plain(f"Review #{review['id']} ({fresh}): "),
                                    plain(review["status"], STATUS_STYLE.get(review["status"], ""))))
        console.print(plain(review["summary"]))
    if report.actions:
        table = Table(title="Actions proposed by this review")
        for col in ("ID", "Action", "Arguments", "Risk", "Decision", "Why"):
            table.add_column(col, overflow="fold")
        for a in report.actions:
            args = " ".join(f"{k}={v}" for k, v in a["arguments"].items())
            table.add_row(str(a["id"]), plain(a["action"]), plain(_short(args, 80)), plain(a["risk"]),
                          plain(a["status"]), plain(_short(a["reason"] or "")))
        console.print(table)
    if report.pending_approvals:
        console.print(f"{report.pending_approvals} action(s) wait for approval: `macha-approve list`",
                      markup=False, highlight=False)
    for e in report.escalations:
        state = "being analysed" if e["status"] == EscalationStatus.RUNNING else "pending: waiting for the gpu worker"
        why = f" (last try: {e['error']})" if e.get("error") else ""
        since = e["since"][:19].replace("T", " ")
        console.print(plain(f"Escalation #{e['id']} ({e['kind']}) {state} since {since}: "
                            f"{_short(e['reason'], 120)}{why}"))


if __name__ == "__main__":  # pragma: no cover
    main()
