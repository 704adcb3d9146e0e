"""The bounded tool loop: the model asks for read-only tools, gets their answers as fenced data, and stops when it
has answered or a limit (tool calls, tokens written, wall clock) is reached. Then it writes its answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from macha.context.tokens import truncate
from macha.llm.base import Backend
from macha.llm.prompts import fence
from macha.meta import tools


@dataclass
class Limits:
    max_tool_calls: int
    max_tokens: int
    time_limit: float
    tool_result_tokens: int
    answer_tokens: int


class Stopped(StrEnum):
    """Why the tool loop ended: the model answered, or a limit was reached (then it is asked to answer)."""

    ANSWERED = "answered"
    TOOL_LIMIT = "tool_limit"
    TOKEN_LIMIT = "token_limit"
    TIME_LIMIT = "time_limit"


@dataclass
class LoopResult:
    messages: list[dict[str, Any]]
    content: str
    transcript: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: int = 0
    refused: int = 0
    stopped: Stopped = Stopped.ANSWERED
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    model: str = ""
    backend: str = ""


def _tool_messages(backend: Backend, calls: list[dict[str, Any]], outcomes: list[tools.ToolOutcome],
                   content: str) -> list[dict[str, Any]]:
    """The assistant's turn and the tools' answers, in the form the server understands."""
    answers = [fence(f"tool {o.name} result", o.text) for o in outcomes]
    if backend.name == "ollama":
        msgs: list[dict[str, Any]] = [{"role": "assistant", "content": content, "tool_calls": [
            {"function": {"name": c.get("name", ""), "arguments": c.get("arguments") or {}}} for c in calls]}]
        msgs += [{"role": "tool", "content": a, "tool_name": o.name} for a, o in zip(answers, outcomes)]
        return msgs
    # OpenAI-compatible servers want call ids we do not keep: say it in plain messages instead.
    asked = "; ".join(f"{c.get('name')}({json.dumps(c.get('arguments') or {})[:300]})" for c in calls)
    return [{"role": "assistant", "content": (content + "\n" if content else "") + f"[tool calls: {asked}]"},
            {"role": "user", "content": "Tool results:\n" + "\n".join(answers)}]


def run_loop(backend: Backend, model: str, messages: list[dict[str, Any]], ctx: tools.ToolContext, limits: Limits,
             *, num_ctx: int, on_token: Callable[[str], None] | None = None,
             on_tool: Callable[[tools.ToolOutcome], None] | None = None) -> LoopResult:
    deadline = time.monotonic() + limits.time_limit
    result = LoopResult(messages=list(messages), content="")
    defs = tools.definitions()
    while True:
        left = limits.max_tokens - result.completion_tokens
        offer = defs if result.tool_calls < limits.max_tool_calls else None
        reply = backend.chat(model, result.messages, tools=offer, num_ctx=num_ctx,
                             max_tokens=max(64, min(limits.answer_tokens, left)), on_token=on_token)
        result.calls += 1
        result.model, result.backend = reply.model, reply.backend
        result.prompt_tokens += reply.prompt_tokens or 0
        result.completion_tokens += reply.completion_tokens or 0
        result.content = reply.content
        if not reply.tool_calls:
            result.stopped = Stopped.ANSWERED
            return result
        room = limits.max_tool_calls - result.tool_calls
        outcomes = []
        for call in reply.tool_calls:
            if room <= 0:
                outcome = tools.ToolOutcome(str(call.get("name")), call.get("arguments") or {},
                                            "not run: the tool-call limit of this analysis is reached; answer "
                                            "with what you have", ok=False, refused=True)
            else:
                outcome = tools.call(ctx, call.get("name"), call.get("arguments"), limits.tool_result_tokens)
                result.tool_calls += 1
                room -= 1
            result.refused += outcome.refused
            result.transcript.append(outcome.record())
            outcomes.append(outcome)
            if on_tool is not None:
                on_tool(outcome)
        result.messages += _tool_messages(backend, reply.tool_calls, outcomes,
                                          truncate(reply.content, limits.tool_result_tokens))
        if room <= 0:
            result.stopped = Stopped.TOOL_LIMIT
            return result
        if result.completion_tokens >= limits.max_tokens:
            result.stopped = Stopped.TOKEN_LIMIT
            return result
        if time.monotonic() >= deadline:
            result.stopped = Stopped.TIME_LIMIT
            return result
