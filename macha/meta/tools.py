"""The meta model's tools: read-only looks at the store, the semantic memory and (policy-checked) diagnostics.

A tool call is untrusted input like any model output: the name must be one of these, the arguments are validated
and bounded, and the answer goes back to the model fenced as data. Nothing here changes the system; the one tool
that runs something, run_diagnostic, proposes a read-only catalog action that the policy judges like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, or_, select

from macha.config import Settings, parse_duration
from macha.context.recall import NoMemory, Recall
from macha.context.tokens import truncate
from macha.core.followups import FollowUps
from macha.core.states import ActionStatus
from macha.core.units import lookup_names
from macha.store.db import Store
from macha.store.models import Action, LogEvent, ServiceStatus, SystemMetric, TriggerEvent, utcnow

log = logging.getLogger(__name__)
MAX_RANGE = timedelta(days=7)
MAX_LINES = 50


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _duration(v: str) -> str:
    span = parse_duration(v)
    if span > MAX_RANGE:
        raise ValueError("at most 7d")
    return v


#: A time span such as 30m, 2h or 1d, at most 7d.
Span = Annotated[str, AfterValidator(_duration)]


class QueryLogs(_Args):
    unit: str | None = Field(None, max_length=255)
    since: Span = "1h"
    pattern: str | None = Field(None, max_length=200)
    limit: int = Field(20, ge=1, le=MAX_LINES)


class GetMetrics(_Args):
    name: str = Field(max_length=128)
    range: Span = "1h"


class ServiceStatusArgs(_Args):
    unit: str = Field(max_length=255)


class SearchMemory(_Args):
    query: str = Field(max_length=500)
    collection: str = Field("issues", pattern="^(issues|decisions|config_files|knowledge|systems|relationships)$")
    k: int = Field(5, ge=1, le=10)


class RunDiagnostic(_Args):
    name: str = Field(max_length=64)
    unit: str | None = Field(None, max_length=255)


class NoArgs(_Args):
    pass


@dataclass
class ToolContext:
    store: Store
    settings: Settings
    hostname: str
    recall: Recall = NoMemory()
    proposer: str = "meta"
    #: Where the actions the policy made ready are collected, for the caller to send to their host when the run
    #: ends (the analysis never waits for them). The caller's own value, so that a run which fails later still has
    #: them sent; ready actions whose message is never sent are the reconciler's (actions.redeliverAfter).
    follow: FollowUps = field(default_factory=FollowUps)
    now: datetime = field(default_factory=utcnow)
    #: the issue under analysis: the diagnostics it runs belong to it
    issue_id: int | None = None


@dataclass
class ToolOutcome:
    name: str
    arguments: dict[str, Any]
    text: str
    ok: bool
    refused: bool = False

    def record(self) -> dict[str, Any]:
        return {"tool": self.name, "arguments": self.arguments, "ok": self.ok, "refused": self.refused,
                "result": self.text[:2000]}


def query_logs(ctx: ToolContext, a: QueryLogs) -> str:
    since = ctx.now - parse_duration(a.since)
    q = select(LogEvent.time, LogEvent.unit, LogEvent.severity, LogEvent.message).where(
        LogEvent.hostname == ctx.hostname, LogEvent.time >= since)
    if a.unit:
        q = q.where(LogEvent.unit.in_(lookup_names(a.unit)))
    if a.pattern:
        # A plain substring, never a regex: a model-chosen regex could be made to run for ever.
        q = q.where(func.lower(LogEvent.message).contains(a.pattern.lower(), autoescape=True))
    with ctx.store.session() as s:
        total = s.execute(select(func.count()).select_from(q.subquery())).scalar()
        rows = s.execute(q.order_by(LogEvent.time.desc()).limit(a.limit)).all()
    if not rows:
        return f"no stored log events on {ctx.hostname} match (since {a.since})"
    lines = [f"{t.isoformat()[:19]} {u or '-'} {sev}: {msg[:300]}" for t, u, sev, msg in rows]
    return f"{total} stored event(s) match; newest {len(rows)}:\n" + "\n".join(lines)


def get_metrics(ctx: ToolContext, a: GetMetrics) -> str:
    from macha.store.timeseries import bucketed

    span = parse_duration(a.range)
    with ctx.store.session() as s:
        names = list(s.execute(select(SystemMetric.metric_name).distinct().where(
            SystemMetric.hostname == ctx.hostname, SystemMetric.metric_name.like(f"{a.name}%"),
            SystemMetric.time >= ctx.now - span)).scalars())
        if a.name not in names:
            if not names:
                return f"no metric named {a.name!r} on {ctx.hostname} in the last {a.range}"
            return f"no series named exactly {a.name!r}; series starting so: {', '.join(sorted(names)[:20])}"
        width = max(60, int(span.total_seconds() // 24))
        buckets = bucketed(s, ctx.hostname, a.name, ctx.now - span, ctx.now, width)
    lines = [f"{b.start.isoformat()[:16]} avg {b.avg:.4g} max {b.max:.4g} min {b.min:.4g}" for b in buckets]
    return f"{a.name} on {ctx.hostname}, last {a.range} in {width} s buckets:\n" + "\n".join(lines)


def service_status(ctx: ToolContext, a: ServiceStatusArgs) -> str:
    names = lookup_names(a.unit)
    with ctx.store.session() as s:
        states = s.execute(select(ServiceStatus).where(
            ServiceStatus.hostname == ctx.hostname, ServiceStatus.service_name.in_(names))
            .order_by(ServiceStatus.id.desc()).limit(5)).scalars().all()
        events = s.execute(select(TriggerEvent).where(
            TriggerEvent.hostname == ctx.hostname,
            or_(*[TriggerEvent.trigger_reason.contains(n, autoescape=True) for n in names]))
            .order_by(TriggerEvent.id.desc()).limit(5)).scalars().all()
    if not states and not events:
        return f"nothing stored about {a.unit} on {ctx.hostname} (not a critical service, never failed)"
    lines = [f"{r.time.isoformat()[:19]} {r.service_name}: {r.active_state}/{r.status} "
             f"result={(r.meta or {}).get('result')} restarts={(r.meta or {}).get('restarts')}" for r in states]
    lines += [f"event #{e.id} {e.time.isoformat()[:19]} [{e.severity}] {e.trigger_reason[:200]}" for e in events]
    return "\n".join(lines)


def search_memory(ctx: ToolContext, a: SearchMemory) -> str:
    if ctx.recall.absent is not None:
        return "semantic memory is not available in this analysis"
    hits = ctx.recall.similar(a.collection, a.query, a.k)
    if not hits:
        return f"nothing similar in {a.collection}"

    def where(h: Any) -> str:
        # The issue a memory belongs to (macha-issues), when it has one: the analysis can name it.
        return f"; issue #{h.metadata['issue_id']}" if "issue_id" in (h.metadata or {}) else ""

    return "\n".join(f"(distance {h.distance:.2f}{where(h)}) {h.text[:400]}" for h in hits)


def run_diagnostic(ctx: ToolContext, a: RunDiagnostic) -> str:
    """Propose the read-only catalog action; return a recent run's output if there is one (never wait for one)."""
    from macha.actions.catalog import ValidationContext, default_catalog
    from macha.actions.proposals import propose
    from macha.actions.refusal import ActionRefused
    from macha.review.issues import link_actions

    args: dict[str, Any] = {"name": a.name}
    if a.unit:
        args["unit"] = a.unit
    try:
        # Stored runs hold the catalog's normalised arguments (nginx -> nginx.service, default line counts).
        wanted = default_catalog().validate("run_diagnostic", args, ValidationContext()).arguments
    except ActionRefused:
        wanted = None  # the proposal below is refused, with its reason
    with ctx.store.session() as s:
        # A run that finished (succeeded or failed: its output says why) in the last minutes is answered from.
        recent = s.execute(select(Action).where(
            Action.hostname == ctx.hostname, Action.action == "run_diagnostic",
            Action.status.in_((ActionStatus.SUCCEEDED, ActionStatus.FAILED)),
            Action.finished_at >= ctx.now - timedelta(minutes=10)).order_by(Action.id.desc())).scalars().all()
        for row in recent:
            if wanted is not None and row.arguments == wanted:
                return (f"output of {a.name} (action #{row.id}, {row.finished_at.isoformat()[:19]}, exit "
                        f"{row.exit_code}):\n{row.stdout or ''}{row.stderr or ''}")
        result = propose(s, ctx.settings, ctx.hostname, {"action": "run_diagnostic", "arguments": args,
                                                          "reason": "asked for by the meta model"},
                         proposer=ctx.proposer)
        link_actions(s, ctx.issue_id, [result.action_id])
    if result.status == ActionStatus.READY:
        ctx.follow.execute.append((result.action_id, ctx.hostname))
        return (f"{a.name} scheduled on {ctx.hostname} as action #{result.action_id}; its output is not available "
                "yet (it will be in the store for the next analysis)")
    return f"{a.name} not run: {result.status} ({result.reason})"


