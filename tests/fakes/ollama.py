"""A fake Ollama: a real HTTP server on a loopback port that speaks Ollama's API (/api/chat streamed and not, with
tools; /api/generate, /api/embed, /api/tags, /api/show, /api/ps, /api/version) and, for the OpenAI-compatible
backend, /v1/chat/completions and /v1/models. It is the only fake in the tests: the LLM at its network edge.

Behaviour is scripted per chat request: push({"content": ...}), push({"status": 500, "error": ...}),
push({"delay": 5, "content": ...}), push({"tool_calls": [...]}); with nothing scripted it answers `default`.
Every request is recorded (path and JSON body).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def valid_analysis(**overrides: Any) -> str:
    analysis = {
        "diagnosis": "nginx keeps dying because its worker exhausts memory under the nightly backup load.",
        "root_cause": "worker_connections raised to 65535 on a 1 GiB host",
        "evidence": {"event_ids": [], "metric_refs": ["memory_percent 1h max 98"]},
        "proposed_actions": [],
        "config_suggestions": [{"description": "lower services.nginx worker_connections to 4096",
                                "diff": "-  worker_connections 65535;\n+  worker_connections 4096;"}],
        "rollback_plan": "restore the previous generation with nixos-rebuild switch --rollback",
        "confidence": 0.7,
    }
    analysis.update(overrides)
    return json.dumps(analysis)


def tool_call(tool: str, **arguments: Any) -> dict[str, Any]:
    """One tool call as Ollama's /api/chat returns it."""
    return {"function": {"name": tool, "arguments": arguments}}


def valid_review(**overrides: Any) -> str:
    review = {
        "status": "degraded",
        "summary": "One process was killed by the OOM killer; memory pressure on this host.",
        "issues": [{"title": "OOM kill of postgres", "severity": "critical", "subsystem": "memory",
                    "evidence_event_ids": [], "occurrences": 1}],
        "patterns": ["memory use grows until the OOM killer acts"],
        "proposed_actions": [],
        "should_escalate": False,
        "escalation_reason": None,
    }
    review.update(overrides)
    return json.dumps(review)


