"""Actions are safe by construction: the adversarial corpus, the unit-name grammar, the policy table, the
executor (at most once, exact argv), approvals and the append-only audit log. Commands run for real against a
recording stand-in `systemctl` on PATH."""

from __future__ import annotations

import json
import string
import threading
import time
import tomllib
from pathlib import Path

import pytest
from helpers import FIXTURES
from hypothesis import given, settings as hsettings, strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from macha.actions import approvals
from macha.actions.approvals import ApprovalError
from macha.actions.catalog import (
    RISKS,
    ActionRefused,
    default_catalog,
    load_catalog,
    normalise_unit,
)
from macha.actions.executor import execute
from macha.actions.policy import RUNS_UP_TO, Verdict, decide, may_run
from macha.actions.proposals import propose
from macha.config import load_settings
from macha.core.units import UNIT_SUFFIXES
from macha.store.db import Store
from macha.store.models import Action, ActionAudit
from fakes.systemctl import DEFAULT_UNITS

CORPUS = tomllib.loads((FIXTURES / "adversarial_actions.toml").read_text())["case"]
OUTCOME_STATUS = {"refused": "refused", "queued": "pending", "executed": "ready", "recorded": "recorded"}
HOST = "testhost"
FAILED = {"load": "loaded", "active": "failed", "sub": "failed"}


@pytest.fixture
def tmproot(tmp_path: Path) -> Path:
    root = tmp_path / "tmproot"
    root.mkdir()
    return root


#: Disk thresholds at 0 %: the disk actions' precondition (measured disk pressure) holds on any test machine. Tests
#: of the precondition itself set them to 100 %.
UNDER_PRESSURE = {"disk_percent": {"raise_at": 0, "clear_at": 0}, "inode_percent": {"raise_at": 0, "clear_at": 0}}
NO_PRESSURE = {"disk_percent": {"raise_at": 100, "clear_at": 95}, "inode_percent": {"raise_at": 100, "clear_at": 95}}


def make_settings(tmp_path: Path, tmproot: Path, level: str = "suggest", **overrides):
    actions = {"clean_tmp_roots": [str(tmproot)], **overrides.pop("actions", {})}
    thresholds = overrides.pop("thresholds", UNDER_PRESSURE)
    return load_settings(hostname=HOST, autonomy_level=level, state_dir=tmp_path / "state", actions=actions,
                         thresholds=thresholds, **overrides)


def test_the_corpus_has_at_least_fifty_cases_with_unique_ids() -> None:
    ids = [c["id"] for c in CORPUS]
    assert len(ids) >= 50 and len(set(ids)) == len(ids)
    assert {c["expect"] for c in CORPUS} == set(OUTCOME_STATUS)


def _fill(value, tmproot: Path):
    if isinstance(value, str):
        return value.replace("{tmproot}", str(tmproot))
    if isinstance(value, dict):
        return {k: _fill(v, tmproot) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, tmproot) for v in value]
    return value


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_adversarial_proposal(case, tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, case["level"], **case.get("settings", {}))
    if "units" in case:
        systemctl.set_units({**DEFAULT_UNITS, **case["units"]})
    if "setup_symlink" in case:
        (tmproot / case["setup_symlink"]["name"]).symlink_to(case["setup_symlink"]["target"])
    store = Store(f"sqlite:///{tmp_path / 'macha.db'}")
    raw = _fill(case["proposal"], tmproot)
    with store.session() as s:
        for _ in range(case.get("repeat", 1)):
            result = propose(s, settings, HOST, json.loads(json.dumps(raw)), proposer="model:test")
    assert result.status == OUTCOME_STATUS[case["expect"]], result.reason
    assert case["why"] in result.reason
    with store.session() as s:
        row = s.get(Action, result.action_id)
        audit = list(s.execute(select(ActionAudit).where(ActionAudit.action_id == row.id)).scalars())
        actions = list(s.execute(select(Action)).scalars())
    # Stored with the decision and its reason, and audited; risk is the catalog's, never the proposal's.
    assert row.status == result.status and case["why"] in row.verdict_reason
    decisive = [a for a in audit if a.event not in ("merged", "escalated")]
    assert decisive and decisive[-1].reason == row.verdict_reason
    if row.risk is not None:
        # The catalog's risk, or critical where what Macha observed makes the action's effect a reboot's.
        expected = "critical" if "as risky as a reboot" in case["why"] else default_catalog().entries[row.action].risk
        assert row.risk == expected
    if "note" in case:
        assert any(case["note"] in n for a in audit for n in a.detail.get("notes", []))
    if case.get("merged"):
        assert len(actions) == 1 and row.merged_count == case["repeat"] - 1
    if case["expect"] == "refused" and "rate limit" in case["why"]:
        assert [a.event for a in audit] == ["refused", "escalated"]
    # Nothing ran: proposing never executes (the executor does, later, after checking again).
    assert systemctl.calls("restart") == [] and systemctl.calls("reboot") == []
    store.dispose()


