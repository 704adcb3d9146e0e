"""macha-systems: the fleet registry. Every host Macha has seen, its facts and status, and how hosts relate."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from macha.cli.common import parser, plain, run, settings_from, setup_logging
from macha.core.errors import MachaError
from macha.core.states import HealthColour, RelationshipKind
from macha.read import hosts
from macha.read.common import require_host
from macha.store import relationships
from macha.store.db import Store
from macha.store.models import utcnow

COLOUR_STYLE = {HealthColour.GREEN: "green", HealthColour.YELLOW: "yellow", HealthColour.RED: "bold red",
                HealthColour.GREY: "dim"}
MAX_ROLE = 64


class RegistryError(MachaError):
    pass


def main(argv: list[str] | None = None) -> None:
    p = parser("macha-systems", "The hosts Macha knows: facts, status, health and relationships.")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    ls = sub.add_parser("list", help="every host (the default)")
    sh = sub.add_parser("show", help="one host: health and why, latest review, failed units, metrics, links")
    sh.add_argument("host")
    kinds = [str(k) for k in RelationshipKind]
    ln = sub.add_parser("link", help="record that host A relates to host B (A depends-on B)")
    ln.add_argument("a")
    ln.add_argument("b")
    ln.add_argument("--kind", choices=kinds, default=str(RelationshipKind.DEPENDS_ON))
    un = sub.add_parser("unlink", help="forget a relationship of A to B (every kind unless --kind)")
    un.add_argument("a")
    un.add_argument("b")
    un.add_argument("--kind", choices=kinds)
    ro = sub.add_parser("role", help="set a host's role (web, database, ...); '-' clears it")
    ro.add_argument("host")
    ro.add_argument("role")
    for sp in (ls, sh, ln, un, ro):
        sp.add_argument("-o", "--output", choices=("table", "json"), default=argparse.SUPPRESS)
    args = p.parse_args(argv)
    run("macha-systems", lambda: _main(args))


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _main(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    settings = settings_from(args)
    store = Store(settings.effective_database_url)
    command = args.command or "list"
    as_json = args.output == "json"
    console = Console(width=None if sys.stdout.isatty() else 200)
    if command == "list":
        rows = hosts.list_hosts(store)
        if as_json:
            print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        else:
            _render_list(console, rows)
        return 0
    if command == "show":
        overview = hosts.host_overview(store, args.host)
        if as_json:
            print(json.dumps(overview.model_dump(mode="json"), indent=2))
        else:
            _render_show(console, overview)
        return 0
    if command in ("link", "unlink"):
        if args.a == args.b:
            raise RegistryError(f"a host cannot {command} to itself ({args.a!r})")
        kind = RelationshipKind(args.kind) if args.kind else None
        with store.session() as s:
            # Both must be known: a typo would otherwise link to a host that never reports.
            require_host(s, args.a)
            require_host(s, args.b)
            if command == "link":
                assert kind is not None
                new = relationships.link(s, args.a, args.b, kind, _actor())
                said = f"{args.a} {kind} {args.b}" + ("" if new else " (already recorded)")
            else:
                removed = relationships.unlink(s, args.a, args.b, kind)
                if not removed:
                    raise RegistryError(f"no relationship of {args.a!r} to {args.b!r}"
                                        f"{f' of kind {kind}' if kind else ''} is recorded")
                said = f"removed {removed} relationship(s) of {args.a} to {args.b}"
        print(json.dumps({"result": said}) if as_json else plain(said).plain)
        return 0
    if command == "role":
        role = None if args.role == "-" else args.role.strip()
        if role is not None and not (0 < len(role) <= MAX_ROLE and role.isprintable()):
            raise RegistryError(f"a role is 1 to {MAX_ROLE} printable characters")
        with store.session() as s:
            require_host(s, args.host).role = role
        print(json.dumps({"host": args.host, "role": role}) if as_json
              else plain(f"{args.host}: role {role or '(none)'}").plain)
        return 0
    raise AssertionError(command)


def _ago(t: datetime) -> str:
    secs = int((utcnow() - t).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{max(secs, 0)}s ago"


def _status(colour: HealthColour, score: int) -> Text:
    return Text(f"{colour} {score}", style=COLOUR_STYLE.get(colour, ""))


# Host names, facts, event text and model summaries are stored text from outside: plain() Text, never markup.


def _render_list(console: Console, rows: list[hosts.HostSummary]) -> None:
    if not rows:
        console.print("No hosts yet: a host appears after its first check (`macha-check`).")
        return
    table = Table(title="Hosts")
    for col in ("Host", "Role", "Runs", "OS", "Kernel", "NixOS gen.", "Macha", "Last seen", "Status", "Issues",
                "Approvals"):
        table.add_column(col, overflow="fold")
    for r in rows:
        runs = ",".join(r.macha_roles) or "-"
        if r.silent_since is not None:
            runs += f" (silent since {_ago(r.silent_since)})"
        table.add_row(plain(r.hostname, one_line=True), plain(r.role or "-"), plain(runs), plain(r.os or "-"),
                      plain(r.kernel or "-"), plain(r.nixos_generation or "-"), plain(r.macha_version or "-"),
                      _ago(r.last_seen), _status(r.status, r.health_score), str(r.open_issues),
                      str(r.pending_approvals))
    console.print(table)


def _render_show(console: Console, o: hosts.HostOverview) -> None:
    console.print(Text.assemble(plain(o.hostname, "bold", one_line=True), "  ", _status(o.status, o.health_score),
                                f"  last seen {_ago(o.last_seen)}"))
    for label, value in (("Role", o.role), ("OS", o.os), ("Kernel", o.kernel), ("NixOS generation",
                         o.nixos_generation), ("Macha", o.macha_version), ("Uptime", o.facts.get("uptime"))):
        if value:
            console.print(Text.assemble(f"  {label}: ", plain(value, one_line=True)))
    console.print(f"  Open issues: {o.open_issues}  Pending approvals: {o.pending_approvals}", markup=False,
                  highlight=False)
    if o.health.reasons:
        table = Table(title=f"Why the health score is {o.health_score}")
        for col in ("Points", "Kind", "What"):
            table.add_column(col, overflow="fold")
        for r in o.health.reasons:
            table.add_row(f"-{r.penalty}", str(r.kind), plain(r.text, one_line=True))
        console.print(table)
        if o.health.more:
            console.print(f"... and {o.health.more} more", markup=False, highlight=False)
    else:
        console.print("  Nothing lowers the health score.")
    if o.latest_review is not None:
        r = o.latest_review
        console.print(Text.assemble(plain(f"Latest review #{r.id} ({r.created_at:%Y-%m-%d %H:%M:%S} UTC, "
                                          f"{r.reviewer}): "), plain(r.status, "bold")))
        console.print(Text.assemble("  ", plain(r.summary)))
    if o.failed_units:
        console.print(Text.assemble("Failed units: ", plain(", ".join(u.unit for u in o.failed_units))))
    if o.metrics:
        table = Table(title="Current metrics")
        for col in ("Metric", "Value", "At (UTC)"):
            table.add_column(col, overflow="fold")
        for m in o.metrics[:40]:
            table.add_row(plain(m.name, one_line=True), f"{m.value:.4g}", f"{m.time:%Y-%m-%d %H:%M:%S}")
        console.print(table)
    if o.relationships:
        console.print("Relationships:", markup=False, highlight=False)
        for rel in o.relationships:
            console.print(Text.assemble("  ", plain(f"{rel.source} {rel.kind} {rel.target}", one_line=True)))


if __name__ == "__main__":  # pragma: no cover
    main()
