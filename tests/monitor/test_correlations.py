"""Correlation rules (macha/monitor/detect/correlations.toml): every rule's examples through the real matcher, the
real correlator and the real store on SQLite and PostgreSQL, the window across batches and processes, an operator's
file, and a real journal file through run_check and a review down to one issue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers.journal import Entry
from sqlalchemy import select

from macha.config import load_settings
from macha.core.errors import ConfigError
from macha.monitor.checks.journal import CheckResult, ensure_host, run_check, store_batch
from macha.monitor.collect.journal import JournalEntry, JournalSource
from macha.monitor.detect.correlate import BUILTIN, Correlator, correlator_for, load_file
from macha.monitor.detect.matcher import default_matcher
from macha.review.run import run_review
from macha.store.db import Store
from macha.store.models import CorrelationState, Issue, TriggerEvent

RULES, SIGNALS = load_file(BUILTIN)
EXAMPLES = [pytest.param(rule, i, ex, id=f"{rule.id}-{i}") for rule in RULES for i, ex in enumerate(rule.examples)]
T0 = datetime(2026, 11, 29, 12, tzinfo=timezone.utc)


def _entry(n: int, at: float, unit: str, message: str) -> JournalEntry:
    return JournalEntry(cursor=f"c{n}-{message[:20]}", time=T0 + timedelta(seconds=at), message=message, priority=6,
                        unit=unit or None, identifier=(unit or "x").split(".")[0], pid=100 + n, comm=None,
                        boot_id=None, hostname=None, transport="syslog", uid=0)


def _events(store: Store, host: str) -> list[TriggerEvent]:
    with store.session() as s:
        return list(s.execute(select(TriggerEvent).where(TriggerEvent.hostname == host)
                              .order_by(TriggerEvent.id)).scalars())


def _linked(events: list[TriggerEvent], root: TriggerEvent) -> list[TriggerEvent]:
    return [e for e in events if (e.meta or {}).get("root_event_id") == root.id]


def test_the_builtin_file_has_the_three_rules_each_with_examples_that_fire_and_that_do_not() -> None:
    assert {"likely_compromise", "crash_loop", "disk_full_cascade"} <= {r.id for r in RULES}
    for rule in RULES:
        assert any(e.fires for e in rule.examples) and any(not e.fires for e in rule.examples), rule.id
        # Catalog patterns, signals, or a metric threshold's events (metric_raise:NAME).
        known = {p.id for p in default_matcher().patterns} | {s.id for s in SIGNALS}
        known |= {p for p in rule.patterns if p.startswith("metric_raise:")}
        assert rule.patterns <= known, f"{rule.id} names unknown patterns {rule.patterns - known}"


def test_signal_examples_match_their_signal() -> None:
    correlator = Correlator(RULES, SIGNALS)
    for sig in SIGNALS:
        assert sig.examples
        for line, found in zip(sig.examples, correlator.match_signals(list(sig.examples))):
            assert sig.id in found, line


@pytest.mark.parametrize(("rule", "index", "example"), EXAMPLES)
def test_rule_examples_through_the_matcher_and_the_store(db_url, rule, index, example) -> None:
    # Each line its own batch, each batch with a correlator of its own: the window lives in the database, as it
    # must across 30 s batches, the live follower's process and restarts.
    store = Store(db_url)
    host = f"h-{rule.id}-{index}"
    ensure_host(store, host)
    result = CheckResult(hostname=host, source="src", reason="test")
    for n, (at, unit, message) in enumerate(example.lines):
        store_batch(store, result, default_matcher(), "src", [_entry(n, at, unit, message)], 0,
                    correlator=Correlator(*load_file(BUILTIN)))
    events = _events(store, host)
    roots = [e for e in events if e.trigger_type == "correlation" and e.pattern_id == rule.id]
    if not example.fires:
        assert roots == []
        store.dispose()
        return
    assert len(roots) == 1, [e.trigger_reason for e in roots]
    root = roots[0]
    assert root.severity == rule.severity
    for words in example.says:
        assert words in root.trigger_reason
    assert len(_linked(events, root)) >= example.linked
    assert root.id in [tid for tid in result.trigger_ids]
    store.dispose()


def test_compromise_names_source_and_account_and_later_lines_are_follow_ons(db_url) -> None:
    store = Store(db_url)
    ensure_host(store, "h")
    fails = [_entry(i, i, "sshd.service", f"Failed password for root from 203.0.113.9 port {4000 + i} ssh2")
             for i in range(5)]
    ok = _entry(9, 10, "sshd.service", "Accepted password for deploy from 203.0.113.9 port 4010 ssh2")
    again = _entry(10, 20, "sshd.service", "Accepted password for deploy from 203.0.113.9 port 4011 ssh2")
    result = CheckResult(hostname="h", source="src", reason="test")
    store_batch(store, result, default_matcher(), "src", fails + [ok], 0)
    store_batch(store, result, default_matcher(), "src", [again], 0)
    roots = [e for e in _events(store, "h") if e.trigger_type == "correlation"]
    assert len(roots) == 1
    root = roots[0]
    assert (root.severity, root.pattern_id) == ("critical", "likely_compromise")
    assert "203.0.113.9" in root.trigger_reason and "deploy" in root.trigger_reason
    assert (root.meta["source"], root.meta["account"]) == ("203.0.113.9", "deploy")
    # The second login from the same source is more of the same compromise, not a second alarm.
    assert root.count == 2
    with store.session() as s:
        state = s.execute(select(CorrelationState).where(CorrelationState.rule_id == "likely_compromise")).scalar_one()
        assert (state.key, state.root_event_id) == ("203.0.113.9", root.id)
    store.dispose()


def test_an_operators_file_adds_rules_and_a_malformed_one_is_a_one_line_error(tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text('''
[[rule]]
id = "oom_twice"
severity = "high"
key = "host"
window = 60
reason = "two OOM kills within {window} s"
[[rule.step]]
patterns = ["oom_kill"]
count = 2
''')
    correlator, problems = correlator_for(good)
    assert problems == [] and "oom_twice" in {r.id for r in correlator.rules}
    assert "likely_compromise" in {r.id for r in correlator.rules}
    for text, words in [("[[rule]]\nid = 'x'\nseverity = 'bad'\n", "severity 'bad'"),
                        ("[[rule]\n", "correlation file"),
                        ("[[rule]]\nid = 'y'\nseverity = 'high'\nwindow = 5\nreason = '{nope}'\n"
                         "[[rule.step]]\npatterns = ['oom_kill']\n", "reason names nope")]:
        bad = tmp_path / f"bad{len(text)}.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_file(bad)
        assert words in str(info.value) and "\n" not in str(info.value)
        correlator, problems = correlator_for(bad)
        assert len(problems) == 1 and "\n" not in problems[0] and str(bad) in problems[0]
        assert {r.id for r in correlator.rules} == {r.id for r in RULES}


JOURNAL_LINES = [
    # (seconds, identifier, unit, message)
    (0, "systemd", "init.scope", "Started Session 1 of User alice."),
    *[(10 + i, "sshd", "sshd.service", f"Failed password for root from 203.0.113.9 port {40000 + i} ssh2")
      for i in range(6)],
    (20, "sshd", "sshd.service", "Accepted password for deploy from 203.0.113.9 port 40100 ssh2"),
    # must not: failures without a success from 198.51.100.7, and a success from another address
    *[(30 + i, "sshd", "sshd.service", f"Failed password for admin from 198.51.100.7 port {41000 + i} ssh2")
      for i in range(6)],
    (40, "sshd", "sshd.service", "Accepted publickey for alice from 192.0.2.44 port 50000 ssh2"),
    *[(100 + 30 * i, "systemd", "init.scope", "worker.service: Failed with result 'exit-code'.") for i in range(4)],
    (400, "tar", "backup.service", "tar: /var/backups/db.tar: Cannot write: No space left on device"),
    (420, "postgres", "postgresql.service",
     'PANIC:  could not write to file "pg_wal/xlogtemp.812": No space left on device'),
    (440, "systemd-journald", "systemd-journald.service",
     "Failed to write entry (9 items, 311 bytes), ignoring: No space left on device"),
]


def test_a_real_journal_through_run_check_and_a_review_gives_one_issue_per_root_cause(make_journal, db_url,
                                                                                          tmp_path) -> None:
    journal = make_journal([Entry(m, identifier=ident, unit=unit, transport="syslog", uid=0)
                            for _, ident, unit, m in JOURNAL_LINES],
                           offsets_usec=[int(t * 1e6) for t, *_ in JOURNAL_LINES])
    settings = load_settings(state_dir=tmp_path / "state", hostname="web1", database_url=db_url,
                             journal_batch_size=7)
    store = Store(db_url)
    result = run_check(store, settings, hostname="web1", source=JournalSource.file(journal))
    assert result.entries_read == len(JOURNAL_LINES)
    events = _events(store, "web1")
    roots = {e.pattern_id: [r for r in events if r.pattern_id == e.pattern_id] for e in events
             if e.trigger_type == "correlation"}
    assert set(roots) == {"likely_compromise", "crash_loop", "disk_full_cascade"}
    assert all(len(v) == 1 for v in roots.values())
    compromise = roots["likely_compromise"][0]
    assert compromise.severity == "critical"
    assert "203.0.113.9" in compromise.trigger_reason and "deploy" in compromise.trigger_reason
    assert "198.51.100.7" not in compromise.trigger_reason and "alice" not in compromise.trigger_reason
    loop = roots["crash_loop"][0]
    assert "worker.service" in loop.trigger_reason and loop.meta["unit"] == "worker.service"
    disk = roots["disk_full_cascade"][0]
    chain = _linked(events, disk)
    assert {(e.pattern_id, e.meta.get("unit")) for e in chain} >= {
        ("disk_full", "backup.service"), ("disk_full", "postgresql.service"), ("postgres_panic", "postgresql.service"),
        ("disk_full", "systemd-journald.service")}
    # The review files the chain under one issue, named by its root cause.
    run_review(store, "web1", settings=None)
    events = _events(store, "web1")
    chain_ids = {e.issue_id for e in events if e.id == disk.id or (e.meta or {}).get("root_event_id") == disk.id}
    assert len(chain_ids) == 1 and None not in chain_ids
    with store.session() as s:
        issue = s.get(Issue, chain_ids.pop())
        # Named by the root causes, not by the lines folded into them.
        assert "disk_full_cascade|-" in issue.groups
        assert not any(g.startswith(("disk_full|", "postgres_panic|", "unit_failed|")) for g in issue.groups)
    store.dispose()


def test_follow_ons_reviewed_after_their_root_join_its_issue(db_url) -> None:
    store = Store(db_url)
    ensure_host(store, "h")
    result = CheckResult(hostname="h", source="src", reason="test")
    first = [_entry(0, 0, "backup.service", "tar: x: Cannot write: No space left on device"),
             _entry(1, 20, "postgresql.service", 'PANIC:  could not write to file "pg_wal/x": No space left on device')]
    store_batch(store, result, default_matcher(), "src", first, 0)
    one = run_review(store, "h")
    assert one.issue_id is not None
    later = [_entry(2, 60, "systemd-journald.service",
                    "Failed to write entry (9 items, 311 bytes), ignoring: No space left on device")]
    store_batch(store, result, default_matcher(), "src", later, 0)
    two = run_review(store, "h")
    assert two.issue_id == one.issue_id
    with store.session() as s:
        assert s.execute(select(Issue)).scalars().all().__len__() == 1
    store.dispose()


def test_a_full_disk_by_its_metric_then_a_database_write_failure_is_one_root_cause(db_url, tmp_path) -> None:
    from macha.monitor.checks.metrics import run_metrics
    from macha.monitor.collect.metrics import MetricSample
    from macha.store.models import utcnow

    store = Store(db_url)
    settings = load_settings(state_dir=tmp_path / "state", hostname="db1", database_url=db_url)
    metrics = run_metrics(store, settings, "db1", samples=[MetricSample("disk_percent", 99.0, "%", {"mount": "/var"})])
    assert metrics.raised == ["disk_percent{mount=/var}"]
    line = JournalEntry(cursor="pg1", time=utcnow(), message='PANIC:  could not write to file "pg_wal/x": '
                        "No space left on device", priority=2, unit="postgresql.service", identifier="postgres",
                        pid=812, comm=None, boot_id=None, hostname=None, transport="stdout", uid=71)
    store_batch(store, CheckResult(hostname="db1", source="src", reason="test"), default_matcher(), "src", [line], 0)
    events = _events(store, "db1")
    roots = [e for e in events if e.pattern_id == "disk_full_cascade"]
    assert len(roots) == 1 and "disk_percent{mount=/var} is 99" in roots[0].trigger_reason
    metric = next(e for e in events if e.trigger_type == "metric_threshold")
    assert metric.meta.get("root_event_id") == roots[0].id
    store.dispose()


def test_a_root_cause_raised_after_its_first_event_was_reviewed_joins_that_events_issue(db_url) -> None:
    store = Store(db_url)
    ensure_host(store, "h")
    result = CheckResult(hostname="h", source="src", reason="test")
    store_batch(store, result, default_matcher(), "src",
                [_entry(0, 0, "backup.service", "tar: x: Cannot write: No space left on device")], 0)
    one = run_review(store, "h")
    assert one.issue_id is not None
    panic = _entry(1, 30, "postgresql.service", 'PANIC:  could not write to file "x": No space left on device')
    store_batch(store, result, default_matcher(), "src", [panic], 0)
    two = run_review(store, "h")
    assert two.issue_id == one.issue_id
    with store.session() as s:
        issues = s.execute(select(Issue)).scalars().all()
        assert len(issues) == 1 and issues[0].severity == "critical"
        root = s.execute(select(TriggerEvent).where(TriggerEvent.trigger_type == "correlation")).scalar_one()
        assert root.issue_id == one.issue_id
    store.dispose()


def test_the_window_orders_hits_by_their_time_not_by_when_they_were_stored() -> None:
    from macha.monitor.detect.correlate import Hit, Window

    rule = next(r for r in RULES if r.id == "likely_compromise")

    def hit(step: int, at: int) -> Hit:
        return Hit(step=step, time=T0 + timedelta(seconds=at), entry=f"e{step}-{at}", log_id=None, event_ids=[],
                   fields={"source": "203.0.113.9"}, text="")

    # The login stored before the failures that came before it (another process stored them later): a compromise.
    w = Window(rule, [], None, None)
    outcomes = [w.add(hit(1, 100))] + [w.add(hit(0, at)) for at in (10, 20, 30, 40, 50)]
    assert outcomes[-1] == "fired" and outcomes[:-1] == [None] * 5
    # A login before the failures is no compromise, in whatever order they come.
    w = Window(rule, [], None, None)
    assert [w.add(hit(1, 0))] + [w.add(hit(0, at)) for at in (10, 20, 30, 40, 50)] == [None] * 6
    # Older than the window: forgotten.
    w = Window(rule, [], None, None)
    assert [w.add(hit(0, at)) for at in (0, 1, 2, 3, 4)] + [w.add(hit(1, 4 + rule.window + 10))] == [None] * 6
