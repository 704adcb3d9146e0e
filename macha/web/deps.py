"""Who may call a route, and the answers other than the page (a status and one line), shared by the API and pages."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from pydantic import ValidationError

from macha.core.errors import MachaError
from macha.core.ids import parse_id
from macha.read.errors import NotFound, ReadError
from macha.web.auth import COOKIE, Authority, WebSession

#: Methods that change state: they need an operator and, from a browser session, the CSRF token.
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class Problem(Exception):
    """An answer other than the page: a status code and one line for the operator."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class LoginFirst(Exception):
    def __init__(self, path: str):
        super().__init__(path)
        self.path = local_path(path)


def local_path(path: str) -> str:
    """Where to go after login: a path of ours only (``//evil.example`` and ``https://...`` are other sites)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def authority(request: Request) -> Authority:
    return request.app.state.authority


def who(request: Request) -> WebSession | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return authority(request).bearer(header[7:].strip())
    return authority(request).session(request.cookies.get(COOKIE))


def viewer(request: Request) -> WebSession:
    session = who(request)
    if session is None:
        if request.url.path.startswith("/api/") or request.headers.get("authorization"):
            raise Problem(401, "log in first: a session cookie or `Authorization: Bearer <token>`")
        raise LoginFirst(request.url.path)
    return session


async def operator(request: Request, session: WebSession = Depends(viewer)) -> WebSession:
    if request.method in UNSAFE and session.id:
        # Bearer requests carry no ambient credential, so only a cookie session needs the CSRF token.
        sent = request.headers.get("x-csrf-token")
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await request.form()).get("csrf")
        if not isinstance(sent, str) or sent != session.csrf:
            raise Problem(403, "missing or wrong CSRF token: reload the page and try again")
    if not session.may_act:
        groups = ", ".join(sorted(authority(request).operator_groups)) or "no group"
        raise Problem(403, f"{session.account} may look but not act: operators are members of {groups}")
    return session


def row_id(text: str, what: str) -> int:
    """A path's id: anything but a whole number a database column can hold is a 404, not a 500."""
    try:
        return parse_id(text, what)
    except (ValueError, MachaError) as exc:
        raise Problem(404, str(exc)) from None


def query(model: type[Any], **fields: Any) -> Any:
    """A read layer query from request parameters: a bad one is a 422 naming the parameter."""
    try:
        return model(**{k: v for k, v in fields.items() if v not in (None, "")})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "query"
        raise Problem(422, f"bad parameter {name}: {first['msg']}") from None
    except MachaError as exc:
        raise Problem(422, str(exc)) from None


def found(call: Any, *args: Any) -> Any:
    """A read that names one thing: NotFound is a 404."""
    try:
        return call(*args)
    except NotFound as exc:
        raise Problem(404, str(exc)) from None
    except ReadError as exc:
        raise Problem(422, str(exc)) from None
