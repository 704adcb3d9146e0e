"""The journal pattern catalog: its examples, real Loghub lines (Linux, OpenSSH) against the templates of their
structured CSVs, both matcher engines, and operators' own pattern files."""

from __future__ import annotations

import csv
import functools
import platform
import re
import warnings
from collections import Counter

import pytest
from helpers import LOGHUB
from helpers.journal import Entry
from helpers.servers import REQUIRE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


from macha.config import load_settings
from macha.core.errors import ConfigError
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.monitor.detect.catalog import BENIGN, BUILTIN, Pattern, load_builtin, load_catalog, load_unnamed, \
    load_with_user
from macha.monitor.detect.matcher import Matcher, can_span_lines
from macha.store.db import Store

#: Everything the matcher runs: the patterns, then the known-benign entries.
CATALOG = load_builtin()
PATTERNS = [p for p in CATALOG if not p.benign]
BENIGN_ENTRIES = [p for p in CATALOG if p.benign]
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
    # issue 18's families
    "apparmor_denied", "selinux_denied", "account_created", "group_created", "account_deleted", "group_deleted",
    "privileged_group_added", "sudoers_changed", "authorized_keys_changed", "root_login", "ssh_root_login",
    "su_failure", "ssh_connection_dropped", "account_locked", "pam_module_error", "fail2ban_ban", "syn_flood",
    "conntrack_full", "nic_hang", "dhcp_failure", "md_raid_degraded", "smart_failure", "smart_warning",
    "nvme_media_error", "scsi_error", "multipath_failure", "zfs_error", "kernel_gpf", "rcu_stall", "edac_error",
    "edac_uncorrected", "mysql_error", "innodb_corruption", "redis_oom", "redis_persistence_failed",
    "time_sync_lost", "clock_wrong", "emergency_mode", "device_timeout", "mount_failed", "fsck_failed",
    "service_restart_loop", "tls_renewal_failed", "nix_store_low", "nixos_bootloader_failed",
}
#: What a line of each family the issue names must fire, in wordings other than the catalog's examples (other
#: versions, other programs): the patterns must generalise, not only recognise their own examples.
HELD_OUT = [
    ("sshd-session[31337]: Failed password for invalid user admin from 198.51.100.4 port 50000 ssh2",
     "ssh_invalid_user"),
    ("Connection closed by invalid user admin 198.51.100.4 port 50000 [preauth]", None),
    ("Accepted keyboard-interactive/pam for root from 192.0.2.44 port 61000 ssh2", "ssh_root_login"),
    ("Invalid user ubnt from 198.51.100.4 port 40000", "ssh_invalid_user"),
    ("audit: type=1400 audit(1732870000.001:99): apparmor=\"DENIED\" operation=\"exec\" profile=\"snap.x\"",
     "apparmor_denied"),
    ("type=AVC msg=audit(1732870000.002:100): avc:  denied  { write } for  pid=1 comm=\"x\"", "selinux_denied"),
    ("new user: name=eve, UID=1005, GID=100, home=/home/eve, shell=/bin/sh, from=none", "account_created"),
    ("add 'eve' to group 'wheel'", "privileged_group_added"),
    ("TCP: request_sock_TCPv6: Possible SYN flooding on port [::]:22. Sending cookies.", "syn_flood"),
    ("e1000e 0000:00:1f.6 enp0s31f6: Detected Hardware Unit Hang:", "nic_hang"),
    ("NETDEV WATCHDOG: eth0 (ixgbe): transmit queue 3 timed out", "nic_hang"),
    ("I/O error, dev sdc, sector 123 op 0x1:(WRITE) flags 0x0 phys_seg 2 prio class 2", "io_error"),
    ("nvme nvme2: I/O 941 QID 7 timeout, aborting", "nvme_reset"),
    ("md/raid10:md2: Disk failure on nvme1n1p3, disabling device.", "md_raid_degraded"),
    ("EXT4-fs error (device nvme0n1p2): ext4_lookup:1855: inode #131: comm nginx: iget: bad extra_isize", "ext4_error"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000040", "kernel_bug"),
    ("general protection fault, maybe for address 0x1234: 0000 [#1] PREEMPT SMP", "kernel_gpf"),
    ("watchdog: BUG: soft lockup - CPU#12 stuck for 27s! [qemu-kvm:9182]", "soft_lockup"),
    ("INFO: task postgres:1881 blocked for more than 245 seconds.", "hung_task"),
    ("2026-11-29 10:00:00.001 UTC [9] PANIC:  could not write to file \"pg_wal/xlogtemp.9\": Input/output error",
     "postgres_panic"),
    ("2026-11-29T10:00:00.1Z 1 [ERROR] [MY-010119] [Server] Aborting", "mysql_error"),
    ("Can't synchronise: no selectable sources", "time_sync_lost"),
    ("Timed out waiting for device /dev/mapper/vg-data.", "device_timeout"),
    ("postgresql.service: Scheduled restart job, restart counter is at 7.", "service_restart_loop"),
    ("x509: certificate has expired or is not yet valid", "tls_cert_expiry"),
    ("error: builder for '/nix/store/zz-nixos-system-h-24.05.drv' failed with exit code 100;", "nix_build_failed"),
]

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


def test_the_catalog_has_a_hundred_patterns_with_examples_covering_what_is_required() -> None:
    ids = [p.id for p in CATALOG]
    assert len(PATTERNS) >= 100 and len(set(ids)) == len(ids)
    assert REQUIRED <= {p.id for p in PATTERNS}, REQUIRED - {p.id for p in PATTERNS}
    assert all(p.examples and p.description and p.subsystem for p in CATALOG)
    assert load_catalog(BUILTIN) == PATTERNS and load_catalog(BENIGN) == BENIGN_ENTRIES and BENIGN_ENTRIES
    assert all(p.reason and p.severity in ("medium", "low", "info") for p in BENIGN_ENTRIES)


@functools.cache
def _matcher(engine: str) -> Matcher:
    return Matcher(CATALOG, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("pattern", PATTERNS, ids=[p.id for p in PATTERNS])
def test_every_example_fires_its_pattern_and_no_other(pattern, engine) -> None:
    matcher = _matcher(engine)
    for example in pattern.examples:
        assert [p.id for p in matcher.match(example)] == [pattern.id], example
    for line in pattern.not_examples:
        assert pattern.id not in [p.id for p in matcher.match(line)], line


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("entry", BENIGN_ENTRIES, ids=[p.id for p in BENIGN_ENTRIES])
def test_every_benign_example_is_recognised_by_its_entry_alone(entry, engine) -> None:
    matcher = _matcher(engine)
    for example in entry.examples:
        assert [p.id for p in matcher.match(example) if p.benign] == [entry.id], example


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("line, expected", HELD_OUT, ids=[line[:40] for line, _ in HELD_OUT])
def test_lines_in_other_wordings_fire_the_pattern_of_their_family(line, expected, engine) -> None:
    fired = [p.id for p in _matcher(engine).match(line) if not p.benign]
    assert fired == ([expected] if expected else []), line


def test_every_unnamed_rule_example_applies_to_its_rule_first() -> None:
    rules = load_unnamed()
    assert rules and all(r.severity in ("medium", "low", "info") for r in rules)
    for rule in rules:
        priority = min(rule.priorities) if rule.priorities else 6
        for example in rule.examples:
            assert _matcher("re2").match(example) == [], example
            assert next(r for r in rules if r.applies(priority, example)) is rule, example


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


def _compiled_module():
    """The compiled batch scanner, which CI must have built (x86-64 Linux, libhyperscan-dev)."""
    try:
        from macha.monitor.detect import _hsmatch
    except ImportError as exc:
        if REQUIRE and platform.machine() == "x86_64":
            pytest.fail(f"macha.monitor.detect._hsmatch was not built ({exc}); install libhyperscan-dev and reinstall")
        pytest.skip(f"macha.monitor.detect._hsmatch was not built ({exc})")
    return _hsmatch


def _batch_matcher(patterns: list[Pattern], scanner: str) -> Matcher:
    matcher = Matcher(patterns)
    if scanner == "compiled":
        _compiled_module()
        assert matcher._compiled_scanner() is not None
    else:
        pytest.importorskip("hyperscan")
        matcher._compiled = False  # the wheel's scanner in front of RE2
        assert matcher._batch_scanner() is not None
    return matcher


@pytest.mark.parametrize("scanner", ["compiled", "wheel"])
def test_batch_matching_gives_exactly_the_line_by_line_answers(scanner) -> None:
    matcher = _batch_matcher(CATALOG, scanner)
    lines = [r["Content"] for name in ("Linux/Linux_2k.log_structured.csv", "OpenSSH/OpenSSH_2k.log_structured.csv")
             for r in _rows(name)]
    lines += [ex for p in CATALOG for ex in p.examples]
    # Edges of one joined buffer: a match across two lines, a message with its own newline, non-ASCII text, a
    # pattern anchored at the start of a line, empty lines.
    lines += ["kernel: Out of", "memory: Killed process 1 (x)", "first line\nDependency failed for x.service",
              "ünïcödé I/O error, dev sda, sector 1", "", "Dependency failed for foo.service", "segfault at 0 ip",
              "error: builder for '/nix/store/abc", "x' failed with exit code 1"]
    batched = [[p.id for p in hits] for hits in matcher.match_many(lines)]
    assert batched == [[p.id for p in matcher.match(line)] for line in lines]
    assert sum(1 for hits in batched if hits) > 1000  # the comparison covered real matches


#: Patterns that can match across a newline (or only in part the same way in PCRE and RE2), beside some that
#: cannot, for the compiled scanner's joined batches.
EDGE_PATTERNS = [
    ("spaces", r"alpha\s+omega"), ("negated", r"start[^#]*stop"), ("dotall", r"(?s)left.*right"),
    ("scoped_dotall", r"(?s:up.+down)"), ("anchored", r"^begin \w+"), ("tail", r"\w+ finish$"),
    ("word", r"\bkey\b"), ("caseless", r"(?i)shout"), ("nonword", r"x\W+y"), ("nondigit", r"7\D8"),
    ("branch", r"(?:one|two[^z]three)"), ("literal_nl", "p\nq"), ("posix", r"m[[:space:]]n"),
]
EDGE_WORDS = ["alpha", "omega", "start", "stop", "left", "right", "up", "down", "begin", "finish", "key", "SHOUT",
              "x", "y", "7", "8", "one", "two", "three", "p", "q", "m", "n", "#", "Ünï", "ß", "K"]


@functools.cache
def _edge_matcher() -> Matcher:
    return _batch_matcher(_edge_catalog(), "compiled")  # one for all of Hypothesis's examples


def _edge_catalog() -> list[Pattern]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "[[:space:]]" is a nested set to Python
        return CATALOG + [Pattern(id=f"edge_{name}", severity="low", subsystem="test", description=name,
                                  regex=re.compile(source)) for name, source in EDGE_PATTERNS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.one_of(st.sampled_from(EDGE_WORDS + [ex for p in CATALOG[:12] for ex in p.examples]),
                                   st.sampled_from([" ", "  ", "\n", "\t", "\v", "\r", "", ".", "'"]),
                                   st.text(alphabet=st.characters(max_codepoint=300), max_size=6)),
                         max_size=8).map("".join), min_size=8, max_size=60))
