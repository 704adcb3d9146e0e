"""Memory, opened once per process and arguments; closed when the process is done with it."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from macha.context.memory.backend import Backend
from macha.context.memory.config_index import ConfigIndex
from macha.context.memory.embed_service import socket_path
from macha.context.memory.embeddings import OLLAMA_CHUNK_CHARS, ONNX_CHUNK_CHARS, make_embedding
from macha.context.memory.errors import MemoryUnavailable
from macha.context.memory.recall import ReviewRecall

log = logging.getLogger(__name__)


class Memory(ReviewRecall, ConfigIndex):
    """The semantic memory: the collections' operations, reviews and past issues, the configuration index."""


_lock = threading.Lock()
_backends: dict[tuple[str | None, str | None], Backend] = {}
_memories: dict[tuple[Any, ...], Memory] = {}


def open_memory(state_dir: Path, chroma_url: str | None = None, embedding: str = "onnx",
                embedding_model: str = "nomic-embed-text", ollama_url: str = "http://127.0.0.1:11434") -> Memory:
    """The semantic memory, opened once per process and arguments; the six collections exist afterwards."""
    state_dir = Path(state_dir).resolve()
    path = None if chroma_url else state_dir / "chroma"
    key = (str(state_dir), chroma_url, embedding, embedding_model if embedding == "ollama" else None,
           ollama_url if embedding == "ollama" else None)
    with _lock:
        memory = _memories.get(key)
        if memory is not None and memory._backend.pid == os.getpid():
            return memory
        bkey = (str(path) if path else None, chroma_url)
        backend = _backends.get(bkey)
        if backend is not None and backend.pid != os.getpid():
            raise MemoryUnavailable("semantic memory was opened before this process forked; open it in the worker "
                                    "process itself (e.g. Celery's worker_process_init), not in the parent")
        # Through macha-ai's embedding server when it runs for this state directory (one model, not one a worker).
        ef = make_embedding(state_dir, embedding, embedding_model, ollama_url, server=socket_path(state_dir))
        if backend is None:
            backend = _backends[bkey] = Backend(path, chroma_url)
        memory = _memories[key] = Memory(backend, ef, OLLAMA_CHUNK_CHARS if embedding == "ollama" else ONNX_CHUNK_CHARS)
        return memory


def close_memories() -> None:
    """Close every client this process opened (tests; a worker shutting down)."""
    with _lock:
        for backend in _backends.values():
            try:
                backend.close()
            except MemoryUnavailable as exc:
                log.warning("%s", exc)
        _backends.clear()
        _memories.clear()
