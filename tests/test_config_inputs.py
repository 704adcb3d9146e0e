"""Settings and store inputs that were accepted wrongly or failed unclearly: two spellings of one key, clean_tmp
roots outside the temporary-file trees, unreadable TOML, non-JSON lists in MACHA_*, a state directory under a file,
a damaged SQLite file, and misspelt MACHA_* variables."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from helpers import FIXTURES
from helpers.processes import macha_env, run_cli

from macha import config
from macha.config import load_settings
from macha.core.errors import ConfigError, StoreError
from macha.store.db import Store


def write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "macha.toml"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def check_cli(tmp_path: Path, *args: str, **env: str):
    return run_cli("macha-check", "--local", *args, "--journal-file", str(FIXTURES / "oom.journal"),
                   env=macha_env(tmp_path / "state", **env), timeout=60)


def one_error_line(proc) -> str:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("macha-check: "), proc.stderr
    return lines[0]


# Defect 7: both spellings of one key in one file.

@pytest.mark.parametrize(
    "text, needle",
    [
        ('autonomyLevel = "observe"\nautonomy_level = "auto-full"\n',
         "autonomyLevel and autonomy_level are the same option (autonomy_level)"),
        ('autonomy_level = "auto-full"\nautonomy-level = "observe"\n',
         "autonomy_level and autonomy-level are the same option"),
        ('[actions]\napprovalTimeout = "1h"\napproval_timeout = "30d"\n',
         "actions.approvalTimeout and actions.approval_timeout are the same option (actions.approval_timeout)"),
        ('[thresholds.diskPercent]\nraiseAt = 90\nclearAt = 80\nraise_at = 99\n',
         "thresholds.disk_percent.raiseAt and thresholds.disk_percent.raise_at are the same option"),
    ],
)
def test_two_spellings_of_one_option_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert needle in str(err.value) and "macha.toml" in str(err.value) and "\n" not in str(err.value)


def test_two_spellings_stop_the_command(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'autonomyLevel = "observe"\nautonomy_level = "auto-full"\n')
    line = one_error_line(check_cli(tmp_path, "--config", str(cfg)))
    assert "autonomyLevel and autonomy_level" in line


# Defect 8: clean_tmp roots are resolved and must be a temporary-file tree.

@pytest.mark.parametrize("root", ["/tmp/../etc", "/root", "/var/lib", "/", "/etc", "/home", "/usr", "/boot", "/nix",
                                  "/var", "/tmp/..", "/var/tmp/../lib", "tmp", "", "/dev/shm", "/run/user/0"])
def test_roots_outside_the_temporary_trees_are_refused(tmp_path: Path, root: str) -> None:
    with pytest.raises(ConfigError, match=r"actions\.clean_tmp_roots: ") as err:
        load_settings(state_dir=tmp_path, actions={"clean_tmp_roots": ["/tmp", root]})
    assert "\n" not in str(err.value)


def test_a_link_in_tmp_is_judged_by_where_it_points(tmp_path: Path) -> None:
    (tmp_path / "to-etc").symlink_to("/etc")
    with pytest.raises(ConfigError, match="resolves to /etc, which is not /tmp, /var/tmp or a directory below them"):
        load_settings(state_dir=tmp_path, actions={"clean_tmp_roots": [str(tmp_path / "to-etc")]})
    (tmp_path / "builds").mkdir()
    (tmp_path / "to-builds").symlink_to(tmp_path / "builds")
    s = load_settings(state_dir=tmp_path, actions={"clean_tmp_roots": [str(tmp_path / "to-builds"), "/tmp/../tmp"]})
    # The catalog compares resolved paths with these: they are kept resolved.
    assert s.actions.clean_tmp_roots == [os.path.realpath(tmp_path / "builds"), "/tmp"]


def test_a_root_below_tmp_must_exist_and_be_trusted(tmp_path: Path) -> None:
    assert str(tmp_path).startswith(("/tmp/", "/var/tmp/")), "pytest's tmp_path is expected under /tmp"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(state_dir=tmp_path, actions={"clean_tmp_roots": [str(tmp_path / "later")]})
    if os.geteuid() != 0:
        pytest.skip("changing a directory's owner needs root")
    other = tmp_path / "other"
    other.mkdir()
    os.chown(other, 4242, 4242)
    # Its owner could rename it away and leave a link to /etc in its place after the check.
    with pytest.raises(ConfigError, match="belongs to uid 4242"):
        load_settings(state_dir=tmp_path, actions={"clean_tmp_roots": [str(other)]})


def test_the_catalog_uses_the_resolved_roots(tmp_path: Path) -> None:
    from macha.actions.catalog import ActionRefused, ValidationContext, load_catalog

    root = tmp_path / "root"
    (root / "cache").mkdir(parents=True)
    (tmp_path / "link").symlink_to(root)
    s = load_settings(hostname="h1", state_dir=tmp_path / "s", actions={"clean_tmp_roots": [str(tmp_path / "link")]})
    # As the guard builds them; no probe: validated away from the host, as a queued proposal is.
    catalog, checks = load_catalog(), ValidationContext(tmp_roots=tuple(s.actions.clean_tmp_roots))
    ok = catalog.validate("clean_tmp", {"path": str(tmp_path / "link" / "cache"), "age_days": 7}, checks)
    assert ok.arguments["path"] == str(root / "cache")
    with pytest.raises(ActionRefused, match="outside"):
        catalog.validate("clean_tmp", {"path": "/etc", "age_days": 7}, checks)


# Defect 13: unclear errors.

@pytest.mark.parametrize(
    "content, needle",
    [
        (b'autonomyLevel = "\xff\xfe"\n', "is not UTF-8 text (byte 0xff at offset 17)"),
        (bytes(range(256)) * 4, "is not UTF-8 text"),
        (b"\x00\x01\x02binary", "is not valid TOML"),
        (("a = " + "[" * 5000 + "]" * 5000 + "\n").encode(), "nests arrays or tables too deeply"),
        (("a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n").encode(), "nests arrays or tables too deeply"),
    ],
)
def test_unreadable_toml_is_one_line_naming_the_file(tmp_path: Path, content: bytes, needle: str) -> None:
    cfg = write(tmp_path, content)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(err.value).startswith(f"config file {cfg} ") and needle in str(err.value)
    line = one_error_line(check_cli(tmp_path, "--config", str(cfg)))
    assert needle in line


@pytest.mark.parametrize(
    "name, value, needle",
    [
        ("MACHA_CRITICAL_SERVICES", "sshd,nginx",
         """MACHA_CRITICAL_SERVICES: 'sshd,nginx' is not JSON; a list is written ["sshd", "nginx"]"""),
        ("MACHA_MEMORY__CONFIG_PATHS", "/etc/nixos", "MACHA_MEMORY__CONFIG_PATHS: '/etc/nixos' is not JSON"),
        ("MACHA_ACTIONS", "{protected_units: []}", "MACHA_ACTIONS: '{protected_units: []}' is not JSON"),
    ],
)
def test_a_non_json_list_in_the_environment_names_the_variable(tmp_path: Path, name: str, value: str,
                                                               needle: str) -> None:
    line = one_error_line(check_cli(tmp_path, **{name: value}))
    assert needle in line


def test_a_state_directory_under_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=rf"state_dir: {tmp_path}/file is a file, not a directory"):
        load_settings(state_dir=tmp_path / "file" / "x" / "y")
    line = one_error_line(run_cli("macha-check", "--local", "--journal-file", str(FIXTURES / "oom.journal"),
                                  env={**macha_env(tmp_path), "MACHA_STATE_DIR": "/etc/passwd/x"}, timeout=60))
    assert "state_dir: /etc/passwd is a file, not a directory" in line


def test_a_database_under_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match=rf"cannot create its directory {tmp_path}/file/x: Not a directory"):
        Store(f"sqlite:///{tmp_path}/file/x/m.db")


@pytest.mark.parametrize("damage", ["garbage", "header then garbage", "overwritten pages"])
def test_a_damaged_sqlite_file_is_one_line_naming_it(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "bad.db"
    if damage == "overwritten pages":
        Store(f"sqlite:///{db}").dispose()
        with open(db, "r+b") as fh:
            fh.seek(100)
            fh.write(os.urandom(8000))
    else:
        db.write_bytes((b"SQLite format 3\x00" if damage == "header then garbage" else b"") + os.urandom(8192))
    line = one_error_line(check_cli(tmp_path, MACHA_DATABASE_URL=f"sqlite:///{db}"))
    assert f"database sqlite:///{db} is damaged or not a database: " in line
    assert "sqlalche.me" not in line


def test_a_damaged_json_value_names_the_database_not_a_unicode_error(tmp_path: Path) -> None:
    from sqlalchemy import select

    from macha.store.models import Host

    url = f"sqlite:///{tmp_path / 'm.db'}"
    Store(url).dispose()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("INSERT INTO hosts (hostname, metadata, first_seen, last_seen) "
                     "VALUES ('h1', x'ff7b7d', '2024-01-01', '2024-01-01')")
    store = Store(url)
    with pytest.raises(StoreError, match=rf"database {url} is damaged: a stored JSON value is not UTF-8 text"):
        with store.session() as s:
            s.execute(select(Host)).scalars().all()
    store.dispose()


def test_json_columns_still_round_trip(db_url: str) -> None:
    from sqlalchemy import select

    from macha.store.models import Host

    store = Store(db_url)
    with store.session() as s:
        s.add(Host(hostname="h1", meta={"a": [1, "é"]}))
    with store.session() as s:
        assert s.execute(select(Host.meta)).scalar_one() == {"a": [1, "é"]}
    store.dispose()


# Unknown MACHA_* variables: a warning naming the nearest option, never an error.

def test_an_unknown_variable_is_a_warning_naming_the_nearest_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_warned", set())
    env = {"MACHA_AUTONOMYLEVEL": "observe", "MACHA_LLM_TIMEOUT": "5", "MACHA_NOTHING_LIKE_IT": "1",
           # Not settings, but Macha's own: never warned about.
           "MACHA_CONFIG": "x", "MACHA_DEBUG": "1", "MACHA_TEST_PG": "x", "MACHA_TEST_REQUIRE_SERVICES": "1",
           "MACHA_MODEL_LANE": "1", "MACHA_REQUIRE_HYPERSCAN": "1", "MACHA_HYPERSCAN_INCLUDE": "/usr/include",
           # Real options, nested and under a table of any keys.
           "MACHA_AUTONOMY_LEVEL": "observe", "MACHA_LLM__TIMEOUT": "5", "MACHA_THRESHOLDS__CPU_PERCENT__SUSTAIN": "2",
           "macha_state_dir": "/x", "PATH": "/bin"}
    assert config.warn_unknown_variables(env) == [
        "MACHA_AUTONOMYLEVEL is not a Macha setting and is ignored; did you mean MACHA_AUTONOMY_LEVEL?",
        "MACHA_LLM_TIMEOUT is not a Macha setting and is ignored; did you mean MACHA_LLM__TIMEOUT?",
        "MACHA_NOTHING_LIKE_IT is not a Macha setting and is ignored",
    ]
    assert config.warn_unknown_variables(env) == []  # once per process


def test_an_unknown_variable_does_not_stop_the_command(tmp_path: Path) -> None:
    proc = check_cli(tmp_path, MACHA_AUTONOMYLEVEL="observe")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "MACHA_AUTONOMYLEVEL" in line]
    assert len(warnings) == 1 and "did you mean MACHA_AUTONOMY_LEVEL?" in warnings[0], proc.stderr
