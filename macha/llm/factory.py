"""The configured model backend, one per configuration and process. Above the backends: they import base only."""

from __future__ import annotations

from typing import Any

from macha.llm.base import Backend

_backends: dict[tuple[str, str], Backend] = {}


def make_backend(settings: Any) -> Backend | None:
    """The configured backend, or None when models are switched off (the rules reviewer runs).

    One per configuration and process: its HTTP client keeps connections (and what it learned of the server) open
    across reviews.
    """
    kind = settings.llm.backend
    if kind == "none":
        return None
    url = settings.llm.openai_url if kind == "openai" else settings.ollama_url
    key = (kind, f"{url}|{settings.llm.model_dump_json()}")
    if key not in _backends:
        # Imported here, as before the split: a process that never calls a model does not load its client library.
        if kind == "openai":
            from macha.llm.openai_backend import OpenAIBackend

            _backends[key] = OpenAIBackend(url, settings.llm)
        else:
            from macha.llm.ollama_backend import OllamaBackend

            _backends[key] = OllamaBackend(url, settings.llm)
    return _backends[key]
