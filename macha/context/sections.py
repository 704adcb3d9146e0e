"""The sections of the context window, each read from the store at several levels of detail (finest first).

A level is a list of lines; the window picks, per section, the finest level that fits the section's budget and
cuts the coarsest one with a marker when even that does not fit. Levels are built lazily: most windows never need
the coarse ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from macha.core.severity import SEVERITY_RANK
from macha.core.states import ACTIVE_ISSUE, ActionStatus, EscalationStatus, ReviewResult
from macha.monitor.templates import short_template
from macha.core.text import one_line
from macha.core.units import ActiveState
from macha.store import relationships
from macha.store.models import (
    Action,
    Escalation,
    Host,
    Issue,
    LogEvent,
    LogTemplate,
    Review,
    ServiceStatus,
    ThresholdState,
    TriggerEvent,
)

Lines = list[str]


@dataclass
class Content:
    name: str
    title: str
    #: lower is more important: it keeps its budget longest
    priority: int
    #: the fraction of the whole budget this section may use before others lend it theirs
    share: float
    levels: list[Callable[[], Lines]]
    #: trigger event ids the section shows (a model may cite them as evidence)
    event_ids: set[int] = field(default_factory=set)
    #: what semantic memory is asked about (the new groups' templates)
    query_texts: list[str] = field(default_factory=list)


@dataclass
class Group:
    """Events of one kind: same severity, pattern and template (or fingerprint, for non-journal events)."""

    severity: str
    pattern: str
    text: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    min_id: int = 0
    max_id: int = 0
    units: set[str] = field(default_factory=set)
    example_log_id: int | None = None
    example: str | None = None

    def add(self, count: int, first: datetime, last: datetime, min_id: int, max_id: int, unit: str | None) -> None:
        self.count += count
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)
        self.min_id = min_id if not self.min_id else min(self.min_id, min_id)
        self.max_id = max(self.max_id, max_id)
        if unit:
            self.units.add(unit)


def _t(ts: datetime | None, minutes: bool = False) -> str:
    if ts is None:
        return "?"
    return ts.strftime("%m-%d %H:%M" if minutes else "%m-%d %H:%M:%S")


def _units(units: set[str], limit: int) -> str:
    # Unit names are the journal sender's to write: one holding a newline must not start a line of its own.
    names = sorted(one_line(u) for u in units)
    more = f" +{len(names) - limit}" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "-"


def event_groups(s: Session, hostname: str, *, pending: bool, since: datetime | None = None,
                 until: datetime | None = None, up_to_id: int | None = None) -> list[Group]:
    """Trigger events grouped by template with SQL aggregates: a burst of thousands of lines is one row here."""
    t, le = TriggerEvent, LogEvent
    where = [t.hostname == hostname, t.review_id.is_(None) if pending else t.review_id.is_not(None)]
    if since is not None:
        where.append(t.time >= since)
    if until is not None:
        where.append(t.time < until)
    if up_to_id is not None:
        where.append(t.id <= up_to_id)
    # A trigger event is a group of repeats: its count, not 1, is how many lines it stands for.
    aggs = (func.sum(t.count), func.min(t.time), func.max(func.coalesce(t.last_seen, t.time)), func.min(t.id),
            func.max(t.id))
    journal = s.execute(
        select(t.severity, func.coalesce(t.pattern_id, t.trigger_type), le.template_id, le.unit, *aggs,
               func.min(le.id))
        .join(le, le.id == t.log_event_id).where(*where)
        .group_by(t.severity, func.coalesce(t.pattern_id, t.trigger_type), le.template_id, le.unit)
    ).all()
    others = s.execute(
        select(t.severity, func.coalesce(t.pattern_id, t.trigger_type), t.fingerprint, func.max(t.trigger_reason),
               *aggs)
        .where(*where, t.log_event_id.is_(None))
        .group_by(t.severity, func.coalesce(t.pattern_id, t.trigger_type), t.fingerprint)
    ).all()
    template_ids = {row[2] for row in journal if row[2] is not None}
    templates = dict(s.execute(
        select(LogTemplate.cluster_id, LogTemplate.template)
        .where(LogTemplate.hostname == hostname, LogTemplate.cluster_id.in_(template_ids))
    ).all()) if template_ids else {}
    groups: dict[tuple, Group] = {}
    for sev, pattern, tid, unit, count, first, last, min_id, max_id, min_log in journal:
        key = (sev, pattern, "t", tid)
        g = groups.get(key)
        if g is None:
            text = templates.get(tid) if tid is not None else None
            g = groups[key] = Group(sev, pattern, text or "(message not mined)", example_log_id=min_log)
        g.add(count, first, last, min_id, max_id, unit)
    for sev, pattern, fp, reason, count, first, last, min_id, max_id in others:
        g = groups[(sev, pattern, "f", fp)] = Group(sev, pattern, reason or "")
        g.add(count, first, last, min_id, max_id, None)
    ordered = sorted(groups.values(), key=lambda g: (SEVERITY_RANK.get(g.severity, 9), -g.count, g.min_id))
    return ordered


def attach_examples(s: Session, groups: list[Group], limit: int = 300) -> None:
    ids = [g.example_log_id for g in groups if g.example_log_id is not None]
    if not ids:
        return
    messages = dict(s.execute(select(LogEvent.id, LogEvent.message).where(LogEvent.id.in_(ids))).all())
    for g in groups:
        msg = messages.get(g.example_log_id) if g.example_log_id is not None else None
        if msg is not None:
            # A multi-line message is shown on its group's one line, its line breaks escaped.
            msg = one_line(msg)
            g.example = msg if len(msg) <= limit else msg[: limit - 1] + "…"


def group_line(g: Group, level: int) -> str:
    """Level 0: everything; 1: no example; 2: no ids, minute times, shorter template."""
    text = one_line(g.text)
    if level >= 2:
        return (f"[{g.severity}] {g.count} x {short_template(text, 160)} ({_t(g.first, True)} .. "
                f"{_t(g.last, True)}, {_units(g.units, 3)}) pattern={g.pattern}")
    ids = f"#{g.min_id}" if g.min_id == g.max_id else f"#{g.min_id}..#{g.max_id}"
    line = (f"[{g.severity}] {g.count} x {short_template(text, 400)} ({_t(g.first)} .. {_t(g.last)}, "
            f"units: {_units(g.units, 6)}) pattern={g.pattern} events {ids}")
    if level == 0 and g.example and g.count > 1:
        line += f' e.g. "{g.example}"'
    return line


def pattern_lines(groups: list[Group], template_chars: int = 60) -> Lines:
    """The coarsest form: one line per severity and pattern, still naming each template (shortened)."""
    by: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for g in groups:
        by[(g.severity, g.pattern)].append(g)
    out = []
    for (sev, pattern), gs in by.items():
        total = sum(g.count for g in gs)
        first = min(g.first for g in gs if g.first)
        last = max(g.last for g in gs if g.last)
        names = " | ".join(short_template(one_line(g.text), template_chars) for g in gs)
        out.append(f"[{sev}] {pattern}: {total} events, {len(gs)} template(s) ({_t(first, True)} .. "
                   f"{_t(last, True)}): {names}")
    return out


def new_events(s: Session, hostname: str, up_to_id: int | None) -> Content:
    groups = event_groups(s, hostname, pending=True, up_to_id=up_to_id)
    ids: set[int] = set()
    for g in groups:
        ids.update({g.min_id, g.max_id})

    def level0() -> Lines:
        attach_examples(s, groups)
        return [group_line(g, 0) for g in groups] or ["no new events"]

    return Content(
        "events", "New events since the last review (grouped by message template)", 1, 0.34,
        [level0, lambda: [group_line(g, 1) for g in groups] or ["no new events"],
         lambda: [group_line(g, 2) for g in groups] or ["no new events"],
         lambda: pattern_lines(groups) or ["no new events"]],
        event_ids=ids,
        query_texts=[f"{g.pattern}: {g.text}" for g in groups[:10]],
    )


def history(s: Session, hostname: str, now: datetime) -> Content:
    """Reviewed events of the last 24 h: the last hour by template, the rest by pattern (older is coarser)."""
    hour = now - timedelta(hours=1)
    recent = event_groups(s, hostname, pending=False, since=hour)
    older = event_groups(s, hostname, pending=False, since=now - timedelta(hours=24), until=hour)

    def tiered(recent_level: int) -> Lines:
        lines = [f"last hour: {group_line(g, recent_level)}" for g in recent]
        lines += [f"1-24 h ago: {line}" for line in pattern_lines(older)]
        return lines or ["nothing reviewed in the last 24 h"]

    return Content("history", "Events already reviewed (last hour by template, earlier by pattern)", 8, 0.08,
                   [lambda: tiered(1), lambda: tiered(2),
                    lambda: [f"last 24 h: {line}" for line in pattern_lines(recent + older, 30)]
                    or ["nothing reviewed in the last 24 h"]])


def header(s: Session, hostname: str, now: datetime, autonomy_level: str) -> Content:
    host = s.execute(select(Host).where(Host.hostname == hostname)).scalar_one_or_none()
    facts: dict[str, Any] = dict(host.meta or {}) if host else {}
    lines = [f"host {hostname}; now {now.strftime('%Y-%m-%d %H:%M:%S')} UTC; autonomy level {autonomy_level}"]
    if host is not None:
        lines.append(f"last seen {_t(host.last_seen)}")
    for key in ("os", "kernel", "uptime", "nixos_generation", "cpus", "memory_total"):
        if facts.get(key) not in (None, ""):
            lines.append(f"{key.replace('_', ' ')}: {str(facts[key])[:200]}")
    if host is not None and host.role:
        lines.append(f"role: {host.role}")
    # What the operator said about this host's neighbours (macha-systems link): a failure may start elsewhere.
    for rel in relationships.of_host(s, hostname)[:20]:
        lines.append(f"relationship: {rel.source} {rel.kind} {rel.target}")
    return Content("host", "Host", 0, 0.04, [lambda: lines, lambda: lines[:1]])


#: Other hosts named per line of the fleet section, and lines at most.
FLEET_HOSTS, FLEET_LINES = 8, 15


def fleet(s: Session, hostname: str, now: datetime) -> Content:
    """This host's pending events that other hosts logged too in the last 24 h (same fingerprint: same pattern,
    unit and message with numbers masked), each once with the hosts: one cause across the fleet, not N problems."""
    t = TriggerEvent
    mine = select(t.fingerprint).where(t.hostname == hostname, t.review_id.is_(None)).distinct()
    rows = s.execute(
        select(t.fingerprint, t.hostname, func.max(t.pattern_id), func.max(t.trigger_reason), func.sum(t.count))
        .where(t.fingerprint.in_(mine), t.hostname != hostname, t.time >= now - timedelta(hours=24))
        .group_by(t.fingerprint, t.hostname).order_by(t.fingerprint, t.hostname)).all()
    shared: dict[str, dict[str, Any]] = {}
    for fp, host, pattern, reason, count in rows:
        entry = shared.setdefault(fp, {"pattern": pattern, "reason": reason, "hosts": []})
        entry["hosts"].append(f"{host} (x{count or 1})")
    lines = [f"{e['pattern']} also on {len(e['hosts'])} other host(s): {', '.join(e['hosts'][:FLEET_HOSTS])}"
             f"{' ...' if len(e['hosts']) > FLEET_HOSTS else ''}; {str(e['reason'])[:200]}"
             for e in sorted(shared.values(), key=lambda e: -len(e["hosts"]))][:FLEET_LINES]
    return Content("fleet", "The same events on other hosts (last 24 h)", 3, 0.05,
                   [lambda: lines or ["no other host logged these events"],
                    lambda: [line.split(";")[0] for line in lines] or ["no other host logged these events"]])


def failing_services(s: Session, hostname: str) -> Content:
    latest = (select(ServiceStatus.service_name, func.max(ServiceStatus.id).label("id"))
              .where(ServiceStatus.hostname == hostname).group_by(ServiceStatus.service_name).subquery())
    rows = s.execute(
        select(ServiceStatus).join(latest, ServiceStatus.id == latest.c.id)
        .where(ServiceStatus.active_state == ActiveState.FAILED).order_by(ServiceStatus.service_name)
    ).scalars().all()

    def fine() -> Lines:
        out = []
        for r in rows:
            meta = r.meta or {}
            out.append(f"{r.service_name}: failed/{r.status} (result {meta.get('result') or '?'}, restarts "
                       f"{meta.get('restarts', '?')}, checked {_t(r.time)})")
        return out or ["no failed units"]

    return Content("services", "Failed services", 2, 0.08,
                   [fine, lambda: [", ".join(r.service_name for r in rows)] if rows else ["no failed units"]])


def metrics(s: Session, hostname: str, now: datetime) -> Content:
    from macha.store import timeseries

    trends = timeseries.summary(s, hostname, now)
    raised = {r.series: r.value for r in s.execute(
        select(ThresholdState).where(ThresholdState.hostname == hostname, ThresholdState.raised.is_(True))
    ).scalars()}

    def line(name: str, tr: Any, full: bool) -> str:
        return describe_trend(tr, full) + (" [over threshold]" if name in raised else "")

    names = sorted(n for n in trends if not n.startswith("sar."))
    notable = [n for n in names if n in raised or any(w.direction in ("rising", "falling")
                                                      for w in trends[n].windows.values())]
    return Content("metrics", "Metrics now, with 1 h and 24 h trends", 3, 0.12,
                   [lambda: [line(n, trends[n], True) for n in names] or ["no metrics stored"],
                    lambda: [line(n, trends[n], False) for n in names] or ["no metrics stored"],
                    lambda: [line(n, trends[n], False) for n in notable] or ["all metrics steady and in range"]])


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def describe_trend(tr: Any, full: bool) -> str:
    """"cpu_percent: now 93 | 1h avg 80 max 99 rising | 24h avg 20 max 99 steady" (full adds min and counts)."""
    parts = [f"{tr.metric_name}: now {_num(tr.latest[1])}"]
    for width, w in sorted(tr.windows.items()):
        label = f"{int(width.total_seconds() // 3600)}h"
        text = f"{label} avg {_num(w.avg)} max {_num(w.max)}"
        if full:
            text += f" min {_num(w.min)} n={w.count}"
        parts.append(text + (f" {w.direction}" if w.direction else ""))
    return " | ".join(parts)


def sar(s: Session, hostname: str, now: datetime) -> Content:
    from macha.context.sar_summary import sar_summary

    hour = sar_summary(s, hostname, now - timedelta(hours=1), now)
    day = sar_summary(s, hostname, now - timedelta(hours=24), now)

    def fine() -> Lines:
        return [f"last hour: {x}" for x in hour] + [f"last 24 h: {x}" for x in day] or ["no SAR data"]

    return Content("sar", "SAR (sysstat) summary", 7, 0.06,
                   [fine, lambda: [f"last 24 h: {x}" for x in day] or ["no SAR data"]])


def issues_and_approvals(s: Session, hostname: str, now: datetime) -> Content:
    reviews = s.execute(
        select(Review).where(Review.hostname == hostname, Review.outcome == ReviewResult.OK,
                             Review.created_at >= now - timedelta(hours=24))
        .order_by(Review.id.desc()).limit(50)
    ).scalars().all()
    seen: dict[str, tuple[Review, dict]] = {}
    for r in reviews:
        for issue in (r.payload or {}).get("issues", []) or []:
            title = str(issue.get("title", ""))[:200]
            if title and title not in seen:
                seen[title] = (r, issue)
    pending = s.execute(
        select(Action).where(Action.hostname == hostname, Action.status == ActionStatus.PENDING).order_by(Action.id)
    ).scalars().all()
    # The issues Macha tracks (macha-issues) that are going on: the ids operators and past analyses use.
    tracked = s.execute(
        select(Issue).where(Issue.hostname == hostname, Issue.status.in_(ACTIVE_ISSUE))
        .order_by(Issue.last_event_at.desc()).limit(20)
    ).scalars().all()

    def tracked_line(i: Issue, full: bool) -> str:
        base = f"tracked issue #{i.id} [{i.severity}] {i.status}"
        if not full:
            return f"{base}: {one_line(i.title)[:80]}"
        ack = f", acknowledged by {i.acknowledged_by}" if i.acknowledged_by else ""
        again = f", reopened {i.reopened}x" if i.reopened else ""
        return (f"{base} since {_t(i.opened_at, True)} (last event {_t(i.last_event_at, True)}{ack}{again}): "
                f"{one_line(i.title)[:200]}")

    def issue_line(title: str, r: Review, issue: dict, full: bool) -> str:
        base = f"issue [{issue.get('severity', '?')}] {title} (review #{r.id}, {_t(r.created_at, True)}"
        return base + (f", x{issue.get('occurrences', 1)})" if full else ")")

    def approval_line(a: Action, full: bool) -> str:
        args = " ".join(f"{k}={v}" for k, v in sorted((a.arguments or {}).items()))
        base = f"approval #{a.id} pending: {a.action} {args} (risk {a.risk or '?'}"
        if not full:
            return base + ")"
        return base + f", expires {_t(a.expires_at, True)}): {a.reason[:200]}"

    def level(full: bool) -> Lines:
        out = [tracked_line(i, full) for i in tracked]
        out += [issue_line(t, r, i, full) for t, (r, i) in seen.items()]
        out += [approval_line(a, full) for a in pending]
        return out or ["no open issues, no pending approvals"]

    return Content("issues", "Open issues (last 24 h of reviews) and pending approvals", 4, 0.10,
                   [lambda: level(True), lambda: level(False)])


def last_analyses(s: Session, hostname: str) -> Content:
    reviews = s.execute(
        select(Review).where(Review.hostname == hostname).order_by(Review.id.desc()).limit(3)
    ).scalars().all()
    analyses = s.execute(
        select(Escalation).where(Escalation.hostname == hostname, Escalation.status == EscalationStatus.DONE)
        .order_by(Escalation.id.desc()).limit(2)
    ).scalars().all()

    def level(chars: int) -> Lines:
        out = []
        for r in reviews:
            text = f"review #{r.id} {_t(r.created_at, True)} {r.status} by {r.reviewer}"
            if r.outcome != ReviewResult.OK:
                text += f" (failed: {(r.error or '')[:120]})"
            elif chars:
                text += f": {r.summary[:chars]}"
            out.append(text)
        for e in analyses:
            summary = str((e.result or {}).get("diagnosis") or (e.result or {}).get("summary") or "")
            out.append(f"meta analysis #{e.id} {_t(e.updated_at, True)}: {summary[:chars] if chars else e.reason[:80]}")
        return out or ["no earlier reviews"]

    return Content("reviews", "Latest reviews and meta analyses", 6, 0.08,
                   [lambda: level(600), lambda: level(200), lambda: level(0)])


def memories(recalls: list[Any] | None, note: str | None) -> Content:
    def level(full: bool) -> Lines:
        if note:
            return [note]
        out = []
        for r in recalls or []:
            meta = r.metadata or {}
            source = (f"review #{meta['review_id']}" if "review_id" in meta else
                      f"meta analysis #{meta['escalation_id']}" if "escalation_id" in meta else "review #?")
            issue = f"issue #{meta['issue_id']}, " if "issue_id" in meta else ""
            where = f"{issue}{source}, {str(meta.get('created_at', ''))[:16]}"
            text = r.text if full else r.text[:120]
            out.append(f"(distance {r.distance:.2f}; {where}) {text}")
        return out or ["no similar past issues"]

    return Content("memory", "Similar past issues (semantic memory)", 5, 0.10,
                   [lambda: level(True), lambda: level(False)])
