"""A review model that keeps answering garbage: after reviewModelFailureLimit failed reviews in a row the rules reviewer
covers the critical and high events (labelled), the model is asked again only after a backoff, and a good answer
ends the streak. Through the pipeline's review step against the fake model server; time moves by moving the
stored reviews into the past, so the backoff is read from the store as after a restart."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from helpers.journal import Entry
from helpers.processes import macha_env, wait_for
from fakes.ollama import FakeOllama, valid_review
from sqlalchemy import select

from macha import pipeline
from macha.config import Settings, load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.review.rules import RULES_NOTE
from macha.store.db import Store
from macha.store.models import Escalation, Review, TriggerEvent

OOM = ("Out of memory: Killed process {pid} (postgres) total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB, "
       "shmem-rss:0kB, UID:71 pgtables:14000kB oom_score_adj:0")
SEGV = "app[{pid}]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in libfoo.so[7f0+1000]"
MEDIUM = "Dependency failed for Remote File Systems."
GARBAGE = {"content": "Everything is fine, trust me."}
INTERVAL = 60
pytestmark = pytest.mark.timeout(240)
_DEFAULTS = Settings.model_fields
#: The defaults the tests run with (reviewModelFailureLimit, reviewModelBackoffMax).
MODEL_FAILURE_LIMIT = _DEFAULTS["review_model_failure_limit"].default
MODEL_BACKOFF_MAX_S = _DEFAULTS["review_model_backoff_max"].default


@pytest.fixture
def host(db_url, tmp_path, make_journal, fake):
    """Pending events of every kind: a critical OOM kill, a high segfault, a medium failed dependency."""
    settings = load_settings(hostname="h1", state_dir=tmp_path / "state", database_url=db_url, ollama_url=fake.url,
                             review_interval=INTERVAL, llm={"timeout": 3, "retries": 0}, memory={"enable": False})
    store = Store(settings.effective_database_url)
    journal = make_journal([Entry(OOM.format(pid=4242)), Entry(SEGV.format(pid=7), priority=2),
                            Entry(MEDIUM, identifier="systemd", transport="journal", pid=1, uid=0)])
    run_check(store, settings, source=JournalSource.file(journal))
    fake.default = dict(GARBAGE)
    yield store, settings
    store.dispose()


def _tick(store, settings) -> dict:
    """One review tick of the host, as the worker runs it: context, then the review step."""
    state = pipeline.context_step(store, pipeline.ChainState(hostname="h1", reason="tick"), settings)
    return pipeline.review_step(store, state, settings).review


def _later(store, seconds: float) -> None:
    """Time passes: every stored review moves into the past (the backoff is read from the store)."""
    with store.session() as s:
        for r in s.execute(select(Review)).scalars():
            r.created_at -= timedelta(seconds=seconds)


def _pending_severities(store) -> list[str]:
    with store.session() as s:
        return sorted(s.execute(select(TriggerEvent.severity).where(TriggerEvent.review_id.is_(None))).scalars())


def _reviews(store) -> list[Review]:
    with store.session() as s:
        return list(s.execute(select(Review).order_by(Review.id)).scalars())


def test_after_repeated_garbage_the_rules_reviewer_covers_critical_and_high_and_escalates(host, fake) -> None:
    store, settings = host
    for n in range(1, MODEL_FAILURE_LIMIT):
        outcome = _tick(store, settings)
        assert outcome["status"] == "failed" and outcome["events_covered"] == 0
        assert len(fake.chats()) == 2 * n  # the answer and its repair
        assert _pending_severities(store) == ["critical", "high", "medium"]
    # The Nth failure in a row: the failed review is kept, and the rules reviewer covers what cannot wait.
    outcome = _tick(store, settings)
    assert len(fake.chats()) == 2 * MODEL_FAILURE_LIMIT
    assert outcome["reviewer"] == "rules" and outcome["status"] == "critical"
    *failed, rules = _reviews(store)
    assert [r.outcome for r in failed] == ["failed"] * MODEL_FAILURE_LIMIT
    assert all(r.raw_output and "Everything is fine" in r.raw_output for r in failed)
    assert (rules.reviewer, rules.model, rules.outcome) == ("rules", None, "ok")
    assert rules.summary.startswith(RULES_NOTE)
    label = f"no usable answer {MODEL_FAILURE_LIMIT} times in a row"
    assert label in rules.summary and label in rules.error and "asked again" in rules.error
    with store.session() as s:
        covered = s.execute(select(TriggerEvent.severity).where(TriggerEvent.review_id == rules.id)).scalars()
        assert sorted(covered) == ["critical", "high"]
        esc = s.execute(select(Escalation)).scalar_one()
        assert (esc.review_id, esc.kind, esc.status) == (rules.id, "critical", "requested")
    assert outcome["escalation_id"] == esc.id and outcome["escalation_status"] == "requested"
    # The medium event waits for the model: never lost, never reviewed by rules in its place.
    assert _pending_severities(store) == ["medium"]
    assert pipeline.hosts_with_pending_events(store) == ["h1"]


def test_the_model_is_asked_again_with_exponential_backoff(host, fake, make_journal) -> None:
    store, settings = host
    for _ in range(MODEL_FAILURE_LIMIT):
        _tick(store, settings)
    calls = len(fake.chats())

    def asked(after_s: float) -> bool:
        """Move time on, run a tick: was the model asked?"""
        nonlocal calls
        _later(store, after_s)
        _tick(store, settings)
        before, calls = calls, len(fake.chats())
        return calls > before

    # In backoff: a tick at once reaches no model; a new critical event is covered by the rules reviewer, with
    # no model call either.
    assert not asked(0)
    _more_events(store, settings, make_journal)
    outcome = _tick(store, settings)
    assert len(fake.chats()) == calls and outcome["reviewer"] == "rules" and outcome["events_covered"] == 1
    assert _pending_severities(store) == ["medium"]
    # One review interval after the Nth failure, then 2, 4, ... intervals after each further one.
    assert asked(INTERVAL)  # 4th failure: next try in 2 intervals
    assert not asked(INTERVAL)
    assert asked(INTERVAL)  # 5th: 4 intervals
    assert not asked(2 * INTERVAL)
    assert not asked(INTERVAL)
    assert asked(INTERVAL)  # 6th
    assert len([r for r in _reviews(store) if r.outcome == "failed"]) == MODEL_FAILURE_LIMIT + 3
    # The backoff is capped: however long the streak, the model is asked again within MODEL_BACKOFF_MAX_S.
    with store.session() as s:
        last = s.execute(select(Review).where(Review.outcome == "failed").order_by(Review.id.desc())).scalars().first()
        for _ in range(40):
            s.add(Review(hostname="h1", status="degraded", summary="failed", reviewer=last.reviewer,
                         model=last.model, outcome="failed", error="garbage", created_at=last.created_at))
    assert not asked(MODEL_BACKOFF_MAX_S - INTERVAL)
    assert asked(INTERVAL)


def _more_events(store, settings, make_journal, name: str = "more.journal") -> None:
    """A new critical event arrives: another program killed by the OOM killer (a new group)."""
    journal = make_journal([Entry(OOM.format(pid=5151).replace("postgres", "redis"))], name=name)
    run_check(store, settings, source=JournalSource.file(journal))


def test_a_good_answer_ends_the_streak(host, fake, make_journal) -> None:
    store, settings = host
    for _ in range(MODEL_FAILURE_LIMIT):
        _tick(store, settings)
    _later(store, INTERVAL)
    fake.default = {"content": valid_review()}
    outcome = _tick(store, settings)
    # The model is used again: it reviews what waited for it (the medium event).
    assert outcome["reviewer"] == "ollama" and outcome["events_covered"] == 1
    assert _pending_severities(store) == []
    calls = len(fake.chats())
    # The count starts again: one new failure leaves everything pending and the next tick asks the model at once.
    fake.default = dict(GARBAGE)
    _more_events(store, settings, make_journal)
    assert _tick(store, settings)["status"] == "failed"
    assert _pending_severities(store) == ["critical"]
    assert len(fake.chats()) == calls + 2
    assert _tick(store, settings)["status"] == "failed"
    assert len(fake.chats()) == calls + 4


def test_macha_ai_with_a_garbage_model_escalates_critical_events(state_dir, macha_ai, make_journal) -> None:
    """The real worker and beat: review ticks every second against a model that only answers garbage."""
    fake = FakeOllama()
    fake.default = dict(GARBAGE)
    hostname = f"t{os.getpid()}-{state_dir.name[-8:]}"
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url, MACHA_REVIEW_INTERVAL="1",
                    MACHA_LLM__RETRIES="0")
    try:
        settings = load_settings(hostname=hostname, state_dir=state_dir, ollama_url=fake.url)
        store = Store(settings.effective_database_url)
        journal = make_journal([Entry(OOM.format(pid=4242)), Entry(MEDIUM, identifier="systemd",
                                                                   transport="journal", pid=1, uid=0)])
        ai = macha_ai(env)
        ai.wait_ready()
        run_check(store, settings, hostname=hostname, source=JournalSource.file(journal), reason="schedule")

        def rules_review():
            with store.session() as s:
                return s.execute(select(Review).where(Review.reviewer == "rules")).scalars().first()

        rules = wait_for(rules_review, 60, "the rules reviewer's review of the critical event")
        with store.session() as s:
            failed = s.execute(select(Review.id).where(Review.outcome == "failed")).scalars().all()
            assert len(failed) == MODEL_FAILURE_LIMIT and max(failed) < rules.id
            esc = s.execute(select(Escalation).where(Escalation.review_id == rules.id)).scalar_one()
            assert esc.kind == "critical"
        review_calls = lambda: len([c for c in fake.chats() if c["model"] == settings.review_model])  # noqa: E731
        at_rules = review_calls()
        # Eight ticks: without a backoff 8 more failed reviews (16 calls); with it the model is asked after 1, 2
        # and 4 intervals (one more ask allowed for a tick that lands early).
        time.sleep(8)
        assert review_calls() - at_rules <= 2 * 4
        with store.session() as s:
            assert s.execute(select(TriggerEvent.severity).where(TriggerEvent.review_id.is_(None))).scalars().all() \
                == ["medium"]
        assert ai.stop() == 0
        store.dispose()
    finally:
        fake.close()
