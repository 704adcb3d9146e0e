"""Marking a new message template benign from the dashboard, against a real macha-web process on SQLite and
PostgreSQL: the events page offers the button on a novelty event, the form needs the session's CSRF token, the API
takes the bearer token, both are audited under the web account, and the template never raises again."""

from __future__ import annotations

import re
import subprocess
import time

import httpx
import pytest
from helpers.journal import Entry
from helpers.processes import VENV_BIN, free_port, macha_env
from sqlalchemy import select

from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.monitor.detect import novelty
from macha.store.db import Store
from macha.store.models import NoveltyTemplate, TemplateAudit, TriggerEvent

MIN = 60_000_000
HOUR = 60 * MIN


def app(message: str, priority: int, unit: str) -> Entry:
    return Entry(message, priority=priority, identifier=unit.split(".")[0], unit=unit, transport="stdout")


def novel(store: Store) -> list[TriggerEvent]:
    with store.session() as s:
        return list(s.execute(select(TriggerEvent).where(TriggerEvent.pattern_id == novelty.PATTERN_ID)
                              .order_by(TriggerEvent.id)).scalars())


@pytest.fixture
def web(db_url, tmp_path, make_journal, redis_url):
    state = tmp_path / "state"
    settings = load_settings(state_dir=state, hostname="h1", database_url=db_url,
                             detection={"novelty_learning": "1h", "novelty_rate_limit": "1m"})
    store = Store(db_url)

    def check(name: str, timed: list[tuple[int, Entry]]) -> None:
        journal = make_journal([e for _, e in timed], name=name, offsets_usec=[t for t, _ in timed])
        run_check(store, settings, hostname="h1", source=JournalSource.file(journal))

    check("learn.journal", [(0, app("cache refresh failed for key 17", 4, "billing.service"))])
    check("new.journal", [(2 * HOUR, app("ledger checksum mismatch in segment 42", 3, "billing.service")),
                          (2 * HOUR + MIN, app("peer list changed while a sync was running", 4, "sync.service"))])
    port = free_port()
    env = macha_env(state, MACHA_DATABASE_URL=db_url, MACHA_BROKER_URL=redis_url,
                   MACHA_DETECTION__NOVELTY_LEARNING="1h")
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([str(VENV_BIN / "macha-web"), "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "web.log").read_text()
        time.sleep(0.2)
    token = (state / "secrets" / "web-token").read_text().strip()
    try:
        yield {"base": base, "token": token, "store": store, "check": check}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        store.dispose()


def test_mark_benign_from_the_page_and_the_api(web) -> None:
    store, base = web["store"], web["base"]
    billing, sync = novel(store)
    assert billing.meta["unit"] == "billing.service" and sync.meta["unit"] == "sync.service"

    with httpx.Client(base_url=base, timeout=10) as browser:
        r = browser.post("/login", data={"token": web["token"], "next": "/events"})
        assert r.status_code == 303 and r.headers["location"] == "/events"
        page = browser.get("/events")
        csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
        for t in (billing, sync):
            assert f'action="/templates/{t.meta["template_id"]}/benign"' in page.text
        action = f"/templates/{sync.meta['template_id']}/benign"
        # Without the session's CSRF token, or with a forged one: refused, nothing marked.
        assert browser.post(action, data={"next": "/events"}).status_code == 403
        assert browser.post(action, data={"csrf": "forged", "next": "/events"}).status_code == 403
        with store.session() as s:
            assert s.execute(select(TemplateAudit)).first() is None
        r = browser.post(action, data={"csrf": csrf, "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/"  # only a path of ours

    # The API with the bearer token; an unknown template is a 404, no token a 401.
    api = f"{base}/api/v1/templates"
    bearer = {"Authorization": f"Bearer {web['token']}"}
    assert httpx.post(f"{api}/{billing.meta['template_id']}/benign").status_code == 401
    assert httpx.post(f"{api}/999999/benign", headers=bearer).status_code == 404
    assert httpx.post(f"{api}/{billing.meta['template_id']}/benign", headers=bearer,
                      json={"reason": 7}).status_code == 422
    r = httpx.post(f"{api}/{billing.meta['template_id']}/benign", headers=bearer,
                   json={"reason": "checksum noise during compaction"})
    assert r.status_code == 200 and r.json()["template"]["state"] == "benign", r.text
    assert r.json()["template"]["benign_by"] == "web:token"
    listed = httpx.get(f"{api}?all=true", headers=bearer).json()
    assert {t["id"]: t["state"] for t in listed if t["state"] == "benign"} == {
        billing.meta["template_id"]: "benign", sync.meta["template_id"]: "benign"}

    with store.session() as s:
        audit = [(a.template_id, a.actor, a.reason) for a in s.execute(select(TemplateAudit)
                                                                          .order_by(TemplateAudit.id)).scalars()]
        marked = {r.cluster_id for r in s.execute(select(NoveltyTemplate).where(NoveltyTemplate.benign)).scalars()}
    assert audit == [(sync.meta["template_id"], "web:token", ""),
                     (billing.meta["template_id"], "web:token", "checksum noise during compaction")]
    assert marked == {billing.meta["cluster_id"], sync.meta["cluster_id"]}

    # Both learned: their lines raise nothing now, while a third new template still does.
    web["check"]("later.journal", [
        (3 * HOUR, app("ledger checksum mismatch in segment 9", 3, "billing.service")),
        (3 * HOUR + MIN, app("peer list changed while a sync was running", 4, "sync.service")),
        (3 * HOUR + 2 * MIN, app("replica refused the snapshot: quota exhausted", 4, "sync.service")),
    ])
    events = novel(store)
    assert len(events) == 3 and "replica refused the snapshot" in events[2].trigger_reason


def test_the_api_lists_the_new_templates(web) -> None:
    bearer = {"Authorization": f"Bearer {web['token']}"}
    r = httpx.get(f"{web['base']}/api/v1/templates", headers=bearer)
    assert r.status_code == 200
    rows = r.json()
    assert {t["state"] for t in rows} == {"new"} and len(rows) == 2
    assert any("ledger checksum mismatch in segment <NUM>" in t["template"] for t in rows)
    assert httpx.get(f"{web['base']}/api/v1/templates?limit=0", headers=bearer).status_code == 422
