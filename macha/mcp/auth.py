"""Who may talk to the MCP server over HTTP: a bearer token from a file (mode 0600), and only through the host
names the operator allowed (Host and Origin), so that a web page cannot reach a loopback server by DNS rebinding.

The token file holds one token per line, ``TOKEN`` or ``NAME TOKEN``: a name tells clients apart in the audit log
(their proposals are ``mcp:NAME``); an unnamed token is ``default``. Blank lines and ``#`` comments are skipped.
"""

from __future__ import annotations

import hmac
import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from macha.config import Settings, is_loopback
from macha.core.errors import ConfigError
from macha.core.secrets import create_private, new_token

_NAME = re.compile(r"[A-Za-z0-9._-]{1,40}")
#: A token shorter than this is guessable; the generated one is 43 characters.
MIN_TOKEN = 16


@dataclass(frozen=True)
class Tokens:
    #: token -> the client's name
    names: dict[str, str]

    def who(self, presented: str) -> str | None:
        """The name of the client whose token this is, compared in constant time against every token."""
        found = None
        for token, name in self.names.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = name
        return found


def ensure_token_file(settings: Settings) -> Path:
    """The token file, created with a fresh token (mode 0600, its directory 0700) when it is the default one and
    missing. A non-loopback listen address needs a file the operator named: a generated token nobody has read is
    no protection worth opening a port for."""
    cfg = settings.mcp_server
    path = settings.mcp_token_file
    if not is_loopback(cfg.listen_address) and cfg.token_file is None:
        raise ConfigError(f"mcpServer.listenAddress {cfg.listen_address} is not a loopback address: set "
                          "mcpServer.tokenFile to a token file you made (mode 0600) before opening the MCP server "
                          "to the network")
    if cfg.token_file is None:
        create_private(path, f"default {new_token()}\n")
    return path


def load_tokens(path: Path) -> Tokens:
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"the MCP token file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the MCP token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(f"the MCP token file {path} is readable by others (mode "
                          f"{stat.S_IMODE(st.st_mode):04o}): chmod 600 it")
    names: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        name, token = ("default", parts[0]) if len(parts) == 1 else (parts[0], parts[1]) if len(parts) == 2 \
            else (None, None)
        if name is None or not _NAME.fullmatch(name) or len(token) < MIN_TOKEN:
            raise ConfigError(f"{path}, line {number}: expected TOKEN or NAME TOKEN (a name of letters, digits, "
                              f"'.', '_', '-'; a token of at least {MIN_TOKEN} characters)")
        names[token] = name
    if not names:
        raise ConfigError(f"the MCP token file {path} holds no token")
    return Tokens(names)


def read_token(path: Path, name: str | None = None) -> str:
    """A token from the file (the first, or the one named): for clients started beside the server, and tests."""
    for token, who in load_tokens(path).names.items():
        if name is None or who == name:
            return token
    raise ConfigError(f"no token named {name!r} in {path}")


def _host_of(header: str) -> str:
    """The host name of a Host header (``name:port``, ``[v6]:port``), lower-cased, without the port."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware in front of the MCP app: Host, then Origin, then the bearer token, on every request.

    A Host not allowed is 421 (misdirected: the answer DNS-rebinding protection gives), a foreign Origin 403, and a
    missing or wrong token 401 with ``WWW-Authenticate: Bearer``. The client's name goes into the request's scope
    (``scope["state"]["mcp_client"]``) for the tools to put in the audit log."""

    def __init__(self, app: Any, tokens: Tokens, allowed_hosts: list[str]):
        self.app = app
        self.tokens = tokens
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _host_of(headers.get("host", ""))
        if host not in self.allowed:
            await _deny(send, 421, f"host {host[:100]!r} is not in mcpServer.allowedHosts")
            return
        origin = headers.get("origin")
        if origin is not None and _host_of(urlsplit(origin).netloc) not in self.allowed:
            await _deny(send, 403, "origin not allowed (mcpServer.allowedHosts)")
            return
        auth = headers.get("authorization", "")
        scheme, _, presented = auth.partition(" ")
        who = self.tokens.who(presented.strip()) if scheme.lower() == "bearer" and presented.strip() else None
        if who is None:
            await _deny(send, 401, "a bearer token from the MCP token file is required",
                        [(b"www-authenticate", b'Bearer realm="macha"')])
            return
        scope.setdefault("state", {})["mcp_client"] = who
        await self.app(scope, receive, send)


async def _deny(send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
