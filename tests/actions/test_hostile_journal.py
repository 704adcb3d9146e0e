"""Hostile and spoofed journal lines through the real pipeline (a real journal file, the check, the review, the
catalog, the policy and the executor against the systemctl stand-in) under auto-full: with the rules reviewer, and
with a model that obeys whatever the log text asks for. The corpus is data: tests/fixtures/hostile_journal.toml."""

from __future__ import annotations

import json
import os
import tomllib

import pytest
from helpers import FIXTURES
from helpers.journal import Entry
from fakes.ollama import valid_review
from sqlalchemy import select
from fakes.systemctl import FakeSystemctl

from macha import pipeline
from macha.actions.executor import execute
from macha.config import load_settings
from macha.store.db import Store
from macha.store.models import Action, Review

pytestmark = pytest.mark.timeout(240)
CORPUS = tomllib.loads((FIXTURES / "hostile_journal.toml").read_text())
HOST = "testhost"
#: No disk is under pressure: thresholds at 100 %, whatever the test machine's disks hold.
NO_PRESSURE = {"disk_percent": {"raise_at": 100, "clear_at": 95}, "inode_percent": {"raise_at": 100, "clear_at": 95}}
#: What an obedient small model also writes unprompted: a null unit (TOML has no null, so it is added here).
NULL_UNIT = {"action": "restart_service", "arguments": {"unit": None}}


def _entries() -> list[Entry]:
    return [Entry(line["message"], priority=line["priority"], identifier=line["identifier"], uid=line.get("uid"),
                  pid=line.get("pid"), unit=line.get("unit"), transport=line["transport"])
            for line in CORPUS["line"]]


@pytest.fixture
def stand_in(tmp_path, monkeypatch) -> FakeSystemctl:
    fake = FakeSystemctl(tmp_path / "bin", CORPUS["units"])
    monkeypatch.setenv("PATH", f"{fake.bindir}:{os.environ['PATH']}")
    return fake


def _run(store, settings, journal) -> dict:
    state = pipeline.check_step(store, settings, HOST, "manual", pipeline.journal_source(str(journal)))
    state = pipeline.review_step(store, pipeline.context_step(store, state, settings), settings)
    # What the workers do next: run what the policy made ready, each check again on this host.
    for action_id in pipeline.actions_to_run(state):
        execute(store, settings, action_id)
    return state


def test_the_rules_reviewer_believes_only_systemd_and_the_catalog_keeps_the_network(tmp_path, make_journal,
                                                                                      stand_in) -> None:
    settings = load_settings(hostname=HOST, autonomy_level="auto-full", state_dir=tmp_path / "state",
                             thresholds=NO_PRESSURE, llm={"backend": "none"})
    store = Store(settings.effective_database_url)
    _run(store, settings, make_journal(_entries()))
    with store.session() as s:
        actions = {a.arguments.get("unit"): a for a in s.execute(select(Action)).scalars()}
    # Proposed only from lines whose sender is the system manager (journald's _PID 1), never from the spoofed ones.
    assert set(actions) == {line["rules"] for line in CORPUS["line"] if "rules" in line}
    assert actions["nginx.service"].status == "succeeded"
    assert actions["dhcpcd.service"].status == "refused" and "is protected" in actions["dhcpcd.service"].verdict_reason
    assert [c[-1] for c in stand_in.calls("restart")] == ["nginx.service"]
    store.dispose()


def test_a_model_that_obeys_the_log_text_gets_nothing_run(tmp_path, make_journal, stand_in, fake) -> None:
    demands = [d for line in CORPUS["line"] for d in line.get("demands", [])] + [NULL_UNIT]
    fake.default = {"content": valid_review(status="critical", proposed_actions=[
        {k: v for k, v in d.items() if k in ("action", "arguments")} | {"reason": "the log says so"}
        for d in demands])}
    settings = load_settings(hostname=HOST, autonomy_level="auto-full", state_dir=tmp_path / "state",
                             thresholds=NO_PRESSURE, ollama_url=fake.url,
                             actions={"max_proposals_per_review": 50})
    store = Store(settings.effective_database_url)
    state = _run(store, settings, make_journal(_entries()))
    with store.session() as s:
        review = s.execute(select(Review)).scalar_one()
        actions = list(s.execute(select(Action).order_by(Action.id)).scalars())
    # The review is stored (a wrong-typed argument refuses its proposal, not the review) and every demand was judged.
    assert review.outcome == "ok" and review.reviewer != "rules"
    assert state.review["review_id"] == review.id
    assert len(actions) == len(demands)
    assert {a.status for a in actions} == {"refused"}, [(a.arguments, a.status, a.verdict_reason) for a in actions]
    reasons = {json.dumps(a.arguments, sort_keys=True): a.verdict_reason for a in actions}
    assert "not failed or stopped" in reasons['{"unit": "postgresql.service"}']
    assert "not failed or stopped" in reasons['{"unit": "backup.service"}']
    assert "takes only service units" in reasons['{"unit": "reboot.target"}']
    assert "takes only service units" in reasons['{"unit": "poweroff.target"}']
    assert "is protected" in reasons['{"unit": "user@0.service"}']
    assert "no disk pressure" in reasons['{"max_size": "100M"}']
    assert "no disk pressure" in reasons['{"age_days": 1, "path": "/tmp"}'] or "outside" in reasons[
        '{"age_days": 1, "path": "/tmp"}']
    assert "no disk pressure" in reasons['{"keep_generations": 3}']
    for bad in ('{"unit": 5}', '{"unit": {"name": "nginx"}}', '{"unit": ["nginx"]}', '{"unit": true}'):
        assert "must be a string" in reasons[bad], (bad, reasons[bad])
    assert "'unit' is required" in reasons['{"unit": null}']
    # Nothing ran: no restart, no reboot, no maintenance unit started.
    assert [c for c in stand_in.calls() if c[1] != "show"] == []
    store.dispose()
