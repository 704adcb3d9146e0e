"""The offline embedding model in one process: `macha-ai` serves it on a Unix socket under the state directory, and
every worker process (pool children, the gpu worker) embeds through it instead of loading an ONNX session of its
own. A process that finds no server (macha-web or macha-mcp alone, a test, a server being restarted) embeds
locally, as before: the socket saves memory, it is never needed.

The protocol, one request per connection: a 4-byte big-endian length and a JSON list of texts; the answer is a
4-byte length and a JSON header ({"n": rows, "dim": columns} or {"error": "..."}), then n*dim little-endian
float32 values. The socket is the state directory owner's only (mode 0600).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from macha.context.memory.errors import one_line

log = logging.getLogger(__name__)
SOCKET_NAME = "embed.sock"
#: A request larger than this is refused (a batch of configuration chunks is far below it).
MAX_REQUEST = 64 << 20
#: Seconds a client waits for an answer (a batch of long chunks on a busy small server takes a while).
CLIENT_TIMEOUT = 300.0


def socket_path(state_dir: Path) -> Path:
    return Path(state_dir).resolve() / SOCKET_NAME


def _send(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(struct.pack(">I", len(payload)) + payload)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = conn.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("the embedding server closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(conn: socket.socket, limit: int = MAX_REQUEST) -> bytes:
    (size,) = struct.unpack(">I", _recv_exact(conn, 4))
    if size > limit:
        raise ValueError(f"a message of {size} bytes is over the limit of {limit}")
    return _recv_exact(conn, size)


class EmbeddingServer:
    """Serves one embedding function (loaded on the first request) on a Unix socket, from daemon threads."""

    def __init__(self, path: Path, load: Any) -> None:
        self.path = path
        self._load = load
        self._embedding: Any = None
        self._lock = threading.Lock()  # one batch at a time: the session runs on one thread anyway
        self._sock: socket.socket | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(16)
        self._sock = sock
        threading.Thread(target=self._accept, name="embedding-server", daemon=True).start()
        log.info("embedding model served on %s", self.path)

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by stop()
            # In this one thread, one request after the other (the model runs one batch at a time anyway): the
            # buffers of every batch come from one malloc arena, which the embedding trims after each batch; a
            # thread per request would leave each its own arena, and its own high-water mark.
            conn.settimeout(CLIENT_TIMEOUT)
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                texts = json.loads(_recv(conn))
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    raise ValueError("the request is not a list of texts")
                with self._lock:
                    if self._embedding is None:
                        self._embedding = self._load()
                    vectors = np.asarray(self._embedding(texts), dtype="<f4")
                header = json.dumps({"n": int(vectors.shape[0]), "dim": int(vectors.shape[1]) if vectors.ndim == 2
                                     else 0}).encode()
                _send(conn, header)
                conn.sendall(vectors.tobytes())
            except Exception as exc:  # noqa: BLE001 - the client gets the reason; the server goes on
                try:
                    _send(conn, json.dumps({"error": one_line(exc)}).encode())
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class ServerUnreachable(Exception):
    """No embedding server answers on the socket: embed locally."""


def embed_remote(path: Path, texts: list[str]) -> npt.NDArray[np.float32]:
    """The vectors of ``texts`` from the server on ``path``. ServerUnreachable when there is none; RuntimeError with
    the server's reason when it failed."""
    if not path.exists():
        raise ServerUnreachable(f"{path} does not exist")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CLIENT_TIMEOUT)
    with conn:
        try:
            conn.connect(str(path))
        except OSError as exc:
            raise ServerUnreachable(one_line(exc)) from exc
        _send(conn, json.dumps(texts).encode())
        header = json.loads(_recv(conn, 1 << 16))
        if "error" in header:
            raise RuntimeError(f"the embedding server failed: {header['error']}")
        n, dim = int(header["n"]), int(header["dim"])
        data = _recv_exact(conn, n * dim * 4)
    return np.frombuffer(data, dtype="<f4").reshape(n, dim).astype(np.float32)
