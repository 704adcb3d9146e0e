"""The mcpServer settings: bounds and shapes are checked at load, one line naming the key; the token file's rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from macha.config import load_settings
from macha.core.errors import ConfigError
from macha.config import is_loopback
from macha.mcp.auth import Guard, Tokens, _host_of, ensure_token_file, load_tokens


@pytest.mark.parametrize("mcp, says", [
    ({"port": 0}, "mcp_server.port"),
    ({"listen_address": "127.0.0.1; rm -rf /"}, "not an IP address or host name"),
    ({"allowed_hosts": ["http://localhost/"]}, "not a host name"),
    ({"max_result_chars": 10}, "mcp_server.max_result_chars"),
    ({"read_only": "sometimes"}, "mcp_server.read_only"),
])
def test_bad_mcp_settings_are_one_line_naming_the_key(tmp_path: Path, mcp: dict, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(state_dir=tmp_path, mcp_server=mcp)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_default_token_file_is_made_once_private(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state")
    path = ensure_token_file(settings)
    assert path == tmp_path / "state" / "secrets" / "mcp-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first = path.read_text()
    assert ensure_token_file(settings) == path and path.read_text() == first
    [(token, name)] = load_tokens(path).names.items()
    assert name == "default" and len(token) >= 40


def test_named_tokens_and_bad_token_files(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# clients\nlaptop " + "a" * 20 + "\n\n" + "b" * 20 + "\n")
    os.chmod(path, 0o600)
    tokens = load_tokens(path)
    assert tokens.who("a" * 20) == "laptop" and tokens.who("b" * 20) == "default" and tokens.who("c" * 20) is None
    path.write_text("laptop short\n")
    with pytest.raises(ConfigError, match="line 1"):
        load_tokens(path)
    path.write_text("")
    with pytest.raises(ConfigError, match="holds no token"):
        load_tokens(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_tokens(tmp_path / "missing")


def test_a_network_address_needs_a_token_file_of_its_own(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, mcp_server={"listen_address": "0.0.0.0"})
    with pytest.raises(ConfigError, match="not a loopback address"):
        ensure_token_file(settings)
    own = tmp_path / "mine"
    own.write_text("x" * 32 + "\n")
    os.chmod(own, 0o600)
    named = load_settings(state_dir=tmp_path, mcp_server={"listen_address": "0.0.0.0", "token_file": str(own)})
    assert ensure_token_file(named) == own


def test_loopback_names_and_host_headers() -> None:
    assert all(is_loopback(a) for a in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(a) for a in ("0.0.0.0", "10.0.0.1", "example.org", "::"))
    assert _host_of("LocalHost:8081") == "localhost" and _host_of("[::1]:8081") == "[::1]"
    assert _host_of("127.0.0.1") == "127.0.0.1"
    assert isinstance(Guard(None, Tokens({}), ["localhost"]).allowed, set)
