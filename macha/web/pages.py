"""The dashboard's pages, rendered on the server from the same read functions as the API and the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from macha.core.severity import Severity
from macha.read import approvals as read_approvals
from macha.read import analyses, events, hosts, metrics, reviews
from macha.web.api import action_detail, decide, mark_benign, plain
from macha.web.auth import WebSession
from macha.web.deps import found, local_path, operator, query, row_id, viewer

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
#: The chart ranges a host page offers, as --since values.
RANGES = {"1h": "-1h", "24h": "-24h", "7d": "-7d"}
#: The charts of a host page: a title and the metric names (a name with labels: every series of it).
CHARTS = [("CPU %", ["cpu_percent"]), ("Memory and swap %", ["memory_percent", "swap_percent"]),
          ("Load per core", ["load_per_core"]), ("Disk space %", ["disk_percent"]),
          ("Inodes %", ["inode_percent"]), ("Pressure (PSI avg10) %", ["psi_"])]


def page(request: Request, name: str, session: WebSession | None, code: int = 200, **data: Any) -> Response:
    return templates.TemplateResponse(request, name, {"session": session, **data}, status_code=code)


def _store(request: Request) -> Any:
    return request.app.state.store


def _evidence(request: Request, hostname: str, event_ids: list[int]) -> list[events.TriggerRow]:
    """The events a review or an analysis names, with their journal lines, oldest first."""
    if not event_ids:
        return []
    q = query(events.TriggerQuery, host=hostname, ids=event_ids[-events.MAX_LIMIT:], limit=events.MAX_LIMIT)
    return events.list_triggers(_store(request), q)[::-1]


@router.get("/", response_class=HTMLResponse)
def fleet(request: Request, session: WebSession = Depends(viewer)) -> Response:
    return page(request, "fleet.html", session, hosts=hosts.list_hosts(_store(request)),
                rows=read_approvals.pending(_store(request)))


@router.get("/hosts/{hostname}", response_class=HTMLResponse)
def host(request: Request, hostname: str, range: str = "1h", session: WebSession = Depends(viewer)) -> Response:
    if range not in RANGES:
        return page(request, "error.html", session, 422, status=422,
                    message=f"bad parameter range: one of {', '.join(RANGES)}")
    overview = found(hosts.host_overview, _store(request), hostname)
    names = found(metrics.names, _store(request), hostname)
    charts = []
    for title, prefixes in CHARTS:
        series = [n for n in names if any(n == p or n.startswith(p + "{") or (p.endswith("_") and n.startswith(p))
                                          for p in prefixes)]
        if series:
            charts.append({"title": title, "series": series})
    return page(request, "host.html", session, h=overview, charts=charts, range=range, since=RANGES[range],
                ranges=list(RANGES), max_series=metrics.MAX_CHART_SERIES)


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request, host: str | None = None, since: str | None = None, until: str | None = None,
                unit: str | None = None, severity: str | None = None, pattern: str | None = None,
                text: str | None = None, limit: int = 200, session: WebSession = Depends(viewer)) -> Response:
    filters = {"host": host, "since": since, "until": until, "unit": unit, "severity": severity,
               "pattern": pattern, "text": text}
    q = query(events.EventQuery, limit=limit, **filters)
    result = found(events.query_events, _store(request), q)
    return page(request, "events.html", session, entries=result.entries, filters=filters,
                severities=[s.value for s in Severity], hosts=hosts.hostnames(_store(request)))


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, host: str | None = None, session: WebSession = Depends(viewer)) -> Response:
    rows = reviews.list_reviews(_store(request), query(reviews.ReviewQuery, host=host, limit=100))
    return page(request, "reviews.html", session, rows=rows, host=host)


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
def review_page(request: Request, review_id: str, session: WebSession = Depends(viewer)) -> Response:
    r = found(reviews.get_review, _store(request), row_id(review_id, "review"))
    return page(request, "review.html", session, r=r, evidence=_evidence(request, r.hostname, r.event_ids))


@router.get("/analyses", response_class=HTMLResponse)
def analyses_page(request: Request, host: str | None = None, session: WebSession = Depends(viewer)) -> Response:
    rows = analyses.list_analyses(_store(request), query(analyses.AnalysisQuery, host=host, limit=100))
    return page(request, "analyses.html", session, rows=rows, host=host)


@router.get("/analyses/{analysis_id}", response_class=HTMLResponse)
def analysis_page(request: Request, analysis_id: str, session: WebSession = Depends(viewer)) -> Response:
    a = found(analyses.get_analysis, _store(request), row_id(analysis_id, "analysis"))
    return page(request, "analysis.html", session, a=a, evidence=_evidence(request, a.hostname, a.event_ids))


@router.get("/chat", response_class=HTMLResponse)
def chat_page(request: Request, host: str | None = None, approval: str | None = None,
              session: WebSession = Depends(viewer)) -> Response:
    if not session.may_act:
        return page(request, "error.html", session, 403, status=403,
                    message=f"{session.account} may look but not chat: operators only")
    approval_id = row_id(approval, "action") if approval else None
    hostname = host or request.app.state.settings.hostname
    return page(request, "chat.html", session, host=hostname, approval_id=approval_id,
                hosts=hosts.hostnames(_store(request)))


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, session: WebSession = Depends(viewer)) -> Response:
    return page(request, "approvals.html", session, rows=read_approvals.pending(_store(request)))


@router.get("/approvals/{action_id}", response_class=HTMLResponse)
def approval_page(request: Request, action_id: str, session: WebSession = Depends(viewer)) -> Response:
    return page(request, "approval.html", session, d=plain(action_detail(request, row_id(action_id, "action"))))


@router.post("/approvals/{action_id}/approve")
def approve_form(request: Request, action_id: str, session: WebSession = Depends(operator)) -> Response:
    n = row_id(action_id, "action")
    decide(request, n, session, None)
    return RedirectResponse(f"/approvals/{n}?done=approved", status_code=303)


@router.post("/approvals/{action_id}/reject")
def reject_form(request: Request, action_id: str, reason: str = Form(""),
                session: WebSession = Depends(operator)) -> Response:
    n = row_id(action_id, "action")
    decide(request, n, session, reason)
    return RedirectResponse(f"/approvals/{n}?done=rejected", status_code=303)


@router.post("/templates/{template_id}/benign")
def benign_form(request: Request, template_id: str, reason: str = Form(""), next: str = Form("/events"),
                session: WebSession = Depends(operator)) -> Response:
    """The events page's "mark benign" button on a novelty event: back to the page it came from."""
    mark_benign(request, row_id(template_id, "template"), session, reason)
    return RedirectResponse(local_path(next), status_code=303)
