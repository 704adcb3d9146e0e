"""The live follower against a journal directory being written to (`journalctl -f -D DIR`; `-f --file` does not
follow), in-process and under a real `macha-ai`."""

from __future__ import annotations

import os
from collections import Counter
import threading
import time

import psutil
import pytest
from helpers.journal import Entry
from helpers.journal import append_journal as append
from helpers.processes import macha_env, wait_for
from helpers.store import review_of
from sqlalchemy import func, select

from macha.config import load_settings
from macha.core.errors import JournalError
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.follow import Follower, follow_argv
from macha.monitor.collect.journal import JournalSource
from macha.store.db import Store
from macha.store.models import (
    JournalCursor,
    LogEvent,
    SystemMetric,
    TriggerEvent,
)
from workers.app import create_app

pytestmark = pytest.mark.timeout(180)
PANIC = "Kernel panic - not syncing: Fatal exception in interrupt"


def test_a_single_file_cannot_be_followed() -> None:
    with pytest.raises(JournalError, match="follow its directory"):
        follow_argv(JournalSource.file("/var/log/journal/x/system.journal"))


def test_the_follower_stores_urgent_lines_at_once_and_leaves_the_rest_to_the_check(tmp_path, journal_dir) -> None:
    settings = load_settings(hostname="f1", state_dir=tmp_path / "state")
    store = Store(settings.effective_database_url)
    source = JournalSource.directory(journal_dir)
    requests: list[float] = []
    stop = threading.Event()
    follower = Follower(store, "f1", source, lambda: requests.append(time.monotonic()))
    thread = threading.Thread(target=follower.run, kwargs={"should_stop": stop.is_set}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: follower.proc is not None, 10, "journalctl -f to start")
        time.sleep(0.5)
        append(journal_dir, [Entry("an ordinary line", priority=6), Entry("a warning", priority=4)])
        appended = append(journal_dir, [Entry(PANIC, priority=0)])

        def stored():
            with store.session() as s:
                return s.execute(select(TriggerEvent).where(TriggerEvent.pattern_id == "kernel_panic")).scalar()

        wait_for(stored, 10, "the panic to be stored")
        assert requests and requests[0] >= appended - 0.1
        with store.session() as s:
            assert s.execute(select(func.count()).select_from(LogEvent)).scalar() == 1  # only the urgent line
            assert s.execute(select(func.count()).select_from(JournalCursor)).scalar() == 0  # cursor untouched
        # A burst: stored line by line, but one check now and one after it, not one per line.
        append(journal_dir, [Entry(PANIC + f" #{i}", priority=0) for i in range(20)])
        wait_for(lambda: follower.stats.stored >= 21, 10, "the burst to be stored")
        time.sleep(1.5)
        assert 2 <= len(requests) <= 3
    finally:
        stop.set()
        thread.join(timeout=10)
    # The check then reads everything from its own cursor and skips what the follower stored; what it adds is
    # its own judgement of the burst: the kernel's error rate jumped.
    result = run_check(store, settings, hostname="f1", source=source, reason="live")
    assert result.entries_read == 24 and result.new_log_events == 0  # 1 + 2 + 1 + 20
    with store.session() as s:
        kinds: Counter[str] = Counter()
        for kind, n in s.execute(select(TriggerEvent.trigger_type, TriggerEvent.count)):
            kinds[kind] += n
        groups = s.execute(select(func.count()).where(TriggerEvent.trigger_type == "journal_pattern")).scalar()
    # 21 panics in two groups (the first line, and the burst that repeats one message with another number).
    assert kinds == {"journal_pattern": 21, "error_rate": 1} and groups == 2 and result.new_triggers == 1
    store.dispose()


