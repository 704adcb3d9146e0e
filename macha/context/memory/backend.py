"""The Chroma client of one process and location, and its cross-process discipline.

Several processes (Celery workers) may share one embedded store. Chroma's PersistentClient is not process-safe:
each process keeps its own in-memory HNSW index, so a process does not see vectors another one wrote once that
one flushed its index, and a process writing with a stale index overwrites the other's flushed index (records
stay in SQLite but vanish from vector search). Hence every operation runs under an exclusive file lock, and
a process re-opens its client when another process wrote since its own last operation.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import chromadb
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings

from macha.context.memory.errors import MemoryUnavailable, guard, one_line

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 60.0


class Backend:
    """One Chroma client per process and location.

    Embedded: operations hold an exclusive flock on <state_dir>/chroma.lock, whose content is a token every write
    replaces; a process that finds a token it did not write re-opens its client, dropping its stale HNSW index.
    Server (chroma_url): the server orders operations; no lock.
    """

    def __init__(self, path: Path | None, url: str | None) -> None:
        self.path, self.url = path, url
        self.pid = os.getpid()
        self.epoch = 0
        self._thread_lock = threading.RLock()
        self._lock_fd: int | None = None
        self._seen = ""
        if path is not None:
            try:
                path.mkdir(parents=True, exist_ok=True)
                self._lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise MemoryUnavailable(f"cannot create the semantic memory under {path}: {one_line(exc)}") from exc
        try:
            with self._thread_lock, self._flock():
                self._seen = self._token()
                self.client = self._connect()
        except BaseException:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            raise

    def _connect(self) -> ClientAPI:
        settings = ChromaSettings(anonymized_telemetry=False)
        if self.url is None:
            with guard(f"opening the Chroma store {self.path}"):
                return chromadb.PersistentClient(path=str(self.path), settings=settings)
        parts = urlsplit(self.url)
        ssl = parts.scheme == "https"
        try:
            return chromadb.HttpClient(host=parts.hostname or "localhost", port=parts.port or (443 if ssl else 8000),
                                       ssl=ssl, settings=settings)
        except Exception as exc:  # noqa: BLE001
            raise MemoryUnavailable(f"Chroma server at {self.url} is not usable ({one_line(exc)})") from exc

    @contextmanager
    def _flock(self) -> Iterator[None]:
        if self._lock_fd is None:
            yield
            return
        deadline, pause = time.monotonic() + LOCK_TIMEOUT_S, 0.001
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MemoryUnavailable(f"semantic memory {self.path} stayed locked by another process for "
                                            f"{LOCK_TIMEOUT_S:.0f} s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _token(self) -> str:
        return os.pread(self._lock_fd, 64, 0).decode(errors="replace") if self._lock_fd is not None else ""

    def _new_token(self) -> str:
        token = uuid.uuid4().hex
        if self._lock_fd is not None:
            os.pwrite(self._lock_fd, token.encode(), 0)
            os.ftruncate(self._lock_fd, len(token))
        return token

    @contextmanager
    def session(self, write: bool) -> Iterator[ClientAPI]:
        if os.getpid() != self.pid:
            # Chroma's Rust core hangs in a forked child on a store its parent opened.
            raise MemoryUnavailable("semantic memory was opened before this process forked; open it in the worker "
                                    "process itself (e.g. Celery's worker_process_init), not in the parent")
        with self._thread_lock, self._flock():
            token = self._token()
            if token != self._seen:
                self._reopen()
                self._seen = token
            try:
                yield self.client
            finally:
                if write and self._lock_fd is not None:
                    self._seen = self._new_token()

    def _reopen(self) -> None:
        t0 = time.monotonic()
        with guard("re-opening the Chroma store"):
            # close() stops the shared System once its last client goes, so the next client loads from disk.
            self.client.close()
            self.client = self._connect()
        self.epoch += 1
        log.debug("re-opened %s after another process wrote (%.3f s)", self.path, time.monotonic() - t0)

    def close(self) -> None:
        with self._thread_lock:
            if os.getpid() == self.pid:
                with guard("closing the Chroma store"):
                    self.client.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
