"""macha-chat: talk with the meta model about this host, an approval (--discuss) or an analysed issue
(--follow-up). Each question is stored, answered by a task on the gpu queue, and its answer streamed here."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.markdown import Markdown

from macha.broker.client import ensure_reachable, redis_client
from macha.cli.common import EXIT_ERROR, id_type, parser, plain, run, seconds_type, settings_from, setup_logging
from macha.config import Settings
from macha.core.errors import MachaError
from macha.core.states import ChatEvent, ChatStatus
from macha.core.text import printable
from macha.meta import chat
from macha.store.db import Store

EXIT_WORDS = {"/exit", "/quit", "exit", "quit"}


def build_parser() -> argparse.ArgumentParser:
    p = parser("macha-chat", "Chat with Macha's meta model (read-only tools; actions go through macha-approve).")
    p.add_argument("--ask", metavar="QUESTION", help="ask one question, print the answer and exit")
    p.add_argument("--discuss", type=id_type("action"), metavar="APPROVAL_ID",
                   help="talk over an action waiting for approval")
    p.add_argument("--follow-up", type=id_type("analysis"), metavar="ISSUE_ID", dest="follow_up",
                   help="continue with an analysed issue (the id of its meta analysis)")
    p.add_argument("--conversation", type=id_type("conversation"), metavar="ID",
                   help="continue an earlier conversation")
    p.add_argument("--host", help="the host to talk about (default: this one)")
    p.add_argument("--timeout", type=seconds_type, help="seconds to wait for the gpu worker to start answering "
                   "(default: meta.chatWait)")
    p.add_argument("--state-dir", help="state directory (default: ~/.local/state/macha)")
    p.add_argument("--broker", help="Redis URL of the broker (default: the embedded Redis under state_dir)")
    p.add_argument("--database", help="database URL (default: SQLite under state_dir)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run("macha-chat", lambda: _main(args))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _main(args: argparse.Namespace) -> int:
    if args.discuss is not None and args.follow_up is not None:
        raise MachaError("--discuss and --follow-up cannot be combined")
    settings = settings_from(args, state_dir=args.state_dir, broker_url=args.broker, database_url=args.database)
    setup_logging(args.verbose)
    ensure_reachable(settings.effective_broker_url,
                     " (macha-chat talks to the worker through the broker: is macha-ai running?)")
    store = Store(settings.effective_database_url)
    console = Console(stderr=False, highlight=False)
    if args.conversation is not None:
        conv_id = args.conversation
    else:
        conv_id = chat.start(store, args.host or settings.hostname, approval_id=args.discuss,
                             escalation_id=args.follow_up, created_by=_user())
    first = args.ask
    if first is None and args.discuss is not None:
        first = ("Explain this proposed action: why it was proposed, what it will do, its risks, and whether "
                 "you would approve it.")
    if first is None and args.follow_up is not None:
        first = "Where do things stand with this issue now? Has anything changed since the analysis?"
    if args.ask is not None or not sys.stdin.isatty():
        # One-shot: --ask, or questions piped in (each line one question).
        questions = [first] if first else [line for line in sys.stdin.read().splitlines() if line.strip()]
        for q in questions:
            code = _turn(console, store, settings, conv_id, q, args.timeout)
            if code:
                return code
        return 0
    console.print(plain(f"conversation #{conv_id} with {settings.meta_model}; /exit to leave", "dim"))
    if first:
        console.print(plain(f"> {first}", "bold"))
        if (code := _turn(console, store, settings, conv_id, first, args.timeout)) != 0:
            return code
    while True:
        try:
            q = console.input("[bold]> [/bold]")
        except EOFError:
            return 0
        if q.strip() in EXIT_WORDS:
            return 0
        if q.strip():
            _turn(console, store, settings, conv_id, q, args.timeout)


def _turn(console: Console, store: Store, settings: Settings, conv_id: int, question: str,
          timeout: float | None) -> int:
    from workers.app import create_app, send_chat

    message_id = chat.ask(store, conv_id, question)
    send_chat(create_app(settings), message_id)
    return _stream(console, store, settings, message_id, timeout or settings.meta.chat_wait, conv_id)


def _status(store: Store, message_id: int) -> tuple[str, str | None]:
    from macha.store.models import ChatMessage

    with store.session() as s:
        row = s.get(ChatMessage, message_id)
        return (row.status, row.error) if row is not None else ("missing", None)


def _stream(console: Console, store: Store, settings: Settings, message_id: int, wait: float, conv_id: int) -> int:
    """Print the answer as it is written; markdown is rendered once it is complete (on a terminal). The stored
    status of the question is the truth when the stream falls silent (a broker hiccup, a worker that died)."""
    client = redis_client(settings.effective_broker_url)
    key = chat.stream_key(message_id)
    last = "0-0"
    started = quiet_since = time.monotonic()
    # Longer than any answer may take: its time limit, plus the model calls that may follow it.
    give_up = settings.meta.time_limit + 3 * settings.llm.timeout + 60
    got_any = False
    parts: list[str] = []
    warned = False
    while True:
        block_ms = 1000
        entries: Any = client.xread({key: last}, count=500, block=block_ms)
        if not entries:
            waited = time.monotonic() - started
            if time.monotonic() - quiet_since > 5:
                quiet_since = time.monotonic()
                status, error = _status(store, message_id)
                if status == ChatStatus.FAILED:
                    print(f"macha-chat: {printable(error or 'the answer failed', one_line=True)}", file=sys.stderr)
                    return EXIT_ERROR
                if status == ChatStatus.ANSWERED and not got_any:
                    return _print_stored(console, store, message_id)
                if status == ChatStatus.ANSWERING and waited > give_up:
                    print(f"macha-chat: no answer after {give_up:.0f} s; the worker may have stopped "
                          f"(conversation #{conv_id})", file=sys.stderr)
                    return EXIT_ERROR
            if not got_any and waited > 5 and not warned:
                print("macha-chat: waiting for the gpu worker (the meta model may be busy with a critical "
                      "escalation)...", file=sys.stderr)
                warned = True
            if not got_any and waited > wait:
                print(f"macha-chat: no gpu worker started answering within {wait:.0f} s; the question is stored "
                      f"(conversation #{conv_id}) and will be answered when one runs (macha-ai serves the gpu "
                      "queue; check `celery inspect active_queues`)", file=sys.stderr)
                return EXIT_ERROR
            continue
        quiet_since = time.monotonic()
        for _stream_key, items in entries:
            for entry_id, fields in items:
                last = entry_id
                got_any = True
                kind = fields.get(b"type", b"").decode()
                # Model text must not drive the terminal. The shared sanitiser works character by character, so a
                # sequence split over two chunks is disarmed as surely as a whole one.
                text = printable(fields.get(b"text", b"").decode(errors="replace"))
                if kind == ChatEvent.TOKEN:
                    parts.append(text)
                    if not console.is_terminal:
                        sys.stdout.write(text)
                        sys.stdout.flush()
                    else:
                        console.out(text, end="", highlight=False)
                elif kind == ChatEvent.TOOL:
                    print(f"[tool] {text}", file=sys.stderr)
                elif kind == ChatEvent.ERROR:
                    if parts:
                        print(file=sys.stdout)
                    print(f"macha-chat: {printable(text, one_line=True)}", file=sys.stderr)
                    return EXIT_ERROR
                elif kind == ChatEvent.DONE:
                    if console.is_terminal and parts:
                        # Streamed as plain text; shown again rendered now that it is whole. Links are shown with
                        # their address, never as terminal hyperlinks whose text could hide where they lead.
                        console.print()
                        console.rule(style="dim")
                        console.print(Markdown("".join(parts), hyperlinks=False))
                    else:
                        print()
                    return 0


def _print_stored(console: Console, store: Store, message_id: int) -> int:
    """The answer from the store, when its stream was lost."""
    from sqlalchemy import select

    from macha.store.models import ChatMessage

    with store.session() as s:
        q = s.get(ChatMessage, message_id)
        answer = s.execute(select(ChatMessage.content).where(
            ChatMessage.conversation_id == q.conversation_id, ChatMessage.role == "assistant",
            ChatMessage.id > message_id).order_by(ChatMessage.id).limit(1)).scalar()
    console.print(plain(answer))
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
