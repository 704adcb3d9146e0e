"""Layer 3 for now: the rules reviewer, events marked as reviewed with their review, and `macha-check --local`."""

from __future__ import annotations

import json

from helpers import FIXTURES
from helpers.journal import Entry
from helpers.processes import macha_env, run_cli
from sqlalchemy import func, select

from macha import pipeline
from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.review.rules import RULES_NOTE
from macha.review.run import run_review
from macha.store.db import Store
from macha.store.models import Review, TriggerEvent

SEGV = "app[{pid}]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in libfoo.so[7f0+1000]"


def test_rules_review_groups_events_and_says_no_model_was_used(db_url, make_journal, tmp_path) -> None:
    journal = make_journal(
        [Entry(SEGV.format(pid=i)) for i in range(5)]
        + [Entry("blk_update_request: I/O error, dev sda, sector 42", priority=3)]
        + [Entry("the disk is on fire", priority=2, identifier="smartd", transport="syslog")]
    )
    store = Store(db_url)
    settings = load_settings(state_dir=tmp_path, hostname="h1")
    run_check(store, settings, source=JournalSource.file(journal))
    outcome = run_review(store, "h1")
    assert not outcome.skipped and outcome.events_covered == 7 and outcome.status == "degraded"
    with store.session() as s:
        review = s.get(Review, outcome.review_id)
        assert review.reviewer == "rules" and review.model is None and review.summary.startswith(RULES_NOTE)
        issues = {i["title"].split(" (")[0]: i for i in review.payload["issues"]}
        assert issues["A process crashed with a segmentation fault"]["occurrences"] == 5
        # A line no pattern names is judged by what it says, not by its PRIORITY alone: at crit it is at most medium.
        unnamed = issues["An emergency, alert or critical-priority line no pattern names"]
        assert unnamed["severity"] == "medium"
        assert all(i["severity"] == "high" for i in review.payload["issues"] if i is not unnamed)
        assert review.payload["proposed_actions"] == []
        pending = s.execute(select(func.count()).where(TriggerEvent.review_id.is_(None))).scalar()
        assert pending == 0
    assert run_review(store, "h1").skipped  # nothing new, no review
    store.dispose()


def test_review_covers_only_events_up_to_its_context(sqlite_url, make_journal, tmp_path) -> None:
    store = Store(sqlite_url)
    settings = load_settings(state_dir=tmp_path, hostname="h1")
    run_check(store, settings, source=JournalSource.file(make_journal([Entry(SEGV.format(pid=1))], name="a.journal")))
    state = pipeline.context_step(store, pipeline.ChainState(hostname="h1"), settings)
    # An event stored after the context was built waits for the next review (another program: a new group; a
    # repeat of the first would join its group).
    other = SEGV.format(pid=2).replace("libfoo", "libbar").replace("app[", "db[")
    run_check(store, settings, source=JournalSource.file(make_journal([Entry(other)], name="b.journal")))
    state = pipeline.review_step(store, state, settings)
    assert state.review["events_covered"] == 1
    assert pipeline.hosts_with_pending_events(store) == ["h1"]
    assert run_review(store, "h1").events_covered == 1
    assert pipeline.hosts_with_pending_events(store) == []


def test_reconciler_picks_only_events_left_unreviewed_too_long(sqlite_url, make_journal, tmp_path) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from macha.store.models import utcnow

    store = Store(sqlite_url)
    settings = load_settings(state_dir=tmp_path, hostname="h1")
    run_check(store, settings, source=JournalSource.file(make_journal([Entry(SEGV.format(pid=1))], name="a.journal")))
    run_check(store, load_settings(state_dir=tmp_path, hostname="h2"),
              source=JournalSource.file(make_journal([Entry(SEGV.format(pid=2))], name="b.journal")))
    assert pipeline.hosts_with_pending_events(store, timedelta(minutes=3)) == []
    with store.session() as s:  # h1's event has waited ten minutes: its review task must have vanished
        s.execute(update(TriggerEvent).where(TriggerEvent.hostname == "h1")
                  .values(stored_at=utcnow() - timedelta(minutes=10)))
    assert pipeline.hosts_with_pending_events(store, timedelta(minutes=3)) == ["h1"]
    assert sorted(pipeline.hosts_with_pending_events(store)) == ["h1", "h2"]


def test_macha_check_local_reports_json_and_exit_codes(make_journal, tmp_path) -> None:
    env = macha_env(tmp_path / "state", MACHA_HOSTNAME="h1")
    proc = run_cli("macha-check", "--local", "--json", "--journal-file", str(FIXTURES / "oom.journal"), env=env)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["severity_counts"] == {"critical": 1, "high": 2}
    assert report["events"][0]["pattern"] == "oom_kill" and report["events"][0]["severity"] == "critical"
    assert report["review"]["status"] == "critical" and report["review"]["reviewer"] == "rules"

    quiet = make_journal([Entry("eth0: link becomes ready"), Entry("Started Session 1.", identifier="systemd")])
    env2 = macha_env(tmp_path / "state2", MACHA_HOSTNAME="h2")
    healthy = run_cli("macha-check", "--local", "--journal-file", str(quiet), env=env2)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "No new events." in healthy.stdout

    missing = run_cli("macha-check", "--local", "--journal-file", str(tmp_path / "nope.journal"), env=env2)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"macha-check: journal file {tmp_path / 'nope.journal'} does not exist"
