"""macha-logs: the stored log and trigger events, filtered like journalctl, and followed live."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from macha.cli.common import count_type, parser, run, settings_from, setup_logging
from macha.core.severity import SEVERITIES
from macha.core.text import printable
from macha.read.common import MAX_LIMIT, build, require_host
from macha.read.events import EventKind, EventPage, EventQuery, EventRow, query_events
from macha.store.db import Store

OUTPUTS = ("simple", "extended", "json")
#: A follower reads the database at least this often even without a notice (one lost with a broker restart).
POLL_S = 10.0


def main(argv: list[str] | None = None) -> None:
    p = parser("macha-logs", "Show the log and trigger events Macha stored, newest last; --follow shows new ones "
               "as they are stored.")
    p.add_argument("--host", help="only this host")
    p.add_argument("-S", "--since", help="from this time (-1h, -30min, today, yesterday, ISO or 'YYYY-MM-DD HH:MM:SS')")
    p.add_argument("-U", "--until", help="up to this time (same forms as --since)")
    p.add_argument("-p", "--priority", help="syslog priority or range: err (err and worse), 3, warning..err")
    p.add_argument("-u", "--unit", help="only this unit (nginx means nginx.service)")
    p.add_argument("--severity", choices=[str(s) for s in SEVERITIES], help="this severity or worse")
    p.add_argument("--pattern", help="only events a detection pattern raised (e.g. oom_kill)")
    p.add_argument("-g", "--grep", help="a plain substring of the message, case-insensitive (not a regex)")
    p.add_argument("-f", "--follow", action="store_true", help="keep showing events as they are stored")
    p.add_argument("-o", "--output", choices=OUTPUTS, default="simple",
                   help="simple (one line each), extended (every field), json (one object per line)")
    p.add_argument("-n", "--lines", type=count_type, default=50,
                   help=f"how many of the newest events to show (default 50, at most {MAX_LIMIT})")
    args = p.parse_args(glue_times(sys.argv[1:] if argv is None else argv))
    run("macha-logs", lambda: _main(args))


def glue_times(argv: list[str]) -> list[str]:
    """``--since -1h`` as journalctl takes it: argparse would read ``-1h`` as an option of its own, so the value
    is glued to its option (``--since=-1h``) first."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in ("-S", "--since", "-U", "--until"):
            value = next(it, None)
            if value is not None:
                arg = f"{arg}={value}" if arg.startswith("--") else f"{arg}{value}"
        elif arg == "--":
            out.append(arg)
            out.extend(it)
            break
        out.append(arg)
    return out


def _query(args: argparse.Namespace, **extra: Any) -> EventQuery:
    return build(EventQuery, host=args.host, since=args.since, until=args.until, priority=args.priority,
                 unit=args.unit, severity=args.severity, pattern=args.pattern, text=args.grep,
                 limit=min(args.lines, MAX_LIMIT), **extra)


def _main(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    settings = settings_from(args)
    query = _query(args)  # a bad filter is one line before anything connects
    store = Store(settings.effective_database_url)
    if args.host:
        with store.session() as s:
            require_host(s, args.host)
    if not args.follow:
        page = query_events(store, query)
        _show(page.entries[::-1], args.output)
        if not page.entries and args.output != "json":
            print("No stored events match.", file=sys.stderr)
        return 0
    return _follow(store, settings.effective_broker_url, args, query)


def _follow(store: Store, broker_url: str, args: argparse.Namespace, query: EventQuery) -> int:
    from macha.broker.client import ensure_reachable
    from macha.broker.live import subscribe

    ensure_reachable(broker_url, "; --follow is woken by the pipeline's broker (is `macha-ai` running?)")
    # Subscribed before the first read: whatever is stored after that read wakes us, and the cursor finds it.
    with subscribe(broker_url) as sub:
        page: EventPage = query_events(store, query)
        _show(page.entries[::-1], args.output)
        cursor = page.cursor
        last_read = time.monotonic()
        try:
            while True:
                notices = sub.wait(1.0)
                if not notices and time.monotonic() - last_read < POLL_S:
                    continue
                while True:
                    nxt = query_events(store, query.model_copy(update={"after": cursor, "limit": MAX_LIMIT}))
                    _show(nxt.entries, args.output)
                    cursor = nxt.cursor
                    if len(nxt.entries) < MAX_LIMIT:
                        break
                last_read = time.monotonic()
        except KeyboardInterrupt:
            return 0


def _when(e: EventRow) -> str:
    return e.time.strftime("%Y-%m-%d %H:%M:%S")


def _line(text: str | None) -> str:
    return printable(text or "", one_line=True)


def _simple(e: EventRow) -> str:
    patterns = ",".join(t.pattern or t.trigger_type for t in e.triggers)
    tag = f" [{_line(patterns)}]" if patterns else ""
    who = e.unit or e.identifier or "-"
    count = f" (x{e.count})" if e.count > 1 else ""
    return f"{_when(e)} {_line(e.hostname)} {_line(who)} {e.severity}{tag}: {_line(e.message)}{count}"


def _extended(e: EventRow) -> str:
    lines = [f"{_when(e)} UTC  {_line(e.hostname)}  {e.kind} #{e.id}  {e.severity}"]
    for label, value in (("unit", e.unit), ("identifier", e.identifier), ("priority", e.priority),
                         ("source", e.source), ("repeats", e.count if e.count > 1 else None)):
        if value not in (None, ""):
            lines.append(f"    {label}: {_line(str(value))}")
    # A message keeps its lines, each indented and escaped: it cannot forge an entry of its own.
    body = printable(e.message).splitlines() or [""]
    lines.append("    message: " + body[0])
    lines += [f"             {line}" for line in body[1:]]
    for t in e.triggers:
        if e.kind == EventKind.LOG or t.reason != e.message:
            lines.append(f"    trigger #{t.id} {t.severity} {_line(t.pattern or t.trigger_type)}: {_line(t.reason)}")
    return "\n".join(lines) + "\n"


def _json(e: EventRow) -> str:
    # ASCII JSON: every control, bidi and invisible character is a \uXXXX escape; scripts get the text as stored.
    return json.dumps(e.model_dump(mode="json"))


_RENDER = {"simple": _simple, "extended": _extended, "json": _json}


def _show(entries: list[EventRow], output: str) -> None:
    render = _RENDER[output]
    for e in entries:
        print(render(e), flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
