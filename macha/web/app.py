"""The dashboard's FastAPI application: guards, login, the error pages, and the live WebSocket around the API
(api.py) and the pages (pages.py).

Every page and API route calls the same read functions and the same approval code as the commands; this package
only decides who may call them and how the answer is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from fastapi import Depends, FastAPI, Form, Request, WebSocket
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from macha.config import Settings
from macha.core.errors import StoreError
from macha.store.db import Store
from macha.web import api, pages
from macha.web.auth import COOKIE, Authority, WebSession
from macha.web.deps import LoginFirst, Problem, local_path, viewer, who
from macha.web.live import Live

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def create_app(settings: Settings, *, store: Store | None = None, authority: Authority | None = None,
               send_execute: Callable[[int, str], str] | None = None,
               send_chat: Callable[[int], None] | None = None) -> FastAPI:
    """The application; ``send_execute(action_id, host)`` hands an approved action to its host's worker and says
    how that went, ``send_chat(message_id)`` sends a question to the gpu queue (by default both go through the
    broker, as ``macha-approve`` and ``macha-chat`` do)."""
    store = store or Store(settings.effective_database_url)
    authority = authority or Authority(settings)
    web = settings.web_interface
    secure = web.tls_cert is not None
    live = Live(settings, store)
    app = FastAPI(title="Macha", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=live.lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.authority = authority
    app.state.send_execute = send_execute or _broker_sender(settings)
    app.state.send_chat = send_chat or _chat_sender(settings)
    # Host header: a DNS-rebinding page reaches localhost under its own name; answer only to ours (400 otherwise).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=web.allowed_hosts)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    page = pages.page

    # --- errors: one line, the right status, never a traceback ---

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return page(request, "error.html", who(request), exc.status, status=exc.status, message=exc.message)

    @app.exception_handler(LoginFirst)
    async def _login_first(request: Request, exc: LoginFirst) -> Response:
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
        names = ", ".join(str(e["loc"][-1]) for e in exc.errors())
        return page(request, "error.html", who(request), 422, status=422, message=f"bad parameter: {names}")

    # --- login ---

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", None, next=local_path(next))

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(""), user: str = Form(""), password: str = Form(""),
              next: str = Form("/")) -> Response:
        source = request.client.host if request.client else "?"
        if authority.throttled(source):
            raise Problem(429, "too many failed logins from here: wait a minute")
        session = (authority.login_token(token, source) if token
                   else authority.login_password(user, password, source))
        if session is None:
            return page(request, "login.html", None, 401, next=local_path(next), failed=True)
        response = RedirectResponse(local_path(next), status_code=303)
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, session: WebSession = Depends(viewer)) -> Response:
        authority.logout(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # --- the API's description, behind the login too ---

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(session: WebSession = Depends(viewer)) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/docs", include_in_schema=False)
    def docs(session: WebSession = Depends(viewer)) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Macha API",
                                   swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger-ui.css", swagger_favicon_url="")

    # --- live ---

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        origin = socket.headers.get("origin")
        host = socket.headers.get("host", "")
        session = authority.session(socket.cookies.get(COOKIE))
        # A page of another site may open a WebSocket to us with our cookie (SameSite does not cover every
        # browser's WebSocket); only our own pages' Origin is let in.
        if origin is None or origin != f"{'https' if secure else 'http'}://{host}" or session is None:
            await socket.close(code=4403)
            return
        await live.serve(socket, session)

    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


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


def _chat_sender(settings: Settings) -> Callable[[int], None]:
    def send(message_id: int) -> None:
        from workers.app import create_app as celery_app
        from workers.app import send_chat

        # Stored first: a broker that is down leaves the question pending, and the reconciler sends it later.
        try:
            send_chat(celery_app(settings), message_id)
        except Exception as exc:  # noqa: BLE001 - kombu raises several kinds for a broker that is away
            log.warning("chat question %d not sent yet: %s", message_id, exc)

    return send