def list_pending_approvals(ctx: ToolContext, a: NoArgs) -> str:
    from macha.actions.approvals import list_pending

    with ctx.store.session() as s:
        rows = list_pending(s)[:MAX_LINES]
    if not rows:
        return "no actions wait for approval"
    return "\n".join(f"#{r.id} {r.hostname} {r.action} {r.arguments} risk={r.risk}: {r.reason[:200]}" for r in rows)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[_Args]
    run: Callable[[ToolContext, Any], str]


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("query_logs", "Stored journal events of this host: filter by unit, time span (since: 30m, 2h, 1d) and a "
         "plain-text pattern (substring, case-insensitive).", QueryLogs, query_logs),
    Tool("get_metrics", "A metric series of this host (e.g. memory_percent, disk_percent{mount=/var}, "
         "sar.cpu.iowait) over a range (1h, 24h, 7d), in buckets with avg/max/min.", GetMetrics, get_metrics),
    Tool("service_status", "The recorded states of a systemd unit and its recent events.", ServiceStatusArgs,
         service_status),
    Tool("search_memory", "Semantic search of past issues, decisions, NixOS config files or knowledge.",
         SearchMemory, search_memory),
    Tool("run_diagnostic", "Run a read-only diagnostic from the catalog (policy-checked); returns a recent run's "
         "output, or schedules one.", RunDiagnostic, run_diagnostic),
    Tool("list_pending_approvals", "Actions waiting for an operator's approval.", NoArgs, list_pending_approvals),
)}


