"""The embedding model in one process: macha-ai's embedding server on a Unix socket, used by other processes that
open the semantic memory of the same state directory (they load no ONNX session of their own), with the same
vectors as a local model; and a process with no server answering loads the model itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from macha.context.memory.embed_service import EmbeddingServer, ServerUnreachable, embed_remote, socket_path
from macha.context.memory.embeddings import make_embedding

pytestmark = pytest.mark.timeout(300)

#: Run in a fresh process: open the memory, remember and recall, and say whether an ONNX session was loaded here.
CHILD = """
import json, sys
from pathlib import Path
from macha.context.memory.opening import open_memory
memory = open_memory(Path(sys.argv[1]))
memory.remember("issues", "oom-1", "the OOM killer killed postgres on db1", {"host": "db1"})
hits = memory.similar("issues", "postgres was killed for lack of memory", k=1)
print(json.dumps({"hit": hits[0].id, "session_here": "model" in memory._ef.__dict__,
                  "vector": memory.embed(["disk full on /var"])[0]}))
"""


def child(state_dir: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(state_dir)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_another_process_embeds_through_the_server_and_gets_the_same_vectors(state_dir: Path) -> None:
    loads = []

    def load():
        loads.append(1)
        return make_embedding(state_dir)

    server = EmbeddingServer(socket_path(state_dir), load)
    server.start()
    try:
        through = child(state_dir)
        assert through["hit"] == "oom-1"
        assert through["session_here"] is False
        assert loads == [1]  # loaded once, in the server's process, at the first request
    finally:
        server.stop()
    assert not socket_path(state_dir).exists()
    # No server now: the process loads the model itself, and the vectors are the same.
    alone = child(state_dir)
    assert alone["session_here"] is True
    cosine = float(np.dot(through["vector"], alone["vector"]))
    assert cosine > 0.9999


def test_a_failure_in_the_server_is_a_clear_error_and_no_server_is_unreachable(state_dir: Path) -> None:
    def broken():
        raise RuntimeError("model files\nvanished")

    server = EmbeddingServer(socket_path(state_dir), broken)
    server.start()
    try:
        with pytest.raises(RuntimeError, match="the embedding server failed: .*model files"):
            embed_remote(socket_path(state_dir), ["x"])
    finally:
        server.stop()
    with pytest.raises(ServerUnreachable):
        embed_remote(socket_path(state_dir), ["x"])