# --- the unit-name grammar ---------------------------------------------------------------------------------------

UNIT_CHARS = string.ascii_letters + string.digits + ":_.\\-"
valid_units = st.builds(
    lambda prefix, instance, suffix: f"{prefix}{'' if instance is None else '@' + instance}.{suffix}",
    st.text(UNIT_CHARS, min_size=1, max_size=60).filter(lambda p: not p.startswith("-")),
    st.none() | st.text(UNIT_CHARS, max_size=40),
    st.sampled_from(UNIT_SUFFIXES),
)


@given(valid_units)
def test_every_name_in_the_grammar_is_accepted_unchanged(name: str) -> None:
    assert normalise_unit(name) == name


@given(st.text(min_size=1, max_size=80))
@hsettings(max_examples=500)
def test_whatever_is_accepted_is_safe_as_one_argv_element(name: str) -> None:
    try:
        unit = normalise_unit(name)
    except ActionRefused:
        return
    assert set(unit) <= set(UNIT_CHARS + "@")  # no space, quote, $, `, ;, |, &, <, >, newline, NUL or /
    assert not unit.startswith("-") or unit in ("-.mount", "-.slice")
    assert unit.rsplit(".", 1)[1] in UNIT_SUFFIXES and len(unit) <= 255


@given(valid_units, st.sampled_from(list(" \t\n\x00$`;|&<>()'\"/*?~!{}")), st.integers(0, 60))
def test_one_metacharacter_anywhere_is_refused(name: str, bad: str, pos: int) -> None:
    pos = min(pos, len(name))
    with pytest.raises(ActionRefused):
        normalise_unit(name[:pos] + bad + name[pos:])


@given(st.text(UNIT_CHARS, min_size=1, max_size=40).filter(lambda p: not p.startswith("-") and
                                                           p.rsplit(".", 1)[-1] not in UNIT_SUFFIXES))
def test_a_bare_name_becomes_a_service_as_systemctl_does(name: str) -> None:
    assert normalise_unit(name) == f"{name}.service"


# --- the policy table --------------------------------------------------------------------------------------------

EXPECTED_TABLE = {
    "observe": ["record"] * 5,
    "suggest": ["execute", "queue", "queue", "queue", "queue"],
    "auto-safe": ["execute", "execute", "queue", "queue", "queue"],
    "auto-full": ["execute", "execute", "execute", "queue", "queue"],
}


def test_policy_table_is_autonomy_level_by_catalog_risk() -> None:
    assert {lvl: [decide(lvl, r).verdict.value for r in RISKS] for lvl in RUNS_UP_TO} == EXPECTED_TABLE


@pytest.mark.parametrize("level", list(RUNS_UP_TO))
@pytest.mark.parametrize("risk", RISKS)
def test_approval_lets_queued_actions_run_but_never_in_observe(level, risk) -> None:
    approved = may_run(level, risk, approved=True).verdict
    assert approved is (Verdict.REFUSE if level == "observe" else Verdict.EXECUTE)
    unapproved = may_run(level, risk, approved=False).verdict
    assert unapproved is (Verdict.EXECUTE if decide(level, risk).verdict is Verdict.EXECUTE else Verdict.REFUSE)


def test_a_catalog_with_a_templated_program_or_unknown_placeholder_does_not_load(tmp_path) -> None:
    from macha.core.errors import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text('[action.x]\ndescription="x"\nrisk="low"\ntimeout=1\nrollback="-"\ncommands=[["{prog}"]]\n'
                   'params.prog = { type = "unit" }\n')
    with pytest.raises(ConfigError, match="argv\\[0\\]"):
        load_catalog(bad)
    bad.write_text('[action.x]\ndescription="x"\nrisk="low"\ntimeout=1\nrollback="-"\ncommands=[["ls", "{nope}"]]\n')
    with pytest.raises(ConfigError, match="names no parameter"):
        load_catalog(bad)
    bad.write_text('[action.x]\ndescription="x"\nrisk="trivial"\ntimeout=1\nrollback="-"\ncommands=[["ls"]]\n')
    with pytest.raises(ConfigError, match="risk 'trivial'"):
        load_catalog(bad)
    # A low or medium action runs with no human under some level: it needs a precondition Macha observes.
    for pre in ("", 'precondition = { check = "none" }\n'):
        bad.write_text(f'[action.x]\ndescription="x"\nrisk="medium"\ntimeout=1\nrollback="-"\ncommands=[["ls"]]\n{pre}')
        with pytest.raises(ConfigError, match="precondition"):
            load_catalog(bad)