class FakeOllama:
    def __init__(self, models: dict[str, int] | None = None):
        #: model name -> context length (what /api/show reports)
        self.models = {"qwen3:4b": 40960, "qwen3:14b": 40960, "qwen3:1.7b": 40960} if models is None else models
        self.script: deque[dict[str, Any]] = deque()
        self.default: dict[str, Any] = {"content": valid_review()}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        #: response_format types /v1/chat/completions accepts (llama-cpp-python's server: only json_object)
        self.openai_formats = {"json_schema", "json_object", "text"}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def push(self, *behaviours: dict[str, Any]) -> None:
        self.script.extend(behaviours)

    def chats(self) -> list[dict[str, Any]]:
        return [body for path, body in self.requests if path in ("/api/chat", "/v1/chat/completions")]

    def __enter__(self) -> FakeOllama:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the server side ---

    def _next(self) -> dict[str, Any]:
        with self.lock:
            return self.script.popleft() if self.script else dict(self.default)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        path = h.path.split("?")[0]
        with self.lock:
            self.requests.append((path, body))
        routes = {
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/generate"): self._generate,
            ("POST", "/api/embed"): self._embed,
            ("GET", "/api/tags"): self._tags,
            ("POST", "/api/show"): self._show,
            ("GET", "/api/ps"): self._ps,
            ("GET", "/api/version"): lambda h, b: self._json(h, 200, {"version": "0.12.0-fake"}),
            ("POST", "/v1/chat/completions"): self._openai_chat,
            ("GET", "/v1/models"): lambda h, b: self._json(h, 200, {"object": "list", "data": [
                {"id": m, "object": "model"} for m in self.models]}),
        }
        route = routes.get((method, path))
        if route is None:
            self._json(h, 404, {"error": f"no route {method} {path}"})
            return
        route(h, body)

    def _json(self, h: BaseHTTPRequestHandler, status: int, data: Any) -> None:
        payload = json.dumps(data).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _missing(self, h: BaseHTTPRequestHandler, model: str) -> bool:
        if model in self.models:
            return False
        self._json(h, 404, {"error": f'model "{model}" not found, try pulling it first'})
        return True

    @staticmethod
    def _prompt_tokens(body: dict[str, Any]) -> int:
        text = "".join(str(m.get("content", "")) for m in body.get("messages", [])) + str(body.get("prompt", ""))
        return max(1, len(text) // 4)

    def _behave(self, h: BaseHTTPRequestHandler) -> dict[str, Any] | None:
        b = self._next()
        if b.get("delay"):
            time.sleep(b["delay"])
        if b.get("status"):
            self._json(h, b["status"], {"error": b.get("error", "fake failure")})
            return None
        return b

    def _scripted(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> dict[str, Any] | None:
        """The next scripted behaviour for a model endpoint, or None when the response was already sent."""
        if self._missing(h, body.get("model", "")):
            return None
        return self._behave(h)

    def _chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        b = self._scripted(h, body)
        if b is None:
            return
        content = b.get("content", "")
        tool_calls = b.get("tool_calls")
        counts = {"prompt_eval_count": self._prompt_tokens(body), "eval_count": max(1, len(content) // 4),
                  "total_duration": 1_000_000, "load_duration": 1000, "prompt_eval_duration": 1000,
                  "eval_duration": 1000}
        if body.get("stream", True):
            h.send_response(200)
            h.send_header("Content-Type", "application/x-ndjson")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            pieces = [content[i:i + 7] for i in range(0, len(content), 7)] or [""]
            for n, piece in enumerate(pieces):
                msg: dict[str, Any] = {"role": "assistant", "content": piece}
                if tool_calls and n == len(pieces) - 1:
                    msg["tool_calls"] = tool_calls
                self._chunk(h, {"model": model, "created_at": "2026-11-24T00:00:00Z", "message": msg, "done": False})
            self._chunk(h, {"model": model, "created_at": "2026-11-24T00:00:00Z",
                            "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                            **counts})
            h.wfile.write(b"0\r\n\r\n")
            return
        msg = {"role": "assistant", "content": content}
        if tool_calls:
            msg["tool_calls"] = tool_calls
        self._json(h, 200, {"model": model, "created_at": "2026-11-24T00:00:00Z", "message": msg, "done": True,
                            "done_reason": "stop", **counts})

    @staticmethod
    def _chunk(h: BaseHTTPRequestHandler, data: dict[str, Any]) -> None:
        line = json.dumps(data).encode() + b"\n"
        h.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        h.wfile.flush()

    def _generate(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        b = self._scripted(h, body)
        if b is None:
            return
        self._json(h, 200, {"model": model, "created_at": "2026-11-24T00:00:00Z", "response": b.get("content", ""),
                            "done": True, "prompt_eval_count": self._prompt_tokens(body), "eval_count": 1})

    def _embed(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if self._missing(h, model):
            return
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        vectors = [[b / 255 for b in hashlib.sha256(text.encode()).digest()[:16]] for text in inputs]
        self._json(h, 200, {"model": model, "embeddings": vectors})

    def _tags(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        self._json(h, 200, {"models": [
            {"name": m, "model": m, "modified_at": "2026-11-24T00:00:00Z", "size": 1, "digest": "0" * 64,
             "details": {"family": "qwen3", "parameter_size": m.split(":")[-1]}} for m in self.models]})

    def _show(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model") or body.get("name") or ""
        if self._missing(h, model):
            return
        self._json(h, 200, {"modelfile": "", "parameters": "", "template": "", "details": {"family": "qwen3"},
                            "model_info": {"general.architecture": "qwen3",
                                           "qwen3.context_length": self.models[model]},
                            "capabilities": ["completion", "tools"]})

    def _ps(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        self._json(h, 200, {"models": []})

    def _openai_chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if model not in self.models:
            self._json(h, 404, {"error": {"message": f"model {model} not found"}})
            return
        fmt = (body.get("response_format") or {}).get("type", "text")
        if fmt not in self.openai_formats:
            # As llama-cpp-python's server does: a request it cannot validate is a 500.
            self._json(h, 500, {"error": {"message": f"response_format.type: Input should be one of "
                                                     f"{sorted(self.openai_formats)}, got {fmt!r}"}})
            return
        b = self._behave(h)
        if b is None:
            return
        content = b.get("content", "")
        self._json(h, 200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": self._prompt_tokens(body), "completion_tokens": max(1, len(content) // 4)},
        })
