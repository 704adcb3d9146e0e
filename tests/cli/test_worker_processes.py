"""The Celery workers as `macha-ai` starts them (its argv, through macha.cli.celery_worker), real processes on a
real Redis: the gpu worker is one process and still enforces the task time limits; the main worker's pool child
runs the checks without loading what only the review, memory or the interfaces need."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from helpers.journal import Entry, build_journal
from helpers.processes import macha_env, wait_for

from macha.cli.ai import worker_argvs
from macha.config import load_settings
from workers.app import create_app

pytestmark = pytest.mark.timeout(180)
TESTS = Path(__file__).resolve().parents[1]
#: The time limits the workers get here: soft 10 s (12 - 2), hard 12 s.
HARD_S = 12
SOFT_S = 10


class Worker:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.log = log
        # The probe app: Macha's app and tasks plus the probes (helpers.worker_probe).
        argv = [("helpers.worker_probe" if a == "workers.app" else a) for a in argv]
        self.proc = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                     cwd=TESTS.parent, process_group=0)

    def wait_ready(self) -> None:
        wait_for(lambda: self.proc.poll() is not None or re.search(r"@\S+ ready\.", self.text()), 60,
                 "the worker to be ready")
        assert self.proc.poll() is None, self.text()[-3000:]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass


@pytest.fixture
def start_worker(tmp_path: Path, state_dir: Path, redis_url: str):
    env = macha_env(state_dir, MACHA_HOSTNAME=f"t{os.getpid()}", MACHA_BROKER_URL=redis_url,
                    MACHA_TASK_TIME_LIMIT=str(HARD_S), MACHA_META__TIME_LIMIT="10", MACHA_LLM__BACKEND="none",
                    PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    settings = load_settings(hostname=env["MACHA_HOSTNAME"], state_dir=state_dir, broker_url=redis_url,
                             task_time_limit=HARD_S, meta={"time_limit": 10}, worker_concurrency=1)
    started: list[Worker] = []

    def start(queues: str) -> tuple[Worker, object]:
        [argv] = worker_argvs(settings, queues, beat=False, loglevel="INFO")
        worker = Worker(argv, env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.wait_ready()
        return worker, create_app(settings)

    yield start
    for worker in started:
        worker.stop()


def test_the_gpu_worker_is_one_process_and_a_runaway_task_is_stopped_at_the_soft_limit(start_worker) -> None:
    worker, celery = start_worker("gpu")
    # Solo pool: no pool child, the task runs in the worker itself.
    assert psutil.Process(worker.proc.pid).children(recursive=True) == []

    t0 = time.monotonic()
    with pytest.raises(SoftTimeLimitExceeded):
        celery.send_task("probe.sleep", args=(120,), queue="gpu").get(timeout=60)
    assert time.monotonic() - t0 < HARD_S + 5
    # The worker is still there and runs the next task; the limit of the last one does not hit it.
    assert celery.send_task("probe.sleep", args=(SOFT_S - 2,), queue="gpu").get(timeout=60) == "slept"
    assert worker.proc.poll() is None
    assert celery.send_task("probe.modules", args=(["os"],), queue="gpu").get(timeout=30)["pid"] == worker.proc.pid


def test_a_task_that_ignores_the_soft_limit_is_stopped_at_the_hard_one(start_worker) -> None:
    worker, celery = start_worker("gpu")
    celery.send_task("probe.ignore_soft_limit", args=(120,), queue="gpu")
    t0 = time.monotonic()
    code = worker.proc.wait(timeout=60)
    # Killed (macha-ai then stops and its service manager starts everything again), at the hard limit.
    assert code == -9, worker.text()[-2000:]
    assert HARD_S - 2 < time.monotonic() - t0 + 2 < HARD_S + 10
    assert "ran past its hard time limit" in worker.text()


HEAVY = ["chromadb", "onnxruntime", "tokenizers", "fastapi", "starlette", "uvicorn", "mcp", "tiktoken", "ollama",
         "openai", "jinja2"]


def test_a_check_loads_none_of_the_review_memory_or_interface_libraries(start_worker, tmp_path: Path) -> None:
    worker, celery = start_worker(f"host.t{os.getpid()},review")
    journal = build_journal([Entry("Out of memory: Killed process 4242 (java) total-vm:1024kB", priority=3),
                             Entry("sshd[1]: Failed password for root from 10.0.0.9 port 22 ssh2", priority=5)],
                            tmp_path / "j.journal")
    hostname = f"t{os.getpid()}"
    result = celery.send_task("macha.check_host", kwargs={"hostname": hostname, "journal_file": str(journal)}
                              ).get(timeout=60)
    assert result["check"]["new_triggers"] >= 1, result
    probe = celery.send_task("probe.modules", args=(HEAVY,)).get(timeout=30)
    # The pool's one child ran both (concurrency 1), and it is not the worker itself.
    assert probe["pid"] in [c.pid for c in psutil.Process(worker.proc.pid).children()]
    assert probe["loaded"] == [], probe
