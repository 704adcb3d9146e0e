"""Ollama through the official client: a JSON schema as `format`, `num_ctx` always sent (Ollama's default context
silently truncates long prompts), `keep_alive`, and timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import ollama

from macha.llm.base import ChatResult, LLMError, LLMUnavailable, ModelMissing, Transient, with_retries


class OllamaBackend:
    name = "ollama"

    def __init__(self, url: str, cfg: Any):
        self.url = url
        self.cfg = cfg
        self.client = ollama.Client(
            host=url, timeout=httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout)
        )

    def _call(self, what: str, model: str | None, fn: Callable[[], Any]) -> Any:
        def attempt() -> Any:
            try:
                return fn()
            except ollama.ResponseError as exc:
                if exc.status_code == 404 and model and "not found" in str(exc.error).lower():
                    raise ModelMissing(
                        f"model {model!r} is not on the Ollama server at {self.url}: run `ollama pull {model}` "
                        "there, or choose another model in the settings"
                    ) from None
                if exc.status_code >= 500 or exc.status_code in (408, 429):
                    raise Transient(f"Ollama at {self.url} answered {exc.status_code}: {exc.error}") from exc
                raise LLMError(f"Ollama at {self.url} refused the request ({exc.status_code}): {exc.error}") from None
            except ConnectionError as exc:
                raise Transient(f"Ollama at {self.url} is not reachable") from exc
            except httpx.TimeoutException as exc:
                # Not retried: a server too slow once is slow again, and the task has a time limit.
                raise LLMUnavailable(f"Ollama at {self.url} did not answer within {self.cfg.timeout:.0f} s") from exc
            except httpx.TransportError as exc:
                raise Transient(f"Ollama at {self.url}: {type(exc).__name__}: {exc}") from exc

        return with_retries(attempt, retries=self.cfg.retries, what=what)

    def chat(self, model: str, messages: list[dict[str, Any]], *, schema: dict[str, Any] | None = None,
             tools: list[dict[str, Any]] | None = None, num_ctx: int | None = None,
             max_tokens: int | None = None, on_token: Callable[[str], None] | None = None) -> ChatResult:
        options: dict[str, Any] = {"num_ctx": num_ctx} if num_ctx else {}
        if max_tokens:
            options["num_predict"] = max_tokens
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "options": options,
                                  "keep_alive": self.cfg.keep_alive}
        if schema is not None:
            kwargs["format"] = schema
        if tools:
            kwargs["tools"] = tools
        start = time.monotonic()

        def run() -> Any:
            if on_token is None:
                return self.client.chat(stream=False, **kwargs)
            parts: list[str] = []
            last = None
            calls: list[Any] = []
            for chunk in self.client.chat(stream=True, **kwargs):
                piece = chunk.message.content or ""
                if piece:
                    parts.append(piece)
                    on_token(piece)
                calls.extend(chunk.message.tool_calls or [])
                last = chunk
            assert last is not None
            last.message.content = "".join(parts)
            last.message.tool_calls = calls or None
            return last

        resp = self._call(f"chat with {model}", model, run)
        return ChatResult(
            content=resp.message.content or "",
            model=resp.model or model,
            backend=self.name,
            prompt_tokens=resp.prompt_eval_count,
            completion_tokens=resp.eval_count,
            duration_s=time.monotonic() - start,
            tool_calls=[{"name": c.function.name, "arguments": dict(c.function.arguments or {})}
                        for c in (resp.message.tool_calls or [])],
        )

    def embed(self, model: str, inputs: list[str]) -> list[list[float]]:
        resp = self._call(f"embed with {model}", model, lambda: self.client.embed(model=model, input=inputs))
        return [list(v) for v in resp.embeddings]

    def list_models(self) -> list[str]:
        resp = self._call("list models", None, self.client.list)
        return [m.model for m in resp.models if m.model]

    def context_length(self, model: str) -> int | None:
        info = self._call(f"show {model}", model, lambda: self.client.show(model))
        for key, value in (info.modelinfo or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                return value
        return None
