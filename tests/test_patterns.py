"""The journal pattern catalog: its examples, real Loghub lines (Linux, OpenSSH) against the templates of their
structured CSVs, both matcher engines, and operators' own pattern files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from conftest import Entry

from macha.check import run_check
from macha.collect.journal import JournalSource
from macha.config import load_settings
from macha.detect.patterns import BUILTIN, Matcher, load_catalog, load_with_user
from macha.errors import ConfigError
from macha.store.db import Store

CATALOG = load_catalog()
LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"
ENGINES = ["re2", "python"]

#: What the issue asks the catalog to cover, by pattern id.
REQUIRED = {
    "kernel_panic", "kernel_oops", "kernel_bug", "oom_kill", "segfault", "general_protection", "hung_task",
    "soft_lockup", "hard_lockup", "io_error", "ext4_error", "xfs_error", "btrfs_error", "fs_readonly",
    "mce_hardware", "nvme_reset", "ata_error", "disk_full", "inode_exhaustion", "unit_failed", "start_limit_hit",
    "coredump", "watchdog_timeout", "thermal_throttle", "link_down", "nfs_not_responding", "dns_failure",
    "tls_cert_expiry", "ssh_auth_failure", "ssh_invalid_user", "ssh_break_in", "sudo_auth_failure",
    "pam_auth_failure", "nix_build_failed", "nix_daemon_error", "nixos_switch_failed", "postgres_fatal",
    "postgres_panic",
}

#: Written from the structured CSVs: which pattern each Loghub template (EventId) must fire; any other template
#: must fire none.
LINUX_EXPECTED = {
    "E13": "krb_auth_failure", "E14": "krb_auth_failure", "E61": "krb_auth_failure",
    "E15": "pam_auth_failure", "E16": "pam_auth_failure", "E17": "pam_auth_failure", "E18": "pam_auth_failure",
    "E19": "pam_auth_failure", "E27": "pam_user_unknown", "E91": "root_login",
}
OPENSSH_EXPECTED = {
    "E4": "ssh_too_many_failures", "E5": "ssh_too_many_failures",
    "E8": "ssh_invalid_user", "E10": "ssh_invalid_user", "E12": "ssh_invalid_user", "E13": "ssh_invalid_user",
    "E9": "ssh_auth_failure", "E14": "ssh_auth_failure",
    "E15": "pam_auth_failure", "E16": "pam_auth_failure", "E17": "pam_auth_failure", "E19": "pam_auth_failure",
    "E20": "pam_auth_failure", "E21": "pam_user_unknown", "E27": "ssh_break_in",
}


def test_the_catalog_has_forty_patterns_with_examples_covering_what_is_required() -> None:
    ids = [p.id for p in CATALOG]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)
    assert REQUIRED <= set(ids), REQUIRED - set(ids)
    assert all(p.examples and p.description and p.subsystem for p in CATALOG)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("pattern", CATALOG, ids=[p.id for p in CATALOG])
def test_every_example_fires_its_pattern_and_no_other(pattern, engine) -> None:
    matcher = Matcher(CATALOG, engine=engine)
    for example in pattern.examples:
        assert [p.id for p in matcher.match(example)] == [pattern.id], example


def _rows(name: str) -> list[dict[str, str]]:
    path = LOGHUB / name
    if not path.exists():
        pytest.skip(f"Loghub data not found at {path}")
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name, expected", [("Linux/Linux_2k.log_structured.csv", LINUX_EXPECTED),
                                            ("OpenSSH/OpenSSH_2k.log_structured.csv", OPENSSH_EXPECTED)])
def test_loghub_lines_fire_exactly_the_patterns_of_their_templates(name, expected, engine) -> None:
    matcher = Matcher(CATALOG, engine=engine)
    rows = _rows(name)
    got: Counter[str] = Counter()
    want: Counter[str] = Counter()
    for row in rows:
        fired = [p.id for p in matcher.match(row["Content"])]
        should = [expected[row["EventId"]]] if row["EventId"] in expected else []
        assert fired == should, (row["EventId"], row["Content"])
        got.update(fired)
        want.update(should)
    assert got == want and sum(got.values()) > 100  # per-pattern counts equal the templates' counts


def test_batch_matching_gives_exactly_the_line_by_line_answers() -> None:
    pytest.importorskip("hyperscan")
    matcher = Matcher(CATALOG)
    lines = [r["Content"] for name in ("Linux/Linux_2k.log_structured.csv", "OpenSSH/OpenSSH_2k.log_structured.csv")
             for r in _rows(name)]
    lines += [ex for p in CATALOG for ex in p.examples]
    # Edges of one joined buffer: a match across two lines, a message with its own newline, non-ASCII text, a
    # pattern anchored at the start of a line, empty lines.
    lines += ["kernel: Out of", "memory: Killed process 1 (x)", "first line\nDependency failed for x.service",
              "ünïcödé I/O error, dev sda, sector 1", "", "Dependency failed for foo.service", "segfault at 0 ip"]
    assert matcher._batch_scanner() is not None
    batched = [[p.id for p in hits] for hits in matcher.match_many(lines)]
    assert batched == [[p.id for p in matcher.match(line)] for line in lines]
    assert sum(1 for hits in batched if hits) > 1000  # the comparison covered real matches


def test_a_bad_user_pattern_is_named_and_the_rest_still_load(tmp_path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text(
        '[[pattern]]\nid = "app_crash"\nseverity = "high"\nsubsystem = "app"\nregex = "myapp: fatal"\n\n'
        '[[pattern]]\nid = "broken"\nseverity = "high"\nregex = "unclosed ("\n\n'
        '[[pattern]]\nid = "lookbehind"\nseverity = "low"\nregex = "(?<=x)y"\n\n'
        '[[pattern]]\nid = "loud"\nseverity = "apocalyptic"\nregex = "x"\n'
    )
    patterns, problems = load_with_user(user)
    ids = {p.id for p in patterns}
    assert "app_crash" in ids and {p.id for p in CATALOG} <= ids
    assert not {"broken", "lookbehind", "loud"} & ids
    assert len(problems) == 3
    assert "pattern 'broken'" in problems[0] and "bad regex" in problems[0]
    assert "pattern 'lookbehind'" in problems[1] and "RE2" in problems[1]
    assert "pattern 'loud'" in problems[2] and "apocalyptic" in problems[2]
    assert load_with_user(tmp_path / "missing.toml")[1] == [f"pattern file {tmp_path / 'missing.toml'} does not exist"]


def test_a_broken_built_in_catalog_is_an_error_naming_the_pattern(tmp_path) -> None:
    bad = tmp_path / "patterns.toml"
    bad.write_text(BUILTIN.read_text().replace("regex = 'Kernel panic - not syncing'", "regex = 'Kernel (panic'"))
    with pytest.raises(ConfigError, match="pattern 'kernel_panic'.*bad regex"):
        load_catalog(bad)


def test_a_check_uses_the_operators_patterns_and_reports_the_bad_ones(tmp_path, make_journal) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('[[pattern]]\nid = "app_crash"\nseverity = "high"\nsubsystem = "app"\nregex = "myapp: fatal"\n\n'
                    '[[pattern]]\nid = "broken"\nseverity = "high"\nregex = "("\n')
    settings = load_settings(hostname="p1", state_dir=tmp_path / "s", patterns_file=user)
    store = Store(settings.effective_database_url)
    journal = make_journal([Entry("myapp: fatal: cannot open the config", priority=6),
                            Entry("Kernel panic - not syncing: test", priority=0)])
    result = run_check(store, settings, source=JournalSource.file(journal))
    assert result.severity_counts == {"high": 1, "critical": 1}
    assert any("pattern 'broken'" in note for note in result.notes)
    store.dispose()
