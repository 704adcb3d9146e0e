"""The review model's turn: build the prompt from the pending events (fenced as untrusted data), ask for the
ReviewReport schema with `num_ctx` from the budget, validate, and repair once."""

from __future__ import annotations

from dataclasses import dataclass

from macha.actions.catalog import default_catalog
from macha.config import Settings
from macha.context.recall import NoMemory, Recall
from macha.context.tokens import Budget, budget, count, factor, model_key, observe, truncate
from macha.context.window import build_window
from macha.llm.base import Backend
from macha.llm.parse import parse_json_as
from macha.llm.prompts import fence, render
from macha.llm.schemas import model_schema
from macha.review.schemas import ReviewReport
from macha.store.db import Store
from macha.store.models import TriggerEvent, utcnow

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


def parse_review(text: str, known_ids: set[int]) -> tuple[ReviewReport | None, str | None]:
    """A validated report, or the reason it is not one. Evidence ids the model was not shown are dropped."""
    report, error = parse_json_as(text, ReviewReport)
    if report is not None:
        for issue in report.issues:
            issue.evidence_event_ids = [i for i in issue.evidence_event_ids if i in known_ids]
    return report, error


def prompt_budget(store: Store, backend: Backend, settings: Settings, model: str) -> tuple[Budget, str]:
    """The call's budget (num_ctx from the server, the model's learned token factor) and its calibration key."""
    key = model_key(backend.name, model)
    num_ctx = context_budget(backend, settings, model)
    return budget(num_ctx, settings.llm.answer_tokens, factor(store, key)), key


def model_review(backend: Backend, settings: Settings, hostname: str, events: list[TriggerEvent], store: Store,
                 recall: Recall = NoMemory()) -> ModelAttempt:
    """Raises LLMError (unreachable, model missing) for the caller to fall back; returns a failed attempt when the
    answer stays unusable after one repair."""
    model = settings.review_model
    plan, key = prompt_budget(store, backend, settings, model)
    now = utcnow().isoformat()[:19]
    system = render("system", hostname=hostname, catalog=catalog_lines())
    frame = render("review", hostname=hostname, now=now, autonomy_level=settings.autonomy_level, sections="")
    # Role markers and the chat template cost a few tokens per message.
    room = plan.prompt_tokens - count(system) - count(frame) - 32
    window = build_window(store, hostname, max(room, 128), autonomy_level=settings.autonomy_level,
                          up_to_event_id=max(e.id for e in events), recall=recall,
                          similar_issues=settings.memory.similar_issues)
    user = render("review", hostname=hostname, now=now, autonomy_level=settings.autonomy_level,
                  sections=window.text)
    num_ctx = plan.num_ctx
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    schema = model_schema(ReviewReport)
    known = {e.id for e in events}

    # The answer is bounded too: without maxLength in the schema a small model may otherwise ramble to the end
    # of its context.
    answer = plan.answer_tokens
    first = backend.chat(model, messages, schema=schema, num_ctx=num_ctx, max_tokens=answer)
    observe(store, key, count(system) + count(user), first.prompt_tokens)
    report, error = parse_review(first.content, known)
    totals = [first]
    raw = first.content
    if report is None:
        repair = render("repair", error=error,
                        previous=fence("your previous answer", truncate(first.content, plan.answer_tokens)))
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