def test_compiled_batches_agree_with_re2_line_by_line_on_awkward_lines(lines) -> None:
    matcher = _edge_matcher()
    batched = [[p.id for p in hits] for hits in matcher.match_many(lines)]
    assert batched == [[p.id for p in matcher.match(line)] for line in lines]


def test_a_match_spanning_two_lines_of_a_batch_is_not_reported() -> None:
    matcher = _batch_matcher(_edge_catalog(), "compiled")
    lines = ["alpha", "omega", "start here", "and stop", "left", "right", "up", "down", "x", "y", "7", "8",
             "alpha  omega", "start ok stop"]
    assert [[p.id for p in hits] for hits in matcher.match_many(lines)] == [[]] * 12 + [["edge_spaces"],
                                                                                       ["edge_negated"]]


@pytest.mark.parametrize("source, spans", [
    (r"No space left on device", False), (r"segfault at \S+ ip \d+", False), (r"a.*b", False),
    (r"^x$", False), (r"\bword\b", False), (r"[a-z0-9]+", False), (r"[^\s]", False), (r"[^\S]", True),
    (r"a\s+b", True), (r"[^']+", True), (r"(?s)a.b", True), (r"(?s:a.b)", True), (r"a\Wb", True),
    (r"\D", True), (r"[\x00-\x7f]", True), ("a\nb", True), (r"[[:space:]]", True), (r"(?:x|[^y])", True),
    (r"(a\s)?b", True),
])
def test_which_patterns_can_match_across_a_newline(source, spans) -> None:
    assert can_span_lines(source) is spans


