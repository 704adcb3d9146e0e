"""The dashboard in a real Chromium (Debian's), served by a real macha-ai with the systemctl stand-in: token and
PAM logins, approve and reject from the page, the guards a browser meets, and a screenshot of every page."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from fakes.systemctl import FakeSystemctl
from helpers import FIXTURES
from helpers.browser import chromium_path, screenshot
from helpers.journal import Entry
from helpers.processes import free_port, macha_env, run_cli, wait_for
from helpers.servers import unavailable

pytestmark = pytest.mark.timeout(300)

SYSTEMD = {"identifier": "systemd", "pid": 1, "uid": 0, "transport": "journal", "unit": "init.scope"}


@pytest.fixture
def dashboard(tmp_path, state_dir, macha_ai, make_journal):
    """A macha-ai with its dashboard on a free port and two restarts waiting for approval."""
    fake = FakeSystemctl(tmp_path / "bin")
    env = macha_env(state_dir, MACHA_HOSTNAME=f"w{os.getpid()}-{state_dir.name[-8:]}", MACHA_AUTONOMY_LEVEL="suggest")
    env["PATH"] = f"{fake.bindir}:{env['PATH']}"
    base, token = _serve(macha_ai, env)
    journal = make_journal([
        Entry("nginx.service: Failed with result 'exit-code'.", priority=3, **SYSTEMD),
        Entry("app@1.service: Failed with result 'exit-code'.", priority=3, **SYSTEMD),
    ], hostname=env["MACHA_HOSTNAME"])  # this host's own journal: its actions run on this host's queue
    check = run_cli("macha-check", "--journal-file", str(journal), env=env)
    assert check.returncode == 1, check.stderr
    pending = httpx.get(f"{base}/api/v1/approvals", headers={"Authorization": f"Bearer {token}"}).json()
    ids = {p["arguments"]["unit"]: p["id"] for p in pending}
    assert set(ids) == {"nginx.service", "app@1.service"}
    return {"base": base, "port": int(base.rsplit(":", 1)[1]), "token": token, "ids": ids, "fake": fake, "env": env}


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _serve(macha_ai, env: dict[str, str]) -> tuple[str, str]:
    """A macha-ai with its dashboard on a free port: (base URL, login token)."""
    port = free_port()
    env.update(MACHA_WEB_INTERFACE__ENABLE="true", MACHA_WEB_INTERFACE__PORT=str(port))
    ai = macha_ai(env)
    ai.wait_ready()
    base = f"http://localhost:{port}"
    wait_for(lambda: _up(base), 60, "the dashboard to answer")
    return base, (Path(env["MACHA_STATE_DIR"]) / "secrets" / "web-token").read_text().strip()


def _logged_in(browser, base: str, token: str, path: str, viewport: dict | None = None):
    """A page of a session logged in with the token, at ``path``, its WebSocket open."""
    page = browser.new_page(viewport=viewport or {"width": 1200, "height": 800})
    page.goto(f"{base}/login?next={path}")
    page.fill("input[name=token]", token)
    page.click("#login-token")
    page.wait_for_url(f"{base}{path}")
    page.wait_for_selector("#live-state.on")
    return page


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()


def _audit(d, action_id: int) -> list[dict]:
    r = httpx.get(f"{d['base']}/api/v1/audit?action={action_id}", headers={"Authorization": f"Bearer {d['token']}"})
    return r.json()


def test_token_login_approve_and_reject_from_the_page(dashboard, browser) -> None:
    d = dashboard
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    page.goto(f"{d['base']}/approvals")
    assert page.url.startswith(f"{d['base']}/login")  # not logged in: the login page
    screenshot(page, "login")
    page.fill("input[name=token]", "wrong-token-wrong-token")
    page.click("#login-token")
    page.wait_for_selector("p.error")
    page.fill("input[name=token]", d["token"])
    page.click("#login-token")
    page.wait_for_url(f"{d['base']}/approvals")
    assert "nginx.service" in page.inner_text("#approval-rows")
    page.wait_for_selector("#live-state.on")  # the WebSocket of this session is open
    screenshot(page, "approvals")

    nginx, app = d["ids"]["nginx.service"], d["ids"]["app@1.service"]
    page.click(f"a[href='/approvals/{nginx}']")
    screenshot(page, "approval")
    page.click("#approve")
    page.wait_for_url(f"**/approvals/{nginx}?done=approved")
    wait_for(lambda: d["fake"].calls("restart"), 60, "the approved restart to run")
    assert d["fake"].calls("restart") == [["systemctl", "restart", "--", "nginx.service"]]
    trail = {(a["event"], a["actor"]) for a in _audit(d, nginx)}
    assert ("approved", "web:token") in trail

    page.goto(f"{d['base']}/approvals/{app}")
    page.fill("#reject-reason", "app restarts itself")
    page.click("#reject")
    page.wait_for_url(f"**/approvals/{app}?done=rejected")
    assert page.inner_text("#status") == "rejected"
    rejected = [a for a in _audit(d, app) if a["event"] == "rejected"]
    assert rejected and rejected[0]["actor"] == "web:token" and rejected[0]["reason"] == "app restarts itself"
    assert d["fake"].calls("restart") == [["systemctl", "restart", "--", "nginx.service"]]  # once, and only nginx

    page.goto(f"{d['base']}/approvals/4242")
    assert "no action with id 4242" in page.content()
    screenshot(page, "not-found")


def test_pam_viewer_sees_but_cannot_approve(dashboard, browser) -> None:
    if os.geteuid() != 0 or not shutil.which("useradd"):
        unavailable("root and useradd (to make a Linux account for the PAM login)")
    user = f"mv{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    subprocess.run(["useradd", "--no-create-home", user], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)
        assert "wheel" not in {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
        d = dashboard
        page = browser.new_page()
        page.goto(f"{d['base']}/login")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", "not-the-password")
        page.click("#login-account")
        page.wait_for_selector("p.error")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", password)
        page.click("#login-account")
        page.wait_for_url(f"{d['base']}/")
        assert f"{user} (viewer)" in page.inner_text("header")
        nginx = d["ids"]["nginx.service"]
        page.goto(f"{d['base']}/approvals/{nginx}")
        assert page.locator("#approve").count() == 0  # no button
        # Forcing it with this session's own CSRF token: 403, and nothing ran.
        csrf = page.get_attribute("body", "data-csrf")
        status = page.evaluate(
            """async ([url, csrf]) => (await fetch(url, {method: 'POST', headers: {'X-CSRF-Token': csrf}})).status""",
            [f"/approvals/{nginx}/approve", csrf])
        assert status == 403
        assert d["fake"].calls("restart") == []
        screenshot(page, "viewer-approval")
    finally:
        subprocess.run(["userdel", user], check=False)
    with pytest.raises(KeyError):
        pwd.getpwnam(user)


def test_guards_against_other_sites(dashboard) -> None:
    from websockets.sync.client import connect

    d = dashboard
    assert httpx.get(f"{d['base']}/healthz", headers={"host": "evil.example"}).status_code == 400
    assert httpx.get(f"{d['base']}/api/v1/approvals", headers={"Authorization": "Bearer nope"}).status_code == 401
    client = httpx.Client(base_url=d["base"])
    login = client.post("/login", data={"token": d["token"]})
    assert login.status_code == 200 or login.is_redirect
    cookie = f"macha_session={client.cookies['macha_session']}"
    nginx = d["ids"]["nginx.service"]
    assert client.post(f"/approvals/{nginx}/approve").status_code == 403  # a session without the CSRF token
    url = f"ws://localhost:{d['port']}/ws"
    # Our own origin is let in ...
    with connect(url, origin=d["base"], additional_headers={"Cookie": cookie}) as ws:
        ws.send(json.dumps({"after": None}))
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    # ... another site's page, with the same cookie, is not: the handshake is refused.
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="http://evil.example", additional_headers={"Cookie": cookie})
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        connect(url, origin=d["base"])  # our origin without a session
    assert d["fake"].calls("restart") == []


def test_chat_page_streams_the_answer_as_text(tmp_path, state_dir, macha_ai, fake, browser) -> None:
    env = macha_env(state_dir, MACHA_HOSTNAME=f"c{os.getpid()}-{state_dir.name[-8:]}", MACHA_OLLAMA_URL=fake.url)
    answer = "Memory is fine. <img src=x onerror=alert(1)> Nothing to approve; swap is idle and no unit failed."
    fake.default = {"content": answer}
    base, token = _serve(macha_ai, env)
    page = _logged_in(browser, base, token, "/chat", {"width": 1100, "height": 700})
    page.evaluate("""() => { window.__tokens = 0; document.body.addEventListener('macha-chat-token',
                     e => { if (e.detail.kind === 'token') window.__tokens++; }); }""")
    page.fill("#question", "How is memory?")
    page.click("#send")
    page.wait_for_selector(".msg.answer[data-done=done]", timeout=120_000)
    shown = page.inner_text(".msg.answer")
    assert shown == answer  # the model's words as text: the tag is shown, not run
    assert page.locator(".msg.answer img").count() == 0
    assert page.evaluate("window.__tokens") > 3  # it came in pieces, as it was written
    screenshot(page, "chat")
    (question,) = [c for c in fake.chats() if any(m.get("content") == "How is memory?" for m in c["messages"])]
    assert question["stream"] is True


def test_every_page_renders_with_live_charts(dashboard, browser) -> None:
    from macha.config import load_settings
    from macha.monitor.checks.metrics import run_metrics
    from macha.monitor.collect.metrics import MetricSample
    from macha.store.db import Store

    d = dashboard
    settings = load_settings(state_dir=d["env"]["MACHA_STATE_DIR"])
    host = d["env"]["MACHA_HOSTNAME"]
    store = Store(settings.effective_database_url)
    for cpu in (20.0, 35.0, 80.0):
        run_metrics(store, settings, host, [MetricSample("cpu_percent", cpu, "%"),
                                            MetricSample("memory_percent", 61.0, "%"),
                                            MetricSample("disk_percent", 71.0, "%", {"mount": "/"})])
    store.dispose()
    page = _logged_in(browser, d["base"], d["token"], "/")
    assert host in page.inner_text("#hosts")
    screenshot(page, "fleet")
    page.click(f"#hosts a[href='/hosts/{host}']")
    page.wait_for_selector("figure.chart[data-drawn] canvas")
    assert int(page.get_attribute("figure.chart >> nth=0", "data-drawn")) >= 1
    assert "Latest review" in page.inner_text("#health") and page.inner_text("#score").isdigit()
    screenshot(page, "host")
    page.goto(f"{d['base']}/events?severity=high")
    assert "nginx.service: Failed with result" in page.inner_text("#events")
    screenshot(page, "events")
    page.goto(f"{d['base']}/reviews")
    page.click("#reviews a >> nth=0")
    assert "restart_service" in page.inner_text("#proposed")
    screenshot(page, "review")
    page.goto(f"{d['base']}/api/docs")
    page.wait_for_selector(".swagger-ui .opblock")  # the API's own description, served locally
    screenshot(page, "api-docs")


def test_an_oom_appears_on_the_open_timeline_without_a_reload(tmp_path, state_dir, macha_ai, browser) -> None:
    from sqlalchemy import select

    from macha.config import load_settings
    from macha.store.db import Store
    from macha.store.models import TriggerEvent

    env = macha_env(state_dir, MACHA_HOSTNAME=f"o{os.getpid()}-{state_dir.name[-8:]}")
    base, token = _serve(macha_ai, env)
    page = _logged_in(browser, base, token, "/events")
    assert "Out of memory" not in page.inner_text("#events")
    page.evaluate("() => { window.__same_page = true; }")  # gone if the page reloads
    # Watch from now on, in the page's own clock (wall time, like the stored_at the database keeps).
    page.evaluate("""() => { window.__seen = new Promise((resolve) => {
        const check = () => document.querySelector('#events').textContent.includes('Out of memory')
            ? resolve(performance.timeOrigin + performance.now()) : requestAnimationFrame(check);
        setTimeout(() => resolve(-1), 60000);
        check();
    }); }""")
    check = run_cli("macha-check", "--journal-file", str(FIXTURES / "oom.journal"), env=env)
    assert check.returncode == 1, check.stderr
    shown_at = page.evaluate("window.__seen") / 1000
    assert shown_at > 0, "the OOM never appeared on the open page"
    assert page.evaluate("window.__same_page") is True
    store = Store(load_settings(state_dir=state_dir).effective_database_url)
    with store.session() as s:
        stored_at = s.execute(select(TriggerEvent.stored_at).where(TriggerEvent.pattern_id == "oom_kill")
                              ).scalars().first()
    store.dispose()
    assert stored_at is not None
    assert shown_at - stored_at.timestamp() < 2.0, f"shown {shown_at - stored_at.timestamp():.2f} s after it was stored"
    screenshot(page, "events-live")
