"""The pipeline with real processes: `macha-ai` (Celery worker + beat) over the embedded Redis and over a Redis
server, `macha-check` as an operator runs it, a worker killed with -9 in the middle of a task, and Flower."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import FIXTURES
from helpers.journal import Entry
from helpers.processes import VENV_BIN, free_port, macha_env, run_cli, wait_for
from sqlalchemy import func, select

from macha.store.db import Store
from macha.store.models import JournalCursor, LogEvent, Review, TriggerEvent

pytestmark = pytest.mark.timeout(240)
OOM_JOURNAL = FIXTURES / "oom.journal"
SEGV = "app[{pid}]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in libfoo.so[7f0+1000]"


def broker_env(kind: str, state_dir: Path, request: pytest.FixtureRequest, **extra: str) -> dict[str, str]:
    env = macha_env(state_dir, MACHA_HOSTNAME=f"t{os.getpid()}-{state_dir.name[-8:]}", **extra)
    if kind == "redis-server":
        env["MACHA_BROKER_URL"] = request.getfixturevalue("redis_url")
    return env


@pytest.mark.parametrize("kind", ["embedded", "redis-server"])
def test_macha_check_through_the_pipeline_prints_the_oom(kind, state_dir, macha_ai, request) -> None:
    env = broker_env(kind, state_dir, request)
    ai = macha_ai(env)
    ai.wait_ready()

    proc = run_cli("macha-check", "--journal-file", str(OOM_JOURNAL), env=env)
    assert proc.returncode == 1, proc.stderr
    assert "oom_kill" in proc.stdout and "Out of memory: Killed process 4242" in proc.stdout
    assert re.search(r"critical\s*│\s*1", proc.stdout)
    assert "Rules reviewer (no model was used)" in proc.stdout

    again = run_cli("macha-check", "--journal-file", str(OOM_JOURNAL), "--json", env=env)
    report = json.loads(again.stdout)
    assert (report["entries_read"], report["new_events"]) == (0, 0)
    assert report["review"]["status"] == "critical" and not report["review_is_new"]

    assert ai.stop() == 0
    if kind == "embedded":
        assert not (state_dir / "redis" / "redis.sock").exists()  # the broker stopped with macha-ai
        assert (state_dir / "redis" / "macha.aof").exists()


def test_macha_check_without_a_running_pipeline_says_what_to_do(state_dir) -> None:
    proc = run_cli("macha-check", env=macha_env(state_dir), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not reachable" in proc.stderr and "macha-ai" in proc.stderr and "--local" in proc.stderr




@pytest.mark.parametrize("kind", ["embedded", "redis-server"])
def test_a_task_whose_worker_is_killed_runs_again(kind, state_dir, macha_ai, make_journal, request) -> None:
    total = 20_000
    journal = make_journal([Entry(SEGV.format(pid=i)) for i in range(total)], name="burst.journal")
    # The visibility timeout (how long a Redis server waits before handing a dead worker's task out again) must
    # exceed the task's run time; short here so the test does not wait 15 minutes.
    env = broker_env(kind, state_dir, request, MACHA_JOURNAL_BATCH_SIZE="100",
                     MACHA_BROKER_VISIBILITY_TIMEOUT="30", MACHA_TASK_TIME_LIMIT="28",
                     MACHA_META__TIME_LIMIT="20", MACHA_BROKER_RESTORE_INTERVAL="1",
                     MACHA_LOCK_TTL="5")
    first = macha_ai(env)
    first.wait_ready()
    store = Store(f"sqlite:///{state_dir / 'macha.db'}")

    def progress() -> int:
        with store.session() as s:
            return s.execute(select(func.coalesce(func.max(JournalCursor.entries_read), 0))).scalar()

    waiting = subprocess.Popen(
        [str(VENV_BIN / "macha-check"), "--journal-file", str(journal), "--json", "--timeout", "200"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for(lambda: 0 < progress() < total // 2, 60, "the check to be under way", interval=0.01)
    first.kill_hard()
    at_kill = progress()
    assert 0 < at_kill < total, "the task must have been killed in the middle"
    time.sleep(1)
    assert progress() == at_kill  # nothing runs while no worker is alive

    second = macha_ai(env)
    second.wait_ready()
    out, err = waiting.communicate(timeout=200)
    assert waiting.returncode == 1, err
    report = json.loads(out)
    assert report["entries_read"] == total - at_kill  # resumed at the committed cursor, re-read nothing stored

    with store.session() as s:
        assert s.execute(select(func.count()).select_from(LogEvent)).scalar() == total
        # Every line is counted once in the event groups: none lost to the kill, none counted twice.
        assert s.execute(select(func.sum(TriggerEvent.count))).scalar() == total
        assert s.execute(select(func.count()).where(TriggerEvent.review_id.is_(None))).scalar() == 0
        assert sum(s.execute(select(Review.event_count)).scalars()) == total
    log = second.log.read_text()
    assert re.search(r"Task macha\.check_host\[[0-9a-f-]+\] received", log)
    if kind == "embedded":
        assert "re-queued 1 task" in log
    store.dispose()


def test_flower_sees_tasks_run_by_the_pipeline(state_dir, macha_ai, request) -> None:
    env = broker_env("redis-server", state_dir, request)
    ai = macha_ai(env)
    ai.wait_ready()
    port = free_port()
    flower_log = state_dir / "flower.log"
    flower = subprocess.Popen(
        [str(VENV_BIN / "celery"), "-A", "workers.app", "flower", "--address=127.0.0.1", f"--port={port}",
         "--basic-auth=ops:s3cret"],
        env=env, stdout=open(flower_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    auth = "Basic " + base64.b64encode(b"ops:s3cret").decode()

    def get(path: str, authorization: str | None = auth):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if authorization:
            req.add_header("Authorization", authorization)
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    try:
        wait_for(lambda: _answers(get, "/api/workers"), 60, "Flower to answer", interval=0.3)
        proc = run_cli("macha-check", "--journal-file", str(OOM_JOURNAL), env=env)
        assert proc.returncode == 1, proc.stderr

        def seen():
            tasks = get("/api/tasks")
            names = {t.get("name") for t in tasks.values()}
            return {"macha.check_host", "macha.summarize_pending", "macha.review"} <= names and tasks

        tasks = wait_for(seen, 30, "Flower to list the pipeline's tasks", interval=0.5)
        check = next(t for t in tasks.values() if t["name"] == "macha.check_host")
        assert check["state"] == "SUCCESS"
        with pytest.raises(urllib.error.HTTPError) as denied:
            get("/api/tasks", authorization=None)
        assert denied.value.code == 401
    finally:
        flower.terminate()
        flower.wait(timeout=30)


def _answers(get, path: str) -> bool:
    try:
        get(path)
        return True
    except (OSError, ValueError):
        return False
