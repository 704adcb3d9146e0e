"""The dashboard's FastAPI application: guards, login, pages, the JSON API and the live WebSocket.

Every page and API route calls the same read functions and the same approval code as the commands; this module
only decides who may call them and how the answer is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Form, Request, WebSocket
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from macha.actions import approvals
from macha.actions.audit import history
from macha.config import Settings
from macha.core.errors import MachaError, StoreError
from macha.core.ids import parse_id
from macha.store.db import Store
from macha.web.auth import COOKIE, Authority, WebSession
from macha.web.live import Live

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: Methods that change state: they need an operator and, from a browser session, the CSRF token.
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class Problem(Exception):
    """An answer other than the page: a status code and one line for the operator."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(settings: Settings, *, store: Store | None = None, authority: Authority | None = None,
               send_execute: Callable[[int, str], str] | None = None) -> FastAPI:
    """The application; ``send_execute(action_id, host)`` hands an approved action to its host's worker and says
    how that went (the default sends it through the broker, as ``macha-approve`` does)."""
    store = store or Store(settings.effective_database_url)
    authority = authority or Authority(settings)
    web = settings.web_interface
    secure = web.tls_cert is not None
    live = Live(settings, store)
    app = FastAPI(title="Macha", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=live.lifespan)
    app.state.live = live
    # Host header: a DNS-rebinding page reaches localhost under its own name; answer only to ours (400 otherwise).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=web.allowed_hosts)
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    sender = send_execute or _broker_sender(settings)

    # --- who is asking ---

    def who(request: Request) -> WebSession | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return authority.bearer(header[7:].strip())
        return authority.session(request.cookies.get(COOKIE))

    def viewer(request: Request) -> WebSession:
        session = who(request)
        if session is None:
            if request.url.path.startswith("/api/") or request.headers.get("authorization"):
                raise Problem(401, "log in first: a session cookie or `Authorization: Bearer <token>`")
            raise _LoginFirst(request.url.path)
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
            raise Problem(403, f"{session.account} may look but not act: operators are members of "
                          f"{', '.join(sorted(authority.operator_groups)) or 'no group'}")
        return session

    def page(request: Request, name: str, session: WebSession | None, code: int = 200, **data: Any) -> Response:
        return templates.TemplateResponse(request, name, {"session": session, **data}, status_code=code)

    # --- errors: one line, the right status, never a traceback ---

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return page(request, "error.html", who(request), exc.status, status=exc.status, message=exc.message)

    @app.exception_handler(_LoginFirst)
    async def _login_first(request: Request, exc: _LoginFirst) -> Response:
        return RedirectResponse(f"/login?next={exc.path}", status_code=303)

    @app.exception_handler(StoreError)
    async def _store_down(request: Request, exc: StoreError) -> Response:
        log.warning("database error on %s: %s", request.url.path, exc)
        message = f"the database is not answering: {exc}"
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=503)
        return page(request, "error.html", who(request), 503, status=503, message=message, banner=True)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return await _problem(request, Problem(exc.status_code, message))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return await request_validation_exception_handler(request, exc)
        names = ", ".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in exc.errors())
        return page(request, "error.html", who(request), 422, status=422, message=f"bad parameter: {names}")

    # --- login ---

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", None, next=_local_path(next))

    @app.post("/login")
    def login(request: Request, token: str = Form(""), user: str = Form(""), password: str = Form(""),
              next: str = Form("/")) -> Response:
        source = request.client.host if request.client else "?"
        if authority.throttled(source):
            raise Problem(429, "too many failed logins from here: wait a minute")
        session = (authority.login_token(token, source) if token
                   else authority.login_password(user, password, source))
        if session is None:
            return page(request, "login.html", None, 401, next=_local_path(next), failed=True)
        response = RedirectResponse(_local_path(next), status_code=303)
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    @app.post("/logout")
    def logout(request: Request, session: WebSession = Depends(viewer)) -> Response:
        authority.logout(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # --- approvals ---

    def pending_rows() -> list[Any]:
        approvals.expire_due(store)
        with store.session() as s:
            return approvals.list_pending(s)

    def detail(action_id: int) -> Any:
        with store.session() as s:
            try:
                return approvals.show(s, action_id)
            except approvals.ApprovalError as exc:
                raise Problem(404, str(exc)) from None

    def decide(action_id: int, session: WebSession, reject_reason: str | None) -> tuple[dict[str, Any], str]:
        try:
            if reject_reason is not None:
                return approvals.reject(store, action_id, session.actor, reject_reason), ""
            action = approvals.approve(store, settings, action_id, session.actor)
        except approvals.ApprovalError as exc:
            raise Problem(404 if str(exc).startswith("no action") else 409, str(exc)) from None
        return action, sender(action["id"], action["hostname"])

    @app.get("/approvals", response_class=HTMLResponse)
    def approvals_page(request: Request, session: WebSession = Depends(viewer)) -> Response:
        return page(request, "approvals.html", session, rows=pending_rows())

    @app.get("/approvals/{action_id}", response_class=HTMLResponse)
    def approval_page(request: Request, action_id: str, session: WebSession = Depends(viewer)) -> Response:
        d = detail(_id(action_id))
        return page(request, "approval.html", session, d=_plain(d))

    @app.post("/approvals/{action_id}/approve")
    def approve_form(request: Request, action_id: str, session: WebSession = Depends(operator)) -> Response:
        _, note = decide(_id(action_id), session, None)
        return RedirectResponse(f"/approvals/{_id(action_id)}?done=approved", status_code=303)

    @app.post("/approvals/{action_id}/reject")
    def reject_form(request: Request, action_id: str, reason: str = Form(""),
                    session: WebSession = Depends(operator)) -> Response:
        decide(_id(action_id), session, reason)
        return RedirectResponse(f"/approvals/{_id(action_id)}?done=rejected", status_code=303)

    @app.get("/api/v1/approvals")
    def api_approvals(session: WebSession = Depends(viewer)) -> list[dict[str, Any]]:
        return [_plain(r) for r in pending_rows()]

    @app.get("/api/v1/approvals/{action_id}")
    def api_approval(action_id: str, session: WebSession = Depends(viewer)) -> dict[str, Any]:
        return _plain(detail(_id(action_id)))

    @app.post("/api/v1/approvals/{action_id}/approve")
    def api_approve(action_id: str, session: WebSession = Depends(operator)) -> dict[str, Any]:
        action, note = decide(_id(action_id), session, None)
        return {"action": action, "note": note}

    @app.post("/api/v1/approvals/{action_id}/reject")
    async def api_reject(request: Request, action_id: str, session: WebSession = Depends(operator)) -> Any:
        try:
            body = await request.json()
        except ValueError:
            body = None
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str):
            raise Problem(422, 'send a JSON body {"reason": "..."}')
        action, _ = decide(_id(action_id), session, reason)
        return {"action": action}

    @app.get("/api/v1/audit")
    def api_audit(host: str | None = None, action: int | None = None, limit: int = 50,
                  session: WebSession = Depends(viewer)) -> list[dict[str, Any]]:
        if not 1 <= limit <= 1000:
            raise Problem(422, "bad parameter: limit (1 to 1000)")
        with store.session() as s:
            return [{"time": r.time.isoformat(), "action_id": r.action_id, "host": r.hostname, "action": r.action,
                     "event": r.event, "actor": r.actor, "level": r.autonomy_level, "reason": r.reason}
                    for r in history(s, action_id=action, hostname=host, limit=limit)]

    @app.get("/api/v1/whoami")
    def whoami(session: WebSession = Depends(viewer)) -> dict[str, Any]:
        return {"account": session.account, "role": session.role, "may_act": session.may_act}

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, session: WebSession = Depends(viewer)) -> Response:
        return page(request, "home.html", session, rows=pending_rows())

    # --- live ---

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        origin = socket.headers.get("origin")
        host = socket.headers.get("host", "")
        session = authority.session(socket.cookies.get(COOKIE))
        # A page of another site may open a WebSocket to us with our cookie (SameSite does not cover every
        # browser's WebSocket); only our own pages' Origin is let in.
        if origin is None or not _same_origin(origin, host, secure) or session is None:
            await socket.close(code=4403)
            return
        await live.serve(socket, session)

    return app


class _LoginFirst(Exception):
    def __init__(self, path: str):
        super().__init__(path)
        self.path = _local_path(path)


def _local_path(path: str) -> str:
    """Where to go after login: a path of ours only (``//evil.example`` and ``https://...`` are other sites)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def _same_origin(origin: str, host: str, secure: bool) -> bool:
    return origin == f"{'https' if secure else 'http'}://{host}"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _id(text: str) -> int:
    try:
        return parse_id(text, "action")
    except (ValueError, MachaError) as exc:
        raise Problem(404, str(exc)) from None


def _plain(value: Any) -> Any:
    """A result model as JSON-ready data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value.to_dict()


def _broker_sender(settings: Settings) -> Callable[[int, str], str]:
    def send(action_id: int, hostname: str) -> str:
        from macha.broker.client import ensure_reachable
        from macha.core.errors import BrokerError
        from workers.app import create_app as celery_app
        from workers.app import send_execute

        try:
            ensure_reachable(settings.effective_broker_url)
            send_execute(celery_app(settings), action_id, hostname)
        except BrokerError as exc:
            # Approved in the database either way; the worker's reconciler sends ready actions that did not run.
            return f"it runs when the worker is back ({exc})"
        return f"sent to the worker of {hostname}"

    return send