def test_macha_ai_follows_the_journal_and_reviews_a_critical_line_without_waiting(state_dir, macha_ai,
                                                                                  journal_dir) -> None:
    env = macha_env(state_dir, MACHA_HOSTNAME=f"t{os.getpid()}-{state_dir.name[-8:]}",
                    MACHA_JOURNAL_DIRECTORY=str(journal_dir), MACHA_TRIGGER_INTERVAL="3600",
                    MACHA_REVIEW_INTERVAL="3600", MACHA_LLM__BACKEND="none")
    ai = macha_ai(env)
    ai.wait_ready()
    store = Store(f"sqlite:///{state_dir / 'macha.db'}")
    # The beat's first check runs at start; let it finish, then only the follower can start another one.
    wait_for(lambda: "following the journal" in ai.log.read_text(), 30, "the follower to start")
    time.sleep(2)
    appended = append(journal_dir, [Entry(PANIC, priority=0)])

    review = wait_for(lambda: review_of(store, "kernel_panic"), 30, "a review of the panic")
    took = time.monotonic() - appended
    assert review.status == "critical" and took < 15, took
    # The metrics task runs on the host's queue as well (the beat sends it every triggerInterval).
    settings = load_settings(hostname=env["MACHA_HOSTNAME"], state_dir=state_dir)
    done = create_app(settings).send_task("macha.collect_metrics", kwargs={"hostname": env["MACHA_HOSTNAME"]})
    assert done.get(timeout=30)["samples"] >= 5
    with store.session() as s:
        assert s.execute(select(func.count()).select_from(SystemMetric)).scalar() >= 5

    # The follower is a thread of macha-ai: when its journalctl dies, it comes back and still catches lines.
    follow_procs = [p for p in psutil.Process(ai.proc.pid).children()
                    if p.name() == "journalctl" and "--follow" in p.cmdline()]
    assert len(follow_procs) == 1, [p.cmdline() for p in psutil.Process(ai.proc.pid).children()]
    follow_procs[0].kill()
    wait_for(lambda: "restarting in" in ai.log.read_text(), 30, "the follower to notice")
    wait_for(lambda: ai.log.read_text().count("following the journal") >= 2, 30, "the follower to restart")
    time.sleep(1)
    append(journal_dir, [Entry("Out of memory: Killed process 4242 (java) total-vm:1024kB", priority=3)])

    def oom_stored():
        with store.session() as s:
            return s.execute(select(TriggerEvent).where(TriggerEvent.pattern_id == "oom_kill")).scalar()

    wait_for(oom_stored, 30, "the restarted follower to store the OOM line")
    assert ai.stop() == 0
    store.dispose()


def test_the_follower_and_the_check_raise_one_crash_loop_between_them(tmp_path, journal_dir) -> None:
    # The follower stores the urgent failures and runs them through the correlation rules at once; the check
    # then reads the same lines (skipped: stored already) and the rest, and raises nothing twice.
    settings = load_settings(hostname="f2", state_dir=tmp_path / "state")
    store = Store(settings.effective_database_url)
    source = JournalSource.directory(journal_dir)
    stop = threading.Event()
    follower = Follower(store, "f2", source, lambda: None)
    thread = threading.Thread(target=follower.run, kwargs={"should_stop": stop.is_set}, daemon=True)
    thread.start()
    failed = "api.service: Failed with result 'exit-code'."
    try:
        wait_for(lambda: follower.proc is not None, 10, "journalctl -f to start")
        time.sleep(0.5)
        for _ in range(2):
            append(journal_dir, [Entry(failed, priority=4, identifier="systemd", unit="init.scope", uid=0)])
        append(journal_dir, [Entry("api.service: Scheduled restart job, restart counter is at 3.", priority=6,
                                   identifier="systemd", unit="init.scope", uid=0),
                             Entry(failed, priority=4, identifier="systemd", unit="init.scope", uid=0)])

        def loop():
            with store.session() as s:
                return s.execute(select(TriggerEvent).where(TriggerEvent.pattern_id == "crash_loop")).scalar()

        wait_for(loop, 10, "the crash loop to be raised by the follower")
    finally:
        stop.set()
        thread.join(timeout=10)
    run_check(store, settings, hostname="f2", source=source, reason="live")
    with store.session() as s:
        roots = list(s.execute(select(TriggerEvent).where(TriggerEvent.trigger_type == "correlation")).scalars())
    assert [(r.pattern_id, r.meta["unit"], r.severity) for r in roots] == [("crash_loop", "api.service", "high")]
    store.dispose()
