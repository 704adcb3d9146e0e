"""macha-approve: the approval queue. List, show, approve, reject, and the audit history."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from macha.actions import approvals
from macha.actions.audit import history
from macha.cli.common import count_type, id_type, operator_name, parser, plain, run, settings_from, setup_logging
from macha.core.errors import BrokerError
from macha.core.risk import Risk
from macha.read import approvals as read_approvals
from macha.store.db import Store
from macha.store.models import utcnow

RISK_STYLE = {Risk.READ_ONLY: "dim", Risk.LOW: "cyan", Risk.MEDIUM: "yellow", Risk.HIGH: "red",
              Risk.CRITICAL: "bold red"}


def main() -> None:
    p = parser("macha-approve", "Review, approve or reject the actions Macha proposed and may not run alone.")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    ls = sub.add_parser("list", help="pending approvals (the default)")
    ls.add_argument("--host", help="only this host")
    sh = sub.add_parser("show", help="one action with its evidence and history")
    # Ids are checked against the database's range here: a huge one is one line naming it, not a driver error.
    action_id = id_type("action")
    sh.add_argument("id", type=action_id)
    ap = sub.add_parser("approve", help="approve a pending action; it is checked again and then runs")
    ap.add_argument("id", type=action_id)
    rj = sub.add_parser("reject", help="reject a pending action")
    rj.add_argument("id", type=action_id)
    rj.add_argument("--reason", required=True, help="why (kept in the audit log)")
    hi = sub.add_parser("history", help="the audit log: every decision and why")
    hi.add_argument("--action", type=action_id, dest="action_id", help="only this action")
    hi.add_argument("--host", help="only this host")
    hi.add_argument("--limit", type=count_type, default=50)
    sub.add_parser("expire", help="expire approvals past their time now (the worker does it every minute)")
    di = sub.add_parser("discuss", help="talk an action over with the meta model")
    di.add_argument("id", type=action_id)
    for sp in (ls, sh, ap, rj, hi, di):
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    args = p.parse_args()
    run("macha-approve", lambda: _main(args))


def _actor() -> str:
    return operator_name()


def _main(args: Any) -> int:
    setup_logging(args.verbose)
    settings = settings_from(args)
    command = args.command or "list"
    if command == "discuss":
        from macha.cli.chat import main as chat_main

        chat_main(["--discuss", str(args.id)] + (["--config", str(args.config)] if args.config else []))
    store = Store(settings.effective_database_url)
    console = Console(width=None if sys.stdout.isatty() else 200)
    if command == "list":
        rows = read_approvals.pending(store, args.host if "host" in args else None)
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        else:
            _render_list(console, rows)
        return 0
    if command == "show":
        detail = read_approvals.detail(store, args.id)
        if args.json:
            print(json.dumps(detail.model_dump(mode="json"), indent=2))
        else:
            _render_show(console, detail)
        return 0
    if command == "approve":
        action = approvals.approve(store, settings, args.id, _actor())
        note = _send(settings, action)
        _announce(settings, action)
        if args.json:
            print(json.dumps({"action": action, "note": note}, indent=2, default=str))
        else:
            console.print(plain(f"Approved action {action['id']} ({action['action']} {_args(action['arguments'])}) "
                                f"on {action['hostname']}. {note}"))
        return 0
    if command == "reject":
        action = approvals.reject(store, args.id, _actor(), args.reason)
        _announce(settings, action)
        if args.json:
            print(json.dumps({"action": action}, indent=2, default=str))
        else:
            console.print(plain(f"Rejected action {action['id']} ({action['action']})."))
        return 0
    if command == "expire":
        expired = approvals.expire_due(store)
        print(json.dumps(expired) if args.json else f"Expired {len(expired)} action(s).")
        return 0
    if command == "history":
        with store.session() as s:
            rows = history(s, action_id=args.action_id, hostname=args.host, limit=args.limit)
            items = [
                {"time": r.time.isoformat(), "action_id": r.action_id, "host": r.hostname, "action": r.action,
                 "event": r.event, "actor": r.actor, "level": r.autonomy_level, "reason": r.reason}
                for r in rows
            ]
        if args.json:
            print(json.dumps(items, indent=2))
        else:
            _render_history(console, items)
        return 0
    raise AssertionError(command)


def _announce(settings: Any, action: dict[str, Any]) -> None:
    """Open dashboards refresh their approval lists (a broker that is down only loses the notice)."""
    from macha.broker.live import Feed
    from macha.core.states import LiveKind

    Feed(settings.effective_broker_url).publish(LiveKind.APPROVAL, action["hostname"], action_id=action["id"])


def _send(settings: Any, action: dict[str, Any]) -> str:
    from macha.broker.client import ensure_reachable
    from workers.app import create_app, send_execute

    try:
        ensure_reachable(settings.effective_broker_url)
        send_execute(create_app(settings), action["id"], action["hostname"])
    except BrokerError as exc:
        # Approved in the database either way; the worker's reconciler sends ready actions that did not run.
        return f"It runs when the worker is back ({exc})."
    return f"Sent to the worker of {action['hostname']}; see `macha-approve show {action['id']}` for the outcome."


def _args(arguments: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in arguments.items())


def _age(created: datetime) -> str:
    secs = int((utcnow() - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


# Everything below shows stored text (arguments, reasons, log lines, model summaries, command output): each value
# goes into Rich as plain() Text, never into a markup string, so that it can neither drive the terminal nor be read
# as markup ("[/]" would stop the listing, "[link=...]" would make a link).


def _render_list(console: Console, rows: list[approvals.PendingRow]) -> None:
    if not rows:
        console.print("No actions wait for approval.")
        return
    table = Table(title="Actions waiting for approval")
    for col in ("ID", "Host", "Action", "Arguments", "Risk", "Reason", "Age"):
        table.add_column(col, overflow="fold")
    for r in rows:
        risk = r.risk or "?"
        seen = f" (x{r.merged_count + 1})" if r.merged_count else ""
        table.add_row(str(r.id), plain(r.hostname), plain(r.action), plain(_args(r.arguments)),
                      plain(risk, RISK_STYLE.get(risk, "")), plain(r.reason + seen), _age(r.created_at))
    console.print(table)
    console.print("Approve with `macha-approve approve ID`, reject with `macha-approve reject ID --reason TEXT`.",
                  markup=False, highlight=False)


def _render_show(console: Console, d: approvals.ActionDetail) -> None:
    a = d.action
    console.print(Text.assemble((f"Action {a['id']}", "bold"), ": ",
                                plain(f"{a['action']} {_args(a['arguments'])} on {a['hostname']}")))
    for label, key in (("Status", "status"), ("Risk (catalog)", "risk"), ("Proposed by", "proposer"),
                       ("Reason", "reason"), ("Decision", "verdict_reason"), ("Created", "created_at"),
                       ("Expires", "expires_at"), ("Decided by", "decided_by"), ("Exit status", "exit_code")):
        if a.get(key) not in (None, ""):
            console.print(Text.assemble(f"  {label}: ", plain(a[key])))
    if d.rollback:
        console.print(Text.assemble("  Rollback: ", plain(d.rollback)))
    if a.get("argv"):
        console.print(Text.assemble("  Ran: ", plain(json.dumps(a["argv"]))))
    if d.review:
        console.print(plain(f"Review #{d.review['id']} ({d.review['reviewer']}, {d.review['status']}):"))
        console.print(Text.assemble("  ", plain(d.review["summary"])))
    if d.events:
        table = Table(title="Evidence")
        for col in ("Event", "Time (UTC)", "Severity", "Pattern", "Message"):
            table.add_column(col, overflow="fold")
        for ev in d.events:
            table.add_row(str(ev["id"]), ev["time"][:19].replace("T", " "), plain(ev["severity"]),
                          plain(ev["pattern"]), plain((ev["message"] or "")[:300]))
        console.print(table)
    for out in ("stdout", "stderr"):
        if a.get(out):
            console.print(f"{out}:")
            console.print(plain(a[out]))
    _render_history(console, d.audit)


def _render_history(console: Console, items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("No decisions recorded.")
        return
    table = Table(title="Audit log")
    cols = [c for c in ("time", "action_id", "host", "action", "event", "actor", "reason") if c in items[0]]
    for col in cols:
        table.add_column(col.replace("_", " ").capitalize(), overflow="fold")
    for it in items:
        table.add_row(*[plain(str(it[c] if it[c] is not None else "")[:400]) if c != "time" else it[c][:19]
                        for c in cols])
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