# --- the executor ------------------------------------------------------------------------------------------------

def _propose(store, settings, raw, proposer="test"):
    with store.session() as s:
        return propose(s, settings, HOST, raw, proposer=proposer)


def test_executed_argv_is_the_catalog_template_exactly(tmp_path, tmproot, systemctl, db_url) -> None:
    settings = make_settings(tmp_path, tmproot, "auto-full")
    systemctl.set_units({**DEFAULT_UNITS, "app@1.service": FAILED})
    store = Store(db_url)
    cases = [
        ({"action": "restart_service", "arguments": {"unit": "nginx"}}, ["systemctl", "restart", "--", "nginx.service"]),
        ({"action": "reset_failed", "arguments": {"unit": "app@1.service"}},
         ["systemctl", "reset-failed", "--", "app@1.service"]),
        ({"action": "journal_vacuum", "arguments": {"max_age": "2w"}},
         ["systemctl", "start", "--wait", "--", "macha-journal-vacuum-time@2w.service"]),
        ({"action": "nix_gc", "arguments": {"keep_generations": 5}},
         ["systemctl", "start", "--wait", "--", "macha-nix-gc-keep@5.service"]),
    ]
    for raw, argv in cases:
        proposed = _propose(store, settings, raw)
        assert proposed.status == "ready", proposed.reason
        before = len(systemctl.calls())
        outcome = execute(store, settings, proposed.action_id)
        assert outcome.status == "succeeded" and outcome.exit_code == 0
        ran = [c for c in systemctl.calls()[before:] if c[1] != "show"]
        assert ran == [argv]
        with store.session() as s:
            row = s.get(Action, proposed.action_id)
            assert row.argv == [argv] and "done" in row.stdout and row.duration_s is not None
    store.dispose()


def test_an_action_runs_once_however_often_its_task_is_delivered(tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "auto-full")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    action_id = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "nginx"}}).action_id
    first = execute(store, settings, action_id)
    again = execute(store, settings, action_id)
    assert (first.ran, first.status) == (True, "succeeded")
    assert (again.ran, again.status) == (False, "succeeded")
    assert len(systemctl.calls("restart")) == 1


def test_a_redelivered_task_of_a_dead_worker_does_not_run_the_action_again(tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "auto-full")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    action_id = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "nginx"}}).action_id
    with store.session() as s:  # what a worker killed right after its claim leaves behind
        s.get(Action, action_id).status = "running"
    outcome = execute(store, settings, action_id)
    assert (outcome.ran, outcome.status) == (False, "interrupted")
    assert systemctl.calls("restart") == []
    with store.session() as s:
        events = [a.event for a in s.execute(select(ActionAudit).where(ActionAudit.action_id == action_id)).scalars()]
    assert events == ["scheduled", "interrupted"]


def test_the_policy_is_checked_again_when_the_task_runs(tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "auto-full")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    action_id = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "nginx"}}).action_id
    lowered = make_settings(tmp_path, tmproot, "auto-safe")  # the operator lowered the level meanwhile
    outcome = execute(store, lowered, action_id)
    assert outcome.status == "refused" and "auto-safe no longer runs medium" in outcome.reason
    assert systemctl.calls("restart") == []

    # The unit vanished between proposal and execution.
    systemctl.set_units({**DEFAULT_UNITS, "app@1.service": FAILED})
    action_id = _propose(store, settings, {"action": "reset_failed", "arguments": {"unit": "app@1"}}).action_id
    systemctl.set_units({})
    outcome = execute(store, settings, action_id)
    assert outcome.status == "refused" and "does not exist" in outcome.reason
    assert systemctl.calls("reset-failed") == []


def test_a_failing_command_is_stored_as_failed_with_its_output(tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "auto-full")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    action_id = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "broken"}}).action_id
    outcome = execute(store, settings, action_id)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    with store.session() as s:
        row = s.get(Action, action_id)
        assert "Job for broken.service failed." in row.stdout
        assert [a.event for a in s.execute(select(ActionAudit).where(ActionAudit.action_id == action_id))
                .scalars()][-1] == "failed"


