"""Secret files (the web and MCP tokens): made once with mode 0600, read back, never logged.

A token Macha made itself must stay private: one the group or others can read is refused, not silently used, because
the operator cannot tell who copied it. A file the operator names (a systemd credential, a secrets manager's mount)
is theirs to guard and is only read.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from macha.core.errors import ConfigError

#: 32 random bytes, URL-safe: fits a header, a cookie and a shell variable without quoting.
TOKEN_BYTES = 32


def _read(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(token) < 16 or any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(f"the token file {path} must hold one token of at least 16 printable characters")
    return token


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def create_private(path: Path, text: str) -> bool:
    """Write ``text`` to a new file only its owner can read (its folder 0700 too). False if the file exists: a
    secret is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot create the secret file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return True


def own_token(path: Path) -> str:
    """The token in ``path``, created (mode 0600, its folder 0700) at first use."""
    if not create_private(path, new_token() + "\n"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"the token file {path} is readable by others (mode {mode:04o}): run "
                              f"`chmod 600 {path}`, or delete it to have a new token made")
    return _read(path)


def token_from(token_file: Path | None, default: Path) -> str:
    """The configured token file's token, or Macha's own at ``default``."""
    return _read(token_file) if token_file is not None else own_token(default)


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the time a wrong guess takes says nothing about the right one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