def definitions() -> list[dict[str, Any]]:
    """The tools as Ollama / OpenAI function definitions."""
    out = []
    for t in TOOLS.values():
        schema = t.args.model_json_schema()
        schema.pop("title", None)
        out.append({"type": "function", "function": {"name": t.name, "description": t.description,
                                                      "parameters": schema}})
    return out


def call(ctx: ToolContext, name: Any, arguments: Any, max_tokens: int) -> ToolOutcome:
    """Run one tool call from the model; anything not a read-only tool, or malformed, is refused in words."""
    name = str(name)[:64]
    args = arguments if isinstance(arguments, dict) else {}
    tool = TOOLS.get(name)
    if tool is None:
        return ToolOutcome(name, args, f"refused: {name!r} is not one of your read-only tools "
                           f"({', '.join(TOOLS)}). Changes are proposed as catalog actions in your final "
                           "analysis, where the policy decides.", ok=False, refused=True)
    try:
        parsed = tool.args.model_validate(args)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        return ToolOutcome(name, args, f"bad arguments: {where}: {err.get('msg')}", ok=False)
    except Exception as exc:  # noqa: BLE001 - any argument the model made up is its problem, not a crash
        return ToolOutcome(name, args, f"bad arguments: {type(exc).__name__}: {str(exc)[:200]}", ok=False)
    try:
        text = tool.run(ctx, parsed)
    except Exception as exc:  # noqa: BLE001 - a failing tool is an answer for the model, not a crash of the analysis
        log.warning("tool %s failed: %s", name, exc)
        text, ok = f"the tool failed: {type(exc).__name__}: {str(exc)[:300]}", False
    else:
        ok = True
    return ToolOutcome(name, args, truncate(text, max_tokens), ok=ok)
