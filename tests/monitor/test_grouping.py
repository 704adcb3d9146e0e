"""Grouping of repeats (counts on stored groups, windows in the database) and authentication storms, through real
journal files read by journalctl into SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from helpers.journal import Entry
from sqlalchemy import select

from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.monitor.detect.grouping import auth_source
from macha.monitor.templates import forget_miners
from macha.store.db import Store
from macha.store.models import AuthWindow, LogEvent, TriggerEvent

SEGV = "app[{pid}]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in libfoo.so[7f0+1000]"
BASE = 1_750_000_000_000_000
SECOND = 1_000_000


def _settings(tmp_path, **kw):
    return load_settings(state_dir=tmp_path / "state", hostname="h1", **kw)


def _events(store: Store) -> list[TriggerEvent]:
    with store.session() as s:
        rows = list(s.execute(select(TriggerEvent).order_by(TriggerEvent.id)).scalars())
        for r in rows:
            s.expunge(r)
        return rows


def _check(store, settings, make_journal, entries, name, start, step_s=1.0):
    journal = make_journal(entries, name=name, start_usec=start,
                           offsets_usec=[int(i * step_s * SECOND) for i in range(len(entries))])
    return run_check(store, settings, source=JournalSource.file(journal))


def test_repeats_in_the_window_count_on_one_group_and_a_restart_remembers_it(db_url, make_journal, tmp_path):
    store = Store(db_url)
    settings = _settings(tmp_path, grouping={"window": 300})
    first = _check(store, settings, make_journal, [Entry(SEGV.format(pid=i)) for i in range(40)], "a.journal", BASE)
    assert (first.new_triggers, first.repeats) == (1, 39)
    # As after a restart: a new process, a new store object; the window is in the database.
    store.dispose()
    forget_miners()
    store = Store(db_url)
    later = _check(store, settings, make_journal, [Entry(SEGV.format(pid=100 + i)) for i in range(5)], "b.journal",
                   BASE + 200 * SECOND)
    assert (later.new_triggers, later.repeats) == (0, 5)
    (group,) = _events(store)
    assert group.count == 45 and group.time.timestamp() == BASE / 1e6
    assert group.last_seen.timestamp() == (BASE + 204 * SECOND) / 1e6
    # Quiet for longer than the window: the next one is new again.
    again = _check(store, settings, make_journal, [Entry(SEGV.format(pid=999))], "c.journal", BASE + 900 * SECOND)
    assert (again.new_triggers, again.repeats) == (1, 0)
    assert [e.count for e in _events(store)] == [45, 1]
    with store.session() as s:
        assert len(s.execute(select(LogEvent.id)).all()) == 46  # every line is kept
    store.dispose()


def test_a_problem_that_goes_on_is_raised_again_once_an_hour(sqlite_url, make_journal, tmp_path):
    store = Store(sqlite_url)
    settings = _settings(tmp_path, grouping={"window": 300})
    # One segfault a minute for 150 minutes: never quiet for 5 minutes, yet not one silent group for ever.
    _check(store, settings, make_journal, [Entry(SEGV.format(pid=i)) for i in range(150)], "a.journal", BASE,
           step_s=60)
    assert [e.count for e in _events(store)] == [60, 60, 30]
    store.dispose()


def test_an_auth_storm_is_one_high_event_naming_the_source(db_url, make_journal, tmp_path):
    store = Store(db_url)
    settings = _settings(tmp_path, grouping={"auth_storm_threshold": 10, "auth_storm_window": 60})
    users = ["root", "admin", "oracle"]
    attacker = [Entry(f"Failed password for {users[i % 3]} from 203.0.113.9 port {40000 + i} ssh2",
                      identifier="sshd", unit="sshd.service", transport="syslog", pid=500 + i) for i in range(30)]
    neighbour = [Entry(f"Failed password for bob from 198.51.100.7 port {50000 + i} ssh2", identifier="sshd",
                       unit="sshd.service", transport="syslog", pid=900 + i) for i in range(3)]
    _check(store, settings, make_journal, attacker + neighbour, "a.journal", BASE, step_s=1)
    storms = [e for e in _events(store) if e.pattern_id == "auth_storm"]
    assert len(storms) == 1
    storm = storms[0]
    assert storm.severity == "high" and storm.count == 30 and storm.meta["source"] == "203.0.113.9"
    assert storm.trigger_reason.startswith("authentication storm: 30 failures from 203.0.113.9 within 60 s")
    with store.session() as s:
        windows = {w.source: w.count for w in s.execute(select(AuthWindow)).scalars()}
    assert windows == {"203.0.113.9": 30, "198.51.100.7": 3}
    # More failures in the same window raise nothing new; the storm's count follows.
    more = [Entry(f"Invalid user test from 203.0.113.9 port {41000 + i}", identifier="sshd", unit="sshd.service",
                  transport="syslog", pid=700 + i) for i in range(5)]
    result = _check(store, settings, make_journal, more, "b.journal", BASE + 40 * SECOND, step_s=1)
    assert "auth_storm" not in {e.pattern_id for e in _events(store) if e.id > max(x.id for x in storms)}
    assert result.new_triggers <= 1  # the invalid-user group itself, no second storm
    (storm,) = [e for e in _events(store) if e.pattern_id == "auth_storm"]
    assert storm.count == 35
    # A new window, a new storm.
    _check(store, settings, make_journal, attacker[:12], "c.journal", BASE + 600 * SECOND, step_s=1)
    assert len([e for e in _events(store) if e.pattern_id == "auth_storm"]) == 2
    store.dispose()


@pytest.mark.parametrize("line,source", [
    ("Failed password for root from 203.0.113.9 port 22 ssh2", "203.0.113.9"),
    ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.4  user=x",
     "198.51.100.4"),
    ("Invalid user admin from 2001:db8::17 port 4242", "2001:db8::17"),
    ("authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=dsl-1.example.net", "dsl-1.example.net"),
    ("sudo: pam_unix(sudo:auth): conversation failed", None),
    # The user name is the attacker's to choose; the address sshd logs last, before the port, is the source.
    ("Invalid user admin from 10.9.9.9 from 203.0.113.7 port 4242", "203.0.113.7"),
    ("Failed password for invalid user rhost=10.1.1.1 from 203.0.113.8 port 22 ssh2", "203.0.113.8"),
])
def test_the_source_of_an_auth_failure(line, source):
    assert auth_source(line) == source
