"""macha-issues against stores with a recorded incident, on SQLite and PostgreSQL: list (filters, -q, -o
simple|extended|json), show (the timeline), ack / close / reopen with the operator's name in the audit, and bad
input as one line with exit code 2. Mostly in-process (main(argv)); the installed console script once."""

from __future__ import annotations

import getpass
import json

import pytest
from helpers import FIXTURES
from helpers.hostile_text import FORBIDDEN, HOSTILE
from helpers.processes import macha_env, run_cli
from sqlalchemy import select, update

from macha.cli.issues import main
from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.review.run import run_review
from macha.store.db import Store
from macha.store.models import Issue, IssueAudit, TriggerEvent


@pytest.fixture
def incident(db_url, tmp_path, monkeypatch):
    """A store with the recorded OOM incident reviewed on host h1: one open critical issue."""
    monkeypatch.setenv("MACHA_DATABASE_URL", db_url)
    monkeypatch.setenv("MACHA_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.delenv("MACHA_CONFIG", raising=False)
    settings = load_settings(hostname="h1")
    store = Store(db_url)
    run_check(store, settings, hostname="h1", source=JournalSource.file(FIXTURES / "oom.journal"))
    issue_id = run_review(store, "h1", settings=settings).issue_id
    yield store, issue_id
    store.dispose()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_list_show_and_the_lifecycle_commands(incident, capsys) -> None:
    store, issue_id = incident
    code, out, _ = cli(capsys, "list")
    assert code == 0 and "Open issues" in out and "h1" in out and "critical" in out and "Out of memory" in out
    assert cli(capsys, "-q")[1].split() == [str(issue_id)]  # list is the default command
    assert cli(capsys, "list", "-q", "--host", "h1", "--severity", "high")[1].split() == [str(issue_id)]
    assert cli(capsys, "list", "-q", "--severity", "critical")[1].split() == [str(issue_id)]

    code, out, _ = cli(capsys, "list", "-o", "json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [issue_id] and rows[0]["status"] == "open"
    assert rows[0]["hostname"] == "h1" and rows[0]["severity"] == "critical" and rows[0]["groups"]
    code, out, _ = cli(capsys, "-o", "extended", "list")
    assert code == 0 and "Groups" in out and "Events" in out

    code, out, _ = cli(capsys, "show", str(issue_id))
    assert code == 0 and f"Issue {issue_id}" in out and "Timeline" in out
    assert "event" in out and "review" in out and "analysis" in out
    code, out, _ = cli(capsys, "show", str(issue_id), "-o", "json")
    detail = json.loads(out)
    assert {t["kind"] for t in detail["timeline"]} >= {"event", "review", "analysis", "state"}
    times = [t["time"] for t in detail["timeline"]]
    assert times == sorted(times)

    me = getpass.getuser()
    code, out, _ = cli(capsys, "ack", str(issue_id))
    assert code == 0 and f"Acknowledged issue {issue_id} on h1" in out
    assert json.loads(cli(capsys, "list", "-o", "json")[1])[0]["acknowledged_by"] == me
    code, out, _ = cli(capsys, "close", str(issue_id), "--reason", "raised the memory limit", "-q")
    assert code == 0 and out.split() == [str(issue_id)]
    assert cli(capsys, "list", "-q")[1].split() == []
    assert "No open issues" in cli(capsys, "list")[1]
    assert cli(capsys, "list", "--all", "-q")[1].split() == [str(issue_id)]
    code, out, _ = cli(capsys, "reopen", str(issue_id), "-o", "json")
    assert code == 0 and json.loads(out)["status"] == "open"
    with store.session() as s:
        trail = [(a.event, a.actor, a.reason) for a in s.execute(
            select(IssueAudit).where(IssueAudit.issue_id == issue_id).order_by(IssueAudit.id)).scalars()]
    assert trail[1:] == [("acknowledged", me, ""), ("closed", me, "raised the memory limit"), ("reopened", me, "")]


@pytest.mark.parametrize("argv, message", [
    (["show", "424242"], "no issue with id 424242"),
    (["ack", "424242"], "no issue with id 424242"),
    (["show", "abc"], "issue id 'abc' is not a whole number"),
    (["show", str(2**70)], "no issue has id"),
    (["list", "--host", "nosuchhost"], "no host named 'nosuchhost' in the store (known: h1)"),
    (["list", "--severity", "dire"], "invalid choice: 'dire'"),
    (["close", "1"], "--reason"),
    (["list", "-o", "yaml"], "invalid choice: 'yaml'"),
])
def test_bad_input_is_one_line_and_exit_2(incident, capsys, argv, message) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("macha-issues") and message in err


def test_a_transition_its_state_does_not_allow_is_refused(incident, capsys) -> None:
    store, issue_id = incident
    assert cli(capsys, "close", str(issue_id), "--reason", "fixed")[0] == 0
    code, out, err = cli(capsys, "ack", str(issue_id))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert f"issue {issue_id} is resolved by {getpass.getuser()} at " in err and "nothing to acknowledge" in err
    code, _, err = cli(capsys, "close", str(issue_id), "--reason", "again")
    assert code == 2 and "nothing to close" in err
    assert cli(capsys, "reopen", str(issue_id))[0] == 0
    code, _, err = cli(capsys, "reopen", str(issue_id))
    assert code == 2 and f"issue {issue_id} is open: nothing to reopen" in err


def test_log_text_is_shown_sanitized(incident, capsys) -> None:
    """A title and timeline from log lines that try to drive the terminal or read as markup are shown escaped."""
    store, issue_id = incident
    hostile = " ".join(raw for raw, _ in HOSTILE.values())
    with store.session() as s:
        s.execute(update(Issue).where(Issue.id == issue_id).values(title=hostile))
        s.execute(update(TriggerEvent).where(TriggerEvent.issue_id == issue_id).values(trigger_reason=hostile))
    for argv in (["list"], ["-o", "extended", "list"], ["show", str(issue_id)], ["-o", "extended", "show",
                                                                              str(issue_id)]):
        code, out, _ = cli(capsys, *argv)
        assert code == 0 and not [c for c in FORBIDDEN if c in out]
        assert "\\x1b" in out


def test_the_console_script(incident, tmp_path) -> None:
    store, issue_id = incident
    env = macha_env(tmp_path / "s", MACHA_DATABASE_URL=str(store.engine.url.render_as_string(hide_password=False)))
    proc = run_cli("macha-issues", "list", "-q", env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == [str(issue_id)]
    proc = run_cli("macha-issues", "ack", "999999", env=env, timeout=60)
    assert proc.returncode == 2 and proc.stderr == "macha-issues: no issue with id 999999 (see `macha-issues list " \
                                                   "--all`)\n"