def test_a_command_over_its_timeout_is_killed(tmp_path, tmproot, systemctl) -> None:
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        (Path(default_catalog.__code__.co_filename).with_name("catalog.toml")).read_text()
        .replace("timeout = 120", "timeout = 1")
    )
    catalog = load_catalog(catalog_file)
    settings = make_settings(tmp_path, tmproot, "auto-full")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    with store.session() as s:
        action_id = propose(s, settings, HOST, {"action": "restart_service", "arguments": {"unit": "slow"}},
                            proposer="test", catalog=catalog).action_id
    outcome = execute(store, settings, action_id, catalog=catalog)
    assert outcome.status == "failed" and "timed out after 1 s" in outcome.reason


def test_clean_tmp_deletes_only_old_files_inside_the_root(tmp_path, tmproot, systemctl) -> None:
    import os
    import time

    old, new = tmproot / "old.log", tmproot / "new.log"
    old.write_text("x")
    new.write_text("y")
    past = time.time() - 30 * 86400
    os.utime(old, (past, past))
    outside = tmp_path / "outside.log"
    outside.write_text("z")
    os.utime(outside, (past, past))
    (tmproot / "link").symlink_to(outside)
    settings = make_settings(tmp_path, tmproot, "auto-safe")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    action_id = _propose(store, settings, {"action": "clean_tmp", "arguments": {"path": str(tmproot),
                                                                                "age_days": 7}}).action_id
    assert execute(store, settings, action_id).status == "succeeded"
    assert not old.exists() and new.exists() and outside.exists()


def test_a_diagnostic_keeps_only_the_lines_the_catalog_says(tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "suggest")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    proposed = _propose(store, settings, {"action": "run_diagnostic", "arguments": {"name": "ps_mem"}})
    assert proposed.status == "ready"
    assert execute(store, settings, proposed.action_id).status == "succeeded"
    with store.session() as s:
        row = s.get(Action, proposed.action_id)
    lines = row.stdout.splitlines()
    assert lines[0].split()[:3] == ["PID", "USER", "RSS"] and 1 < len(lines) <= 25


# --- approvals ---------------------------------------------------------------------------------------------------

def test_approve_revalidates_then_makes_the_action_ready(tmp_path, tmproot, systemctl, db_url) -> None:
    settings = make_settings(tmp_path, tmproot, "suggest")
    store = Store(db_url)
    first = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "nginx"}})
    second = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "nginx"}})
    assert first.status == "pending" and second.merged and second.action_id == first.action_id
    with store.session() as s:
        pending = approvals.list_pending(s)
    assert [(p.id, p.action, p.arguments, p.risk, p.merged_count) for p in pending] == [
        (first.action_id, "restart_service", {"unit": "nginx.service"}, "medium", 1)
    ]

    # The unit is gone: approval is refused, said in the audit, and the action stays pending.
    systemctl.set_units({})
    with pytest.raises(ApprovalError, match="does not exist"):
        approvals.approve(store, settings, first.action_id, "alice")
    systemctl.set_units({"nginx.service": {"load": "loaded"}})
    # In observe nothing runs, approved or not.
    with pytest.raises(ApprovalError, match="nothing runs"):
        approvals.approve(store, make_settings(tmp_path, tmproot, "observe"), first.action_id, "alice")

    action = approvals.approve(store, settings, first.action_id, "alice")
    assert action["status"] == "ready" and action["decided_by"] == "alice"
    with pytest.raises(ApprovalError, match="is already ready by alice at 20"):
        approvals.approve(store, settings, first.action_id, "bob")
    assert execute(store, settings, first.action_id).status == "succeeded"
    assert systemctl.calls("restart") == [["systemctl", "restart", "--", "nginx.service"]]
    with store.session() as s:
        trail = [(a.event, a.actor) for a in s.execute(
            select(ActionAudit).where(ActionAudit.action_id == first.action_id).order_by(ActionAudit.id)).scalars()]
    assert trail == [("queued", "test"), ("merged", "test"), ("refused", "alice"), ("refused", "alice"),
                     ("approved", "alice"), ("started", "executor"), ("executed", "executor")]
    store.dispose()


