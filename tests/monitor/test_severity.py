"""Severity comes from what a line says happened, not from its journal PRIORITY; known-benign lines stay below
high with their reason; lines no pattern names follow the unnamed-line rules (data). Real journal files, read by
real journalctl into the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.journal import Entry
from sqlalchemy import select

from macha.config import load_settings
from macha.core.errors import ConfigError
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.monitor.detect.catalog import load_catalog, load_unnamed, load_with_user, unnamed_with_user
from macha.store.db import Store
from macha.store.models import LogEvent, TriggerEvent

SEGV = "nginx[1234]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in libc.so.6[7f00de000000+1a0000]"
REDIS_OOM = "1234:M 29 Nov 2026 10:00:00.123 # Out Of Memory allocating 16392 bytes!"
REDIS_SAVE = "1234:M 29 Nov 2026 10:00:05.456 # Background saving error"
THROTTLE = "CPU2: Core temperature above threshold, cpu clock throttled (total events = 1)"
FLOPPY = "blk_update_request: I/O error, dev fd0, sector 0"
PG_STARTING = "FATAL:  the database system is starting up"
ACPI = ("ACPI BIOS Error (bug): Could not resolve symbol [\\_SB.PCI0.SAT0.SPT4._GTF.DSSP], AE_NOT_FOUND "
        "(20230628/psargs-330)")


def _run(db_url: str, tmp_path: Path, journal: Path, **kw) -> tuple[Store, dict, dict]:
    """Check the journal; (store, {pattern: a trigger of it}, {message: log event})."""
    settings = load_settings(state_dir=tmp_path / "state", hostname="h1", **kw)
    store = Store(db_url)
    run_check(store, settings, source=JournalSource.file(journal))
    with store.session() as s:
        triggers = {t.pattern_id: t for t in s.execute(select(TriggerEvent)).scalars()}
        events = {e.message: e for e in s.execute(select(LogEvent)).scalars()}
        s.expunge_all()
    return store, triggers, events


def test_a_line_is_as_severe_as_what_it_says_whatever_its_priority(db_url, make_journal, tmp_path) -> None:
    journal = make_journal([
        Entry(SEGV, priority=6),  # the kernel logs a segfault at info
        Entry(REDIS_OOM, priority=6, identifier="redis-server", transport="stdout", unit="redis.service"),
        Entry(REDIS_SAVE, priority=6, identifier="redis-server", transport="stdout", unit="redis.service"),
        Entry(THROTTLE, priority=2),  # logged at crit; the pattern says high
        Entry("Failed password for root from 203.0.113.9 port 4242 ssh2", priority=0, identifier="sshd",
              transport="syslog"),  # an alarming priority on a routine failure stays low
        Entry("Kernel panic - not syncing: Fatal exception", priority=6),
    ])
    store, triggers, events = _run(db_url, tmp_path, journal)
    got = {pid: t.severity for pid, t in triggers.items()}
    assert got == {"segfault": "high", "redis_oom": "high", "redis_persistence_failed": "high",
                   "thermal_throttle": "high", "ssh_auth_failure": "low", "kernel_panic": "critical"}
    assert events[SEGV].severity == "high" and events[THROTTLE].severity == "high"
    assert events[REDIS_OOM].meta["priority"] == 6
    store.dispose()


def test_lines_no_pattern_names_follow_the_unnamed_rules_and_stay_at_most_medium(db_url, make_journal,
                                                                                   tmp_path) -> None:
    journal = make_journal([
        Entry("the UPS reports a problem", priority=0, identifier="upsd", transport="syslog"),
        Entry("request handler returned an error", priority=3, identifier="app", transport="stdout"),
        Entry("worker 3 crashed: Segmentation fault (core dumped)", priority=6, identifier="app",
              transport="stdout"),
        Entry("all is well", priority=6, identifier="app", transport="stdout"),
        Entry("a warning about nothing much", priority=4, identifier="app", transport="stdout"),
    ])
    store, triggers, events = _run(db_url, tmp_path, journal)
    assert {pid: (t.severity, t.trigger_type) for pid, t in triggers.items()} == {
        "unnamed_emergency": ("medium", "journal_unnamed"), "unnamed_alarm_words": ("medium", "journal_unnamed")}
    assert set(events) == {"the UPS reports a problem", "request handler returned an error",
                           "worker 3 crashed: Segmentation fault (core dumped)"}
    assert events["request handler returned an error"].severity == "low"
    assert events["request handler returned an error"].meta["unnamed_rule"] == "unnamed_error"
    store.dispose()


def test_known_benign_lines_are_kept_below_high_with_their_reason(db_url, make_journal, tmp_path) -> None:
    journal = make_journal([
        Entry(FLOPPY, priority=3),
        Entry(PG_STARTING, priority=3, identifier="postgres", transport="stdout", unit="postgresql.service"),
        Entry(ACPI, priority=3),
        Entry("blk_update_request: I/O error, dev sda, sector 2048", priority=3),  # a real disk: still high
    ])
    store, triggers, events = _run(db_url, tmp_path, journal)
    floppy = next(t for t in _all(store) if FLOPPY in t.trigger_reason)
    assert floppy.pattern_id == "io_error" and floppy.severity == "low"
    assert floppy.meta["benign"]["id"] == "floppy_probe" and "floppy" in floppy.meta["benign"]["reason"]
    assert "known benign (virtual machines expose a floppy controller" in floppy.trigger_reason
    sda = next(t for t in _all(store) if "dev sda" in t.trigger_reason)
    assert sda.severity == "high" and "benign" not in sda.meta
    assert triggers["postgres_fatal"].severity == "low"
    assert triggers["postgres_fatal"].meta["benign"]["id"] == "postgres_starting"
    # A benign line no pattern names: kept, recognised (the classifier leaves it alone), no event.
    assert events[ACPI].severity == "low" and events[ACPI].meta["benign"]["id"] == "acpi_firmware_bug"
    assert events[ACPI].meta["matched"] == 1
    assert not any(ACPI in t.trigger_reason for t in triggers.values())
    assert all(e.severity in ("low", "medium") for m, e in events.items() if "dev sda" not in m)
    store.dispose()


def test_operators_add_benign_lines_and_unnamed_rules_in_their_patterns_file(db_url, make_journal,
                                                                                tmp_path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text(
        "[[pattern]]\nid = 'app_fatal'\nseverity = 'critical'\nsubsystem = 'app'\nregex = 'myapp: fatal'\n\n"
        "[[benign]]\nid = 'app_deploy'\nreason = 'the deploy script stops myapp on purpose'\n"
        "regex = 'myapp: fatal: stopped by deploy'\nseverity = 'info'\n\n"
        "[[unnamed]]\nid = 'unnamed_emergency'\nseverity = 'low'\npriorities = [0, 1, 2]\n\n"
        "[[unnamed]]\nid = 'ups'\nseverity = 'medium'\nregex = 'UPS'\nraise = true\n"
    )
    journal = make_journal([
        Entry("myapp: fatal: stopped by deploy", priority=2, identifier="myapp", transport="stdout"),
        Entry("myapp: fatal: cannot open the database", priority=6, identifier="myapp", transport="stdout"),
        Entry("the fan is loud", priority=0, identifier="fand", transport="syslog"),
        Entry("the UPS is on battery", priority=5, identifier="upsd", transport="syslog"),
    ])
    store, _, events = _run(db_url, tmp_path, journal, patterns_file=user)
    got = sorted((t.pattern_id, t.severity, t.meta.get("benign", {}).get("id")) for t in _all(store))
    assert got == [("app_fatal", "critical", None), ("app_fatal", "info", "app_deploy"), ("ups", "medium", None)]
    assert events["the fan is loud"].severity == "low"  # the operator's rule replaced the built-in one
    store.dispose()


def _all(store: Store) -> list[TriggerEvent]:
    with store.session() as s:
        return list(s.execute(select(TriggerEvent).order_by(TriggerEvent.id)).scalars())


@pytest.mark.parametrize("table, why", [
    ("[[benign]]\nid = 'loud'\nreason = 'r'\nregex = 'x'\nseverity = 'high'\n", "above medium"),
    ("[[benign]]\nid = 'why'\nregex = 'x'\n", "missing key 'reason'"),
    ("[[unnamed]]\nid = 'prio'\nseverity = 'critical'\npriorities = [0]\n", "above medium"),
    ("[[unnamed]]\nid = 'range'\nseverity = 'low'\npriorities = [9]\n", "0 to 7"),
])
def test_a_benign_entry_or_unnamed_rule_cannot_raise_a_line_to_high(tmp_path, table, why) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(table)
    with pytest.raises(ConfigError, match=why):
        load_catalog(path) if "benign" in table else load_unnamed(path)
    # In an operator's file it is reported and skipped; the built-ins stay.
    problems = load_with_user(path)[1] + unnamed_with_user(path)[1]
    assert len(problems) == 1 and why.split()[0] in problems[0]
