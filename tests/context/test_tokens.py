"""Token counting offline, the per-model calibration learned from what the model server reports, and the budget."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from fakes.ollama import FakeOllama
from sqlalchemy import select

from macha.config import load_settings
from macha.context import tokens
from macha.llm.factory import make_backend
from macha.review.model_turn import prompt_budget
from macha.store.db import Store
from macha.store.models import TokenCalibration


def test_counts_are_cl100k_and_special_tokens_in_logs_are_plain_text() -> None:
    # Known cl100k counts: "hello world" is 2 tokens; a special-token string in a log line is just text.
    assert tokens.count("hello world") == 2
    assert tokens.count("<|endoftext|>") > 1
    long = "Out of memory: Killed process 4242 (postgres) " * 50
    cut = tokens.truncate(long, 40)
    assert tokens.count(cut) <= 40 and long.startswith(cut)


def test_the_encoding_loads_with_the_network_disabled(tmp_path) -> None:
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rn", "true"]).returncode != 0:
        pytest.skip("unshare -rn is not permitted here")
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache")}
    code = "from macha.context.tokens import count; print(count('disk /var is 98% full'))"
    out = subprocess.run(["unshare", "-rn", sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == tokens.count("disk /var is 98% full")


def test_calibration_learns_a_models_ratio_and_ignores_useless_reports(sqlite_url) -> None:
    store = Store(sqlite_url)
    key = tokens.model_key("ollama", "qwen3:4b")
    assert tokens.factor(store, key) == tokens.PRIOR_FACTOR
    assert tokens.observe(store, key, 1000, None) is None
    assert tokens.observe(store, key, 10, 30) is None  # too small to tell
    assert tokens.observe(store, key, 1000, 1200) == pytest.approx(1.2)
    second = tokens.observe(store, key, 1000, 1000)
    assert second == pytest.approx(0.7 * 1.2 + 0.3 * 1.0)
    assert tokens.factor(store, key) == pytest.approx(second)
    # A wild report is bounded.
    assert tokens.observe(store, "x:y", 1000, 100_000) == tokens.FACTOR_RANGE[1]
    store.dispose()


def test_the_budget_is_the_smaller_context_minus_the_answer_with_headroom(tmp_path) -> None:
    with FakeOllama() as fake:
        fake.models["qwen3:4b"] = 8192
        settings = load_settings(state_dir=tmp_path / "s", ollama_url=fake.url, context_size=32768)
        store = Store(settings.effective_database_url)
        plan, key = prompt_budget(store, make_backend(settings), settings, "qwen3:4b")
        assert plan.num_ctx == 8192 and plan.answer_tokens == settings.llm.answer_tokens
        room = 8192 - settings.llm.answer_tokens
        assert plan.prompt_tokens == int(room / (tokens.PRIOR_FACTOR * (1 + tokens.HEADROOM)))
        with store.session() as s:
            s.add(TokenCalibration(model=key, factor=2.0, samples=3))
        plan2, _ = prompt_budget(store, make_backend(settings), settings, "qwen3:4b")
        assert plan2.prompt_tokens == int(room / (2.0 * (1 + tokens.HEADROOM)))
        store.dispose()


def test_a_review_teaches_the_calibration_what_the_server_counted(tmp_path, make_journal) -> None:
    from helpers.journal import Entry

    from macha.monitor.checks.journal import run_check
    from macha.monitor.collect.journal import JournalSource
    from macha.review.run import run_review

    with FakeOllama() as fake:
        settings = load_settings(hostname="h1", state_dir=tmp_path / "s", ollama_url=fake.url)
        store = Store(settings.effective_database_url)
        journal = make_journal([Entry("Out of memory: Killed process 1 (x) total-vm:1kB", priority=2)])
        run_check(store, settings, source=JournalSource.file(journal))
        run_review(store, "h1", settings=settings, backend=make_backend(settings))
        (chat,) = fake.chats()
        system, user = (m["content"] for m in chat["messages"])
        with store.session() as s:
            row = s.execute(select(TokenCalibration)).scalar_one()
        # The fake server counts a token per 4 characters; the factor is its count over ours.
        assert row.model == "ollama:qwen3:4b" and row.samples == 1
        assert row.factor == pytest.approx(fake._prompt_tokens(chat) / (tokens.count(system) + tokens.count(user)))
        store.dispose()
