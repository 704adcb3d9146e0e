"""The review model's turn: build the prompt from the pending events (fenced as untrusted data), ask for the
ReviewReport schema with `num_ctx` from the budget, validate, and repair once."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from macha.actions.catalog import default_catalog
from macha.config import Settings
from macha.detect.patterns import SEVERITY_RANK
from macha.llm.backend import Backend
from macha.llm.prompts import fence, render
from macha.llm.schemas import ReviewReport, model_schema
from macha.store.models import TriggerEvent, utcnow

_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.S)
_CODE_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
#: The server's real context length of a model, per process: asked once (/api/show).
_context_lengths: dict[tuple[str, str, str], int | None] = {}


@dataclass
class ModelAttempt:
    backend: str
    model: str
    report: ReviewReport | None
    raw: str
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    duration_s: float
    calls: int = 1


def context_budget(backend: Backend, settings: Settings, model: str) -> int:
    """The smaller of contextSize and what the model really has."""
    key = (backend.name, getattr(backend, "url", ""), model)
    if key not in _context_lengths:
        _context_lengths[key] = backend.context_length(model)
    real = _context_lengths[key]
    return min(settings.context_size, real) if real else settings.context_size


def catalog_lines() -> list[dict[str, str]]:
    catalog = default_catalog()
    out = []
    for entry in catalog.entries.values():
        params = ", ".join(entry.params)
        desc = entry.description
        if entry.name == "run_diagnostic":
            desc += f" (name: {', '.join(sorted(catalog.diagnostics))})"
        out.append({"name": entry.name, "params": params, "description": desc})
    return out


def events_section(events: list[TriggerEvent], max_chars: int) -> str:
    """One line per group (pattern + unit), worst first; cut with a visible marker to fit."""
    groups: dict[tuple[str, str], list[TriggerEvent]] = defaultdict(list)
    for ev in events:
        groups[(ev.pattern_id or ev.trigger_type, (ev.meta or {}).get("unit") or "")].append(ev)
    ordered = sorted(groups.items(), key=lambda kv: (SEVERITY_RANK[min(kv[1], key=_rank).severity], -len(kv[1])))
    lines: list[str] = []
    used = 0
    for n, ((pattern, unit), evs) in enumerate(ordered):
        worst = min(evs, key=_rank)
        ids = ",".join(str(e.id) for e in evs[:5]) + ("..." if len(evs) > 5 else "")
        line = (f"events [{ids}] severity={worst.severity} pattern={pattern} unit={unit or '-'} count={len(evs)} "
                f"first={evs[0].time.isoformat()[:19]} last={evs[-1].time.isoformat()[:19]}: "
                f"{worst.trigger_reason[:400]}")
        if used + len(line) > max_chars and lines:
            lines.append(f"[... {len(ordered) - n} more group(s) cut to fit the context]")
            break
        lines.append(line)
        used += len(line) + 1
    return fence("new events", "\n".join(lines))


def _rank(ev: TriggerEvent) -> int:
    return SEVERITY_RANK[ev.severity]


def parse_review(text: str, known_ids: set[int]) -> tuple[ReviewReport | None, str | None]:
    """A validated report, or the reason it is not one. Evidence ids the model was not shown are dropped."""
    body = _THINK.sub("", text)
    m = _CODE_FENCE.match(body)
    if m:
        body = m[1]
    try:
        # strict=False: small models put raw newlines inside strings; that is form, not content.
        data: Any = json.loads(body, strict=False)
    except ValueError as exc:
        return None, f"not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(data, dict):
        return None, f"the JSON is a {type(data).__name__}, not an object"
    try:
        report = ReviewReport.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "answer"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return None, f"does not match the schema: {where}: {err.get('msg')}{more}"
    for issue in report.issues:
        issue.evidence_event_ids = [i for i in issue.evidence_event_ids if i in known_ids]
    return report, None


def model_review(backend: Backend, settings: Settings, hostname: str, events: list[TriggerEvent]) -> ModelAttempt:
    """Raises LLMError (unreachable, model missing) for the caller to fall back; returns a failed attempt when the
    answer stays unusable after one repair."""
    model = settings.review_model
    num_ctx = context_budget(backend, settings, model)
    chars = int((num_ctx - settings.llm.answer_tokens) * settings.llm.chars_per_token)
    system = render("system", hostname=hostname, catalog=catalog_lines())
    frame = render("review", hostname=hostname, now=utcnow().isoformat()[:19], autonomy_level=settings.autonomy_level,
                   sections="")
    section = events_section(events, max(chars - len(system) - len(frame), 500))
    user = render("review", hostname=hostname, now=utcnow().isoformat()[:19], autonomy_level=settings.autonomy_level,
                  sections=section)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    schema = model_schema(ReviewReport)
    known = {e.id for e in events}

    # The answer is bounded too: without maxLength in the schema a small model may otherwise ramble to the end
    # of its context.
    answer = settings.llm.answer_tokens
    first = backend.chat(model, messages, schema=schema, num_ctx=num_ctx, max_tokens=answer)
    report, error = parse_review(first.content, known)
    totals = [first]
    raw = first.content
    if report is None:
        keep = int(settings.llm.answer_tokens * settings.llm.chars_per_token)
        repair = render("repair", error=error, previous=fence("your previous answer", first.content[:keep]))
        second = backend.chat(model, messages + [{"role": "user", "content": repair}], schema=schema,
                              num_ctx=num_ctx, max_tokens=answer)
        totals.append(second)
        report, second_error = parse_review(second.content, known)
        if report is None:
            error = f"first answer {error}; the repaired answer {second_error}"
            raw = f"{first.content}\n--- repair ---\n{second.content}"
    return ModelAttempt(
        backend=first.backend,
        model=first.model,
        report=report,
        raw=raw if report is None else "",
        error=None if report is not None else error,
        prompt_tokens=sum(r.prompt_tokens or 0 for r in totals) or None,
        completion_tokens=sum(r.completion_tokens or 0 for r in totals) or None,
        duration_s=sum(r.duration_s for r in totals),
        calls=len(totals),
    )
