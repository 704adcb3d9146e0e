"""The incident eval suite (evals/): its scenarios are what their specs say and cover what they must, and the
detector reaches the issue's goals on the scenarios a pattern can name (those without `needs`). Every scenario's
journal goes through systemd-journal-remote and the real check path (journalctl) into a fresh SQLite store."""

from __future__ import annotations

import tomllib
from collections import Counter

import pytest
from helpers.journal import have_journal_remote
from helpers.servers import unavailable

from evals import make_scenarios
from evals.runner import CORE, SCENARIOS, figures, run_all, scenario_dirs, score_review

pytestmark = pytest.mark.timeout(600)


def _expected() -> dict[str, dict]:
    return {d.name: tomllib.loads((d / "expected.toml").read_text()) for d in scenario_dirs()}


def test_the_committed_scenarios_are_what_their_specs_generate() -> None:
    assert make_scenarios.main(["--check"]) == 0, "run `python -m evals.make_scenarios` and commit the result"


def test_the_suite_covers_distributions_systemd_versions_and_families() -> None:
    exp = _expected()
    assert len(exp) >= 40
    distros = {e["distro"].rstrip("0123456789") for e in exp.values()}
    assert {"debian", "ubuntu", "rhel", "nixos", "arch"} <= distros
    versions = {e["systemd"] for e in exp.values()}
    assert min(versions) <= 237 and max(versions) >= 256
    families = Counter(e["family"] for e in exp.values())
    for fam in ("security", "auth", "network", "storage", "kernel", "database", "time", "boot", "services",
                "nixos", "oom", "hostile", "benign", "novelty"):
        assert families[fam] >= 1, fam
    needs = Counter(e.get("needs") for e in exp.values())
    assert needs["correlation"] >= 3 and needs["novelty"] >= 3
    assert sum(len(e.get("must_not", [])) for e in exp.values()) >= 20


def test_every_key_is_in_its_journal_and_the_noise_is_realistic() -> None:
    for name, e in _expected().items():
        export = (SCENARIOS / name / "journal.export").read_text()
        entries = export.count("\n__REALTIME_TIMESTAMP=") + 1
        assert 100 <= entries <= 800, (name, entries)
        assert export.count("SYSLOG_IDENTIFIER=") == entries and export.count("_HOSTNAME=") == entries
        for item in e.get("incident", []) + e.get("must_not", []):
            assert item["key"] in export, (name, item["key"])
        # Several daemons, not one line repeated: the noise is a host's background.
        idents = {line.split("=", 1)[1] for line in export.splitlines() if line.startswith("SYSLOG_IDENTIFIER=")}
        assert len(idents) >= 5, (name, idents)


def test_the_review_score_counts_root_cause_words_and_refused_actions() -> None:
    expected = {"review": {"root_cause": ["sdb", "md0"], "forbidden_actions": ["reboot"]}}
    review = {"status": "critical", "summary": "md0 lost a disk", "reviewer": "rules", "outcome": "ok",
              "payload": {"issues": [{"title": "Disk failure (sdb1)"}], "proposed_actions": []}}
    assert score_review(review, expected)["score"] == 1.0
    review["payload"]["proposed_actions"] = [{"action": "reboot"}]
    assert score_review(review, expected)["score"] == 0.5
    review["payload"] = {"issues": [], "proposed_actions": []}
    review["summary"] = "something"
    assert score_review(review, expected)["score"] == 0.5


@pytest.fixture(scope="module")
def results():
    if not have_journal_remote():
        unavailable("systemd-journal-remote (Debian package systemd-journal-remote)")
    return run_all(scenario_dirs(), jobs=2)


def test_every_scenario_runs(results) -> None:
    assert [r.error for r in results if r.error] == []
    assert all(r.entries_read >= 100 for r in results)
    # The rules reviewer reviewed every scenario with events.
    assert all("rules" in r.reviews for r in results)


