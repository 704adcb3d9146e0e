"""macha-templates: the message templates Layer 1 learned per host, the new ones that raise novelty events, and
marking one benign (it is learned: it never raises again). ``-o simple|json``, ``-q`` for ids only."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from macha.cli.common import count_type, id_type, operator_name, parser, plain, run, settings_from, setup_logging
from macha.monitor.detect import novelty
from macha.store.db import Store

PROG = "macha-templates"
OUTPUTS = ("simple", "json")
STATE_STYLE = {"new": "yellow", "benign": "green", "learned": "dim"}


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(PROG, "The message templates Macha learned on each host; new ones raise novelty events until they "
               "are learned or marked benign.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    ls = sub.add_parser("list", help="templates first seen after the learning period (the default); --all: every one")
    ls.add_argument("--all", action="store_true", help="learned and benign templates too")
    ls.add_argument("--host", help="only this host")
    ls.add_argument("-n", "--lines", type=count_type, default=100, help="at most this many (default 100)")
    bn = sub.add_parser("benign", help="mark a template benign: its lines never raise a novelty event again")
    bn.add_argument("id", type=id_type("template"))
    bn.add_argument("--reason", default="", help="why (kept in the audit)")
    for sp in (p, ls, bn):
        sp.add_argument("-o", "--output", choices=OUTPUTS, default=argparse.SUPPRESS if sp is not p else "simple",
                        help="simple (the default) or json")
        sp.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if sp is not p else False,
                        help="only the ids, one a line")
    args = p.parse_args(argv)
    run(PROG, lambda: _main(args))


def _main(args: Any) -> int:
    setup_logging(args.verbose)
    settings = settings_from(args)
    store = Store(settings.effective_database_url)
    console = Console(width=None if sys.stdout.isatty() else 200)
    if args.command == "benign":
        info = novelty.mark_benign(store, args.id, operator_name(), args.reason)
        if args.quiet:
            print(info.id)
        elif args.output == "json":
            print(json.dumps(info.model_dump(mode="json"), indent=2))
        else:
            console.print(Text.assemble(f"Template {info.id} on ", plain(info.hostname), " is benign (by ",
                                        plain(info.benign_by or ""), "): ", plain(_short(info.template), one_line=True)))
        return 0
    rows = novelty.list_templates(store, settings.detection, getattr(args, "host", None),
                                  only_new=not getattr(args, "all", False), limit=max(1, getattr(args, "lines", 100)))
    if args.quiet:
        print("\n".join(str(r.id) for r in rows))
    elif args.output == "json":
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    elif not rows:
        print("No templates match." if getattr(args, "all", False) else
              "No new templates (first seen after the learning period); --all lists every one.", file=sys.stderr)
    else:
        table = Table(title="Message templates")
        for col in ("ID", "Host", "State", "First seen (UTC)", "Unit", "Lines", "Events", "Template"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(str(r.id), plain(r.hostname), plain(r.state, STATE_STYLE.get(r.state, "")),
                          r.first_seen.strftime("%Y-%m-%d %H:%M:%S") if r.first_seen else "",
                          plain(r.first_unit or "", one_line=True), str(r.lines), str(r.events),
                          plain(_short(r.template), one_line=True))
        console.print(table)
    return 0


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":  # pragma: no cover
    main()
