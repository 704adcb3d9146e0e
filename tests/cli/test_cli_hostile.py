"""The commands an operator runs, against stored text written by an attacker (journal lines, model answers):
`macha-approve list/show/history`, `macha-check` on a real journal file, and `macha-chat`'s stream. They finish
normally, show the text escaped and literally, and send nothing that drives the terminal. Plus ids out of the
database's range, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from helpers.journal import Entry
from helpers.processes import macha_env, run_cli
from helpers.hostile_text import FORBIDDEN, HOSTILE
from rich.console import Console

from macha.store.db import Store
from macha.store.models import Action, ActionAudit, LogEvent, Review, TriggerEvent, utcnow

pytestmark = pytest.mark.timeout(300)


def _fill(url: str) -> dict[str, int]:
    """One pending action per hostile text: its reason, its evidence (a log event and its trigger), its audit
    entry and its review summary all hold the text. Returns name -> action id."""
    store = Store(url)
    ids = {}
    with store.session() as s:
        now = utcnow()
        for i, (name, (raw, _shown)) in enumerate(sorted(HOSTILE.items())):
            log = LogEvent(time=now, hostname="web1", severity="high", message=f"log {raw}", unit="x.service",
                           source="journal", entry_key=f"k{i}")
            review = Review(hostname="web1", status="degraded", summary=f"model {raw}", reviewer="model",
                            event_count=1)
            s.add_all([log, review])
            s.flush()
            trig = TriggerEvent(time=now, hostname="web1", trigger_type="journal_pattern", trigger_reason=raw,
                                severity="high", pattern_id="unit_failed", fingerprint=f"f{i}",
                                log_event_id=log.id, review_id=review.id, meta={"unit": "x.service"})
            s.add(trig)
            s.flush()
            action = Action(hostname="web1", action="restart_service", arguments={"unit": f"a{i}.service"},
                            dedup_key=f"d{i}", risk="medium", status="pending", verdict_reason=f"verdict {raw}",
                            proposer="review:model", reason=f"why {raw}", review_id=review.id,
                            evidence={"event_ids": [trig.id]}, autonomy_level="suggest",
                            expires_at=now + timedelta(hours=1))
            s.add(action)
            s.flush()
            s.add(ActionAudit(action_id=action.id, hostname="web1", action="restart_service", event="queued",
                              actor="policy:suggest", reason=f"audit {raw}"))
            ids[name] = action.id
    store.dispose()
    return ids


def _clean(out: str) -> None:
    found = [f for f in FORBIDDEN if f in out]
    assert not found, f"raw control characters reached the terminal: {found!r}"


@pytest.fixture
def hostile_store(db_url, tmp_path):
    ids = _fill(db_url)
    env = macha_env(tmp_path / "state", MACHA_DATABASE_URL=db_url)
    return ids, env


def test_macha_approve_shows_hostile_text_escaped_and_literally(hostile_store) -> None:
    ids, env = hostile_store
    listed = run_cli("macha-approve", "list", env=env, timeout=60)
    # Before: "[/]" in a reason stopped the listing (MarkupError, exit 2); escapes went to the terminal raw.
    assert listed.returncode == 0, listed.stderr
    _clean(listed.stdout)
    history = run_cli("macha-approve", "history", "--limit", "500", env=env, timeout=60)
    assert history.returncode == 0, history.stderr
    _clean(history.stdout)
    for name, (_raw, shown) in HOSTILE.items():
        assert f"why {shown}" in listed.stdout, name
        assert f"audit {shown}" in history.stdout, name
        detail = run_cli("macha-approve", "show", str(ids[name]), env=env, timeout=60)
        assert detail.returncode == 0, (name, detail.stderr)
        _clean(detail.stdout)
        for part in (f"Reason: why {shown}", f"Decision: verdict {shown}", f"model {shown}", f"log {shown}",
                     f"audit {shown}"):
            assert part in detail.stdout, (name, part, detail.stdout)
    # JSON carries the stored text unchanged (json.dumps writes the controls as \u escapes).
    rows = json.loads(run_cli("macha-approve", "list", "--json", env=env, timeout=60).stdout)
    assert {r["reason"] for r in rows} == {f"why {raw}" for raw, _ in HOSTILE.values()}


def test_rejecting_with_a_hostile_reason_prints_it_escaped(hostile_store) -> None:
    ids, env = hostile_store
    proc = run_cli("macha-approve", "reject", str(ids["close tag"]), "--reason", "\x1b]0;x\x07 [/] no", env=env,
                   timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"Rejected action {ids['close tag']} (restart_service)."
    history = run_cli("macha-approve", "history", "--action", str(ids["close tag"]), env=env, timeout=60)
    assert history.returncode == 0 and "\\x1b]0;x\\x07 [/] no" in history.stdout
    _clean(history.stdout)


@pytest.mark.parametrize("command", [["show"], ["approve"], ["reject", "--reason", "no"], ["history", "--action"],
                                     ["discuss"]])
def test_an_id_out_of_range_is_one_line_naming_it(hostile_store, command) -> None:
    _ids, env = hostile_store
    # Before: SQLite's driver failed on the huge ids (OverflowError, "internal error").
    bads = ["99999999999999999999999", "0"] + (["9223372036854775808", "-1"] if command == ["show"] else [])
    for bad in bads:
        args = ["reject", bad, "--reason", "no"] if command[0] == "reject" else [*command, bad]
        proc = run_cli("macha-approve", *args, env=env, timeout=60)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr, lines
        assert f"no action has id {bad}: ids are whole numbers from 1 to 9223372036854775807" in lines[0]


def test_the_largest_id_reaches_the_database_and_is_not_found(hostile_store) -> None:
    _ids, env = hostile_store
    for args in (["show"], ["approve"]):
        proc = run_cli("macha-approve", *args, "9223372036854775807", env=env, timeout=60)
        assert proc.returncode == 2 and proc.stderr.strip() == (
            "macha-approve: no action with id 9223372036854775807 (see `macha-approve list`)"), proc.stderr


def test_bad_limits_and_chat_ids_are_one_line(tmp_path) -> None:
    env = macha_env(tmp_path / "state")
    for prog, args, expected in (
        ("macha-approve", ["history", "--limit", "-1"], "argument --limit: '-1' is not a whole number"),
        ("macha-approve", ["history", "--limit", "99999999999999999999999"], "argument --limit"),
        ("macha-chat", ["--discuss", "99999999999999999999999"], "no action has id 99999999999999999999999"),
        ("macha-chat", ["--conversation", "0"], "no conversation has id 0"),
        ("macha-chat", ["--timeout", "nan", "--ask", "x"], "argument --timeout: 'nan' is not a number of seconds"),
        ("macha-check", ["--timeout", "-5"], "argument --timeout: '-5' is not a number of seconds above 0"),
    ):
        proc = run_cli(prog, *args, env=env, timeout=60)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)


def test_macha_check_reports_hostile_journal_lines(make_journal, tmp_path) -> None:
    entries = [Entry(f"segfault at 0 ip 0 sp 0 error 4 in libc.so ({name}) {raw}", priority=2,
                     identifier=f"app{i}", pid=100 + i)
               for i, (name, (raw, _)) in enumerate(sorted(HOSTILE.items()))]
    journal = make_journal(entries)
    env = macha_env(tmp_path / "state", MACHA_LLM__BACKEND="none")
    proc = run_cli("macha-check", "--local", "--journal-file", str(journal), env=env, timeout=120)
    # Before: "[/]" in a journal line made macha-check exit 2 with no report.
    assert proc.returncode == 1, proc.stderr
    _clean(proc.stdout)
    flat = _unfold(proc.stdout)
    for name, (_raw, shown) in HOSTILE.items():
        assert _unfold(shown) in flat, (name, proc.stdout)
    as_json = run_cli("macha-check", "--local", "--json", "--journal-file", str(journal), env=env, timeout=120)
    _clean(as_json.stdout)
    json.loads(as_json.stdout)


def _unfold(text: str) -> str:
    # Table cells fold long text over several lines: compare without the layout.
    return "".join(ch for ch in text if not ch.isspace() and ch not in "│┃")


def test_macha_chat_stream_is_escaped_and_links_show_their_address(redis_url, sqlite_url) -> None:
    """The answer as the worker streams it, in pieces that split escape sequences, through the real stream
    reader onto a terminal: escapes shown, and the rendered markdown makes no hyperlink."""
    from macha.broker.client import redis_client
    from macha.cli.chat import _stream
    from macha.config import load_settings
    from macha.meta.chat import stream_key

    settings = load_settings(broker_url=redis_url, database_url=sqlite_url)
    answer = "".join(raw for raw, _ in HOSTILE.values()) + " see [the docs](http://evil.example/steal) now"
    client = redis_client(redis_url)
    for i in range(0, len(answer), 7):
        client.xadd(stream_key(4242), {"type": "token", "text": answer[i:i + 7]})
    client.xadd(stream_key(4242), {"type": "done", "text": ""})
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=200, color_system="truecolor")
    assert _stream(console, Store(sqlite_url), settings, 4242, 10, 1) == 0
    out = buf.getvalue()
    # Rich styles the rendered markdown with SGR (ESC [ ... m) and nothing else.
    for forbidden in ("\x1b]", "\x1b[2J", "\x1b[H", "\x1bP", "\x9b", "\x9d", "\x07", "\r", "\u202e"):
        assert forbidden not in out, forbidden
    assert "the docs (http://evil.example/steal)" in _strip_sgr(out)
    assert "\\x1b]52;c;cm0gLXJmIC8=\\x07" in _strip_sgr(out)


def _strip_sgr(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