def _race(*calls):
    """Runs the calls in threads released at the same moment; each gives ("ok", result) or ("error", message)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = ("ok", call())
        except ApprovalError as exc:
            results[i] = ("error", str(exc))

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_approve_and_reject_at_the_same_moment_one_decision_wins(tmp_path, tmproot, systemctl, db_url) -> None:
    """Approve re-validates (a systemctl probe) before it writes: a rejection landing meanwhile used to be
    overwritten, and the rejected action ran. The decision is one conditional UPDATE; the loser is told."""
    settings = make_settings(tmp_path, tmproot, "suggest")
    store = Store(db_url)
    for trial in range(6):
        unit = f"app@{trial}.service"
        systemctl.set_units({unit: {"load": "loaded"}})
        proposed = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": unit}})
        assert proposed.status == "pending"
        calls = [lambda: approvals.approve(store, settings, proposed.action_id, "alice"),
                 lambda: approvals.reject(store, proposed.action_id, "bob", "not now")]
        if trial % 2:
            calls.reverse()
        results = _race(*calls)
        assert sorted(r[0] for r in results) == ["error", "ok"], results
        lost = next(r[1] for r in results if r[0] == "error")
        with store.session() as s:
            row = s.get(Action, proposed.action_id)
            decisions = [a.event for a in s.execute(select(ActionAudit).where(
                ActionAudit.action_id == row.id, ActionAudit.event.in_(("approved", "rejected")))).scalars()]
        assert decisions == [{"ready": "approved", "rejected": "rejected"}[row.status]]
        assert f"is already {row.status} by {row.decided_by} at " in lost
        outcome = execute(store, settings, proposed.action_id)
        assert outcome.ran is (row.status == "ready")
    ran = {c[-1] for c in systemctl.calls("restart")}
    with store.session() as s:
        approved = {r.arguments["unit"] for r in s.execute(select(Action).where(Action.status == "succeeded")).scalars()}
    assert ran == approved  # a rejected action never ran

    # Two approvals at once: one approves, the other is told who did.
    systemctl.set_units({"nginx.service": {"load": "loaded"}})
    proposed = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "nginx"}})
    results = _race(lambda: approvals.approve(store, settings, proposed.action_id, "alice"),
                    lambda: approvals.approve(store, settings, proposed.action_id, "carol"))
    assert sorted(r[0] for r in results) == ["error", "ok"], results
    store.dispose()


def test_a_late_finisher_does_not_overwrite_interrupted(tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "auto-full")
    systemctl.set_units({"slowish.service": {"load": "loaded", "sleep": 2}})
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    action_id = _propose(store, settings, {"action": "restart_service", "arguments": {"unit": "slowish"}}).action_id
    first: list = []
    runner = threading.Thread(target=lambda: first.append(execute(store, settings, action_id)))
    runner.start()
    deadline = time.monotonic() + 10
    while not systemctl.calls("restart") and time.monotonic() < deadline:
        time.sleep(0.05)
    # A redelivery while it still runs (its worker looked dead): marked interrupted, not run again.
    assert execute(store, settings, action_id).status == "interrupted"
    runner.join(30)
    with store.session() as s:
        row = s.get(Action, action_id)
        events = [a.event for a in s.execute(select(ActionAudit).where(ActionAudit.action_id == action_id)
                                                .order_by(ActionAudit.id)).scalars()]
    assert row.status == "interrupted" and first[0].status == "interrupted"
    assert events == ["scheduled", "started", "interrupted", "executed"]
    assert len(systemctl.calls("restart")) == 1


def test_reject_and_expiry(tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "suggest", actions={"approval_timeout": "1s"})
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    a = _propose(store, settings, {"action": "reboot"})
    b = _propose(store, settings, {"action": "nix_rollback"})
    with pytest.raises(ApprovalError, match="give a reason"):
        approvals.reject(store, a.action_id, "alice", "  ")
    assert approvals.reject(store, a.action_id, "alice", "not during business hours")["status"] == "rejected"
    import time

    time.sleep(1.1)
    with pytest.raises(ApprovalError, match="expired"):
        approvals.approve(store, settings, b.action_id, "alice")
    assert approvals.expire_due(store) == []  # already expired by the attempt
    with store.session() as s:
        assert s.get(Action, b.action_id).status == "expired"
        assert approvals.list_pending(s) == []
    with pytest.raises(ApprovalError, match="no action with id 999"):
        approvals.approve(store, settings, 999, "alice")


def test_the_audit_log_refuses_updates_and_deletes(db_url, tmp_path, tmproot, systemctl) -> None:
    settings = make_settings(tmp_path, tmproot, "suggest")
    store = Store(db_url)
    _propose(store, settings, {"action": "reboot"})
    for statement in ("UPDATE action_audit SET reason = 'nothing happened'", "DELETE FROM action_audit"):
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text(statement))
    with store.session() as s:
        assert s.execute(select(ActionAudit.reason)).scalar_one().startswith("autonomy level suggest")
    store.dispose()
