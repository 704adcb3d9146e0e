"""The JSON API (/api/v1): the read layer's answers as they are, and approve/reject through the approval code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from macha.actions import approvals
from macha.actions.audit import history
from macha.broker.live import Feed
from macha.core.states import LiveKind
from macha.core.ids import MAX_ID
from macha.meta import chat
from macha.monitor.detect import novelty
from macha.read import approvals as read_approvals
from macha.read import analyses, events, hosts, metrics, reviews
from macha.web.deps import Problem, found, operator, query, row_id, viewer
from macha.web.auth import WebSession

router = APIRouter(prefix="/api/v1", tags=["api"])


def _store(request: Request) -> Any:
    return request.app.state.store


@router.get("/hosts")
def api_hosts(request: Request, session: WebSession = Depends(viewer)) -> list[hosts.HostSummary]:
    return hosts.list_hosts(_store(request))


@router.get("/hosts/{hostname}")
def api_host(request: Request, hostname: str, session: WebSession = Depends(viewer)) -> hosts.HostOverview:
    return found(hosts.host_overview, _store(request), hostname)


@router.get("/hosts/{hostname}/chart")
def api_chart(request: Request, hostname: str,
              name: list[str] = Query(default=[], description="a series name; repeat for each series (at most "
                                      f"{metrics.MAX_CHART_SERIES})"),
              since: str = "-1h", until: str | None = None, step: int | None = None,
              session: WebSession = Depends(viewer)) -> metrics.Chart:
    """Several series of the host in buckets over one range, in one request: a chart's (or a page's) worth.
    404 for an unknown host or a series the host never had; a series quiet over the range has no points."""
    q = query(metrics.ChartQuery, host=hostname, name=name, since=since, until=until, step_s=step)
    return found(metrics.chart, _store(request), q)


@router.get("/events")
def api_events(request: Request, host: str | None = None, since: str | None = None, until: str | None = None,
               unit: str | None = None, priority: str | None = None, severity: str | None = None,
               pattern: str | None = None, text: str | None = None, limit: int = 100,
               session: WebSession = Depends(viewer)) -> events.EventPage:
    q = query(events.EventQuery, host=host, since=since, until=until, unit=unit, priority=priority,
              severity=severity, pattern=pattern, text=text, limit=limit)
    return found(events.query_events, _store(request), q)


@router.get("/metrics")
def api_metrics(request: Request, host: str, name: str, since: str = "-1h", until: str | None = None,
                step: int | None = None, session: WebSession = Depends(viewer)) -> metrics.Series:
    q = query(metrics.SeriesQuery, host=host, name=name, since=since, until=until, step_s=step)
    return found(metrics.series, _store(request), q)


@router.get("/metrics/names")
def api_metric_names(request: Request, host: str, session: WebSession = Depends(viewer)) -> list[str]:
    return found(metrics.names, _store(request), host)


@router.get("/reviews")
def api_reviews(request: Request, host: str | None = None, limit: int = 20,
                session: WebSession = Depends(viewer)) -> list[reviews.ReviewSummary]:
    return reviews.list_reviews(_store(request), query(reviews.ReviewQuery, host=host, limit=limit))


@router.get("/reviews/{review_id}")
def api_review(request: Request, review_id: str, session: WebSession = Depends(viewer)) -> reviews.ReviewDetail:
    return found(reviews.get_review, _store(request), row_id(review_id, "review"))


@router.get("/analyses")
def api_analyses(request: Request, host: str | None = None, limit: int = 50,
                 session: WebSession = Depends(viewer)) -> list[analyses.AnalysisSummary]:
    return analyses.list_analyses(_store(request), query(analyses.AnalysisQuery, host=host, limit=limit))


@router.get("/analyses/{analysis_id}")
def api_analysis(request: Request, analysis_id: str,
                 session: WebSession = Depends(viewer)) -> analyses.AnalysisDetail:
    return found(analyses.get_analysis, _store(request), row_id(analysis_id, "analysis"))


@router.get("/approvals")
def api_approvals(request: Request, host: str | None = None,
                  session: WebSession = Depends(viewer)) -> list[dict[str, Any]]:
    return [plain(r) for r in read_approvals.pending(_store(request), host)]


@router.get("/approvals/{action_id}")
def api_approval(request: Request, action_id: str, session: WebSession = Depends(viewer)) -> dict[str, Any]:
    return plain(action_detail(request, row_id(action_id, "action")))


@router.post("/approvals/{action_id}/approve")
def api_approve(request: Request, action_id: str, session: WebSession = Depends(operator)) -> dict[str, Any]:
    action, note = decide(request, row_id(action_id, "action"), session, None)
    return {"action": action, "note": note}


@router.post("/approvals/{action_id}/reject")
async def api_reject(request: Request, action_id: str, session: WebSession = Depends(operator)) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        raise Problem(422, 'bad parameter reason: send a JSON body {"reason": "..."}')
    action, _ = decide(request, row_id(action_id, "action"), session, reason)
    return {"action": action}


@router.get("/audit")
def api_audit(request: Request, host: str | None = None, action: int | None = None, limit: int = 50,
              session: WebSession = Depends(viewer)) -> list[dict[str, Any]]:
    if not 1 <= limit <= 1000:
        raise Problem(422, "bad parameter limit: from 1 to 1000")
    with _store(request).session() as s:
        return [{"time": r.time.isoformat(), "action_id": r.action_id, "host": r.hostname, "action": r.action,
                 "event": r.event, "actor": r.actor, "level": r.autonomy_level, "reason": r.reason}
                for r in history(s, action_id=action, hostname=host, limit=limit)]


@router.get("/templates")
def api_templates(request: Request, host: str | None = None, all: bool = False, limit: int = 100,
                  session: WebSession = Depends(viewer)) -> list[novelty.TemplateInfo]:
    """The hosts' message templates as novelty sees them: the new ones (the default), or every one."""
    if not 1 <= limit <= 1000:
        raise Problem(422, "bad parameter limit: from 1 to 1000")
    return novelty.list_templates(_store(request), request.app.state.settings.detection, host or None,
                                  only_new=not all, limit=limit)