def test_lines_a_prefilter_pattern_flags_go_to_the_exact_matcher() -> None:
    hs = _compiled_module()
    empty: list = []
    scanner = hs.Scanner([b"disk \\d+ failed", b"fan stopped"], [hs.FLAG_ALLOWEMPTY | hs.FLAG_PREFILTER,
                                                                  hs.FLAG_ALLOWEMPTY], [False, False],
                         ["disk", "fan"], empty)
    found, exact = scanner.scan(["disk 3 failed", "fan stopped", "all well", "disk 4 failed; fan stopped",
                                 "naïve fan stopped", "fan stopped\n"])
    # Lines the prefilter flagged, non-ASCII ones and ones ending in a newline are left to the exact matcher.
    assert exact == [0, 3, 4, 5]
    assert found[1] == ("fan",) and found[2] is empty and found[0] is empty
    assert found[1] is scanner.scan(["fan stopped"])[0][0]  # one shared tuple per set of patterns
    with pytest.raises(TypeError, match="list of str"):
        scanner.scan([b"bytes"])


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


@pytest.mark.parametrize("engine", ENGINES)
def test_a_user_pattern_with_leading_flags_combines_with_the_others(tmp_path, engine) -> None:
    user = tmp_path / "mine.toml"
    user.write_text("[[pattern]]\nid = 'fire'\nseverity = 'critical'\nregex = '(?i)disk on fire'\n"
                    "examples = ['DISK ON FIRE in bay 3']\n")
    patterns, problems = load_with_user(user)
    assert problems == []
    matcher = Matcher(patterns, engine=engine)  # Python accepts "(?i)" only at the start of the combined regex
    assert [p.id for p in matcher.match("Disk On Fire in bay 3")] == ["fire"]
    assert matcher.match("disk is fine") == []


def test_a_pattern_that_matches_the_empty_string_makes_every_line_scanned_alone() -> None:
    hs = _compiled_module()
    scanner = hs.Scanner([b"x*", b"fan"], [hs.FLAG_ALLOWEMPTY] * 2, [False, False], ["any", "fan"], [])
    found, exact = scanner.scan(["fan stopped", "", "all well"])
    assert found == [("any", "fan"), ("any",), ("any",)] and exact == []
