"""Semantic memory's one error, and the guard that turns anything from Chroma, ONNX or HTTP into it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from macha.core.errors import MachaError


class MemoryUnavailable(MachaError):
    """Semantic memory cannot be used (model files, Chroma or Ollama); the message says what to do."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Chroma, ONNX and HTTP errors become one operator-readable line."""
    try:
        yield
    except MemoryUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - anything from Chroma's Rust core or onnxruntime
        raise MemoryUnavailable(f"semantic memory: {what} failed ({one_line(exc)})") from exc
