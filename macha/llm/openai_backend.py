"""An OpenAI-compatible server (llama.cpp's server, vLLM, llama-cpp-python's server) over plain HTTP, with
`response_format` json_schema for structured output."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from macha.llm.base import ChatResult, LLMError, LLMUnavailable, ModelMissing, Transient, with_retries


class _FormatRejected(Exception):
    pass


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_url: str, cfg: Any):
        self.base = base_url
        self.cfg = cfg
        headers = {"Authorization": f"Bearer {cfg.openai_api_key}"} if cfg.openai_api_key else {}
        #: json_schema (OpenAI, vLLM, llama.cpp's server) until a server refuses it; then json_object + schema.
        self.schema_mode = "json_schema"
        self.http = httpx.Client(timeout=httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout), headers=headers)

    def _request(self, what: str, model: str | None, method: str, path: str, body: dict | None = None) -> Any:
        def attempt() -> Any:
            try:
                resp = self.http.request(method, f"{self.base}{path}", json=body)
            except httpx.TimeoutException as exc:
                # Not retried: a server too slow once is slow again, and the task has a time limit.
                raise LLMUnavailable(f"{self.base} did not answer within {self.cfg.timeout:.0f} s") from exc
            except httpx.TransportError as exc:
                raise Transient(f"{self.base} is not reachable ({type(exc).__name__})") from exc
            if resp.status_code in (400, 422, 500) and body and "response_format" in body \
                    and "response_format" in resp.text:
                # (llama-cpp-python's server reports a request it cannot validate as a 500.)
                raise _FormatRejected(resp.text[:200])
            if resp.status_code >= 500 or resp.status_code in (408, 429):
                raise Transient(f"{self.base} answered {resp.status_code}: {resp.text[:200]}")
            if resp.status_code == 404 and model:
                raise ModelMissing(f"model {model!r} is not served at {self.base}: load it into the server, or "
                                   "choose another model in the settings")
            if resp.status_code >= 400:
                raise LLMError(f"{self.base} refused the request ({resp.status_code}): {resp.text[:200]}")
            try:
                return resp.json()
            except ValueError:
                raise LLMError(f"{self.base} answered with something that is not JSON: {resp.text[:200]!r}") from None

        return with_retries(attempt, retries=self.cfg.retries, what=what)

    def _format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.schema_mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}

    def chat(self, model: str, messages: list[dict[str, Any]], *, schema: dict[str, Any] | None = None,
             tools: list[dict[str, Any]] | None = None, num_ctx: int | None = None,
             max_tokens: int | None = None, on_token: Callable[[str], None] | None = None) -> ChatResult:
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": False, "temperature": 0}
        if max_tokens:
            body["max_tokens"] = max_tokens
        if schema is not None:
            body["response_format"] = self._format(schema)
        if tools:
            body["tools"] = tools
        start = time.monotonic()
        try:
            data = self._request(f"chat with {model}", model, "POST", "/chat/completions", body)
        except _FormatRejected as exc:
            if self.schema_mode != "json_schema":
                raise LLMError(f"{self.base} refused the structured-output request: {exc}") from None
            # llama-cpp-python's server takes the older {"type": "json_object", "schema": ...}; remember that.
            self.schema_mode = "json_object"
            body["response_format"] = self._format(schema)
            data = self._request(f"chat with {model}", model, "POST", "/chat/completions", body)
        try:
            choice = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"{self.base} answered without a message: {str(data)[:200]}") from None
        usage = data.get("usage") or {}
        content = choice.get("content") or ""
        if on_token and content:
            on_token(content)
        calls = []
        for call in choice.get("tool_calls") or []:
            fn = call.get("function", {})
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except ValueError:
                args = {"_unparsed": fn.get("arguments")}
            calls.append({"name": fn.get("name"), "arguments": args})
        return ChatResult(
            content=content,
            model=data.get("model") or model,
            backend=self.name,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            duration_s=time.monotonic() - start,
            tool_calls=calls,
        )

    def embed(self, model: str, inputs: list[str]) -> list[list[float]]:
        data = self._request(f"embed with {model}", model, "POST", "/embeddings", {"model": model, "input": inputs})
        return [item["embedding"] for item in data.get("data", [])]

    def list_models(self) -> list[str]:
        data = self._request("list models", None, "GET", "/models")
        return [m.get("id") for m in data.get("data", []) if m.get("id")]

    def context_length(self, model: str) -> int | None:
        return None  # not part of the OpenAI API; the configured contextSize is the budget
