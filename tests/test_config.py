"""Settings: sources, NixOS-style keys, and one clear line for every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.processes import macha_env, run_cli

from macha.config import load_settings
from macha.core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "macha.toml"
    p.write_text(text)
    return p


def test_defaults_name_models_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("MACHA_")]:
        monkeypatch.delenv(key)
    s = load_settings()
    assert s.autonomy_level == "suggest"
    assert (s.trigger_interval, s.review_interval) == (30, 60)
    assert s.trigger_model in {"qwen3:0.6b", "qwen3:1.7b"}
    assert (s.review_model, s.meta_model) == ("qwen3:4b", "qwen3:14b")
    assert s.effective_database_url.startswith("sqlite:///") and s.embedded_broker
    assert s.effective_broker_url == f"redis+socket://{s.state_dir}/redis/redis.sock"


def test_toml_accepts_module_option_names_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(
        tmp_path,
        """
autonomyLevel = "auto-safe"
triggerInterval = 15
timescaledb = { enable = true, retentionDays = 7, port = 5433 }
[webInterface]
port = 9090
allowedHosts = ["localhost", "*.example.org"]
[mcpServer]
respectAutonomy = false
""",
    )
    monkeypatch.setenv("MACHA_TRIGGER_INTERVAL", "20")
    monkeypatch.setenv("MACHA_MCP_SERVER__PORT", "9091")
    s = load_settings(cfg)
    assert s.autonomy_level == "auto-safe"
    assert s.trigger_interval == 20  # environment over file
    assert s.timescaledb.retention_days == 7 and s.timescaledb.port == 5433 and s.timescaledb.enable
    assert s.web_interface.port == 9090 and s.web_interface.allowed_hosts[1] == "*.example.org"
    assert s.mcp_server.port == 9091 and s.mcp_server.respect_autonomy is False


@pytest.mark.parametrize(
    "text, needle",
    [
        ('autonomyLevel = "yolo"\n', "autonomy_level: 'yolo' is not allowed; expected 'observe', 'suggest', "),
        ('triggerInterval = "often"\n', "trigger_interval: "),
        ("triggerInterval = 0\n", "trigger_interval: "),
        ('reviewModell = "qwen3:4b"\n', "review_modell: unknown option"),
        ("[webInterface]\nport = 70000\n", "web_interface.port: "),
        ('brokerUrl = "amqp://x"\n', "broker_url: must be a Redis URL"),
        ('journalInitialLookback = "yesterday"\n', "journal_initial_lookback: 'yesterday' is not a duration"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_toml_names_the_file_and_line(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'autonomyLevel = "suggest"\ntriggerInterval = = 3\n')
    with pytest.raises(ConfigError, match=r"macha.toml is not valid TOML: .*line 2"):
        load_settings(cfg)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("autonomyLevel = [\n", "is not valid TOML"),
        ('autonomyLevel = "yolo"\n', "autonomy_level: 'yolo' is not allowed"),
        ('contextSize = "big"\n', "context_size: Input should be a valid integer"),
    ],
)
@pytest.mark.parametrize("command", ["macha-check", "macha-ai"])
def test_cli_prints_one_line_and_exits_2(tmp_path: Path, command: str, text: str, expected: str) -> None:
    cfg = write(tmp_path, text)
    proc = run_cli(command, "--config", str(cfg), env=macha_env(tmp_path / "state"), timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{command}: ") and expected in lines[0]


def test_env_error_is_one_line_too(tmp_path: Path) -> None:
    env = macha_env(tmp_path / "state", MACHA_AUTONOMY_LEVEL="everything")
    proc = run_cli("macha-check", "--local", env=env, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "autonomy_level: 'everything' is not allowed" in proc.stderr
