"""One small protocol for model servers (chat with an optional JSON schema and tools, embed, list models), the
errors every backend raises, and the retry policy for transient failures. The backends import this module only;
macha.llm.factory picks one from the settings."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from macha.core.errors import MachaError

log = logging.getLogger(__name__)
T = TypeVar("T")


class LLMError(MachaError):
    """A model call failed in a way a retry will not fix (a bad request, a server error that persisted)."""


class LLMUnavailable(LLMError):
    """The model server cannot be reached (down, refused, timed out)."""


class ModelMissing(LLMError):
    """The server answers but does not have the model."""


class Transient(Exception):
    """Internal: worth another attempt."""


@dataclass
class ChatResult:
    content: str
    model: str
    backend: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_s: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class Backend(Protocol):
    name: str

    def chat(self, model: str, messages: list[dict[str, Any]], *, schema: dict[str, Any] | None = None,
             tools: list[dict[str, Any]] | None = None, num_ctx: int | None = None,
             max_tokens: int | None = None, on_token: Callable[[str], None] | None = None) -> ChatResult: ...

    def embed(self, model: str, inputs: list[str]) -> list[list[float]]: ...

    def list_models(self) -> list[str]: ...

    def context_length(self, model: str) -> int | None: ...


def with_retries(call: Callable[[], T], *, retries: int, what: str) -> T:
    """Retry only what is transient (connection refused, 5xx, timeouts), with exponential backoff."""
    retrying = Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=0.5, max=8),
        retry=retry_if_exception_type(Transient),
        reraise=True,
    )
    start = time.monotonic()
    try:
        for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.info("%s: attempt %d", what, attempt.retry_state.attempt_number)
                return call()
    except Transient as exc:
        cause = exc.__cause__ or exc
        raise LLMUnavailable(f"{what}: {exc} (after {retries + 1} attempt(s), "
                             f"{time.monotonic() - start:.1f} s)") from cause
    raise AssertionError("unreachable")  # pragma: no cover
