"""A recorded journal belongs to the host that wrote it (issue 17, item 9): its entries are filed under their own
_HOSTNAME unless --hostname says otherwise, and this machine's status stays its own."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.incident import OOM_JOURNAL
from helpers.journal import Entry, build_journal
from helpers.processes import macha_env, run_cli
from sqlalchemy import select

from macha import pipeline
from macha.config import load_settings
from macha.monitor.collect.journal import JournalSource, journal_hostnames
from macha.store.db import Store
from macha.store.models import Host, JournalCursor, LogEvent, TriggerEvent


def test_a_recorded_journal_is_filed_under_its_own_host(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    settings = load_settings(state_dir=tmp_path / "state", hostname="me")
    source = pipeline.journal_source(str(OOM_JOURNAL))
    assert journal_hostnames(source) == ["testhost"]
    state = pipeline.check_step(store, settings, "me", "manual", source, host_from_journal=True)
    assert state.hostname == "testhost" and state.check["new_triggers"] >= 1
    with store.session() as s:
        assert set(s.execute(select(TriggerEvent.hostname)).scalars()) == {"testhost"}
        hosts = {h.hostname: h for h in s.execute(select(Host)).scalars()}
        # Registered as itself, without this machine's facts.
        assert set(hosts) == {"testhost"} and hosts["testhost"].os is None
    # --hostname: the operator says whose journal it is.
    forced = pipeline.check_step(store, settings, "me", "manual", source)
    assert forced.hostname == "me"
    with store.session() as s:
        me = s.execute(select(Host).where(Host.hostname == "me")).scalar_one()
        assert me.macha_version and me.kernel  # this machine's own facts, recorded as it checks itself
    store.dispose()


def test_a_directory_of_several_hosts_files_each_under_its_own(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "remote"
    d.mkdir()
    oom = "Out of memory: Killed process 7 (java) total-vm:1kB, anon-rss:1kB"
    build_journal([Entry(oom, priority=3)], d / "a.journal", hostname="alpha")
    build_journal([Entry("nginx[1]: segfault at 0 ip 0 sp 0 error 4 in libc.so", priority=3)], d / "b.journal",
                  hostname="beta", start_usec=1_700_000_100_000_000)
    store = Store(db_url)
    settings = load_settings(state_dir=tmp_path / "state", hostname="me")
    source = JournalSource.directory(d)
    state = pipeline.check_step(store, settings, "me", "manual", source, host_from_journal=True)
    assert state.hostname == "alpha"
    with store.session() as s:
        filed = {(h, m[:14]) for h, m in s.execute(select(LogEvent.hostname, LogEvent.message))}
        assert filed == {("alpha", oom[:14]), ("beta", "nginx[1]: segf")}
        cursors = {c.hostname for c in s.execute(select(JournalCursor)).scalars()}
        assert cursors == {"alpha", "beta"}
    again = pipeline.check_step(store, settings, "me", "manual", source, host_from_journal=True)
    assert again.check["entries_read"] == 0
    store.dispose()


def test_the_readme_demo_does_not_make_this_machine_critical(tmp_path: Path) -> None:
    env = macha_env(tmp_path / "state", MACHA_HOSTNAME="thismachine", MACHA_LLM__BACKEND="none")
    demo = run_cli("macha-check", "--local", "--json", "--journal-file", str(OOM_JOURNAL), env=env, timeout=120)
    assert demo.returncode == 1, demo.stderr
    recorded = json.loads(demo.stdout)
    assert recorded["hostname"] == "testhost" and recorded["review"]["status"] == "critical"
    # A plain check of this machine right after: the recorded OOM is not its latest review.
    own = run_cli("macha-check", "--local", "--json", env=env, timeout=120)
    report = json.loads(own.stdout)
    assert report["hostname"] == "thismachine"
    assert report["review"] is None or report["review"]["id"] != recorded["review"]["id"], report
    assert "Killed process 4242" not in own.stdout
    listed = json.loads(run_cli("macha-systems", "-o", "json", env=env).stdout)
    assert {h["hostname"] for h in listed} == {"testhost", "thismachine"}
