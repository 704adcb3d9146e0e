"""macha-logs and macha-systems as an operator runs them, against a store with a recorded incident, on SQLite and
PostgreSQL; --follow woken by a real broker."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from pathlib import Path

import pytest
from helpers.incident import record_incident
from helpers.journal import Entry
from helpers.processes import VENV_BIN, macha_env, run_cli

from macha.broker.live import subscribe
from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.store.db import Store


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    store = Store(db_url)
    record_incident(store, tmp_path)
    store.dispose()
    return macha_env(tmp_path / "state", MACHA_DATABASE_URL=db_url, MACHA_HOSTNAME="web1")


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_logs_show_the_incident_oldest_first(env: dict[str, str]) -> None:
    done = run_cli("macha-logs", "--host", "web1", env=env)
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    oom = next(line for line in shown if "Killed process 4242" in line)
    assert oom.startswith("2023-") and " web1 " in oom and "critical [oom_kill]" in oom
    # journalctl's order: the newest last.
    assert [line[:19] for line in shown] == sorted(line[:19] for line in shown)


def test_logs_filters(env: dict[str, str]) -> None:
    done = run_cli("macha-logs", "-o", "json", "--priority", "err", env=env)
    rows = lines(done.stdout)
    assert rows and all(r["priority"] <= 3 for r in rows)
    rows = lines(run_cli("macha-logs", "-o", "json", "--grep", "SEGFAULT", env=env).stdout)
    assert len(rows) == 1 and "segfault at 0" in rows[0]["message"]
    rows = lines(run_cli("macha-logs", "-o", "json", "--pattern", "oom_kill", "--severity", "critical",
                         "--since", "2020-01-01", "--until", "now", env=env).stdout)
    assert [r["triggers"][0]["pattern"] for r in rows] == ["oom_kill"]
    assert run_cli("macha-logs", "--since", "-1h", "-o", "json", env=env).stdout == ""
    assert len(run_cli("macha-logs", "-n", "2", env=env).stdout.splitlines()) == 2
    ext = run_cli("macha-logs", "-o", "extended", "--pattern", "oom_kill", env=env).stdout
    assert "    message: Out of memory" in ext and "trigger #" in ext and "priority: 3" in ext


@pytest.mark.parametrize("argv, says", [
    (["--host", "nosuch"], "no host named 'nosuch'"),
    (["--since", "last tuesday"], "since: time 'last tuesday' is not understood"),
    (["--since", "-1h", "--until", "-2h"], "until"),
    (["--priority", "loud"], "priority"),
    (["-n", "0"], "-n/--lines"),
    (["-o", "xml"], "invalid choice"),
])
def test_logs_bad_input_is_one_line_exit_2(env: dict[str, str], argv: list[str], says: str) -> None:
    done = run_cli("macha-logs", *argv, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_logs_escape_hostile_text(db_url: str, make_journal, tmp_path: Path) -> None:
    store = Store(db_url)
    journal = make_journal([Entry("evil \x1b]52;c;cm0gLXJmIC8=\x07 \u202e [red]x[/] line\nsecond", priority=3)])
    run_check(store, load_settings(state_dir=tmp_path / "s", hostname="h"), hostname="h",
              source=JournalSource.file(str(journal)))
    store.dispose()
    env = macha_env(tmp_path / "state", MACHA_DATABASE_URL=db_url)
    for output in ("simple", "extended", "json"):
        out = run_cli("macha-logs", "-o", output, env=env).stdout
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, output
    done = run_cli("macha-logs", env=env)
    simple = done.stdout
    assert done.returncode == 0, done.stderr
    assert len(simple.splitlines()) == 1 and "\\x1b]52" in simple and "\\u202e" in simple and "\\n" in simple
    assert lines(run_cli("macha-logs", "-o", "json", env=env).stdout)[0]["message"].startswith("evil \x1b]52")


def _read_until(proc: subprocess.Popen, want: str, timeout: float) -> str:
    """What the process wrote until a whole line holding ``want`` came. Read from the pipe itself: a readline()
    on the text wrapper may buffer lines that select() then never reports, and the wanted one waits unseen."""
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    seen = b""
    end = time.monotonic() + timeout
    while not (want.encode() in seen and seen.endswith(b"\n")) and time.monotonic() < end:
        if sel.select(timeout=0.2):
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            seen += chunk
    return seen.decode()


def test_follow_shows_new_events_as_the_pipeline_stores_them(env: dict[str, str], db_url: str, redis_url: str,
                                                             make_journal, tmp_path: Path) -> None:
    env = {**env, "MACHA_BROKER_URL": redis_url}
    proc = subprocess.Popen([str(VENV_BIN / "macha-logs"), "--follow", "-o", "json", "--host", "web1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Killed process 4242" in _read_until(proc, "Killed process 4242", 30)
        journal = make_journal([Entry("Out of memory: Killed process 999 (java) total-vm:1kB", priority=3)],
                               name="later.journal")
        store = Store(db_url)
        settings = load_settings(state_dir=tmp_path / "state", hostname="web1", broker_url=redis_url)
        # The check publishes its notice after the commit (what wakes the follower before its 10 s fallback read).
        with subscribe(redis_url) as watcher:
            run_check(store, settings, hostname="web1", source=JournalSource.file(str(journal)))
            assert {"what": "events", "host": "web1"} in watcher.wait(5)
        store.dispose()
        seen = _read_until(proc, "Killed process 999", 30)
        assert "Killed process 999" in seen
        row = json.loads(seen.strip().splitlines()[-1])
        assert row["hostname"] == "web1" and row["triggers"][0]["pattern"] == "oom_kill"
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_follow_without_a_broker_is_one_line(env: dict[str, str]) -> None:
    done = run_cli("macha-logs", "--follow", env={**env, "MACHA_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert done.returncode == 2 and "not reachable" in done.stderr and len(done.stderr.splitlines()) == 1


def test_systems_list_show_link_unlink(env: dict[str, str]) -> None:
    listed = json.loads(run_cli("macha-systems", "-o", "json", env=env).stdout)
    assert [h["hostname"] for h in listed] == ["db1", "web1"]
    web = listed[1]
    assert web["pending_approvals"] == 1 and web["status"] == "yellow" and web["open_issues"] == 0
    table = run_cli("macha-systems", env=env)
    assert table.returncode == 0 and "web1" in table.stdout and "yellow 65" in table.stdout

    done = run_cli("macha-systems", "link", "web1", "db1", "--kind", "depends-on", env=env)
    assert done.returncode == 0 and "web1 depends-on db1" in done.stdout
    assert "already recorded" in run_cli("macha-systems", "link", "web1", "db1", env=env).stdout
    shown = json.loads(run_cli("macha-systems", "show", "db1", "-o", "json", env=env).stdout)
    assert [(r["source"], r["kind"], r["target"]) for r in shown["relationships"]] == [("web1", "depends-on", "db1")]
    web_show = run_cli("macha-systems", "show", "web1", env=env).stdout
    assert "memory_percent is past its threshold" in web_show and "postgresql.service failed" in web_show
    assert "web1 depends-on db1" in web_show
    assert run_cli("macha-systems", "unlink", "web1", "db1", env=env).returncode == 0
    again = run_cli("macha-systems", "unlink", "web1", "db1", env=env)
    assert again.returncode == 2 and "no relationship" in again.stderr
    assert run_cli("macha-systems", "role", "web1", "frontend", env=env).returncode == 0
    assert json.loads(run_cli("macha-systems", "-o", "json", env=env).stdout)[1]["role"] == "frontend"


@pytest.mark.parametrize("argv, says", [
    (["show", "nosuch"], "no host named 'nosuch'"),
    (["link", "web1", "nosuch"], "no host named 'nosuch'"),
    (["link", "web1", "web1"], "itself"),
    (["link", "web1", "db1", "--kind", "loves"], "invalid choice"),
])
def test_systems_bad_input_is_one_line_exit_2(env: dict[str, str], argv: list[str], says: str) -> None:
    done = run_cli("macha-systems", *argv, env=env)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
