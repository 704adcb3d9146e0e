"""The dashboard's guards and API through its real ASGI app (Starlette's test client), on SQLite and PostgreSQL:
Host allowlist, login by token and by password, roles, CSRF, the rate limit, and approvals through the same code
as macha-approve. The browser tests (test_browser.py) drive the same app served by a real macha-ai."""

from __future__ import annotations

import stat

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from macha.actions.catalog import default_catalog
from macha.actions.proposals import propose
from macha.config import load_settings
from macha.core.errors import ConfigError
from macha.core.secrets import own_token
from macha.store.db import Store
from macha.store.models import ActionAudit
from macha.web.app import create_app
from macha.web.auth import Authority

PASSWORDS = {"alice": "alice-pw", "victor": "victor-pw"}


def _pam(user: str, password: str) -> bool:
    return PASSWORDS.get(user) == password


@pytest.fixture
def web(db_url, state_dir, monkeypatch, systemctl):
    settings = load_settings(state_dir=state_dir, database_url=db_url, hostname="web1")
    store = Store(db_url)
    # alice operates (she is in the operator group), victor only looks.
    monkeypatch.setattr("macha.web.auth.groups_of", lambda user: {"alice": {"ops"}}.get(user, {"users"}))
    settings.web_interface.operator_groups = ["ops"]
    sent: list[tuple[int, str]] = []

    def send(action_id: int, host: str) -> str:
        sent.append((action_id, host))
        return "sent"

    authority = Authority(settings, pam_check=_pam)
    app = create_app(settings, store=store, authority=authority, send_execute=send)
    client = TestClient(app, base_url="http://localhost")
    client.sent = sent
    client.settings = settings
    client.store = store
    client.token = authority.token
    yield client
    store.dispose()


def _pending(web, unit: str = "nginx.service") -> int:
    """A restart proposed as a review would (the stand-in systemctl on PATH knows the unit)."""
    with web.store.session() as s:
        result = propose(s, web.settings, "web1",
                         {"action": "restart_service", "arguments": {"unit": unit}, "reason": "nginx failed"},
                         proposer="review:rules", catalog=default_catalog())
        assert result.status == "pending", result
        return result.action_id


def _login(web, user: str) -> str:
    r = web.post("/login", data={"user": user, "password": PASSWORDS[user], "next": "/approvals"},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/approvals", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = web.get("/approvals")
    import re

    return re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def test_token_file_is_made_private_and_a_readable_one_is_refused(state_dir) -> None:
    path = state_dir / "secrets" / "web-token"
    token = own_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(token) >= 40
    assert own_token(path) == token  # made once
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        own_token(path)


def test_host_header_login_and_bearer(web) -> None:
    assert web.get("/healthz").json() == {"status": "ok"}
    assert web.get("/healthz", headers={"host": "evil.example"}).status_code == 400
    # Not logged in: pages go to the login page, the API answers 401.
    r = web.get("/approvals", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert web.get("/api/v1/approvals").status_code == 401
    assert web.get("/api/v1/approvals", headers={"Authorization": "Bearer wrong-token-123"}).status_code == 401
    ok = web.get("/api/v1/whoami", headers={"Authorization": f"Bearer {web.token}"})
    assert ok.status_code == 200 and ok.json()["account"] == "token" and ok.json()["may_act"] is True
    # A wrong token at the login form is a failed login (401 page), a right one a session.
    assert web.post("/login", data={"token": "nope-nope-nope-nope"}).status_code == 401
    r = web.post("/login", data={"token": web.token, "next": "//evil.example/x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # never sent off-site after login
    assert web.get("/api/v1/whoami").json()["account"] == "token"


def test_failed_logins_are_rate_limited_per_source(web) -> None:
    for _ in range(web.settings.web_interface.login_attempts):
        assert web.post("/login", data={"user": "alice", "password": "wrong"}).status_code == 401
    # Now even the right password waits: the limit is per source, whatever the account.
    assert web.post("/login", data={"user": "alice", "password": PASSWORDS["alice"]}).status_code == 429


def test_viewer_cannot_approve_and_operator_needs_csrf(web) -> None:
    action_id = _pending(web)
    csrf = _login(web, "victor")
    page = web.get(f"/approvals/{action_id}")
    assert page.status_code == 200 and "nginx.service" in page.text and 'id="approve"' not in page.text
    r = web.post(f"/approvals/{action_id}/approve", data={"csrf": csrf})
    assert r.status_code == 403 and "may look but not act" in r.text
    assert web.sent == []

    web.cookies.clear()
    csrf = _login(web, "alice")
    page = web.get(f"/approvals/{action_id}")
    assert 'id="approve"' in page.text
    assert web.post(f"/approvals/{action_id}/approve", data={}).status_code == 403  # no CSRF token
    assert web.post(f"/approvals/{action_id}/approve", data={"csrf": "forged"}).status_code == 403
    assert web.sent == []
    r = web.post(f"/approvals/{action_id}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert web.sent == [(action_id, "web1")]
    # Twice is refused by the same conditional update as macha-approve: nothing is sent again.
    again = web.post(f"/approvals/{action_id}/approve", data={"csrf": csrf})
    assert again.status_code == 409 and "already" in again.text
    assert web.sent == [(action_id, "web1")]
    with web.store.session() as s:
        actors = {(a.event, a.actor) for a in s.execute(select(ActionAudit)).scalars()}
    assert ("approved", "web:alice") in actors


def test_reject_through_the_api_and_bad_input(web) -> None:
    action_id = _pending(web)
    bearer = {"Authorization": f"Bearer {web.token}"}
    assert web.post(f"/api/v1/approvals/{action_id}/reject", headers=bearer, json={}).status_code == 422
    r = web.post(f"/api/v1/approvals/{action_id}/reject", headers=bearer, json={"reason": "not now"})
    assert r.status_code == 200 and r.json()["action"]["status"] == "rejected"
    assert r.json()["action"]["decided_by"] == "web:token"
    assert web.get("/api/v1/approvals", headers=bearer).json() == []
    # Unknown and impossible ids: 404 with one line, never a traceback.
    for bad in ("4242", "-1", "99999999999999999999999", "x"):
        r = web.get(f"/api/v1/approvals/{bad}", headers=bearer)
        assert r.status_code == 404 and "error" in r.json(), (bad, r.text)
    assert web.get("/api/v1/audit?limit=0", headers=bearer).status_code == 422
    web.post("/login", data={"token": web.token})
    page = web.get("/approvals/4242")
    assert page.status_code == 404 and "no action with id 4242" in page.text and "Traceback" not in page.text
    assert web.get("/no/such/page").status_code == 404