@router.post("/templates/{template_id}/benign")
async def api_template_benign(request: Request, template_id: str,
                              session: WebSession = Depends(operator)) -> dict[str, Any]:
    """Mark a template benign: learned, its lines never raise a novelty event again. An optional JSON body
    {"reason": "..."} goes to the audit with the session's account."""
    n = row_id(template_id, "template")
    reason = ""
    if await request.body():
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
            raise Problem(422, 'bad parameter reason: send no body or a JSON body {"reason": "..."}')
        reason = body.get("reason", "")
    return {"template": plain(mark_benign(request, n, session, reason))}


class ChatRequest(BaseModel):
    """A question for the meta model: in a conversation, or starting one about a host or an approval."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=20_000)
    conversation_id: int | None = Field(None, ge=1, le=MAX_ID)
    host: str | None = Field(None, max_length=255)
    approval_id: int | None = Field(None, ge=1, le=MAX_ID)


@router.post("/chat")
async def api_chat(request: Request, session: WebSession = Depends(operator)) -> dict[str, int]:
    """Store the question and send it to the gpu queue; the answer streams over the page's WebSocket
    ({"type": "chat", "message_id": N}) and is stored when complete."""
    try:
        body = ChatRequest.model_validate(await request.json())
    except ValueError as exc:
        raise Problem(422, f"bad chat request: {str(exc).splitlines()[0]}") from None
    store, settings = _store(request), request.app.state.settings
    try:
        conversation = body.conversation_id or chat.start(
            store, body.host or settings.hostname, approval_id=body.approval_id, created_by=session.actor)
        message_id = chat.ask(store, conversation, body.question)
    except chat.ChatError as exc:
        raise Problem(404 if "there is no" in str(exc) else 422, str(exc)) from None
    request.app.state.send_chat(message_id)
    return {"conversation_id": conversation, "message_id": message_id}


@router.get("/whoami")
def whoami(session: WebSession = Depends(viewer)) -> dict[str, Any]:
    return {"account": session.account, "role": session.role, "may_act": session.may_act}


# --- shared with the pages ---

def action_detail(request: Request, action_id: int) -> Any:
    try:
        return read_approvals.detail(_store(request), action_id)
    except approvals.ApprovalError as exc:
        raise Problem(404, str(exc)) from None


def decide(request: Request, action_id: int, session: WebSession, reject_reason: str | None
           ) -> tuple[dict[str, Any], str]:
    """Approve (then hand the action to its host's worker) or reject, as ``macha-approve`` does: the policy and
    the catalog are checked again, and the decision is audited under the session's account."""
    store, settings = _store(request), request.app.state.settings
    try:
        if reject_reason is not None:
            action, note = approvals.reject(store, action_id, session.actor, reject_reason), ""
        else:
            action = approvals.approve(store, settings, action_id, session.actor)
            note = request.app.state.send_execute(action["id"], action["hostname"])
    except approvals.ApprovalError as exc:
        raise Problem(404 if str(exc).startswith("no action") else 409, str(exc)) from None
    # Every open page showing the approval lists refreshes (other operators' too).
    Feed(settings.effective_broker_url).publish(LiveKind.APPROVAL, action["hostname"], action_id=action["id"])
    return action, note


def mark_benign(request: Request, template_id: int, session: WebSession, reason: str) -> novelty.TemplateInfo:
    """As ``macha-templates benign`` does, audited under the session's account."""
    try:
        return novelty.mark_benign(_store(request), template_id, session.actor, reason)
    except novelty.NoveltyError as exc:
        raise Problem(404, str(exc)) from None


def plain(value: Any) -> Any:
    """A result model as JSON-ready data."""
    return value.model_dump(mode="json")
