"""Who is asking: the login token, the machine's own accounts through PAM, sessions, roles and a login rate limit.

Sessions live in this process's memory: a restart of the web process logs everyone out, which is the safe side.
A session is a random id in an ``HttpOnly; SameSite=Strict`` cookie; its CSRF token is a second random value the
pages send back with every state change, which another site can neither read nor guess.
"""

from __future__ import annotations

import grp
import logging
import pwd
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from macha.config import Settings, parse_duration
from macha.core.secrets import same, token_from

log = logging.getLogger(__name__)

COOKIE = "macha_session"
#: The account name of a login by token, as the audit log shows it (``web:token``).
TOKEN_ACCOUNT = "token"
#: Failed logins are counted per source over this window.
LOGIN_WINDOW_S = 60.0


class Role(StrEnum):
    VIEWER = "viewer"  # reads every page
    OPERATOR = "operator"  # also approves, rejects and chats


@dataclass
class WebSession:
    id: str
    account: str
    role: Role
    csrf: str
    last_seen: float = field(default_factory=time.monotonic)

    @property
    def actor(self) -> str:
        """The name every change this session makes is audited under."""
        return f"web:{self.account}"

    @property
    def may_act(self) -> bool:
        return self.role is Role.OPERATOR


def _pam_check(service: str) -> Callable[[str, str], bool]:
    import pam  # python-pam: libpam through ctypes

    def check(user: str, password: str) -> bool:
        return bool(pam.authenticate(user, password, service=service))

    return check


def groups_of(user: str) -> set[str]:
    """The user's groups, its primary one included (PAM says who they are, the groups say what they may do)."""
    try:
        primary = pwd.getpwnam(user).pw_gid
    except KeyError:
        return set()
    names = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    try:
        names.add(grp.getgrgid(primary).gr_name)
    except KeyError:
        pass
    return names


class Authority:
    """Logins, sessions and the rate limit of one web process."""

    def __init__(self, settings: Settings, *, pam_check: Callable[[str, str], bool] | None = None):
        web = settings.web_interface
        self.token = token_from(web.token_file, settings.state_dir / "secrets" / "web-token")
        self.idle_s = parse_duration(web.session_idle).total_seconds()
        self.operator_groups = set(web.operator_groups)
        self.attempts = web.login_attempts
        self._pam = pam_check or _pam_check(web.pam_service)
        self._sessions: dict[str, WebSession] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    # --- logins ---

    def throttled(self, source: str) -> bool:
        """True while ``source`` has used up its failed logins of the last minute."""
        now = time.monotonic()
        with self._lock:
            recent = self._failures.get(source)
            while recent and now - recent[0] > LOGIN_WINDOW_S:
                recent.popleft()
            return bool(recent) and len(recent) >= self.attempts

    def _failed(self, source: str) -> None:
        with self._lock:
            self._failures.setdefault(source, deque()).append(time.monotonic())

    def login_token(self, token: str, source: str) -> WebSession | None:
        if not same(token, self.token):
            self._failed(source)
            return None
        return self._open(TOKEN_ACCOUNT, Role.OPERATOR)

    def login_password(self, user: str, password: str, source: str) -> WebSession | None:
        # PAM would accept names no Unix account has (and a name is echoed in the audit): keep to the portable set.
        if not user or len(user) > 64 or not all(c.isalnum() or c in "._-" for c in user) or not password:
            self._failed(source)
            return None
        try:
            ok = self._pam(user, password)
        except Exception as exc:  # noqa: BLE001 - a broken PAM stack is a failed login with a log line, not a 500
            log.warning("PAM login of %r failed: %s", user, exc)
            ok = False
        if not ok:
            self._failed(source)
            return None
        role = Role.OPERATOR if groups_of(user) & self.operator_groups else Role.VIEWER
        return self._open(user, role)

    def bearer(self, token: str | None) -> WebSession | None:
        """A script's ``Authorization: Bearer`` request: the token's rights for this one request, no session."""
        if not same(token, self.token):
            return None
        return WebSession(id="", account=TOKEN_ACCOUNT, role=Role.OPERATOR, csrf="")

    # --- sessions ---

    def _open(self, account: str, role: Role) -> WebSession:
        session = WebSession(secrets.token_urlsafe(32), account, role, secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[session.id] = session
        return session

    def session(self, session_id: str | None) -> WebSession | None:
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            found = self._sessions.get(session_id)
            if found is None:
                return None
            if now - found.last_seen > self.idle_s:
                del self._sessions[session_id]
                return None
            found.last_seen = now
            return found

    def logout(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)