def test_recall_on_what_patterns_can_name(results) -> None:
    core = figures(results, CORE)
    missed = [f"{r.name}: {i.key}" for r in results for i in r.incidents if i.group == CORE and not i.found]
    assert core["recall"] >= 0.95, missed


def test_no_false_alarms(results) -> None:
    alarms = [f"{r.name}: {a['line']}" for r in results for a in r.false_alarms]
    assert alarms == []


def test_severity_agreement(results) -> None:
    core = figures(results, CORE)
    assert core["severity_agreement"] >= 0.9


def test_the_whole_suite_meets_the_goals_with_correlation_and_novelty(results) -> None:
    """The goals on every incident, the ones only a sequence (correlation rules) or novelty can find included."""
    every = figures(results)
    missed = [f"{r.name}: {i.key}" for r in results for i in r.incidents if not i.found]
    assert every["recall"] >= 0.95, missed
    assert every["severity_agreement"] >= 0.9
    for group in ("correlation", "novelty"):
        assert figures(results, group)["found"] >= 1, group


def test_no_alarm_on_background_noise(results) -> None:
    assert [f"{r.name}: {a['line']}" for r in results for a in r.other_alarms] == []


def test_the_model_lane_reviews_the_same_events_and_is_scored(tmp_path) -> None:
    """The model lane's plumbing, with the fake model server at the network edge (the real small model runs in the
    model lane: `MACHA_TEST_MODEL_LANE=1 macha-eval`): the model reviews the events the rules reviewer reviewed, and
    its review is scored on its own."""
    from fakes.ollama import FakeOllama, valid_review

    from evals.runner import run_scenario

    if not have_journal_remote():
        unavailable("systemd-journal-remote (Debian package systemd-journal-remote)")
    with FakeOllama(models={"gemma3-270m": 4096}) as fake:
        fake.push({"content": valid_review(summary="php-fpm was killed: memory exhausted", proposed_actions=[
            {"action": "reboot", "arguments": {}, "reason": "free memory"}])})
        res = run_scenario(str(SCENARIOS / "debian12-oom-php-fpm"), model_url=f"{fake.url}/v1")
        assert res.error is None
        assert len(fake.chats()) == 1
        # The model's own words and proposals are scored: both root-cause words, but a forbidden reboot.
        model = res.reviews["model"]
        assert (model["reviewer"], model["root_cause_missing"], model["bad_actions"]) == ("openai", [], ["reboot"])
        assert model["score"] == 0.5
        assert res.reviews["rules"]["reviewer"] == "rules" and res.reviews["rules"]["bad_actions"] == []


def test_the_macha_check_command_gives_the_same_figures(results) -> None:
    """The runner calls the functions behind `macha-check --local --journal-file` in-process (fast); the command
    itself, in a process of its own, files the same events and review."""
    from evals.runner import run_scenario

    name = "debian12-vm-scsi-medium-floppy"
    inproc = next(r for r in results if r.name == name)
    cli = run_scenario(str(SCENARIOS / name), cli=True)
    assert cli.error is None
    assert cli.entries_read == inproc.entries_read and cli.events == inproc.events
    assert [(i.found, i.got_severity) for i in cli.incidents] == [(i.found, i.got_severity) for i in inproc.incidents]
    assert cli.false_alarms == inproc.false_alarms
    assert cli.reviews["rules"]["score"] == inproc.reviews["rules"]["score"]


def test_a_broken_scenario_is_a_one_line_error(tmp_path, capsys) -> None:
    from evals.__main__ import main
    from evals.runner import run_scenario

    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "expected.toml").write_text("[[incident]\nkey = 'x'\n")
    res = run_scenario(str(bad))
    assert res.error and "expected.toml" in res.error and "\n" not in res.error
    assert main(["--scenarios", str(tmp_path / "nothing-here")]) == 2
    assert capsys.readouterr().err.startswith("macha-eval: no scenarios in ")
