"""The dashboard's pages and API over a store filled by the real pipeline (the recorded OOM incident, failed units,
metric samples), on SQLite and PostgreSQL, through the real ASGI app; bad input is a clear 4xx, never a traceback."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from helpers import FIXTURES
from helpers.journal import Entry

from macha import pipeline
from macha.config import load_settings
from macha.monitor.checks.metrics import run_metrics
from macha.monitor.collect.metrics import MetricSample
from macha.store.db import Store
from macha.web.app import create_app
from macha.web.auth import Authority

HOST = "web1"
SYSTEMD = {"identifier": "systemd", "pid": 1, "uid": 0, "transport": "journal", "unit": "init.scope"}


@pytest.fixture
def filled(db_url, state_dir, systemctl, make_journal):
    settings = load_settings(state_dir=state_dir, database_url=db_url, hostname=HOST, autonomy_level="suggest")
    store = Store(db_url)
    for journal in (FIXTURES / "oom.journal",
                    make_journal([Entry("nginx.service: Failed with result 'exit-code'.", priority=3, **SYSTEMD)])):
        state = pipeline.check_step(store, settings, HOST, "manual", pipeline.journal_source(str(journal)))
        pipeline.review_step(store, pipeline.context_step(store, state, settings), settings)
    for value in (12.0, 55.0, 97.5):
        run_metrics(store, settings, HOST, [MetricSample("cpu_percent", value, "%"),
                                            MetricSample("disk_percent", 40.0, "%", {"mount": "/"}),
                                            MetricSample("disk_percent", 93.0, "%", {"mount": "/var"})])
    authority = Authority(settings, pam_check=lambda u, p: False)
    client = TestClient(create_app(settings, store=store, authority=authority, send_execute=lambda a, h: "sent"),
                        base_url="http://localhost")
    client.headers["Authorization"] = f"Bearer {authority.token}"
    yield client
    store.dispose()


def test_fleet_host_events_and_reviews_pages(filled) -> None:
    fleet = filled.get("/")
    assert fleet.status_code == 200 and f'href="/hosts/{HOST}"' in fleet.text
    assert re.search(r'class="dot (red|yellow)"', fleet.text)  # an OOM and a failed unit are not green

    hosts = filled.get("/api/v1/hosts").json()
    pending = filled.get("/api/v1/approvals").json()
    assert [h["hostname"] for h in hosts] == [HOST] and hosts[0]["pending_approvals"] == len(pending) >= 1
    assert "nginx.service" in {p["arguments"].get("unit") for p in pending}
    overview = filled.get(f"/api/v1/hosts/{HOST}").json()
    kinds = {r["kind"] for r in overview["health"]["reasons"]}
    assert "event" in kinds and overview["health"]["score"] < 100

    host = filled.get(f"/hosts/{HOST}")
    assert host.status_code == 200 and 'id="score"' in host.text
    # Each reason is on the page, linked to what it is about.
    for reason in overview["health"]["reasons"]:
        assert reason["text"].split(":")[0] in host.text
    assert 'data-series="[&#34;cpu_percent&#34;]"' in host.text or "cpu_percent" in host.text
    assert filled.get(f"/hosts/{HOST}?range=7d").status_code == 200

    events = filled.get("/events", params={"host": HOST, "severity": "high"})
    assert events.status_code == 200
    assert "Out of memory" in events.text or "oom" in events.text.lower()
    assert "nginx.service" in events.text
    none = filled.get("/events", params={"text": "no-such-text-anywhere"})
    assert "No events match." in none.text

    api = filled.get("/api/v1/events", params={"host": HOST, "text": "NGINX", "limit": 5}).json()
    assert api["entries"] and all("nginx" in e["message"] for e in api["entries"])  # a case-blind substring

    reviews = filled.get("/api/v1/reviews", params={"host": HOST}).json()
    assert len(reviews) == 2
    page = filled.get(f"/reviews/{reviews[0]['id']}")
    assert page.status_code == 200 and "restart_service" in page.text and "nginx.service" in page.text


def test_metrics_series_are_bucketed(filled) -> None:
    series = filled.get("/api/v1/metrics", params={"host": HOST, "name": "cpu_percent", "since": "-1h"}).json()
    values = [(p["min"], p["max"], p["count"]) for p in series["points"]]
    assert sum(c for _, _, c in values) == 3 and min(v[0] for v in values) == 12.0
    assert max(v[1] for v in values) == 97.5
    names = filled.get("/api/v1/metrics/names", params={"host": HOST}).json()
    assert "disk_percent{mount=/var}" in names and "cpu_percent" in names


def test_a_chart_is_one_request_of_several_series(filled) -> None:
    names = ["cpu_percent", "disk_percent{mount=/var}", "disk_percent{mount=/}"]
    r = filled.get(f"/api/v1/hosts/{HOST}/chart", params={"name": names + ["cpu_percent"], "since": "-1h"})
    assert r.status_code == 200, r.text
    chart = r.json()
    # Each series once, in the order asked, with the same buckets /api/v1/metrics gives for it alone.
    assert [s["name"] for s in chart["series"]] == names and chart["host"] == HOST
    for s in chart["series"]:
        alone = filled.get("/api/v1/metrics", params={"host": HOST, "name": s["name"], "since": chart["since"],
                                                      "until": chart["until"]}).json()
        columns = [dict(zip(("start", "avg", "max", "min", "count"), p))
                   for p in zip(s["start"], s["avg"], s["max"], s["min"], s["count"])]
        assert alone["step_s"] == chart["step_s"] and alone["points"] == columns, s["name"]
    by_name = {s["name"]: s for s in chart["series"]}
    assert sum(by_name["cpu_percent"]["count"]) == 3 and max(by_name["cpu_percent"]["max"]) == 97.5
    assert max(by_name["disk_percent{mount=/var}"]["max"]) == 93.0
    assert set(by_name["disk_percent{mount=/}"]["min"]) == {40.0}
    # A series the host has but that was quiet over the range: no points, not an error.
    quiet = filled.get(f"/api/v1/hosts/{HOST}/chart",
                       params={"name": "cpu_percent", "since": "-30d", "until": "-29d"}).json()
    assert quiet["series"] == [{"name": "cpu_percent", "start": [], "avg": [], "max": [], "min": [], "count": []}]
    # The endpoint is in the OpenAPI document, with its repeated parameter.
    spec = filled.get("/api/openapi.json").json()["paths"]["/api/v1/hosts/{hostname}/chart"]["get"]
    assert {p["name"] for p in spec["parameters"]} >= {"hostname", "name", "since", "until", "step"}


def test_the_host_page_asks_for_its_charts_in_one_request(filled) -> None:
    page = filled.get(f"/hosts/{HOST}?range=24h")
    assert 'data-since="-24h"' in page.text and 'data-max-series="32"' in page.text
    script = filled.get("/static/charts.js").text
    assert "/chart?since=" in script and "/api/v1/metrics?" not in script


BAD = [
    ("/hosts/no-such-host", 404, "no host named 'no-such-host'"),
    ("/api/v1/hosts/no-such-host", 404, "no host named"),
    ("/reviews/4242", 404, "no review with id 4242"),
    ("/reviews/abc", 404, "review"),
    ("/events?since=yesterday-ish", 422, "since"),
    ("/api/v1/events?severity=apocalyptic", 422, "severity"),
    ("/api/v1/events?limit=0", 422, "limit"),
    (f"/api/v1/metrics?host={HOST}&name=nope", 404, "no metric series 'nope'"),
    (f"/api/v1/metrics?host={HOST}&name=cpu_percent&since=-1h&until=-2h", 422, "until"),
    (f"/hosts/{HOST}?range=1y", 422, "range"),
    ("/api/v1/hosts/no-such-host/chart?name=cpu_percent", 404, "no host named 'no-such-host'"),
    (f"/api/v1/hosts/{HOST}/chart?name=cpu_percent&name=nope", 404, "no metric series 'nope'"),
    (f"/api/v1/hosts/{HOST}/chart", 422, "bad parameter name"),
    (f"/api/v1/hosts/{HOST}/chart?name=cpu%0Apercent", 422, "bad parameter name.0"),
    (f"/api/v1/hosts/{HOST}/chart?name=" + "x" * 513, 422, "bad parameter name.0"),
    (f"/api/v1/hosts/{HOST}/chart?" + "&".join(f"name=s{i}" for i in range(33)), 422, "bad parameter name"),
    (f"/api/v1/hosts/{HOST}/chart?name=cpu_percent&since=-1h&until=-2h", 422, "until"),
    (f"/api/v1/hosts/{HOST}/chart?name=cpu_percent&step=1", 422, "step_s"),
    (f"/api/v1/hosts/{HOST}/chart?name=cpu_percent&step=ten", 422, "step"),
]


def test_bad_input_is_a_clear_4xx(filled) -> None:
    for url, status, words in BAD:
        r = filled.get(url)
        assert r.status_code == status, (url, r.status_code, r.text[:300])
        assert words in html.unescape(r.text) and "Traceback" not in r.text, (url, r.text[:500])


def test_database_down_is_a_banner(state_dir) -> None:
    # A PostgreSQL server that is not there (nothing listens on port 1): every page says so, in one line.
    url = "postgresql+psycopg2://postgres@127.0.0.1:1/macha"
    settings = load_settings(state_dir=state_dir, database_url=url, hostname=HOST)
    authority = Authority(settings, pam_check=lambda u, p: False)
    client = TestClient(create_app(settings, store=Store(url, auto_migrate=False), authority=authority),
                        base_url="http://localhost")
    client.headers["Authorization"] = f"Bearer {authority.token}"
    page = client.get("/")
    assert page.status_code == 503 and 'class="banner"' in page.text and "database" in page.text
    assert "Traceback" not in page.text
    api = client.get("/api/v1/hosts")
    assert api.status_code == 503 and "database" in api.json()["error"]


def test_analysis_page_shows_transcript_and_evidence_as_text(filled) -> None:
    from sqlalchemy import select

    from macha.store.models import Escalation, TriggerEvent

    store = filled.app.state.store
    with store.session() as s:
        event_id = s.execute(select(TriggerEvent.id).where(TriggerEvent.hostname == HOST).limit(1)).scalar()
        esc = Escalation(hostname=HOST, reason="critical: oom_kill", status="done", kind="critical",
                         result={"diagnosis": "The java heap outgrew the box.", "root_cause": "no memory limit",
                                 "confidence": 0.8, "evidence": {"event_ids": [event_id]},
                                 "proposed_actions": [{"action": "restart_service",
                                                       "arguments": {"unit": "app.service"}}],
                                 "answered_by": "meta model qwen3:14b"},
                         transcript=[{"tool": "query_logs", "arguments": {"unit": "app"}, "ok": True,
                                      "refused": False, "result": "<script>alert('x')</script> heap full"}])
        s.add(esc)
        s.flush()
        esc_id = esc.id
    listing = filled.get("/analyses")
    assert listing.status_code == 200 and "The java heap outgrew the box." in listing.text
    page = filled.get(f"/analyses/{esc_id}")
    assert page.status_code == 200 and "no memory limit" in page.text and "query_logs" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text  # log text is data
    detail = filled.get(f"/api/v1/analyses/{esc_id}").json()
    assert detail["event_ids"] == [event_id] and detail["transcript"][0]["tool"] == "query_logs"
    assert filled.get("/analyses/999999").status_code == 404
