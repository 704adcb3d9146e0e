"""Layer 2 in the pipeline: reviews are remembered in a real Chroma store and recalled into the next prompt; SAR,
retention and the config index run as tasks; memory being down degrades the window, never the review."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from helpers.journal import Entry
from helpers.processes import free_port, macha_env, wait_for
from fakes.ollama import valid_review
from sqlalchemy import select

from beat_schedule import build_beat_schedule
from macha import pipeline
from macha.config import load_settings
from macha.context.memory.opening import close_memories, open_memory
from macha.monitor.checks.journal import run_check
from macha.monitor.checks.registry import CHECKS
from macha.monitor.collect.journal import JournalSource
from macha.store.db import Store
from macha.store.models import Review
from workers.app import create_app

OOM = "Out of memory: Killed process {pid} (java) total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB"
DISK = "EXT4-fs warning (device sda1): ext4_dx_add_entry: Directory index full, reach max htree level :2"


def _review(store, settings, hostname="h1") -> dict:
    state = pipeline.context_step(store, pipeline.ChainState(hostname=hostname, reason="manual"), settings)
    return pipeline.review_step(store, state, settings).review


@pytest.fixture(autouse=True)
def _close_memories():
    yield
    close_memories()


def test_a_remembered_issue_is_recalled_into_the_next_review(tmp_path, make_journal, fake) -> None:
    settings = load_settings(hostname="h1", state_dir=tmp_path / "s", ollama_url=fake.url)
    store = Store(settings.effective_database_url)
    run_check(store, settings, source=JournalSource.file(make_journal([Entry(OOM.format(pid=1), priority=2)],
                                                                      name="a.journal")))
    fake.push({"content": valid_review(status="critical", issues=[
        {"title": "java killed by the OOM killer", "severity": "critical", "subsystem": "memory",
         "evidence_event_ids": [], "occurrences": 1}])})
    first = _review(store, settings)
    # A disk issue is remembered too: the recall must pick the OOM one for an OOM event, not just any issue.
    memory = open_memory(settings.state_dir)
    memory.remember_review(999, "h1", "2026-11-01T00:00:00", "degraded", "disk", [
        {"title": "ext4 directory index full on /var (no space for new files)", "severity": "high"}])

    done = pipeline.remember_step(store, settings, first["review_id"])
    assert done["remembered"] is True and done["records"] == 2
    assert pipeline.remember_step(store, settings, first["review_id"])["remembered"] is False
    with store.session() as s:
        assert s.get(Review, first["review_id"]).remembered_at is not None
    assert memory.count("issues") == 2 and memory.count("decisions") == 2

    # Another OOM kill (another process: a new event group, not a repeat of the reviewed one).
    second = OOM.format(pid=2).replace("(java)", "(postgres)")
    run_check(store, settings, source=JournalSource.file(make_journal([Entry(second, priority=2)], name="b.journal")))
    _review(store, settings)
    prompt = fake.chats()[-1]["messages"][1]["content"]
    recalled = prompt.split("## Similar past issues", 1)[1].split("<<<END DATA>>>", 1)[0]
    lines = [x for x in recalled.splitlines() if x.startswith("(distance")]
    assert "java killed by the OOM killer" in lines[0]
    assert f"review #{first['review_id']}" in lines[0]
    store.dispose()


def test_memory_down_is_a_note_in_the_window_and_the_review_goes_on(tmp_path, make_journal, fake) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(hostname="h1", state_dir=tmp_path / "s", ollama_url=fake.url,
                             memory={"chroma_url": dead})
    store = Store(settings.effective_database_url)
    run_check(store, settings, source=JournalSource.file(make_journal([Entry(OOM.format(pid=1), priority=2)])))
    outcome = _review(store, settings)
    assert outcome["skipped"] is False and outcome["reviewer"] == "ollama"
    prompt = fake.chats()[-1]["messages"][1]["content"]
    assert "semantic memory unavailable" in prompt
    # The reconciler keeps it for later: not remembered yet.
    assert pipeline.remember_step(store, settings, outcome["review_id"])["remembered"] is False
    with store.session() as s:
        review = s.get(Review, outcome["review_id"])
        review.created_at -= timedelta(hours=1)
    assert pipeline.reviews_to_remember(store, settings, timedelta(minutes=3)) == [outcome["review_id"]]
    store.dispose()


def test_the_beat_schedule_has_sar_retention_and_config_index(tmp_path) -> None:
    settings = load_settings(hostname="h1", state_dir=tmp_path, sar_collect_frequency="*:0/5")
    schedule = build_beat_schedule(settings)
    assert schedule["import-sar"]["task"] == "macha.import_sar"
    assert schedule["import-sar"]["schedule"].minute == set(range(0, 60, 5))
    assert schedule["retention"]["task"] == "macha.retention"
    assert schedule["index-config"]["kwargs"] == {"hostname": "h1"}
    off = build_beat_schedule(load_settings(hostname="h1", state_dir=tmp_path, enable_sar=False,
                                            memory={"enable": False}))
    assert "import-sar" not in off and "index-config" not in off and "retention" in off
    assert CHECKS["import-sar"].run(None, load_settings(state_dir=tmp_path, enable_sar=False), "h1").result["skipped"]


def test_reviews_are_remembered_and_config_indexed_by_a_real_worker(state_dir, macha_ai, make_journal,
                                                                  tmp_path) -> None:
    hostname = f"t{os.getpid()}-{state_dir.name[-8:]}"
    nixos = tmp_path / "nixos"
    nixos.mkdir()
    (nixos / "configuration.nix").write_text("{ ... }: {\n  services.nginx.enable = true;\n}\n")
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_MEMORY__ENABLE="true", MACHA_LLM__BACKEND="none",
                    MACHA_MEMORY__CONFIG_PATHS=f'["{nixos}"]')
    ai = macha_ai(env, "--no-beat")
    ai.wait_ready()
    settings = load_settings(hostname=hostname, state_dir=state_dir, llm={"backend": "none"})
    store = Store(settings.effective_database_url)
    run_check(store, settings, hostname=hostname,
              source=JournalSource.file(make_journal([Entry(OOM.format(pid=7), priority=2)])))
    celery = create_app(settings)
    result = (celery.signature("macha.summarize_pending", args=({"hostname": hostname, "reason": "manual"},))
              | celery.signature("macha.review")).apply_async().get(timeout=120)
    review_id = result["review"]["review_id"]
    wait_for(lambda: re.search(r"Task macha\.remember_review\[[0-9a-f-]+\] succeeded", ai.log.read_text()), 90,
             "the remember_review task")
    with store.session() as s:
        assert s.execute(select(Review.remembered_at).where(Review.id == review_id)).scalar() is not None
    indexed = celery.send_task("macha.index_config", kwargs={"hostname": hostname}).get(timeout=120)
    assert indexed["indexed"] is True and indexed["files"] == 1 and indexed["upserted"] == 1
    assert ai.stop() == 0
    # The worker is gone; this process opens the same store and finds what it wrote.
    memory = open_memory(state_dir)
    hits = memory.similar_issues(["java was killed because the machine ran out of memory"], 1, hostname=hostname)
    assert hits and hits[0].metadata["review_id"] == review_id and "OOM" in hits[0].text
    assert memory.similar("config_files", "nginx web server", 1)[0].metadata["path"].endswith("configuration.nix")
    close_memories()
    store.dispose()
