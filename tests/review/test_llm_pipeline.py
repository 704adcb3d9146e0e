"""Layer 3 in the real pipeline: a running `macha-ai` whose worker talks to the fake model server."""

from __future__ import annotations

import os
import re

import pytest
from helpers.journal import Entry
from helpers.processes import macha_env, wait_for
from fakes.ollama import FakeOllama, valid_review
from sqlalchemy import func, select

from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.store.db import Store
from macha.store.models import Escalation, Review, TriggerEvent
from workers.app import create_app

pytestmark = pytest.mark.timeout(240)
SEGV = "app[{pid}]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in libfoo.so[7f0+1000]"




def test_two_concurrent_reviews_of_one_host_make_one_model_call(state_dir, macha_ai, make_journal) -> None:
    fake = FakeOllama()
    fake.default = {"delay": 3, "content": valid_review(should_escalate=True, escalation_reason="look deeper")}
    hostname = f"t{os.getpid()}-{state_dir.name[-8:]}"
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url)
    try:
        ai = macha_ai(env, "--no-beat")
        ai.wait_ready()
        settings = load_settings(hostname=hostname, state_dir=state_dir, ollama_url=fake.url)
        store = Store(settings.effective_database_url)
        journal = make_journal([Entry(SEGV.format(pid=i)) for i in range(5)])
        run_check(store, settings, hostname=hostname, source=JournalSource.file(journal), reason="schedule")

        celery = create_app(settings)
        # By the task's former name: messages an older install queued still run (macha.summarize_pending now).
        chains = [
            (celery.signature("macha.update_context", args=({"hostname": hostname, "reason": "tick"},))
             | celery.signature("macha.review")).apply_async()
            for _ in range(2)
        ]
        results = [c.get(timeout=120) for c in chains]
        reviews = sorted((r["review"].get("events_covered", 0), bool(r["review"]["skipped"])) for r in results)
        assert reviews == [(0, True), (5, False)]
        # One review model call; the escalation it asked for then goes to the meta model on the gpu queue.
        assert [c["model"] for c in fake.chats()].count("qwen3:4b") == 1
        with store.session() as s:
            assert s.execute(select(func.count()).select_from(Review)).scalar() == 1
            assert s.execute(select(func.count()).where(TriggerEvent.review_id.is_(None))).scalar() == 0
            esc = s.execute(select(Escalation)).scalar_one()
            assert esc.reason == "look deeper"
        # The escalation went to the gpu queue and its task ran there.
        wait_for(lambda: re.search(r"Task macha\.escalate\[[0-9a-f-]+\] succeeded", ai.log.read_text()), 30,
              "the escalate task")
        assert ai.stop() == 0
        store.dispose()
    finally:
        fake.close()
