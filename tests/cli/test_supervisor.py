"""`macha-ai` as a supervisor, with real processes: the embedded Redis killed with -9 is started again (its
append-only file keeps what was queued) or, when it keeps failing, macha-ai stops with an error; and nothing it
started outlives it, whichever process of the tree is killed with -9."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from helpers.journal import Entry
from helpers.journal import append_journal as append
from helpers.processes import macha_env, wait_for
from helpers.store import review_of

from macha.broker.embedded import EmbeddedRedis
from macha.config import load_settings
from macha.store.db import Store
from workers.app import create_app

pytestmark = pytest.mark.timeout(240)
PANIC = "Kernel panic - not syncing: Fatal exception in interrupt"
#: A queue no worker of these tests consumes: a message sent there waits in Redis through whatever happens.
ELSEWHERE = "elsewhere"


@pytest.fixture
def env(state_dir, journal_dir) -> dict[str, str]:
    return macha_env(state_dir, MACHA_HOSTNAME=f"t{os.getpid()}-{state_dir.name[-8:]}",
                     MACHA_JOURNAL_DIRECTORY=str(journal_dir), MACHA_TRIGGER_INTERVAL="3600",
                     MACHA_REVIEW_INTERVAL="3600", MACHA_LLM__BACKEND="none")


def alive(proc: psutil.Process) -> bool:
    """Running, and not a zombie (a dead child nobody reaped, or an orphan the container's PID 1 does not reap)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def dead_unreaped(pid: int) -> bool:
    """A child of this process that has ended and waits to be reaped (not reaped here: WNOWAIT). Its status reads
    zombie sooner, while its other threads (Redis's fsync thread) are still ending."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def redis_servers(supervisor: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(supervisor).children() if p.name() == "redis-server"]


def queue_elsewhere(env: dict[str, str]) -> None:
    settings = load_settings(hostname=env["MACHA_HOSTNAME"], state_dir=Path(env["MACHA_STATE_DIR"]))
    create_app(settings).send_task("macha.collect_metrics", kwargs={"hostname": ELSEWHERE})


def queued_elsewhere(state_dir: Path) -> int:
    client = EmbeddedRedis(state_dir / "redis").client()
    # One list per priority (host.elsewhere, host.elsewhere:5, ...).
    return sum(client.llen(key) for key in client.scan_iter(match=f"host.{ELSEWHERE}*")
               if client.type(key) == b"list")


def test_a_killed_embedded_redis_is_started_again_and_loses_nothing(state_dir, env, journal_dir, macha_ai) -> None:
    ai = macha_ai(env)
    ai.wait_ready()
    wait_for(lambda: "following the journal" in ai.log.read_text(), 30, "the follower to start")
    queue_elsewhere(env)
    assert queued_elsewhere(state_dir) == 1

    [first] = redis_servers(ai.proc.pid)
    first.send_signal(signal.SIGKILL)
    again = wait_for(lambda: [p for p in redis_servers(ai.proc.pid) if p.pid != first.pid], 15,
                     "macha-ai to start a new redis-server")
    assert len(again) == 1
    wait_for(lambda: "embedded Redis restarted" in ai.log.read_text(), 15, "the new redis-server to answer")
    wait_for(lambda: not alive(first) and not psutil.pid_exists(first.pid), 10, "the dead redis-server to be reaped")
    assert queued_elsewhere(state_dir) == 1  # the append-only file brought it back
    log = ai.log.read_text()
    assert f"the embedded Redis (pid {first.pid}) was killed by SIGKILL" in log

    # The pipeline carries on: the workers reconnect, a task runs, the follower's critical line is reviewed.
    settings = load_settings(hostname=env["MACHA_HOSTNAME"], state_dir=state_dir)
    done = create_app(settings).send_task("macha.collect_metrics", kwargs={"hostname": env["MACHA_HOSTNAME"]})
    assert done.get(timeout=90)["samples"] >= 5
    append(journal_dir, [Entry(PANIC, priority=0)])
    store = Store(f"sqlite:///{state_dir / 'macha.db'}")

    assert wait_for(lambda: review_of(store, "kernel_panic"), 60, "a review of the panic").status == "critical"
    store.dispose()
    assert ai.stop() == 0
    assert not alive(again[0])


def test_a_redis_that_keeps_failing_stops_macha_ai_with_an_error(state_dir, env, macha_ai) -> None:
    ai = macha_ai(env)
    ai.wait_ready()
    [server] = redis_servers(ai.proc.pid)
    tree = [psutil.Process(ai.proc.pid), *psutil.Process(ai.proc.pid).children(recursive=True)]
    # An append-only file Redis refuses: every start fails, with a back-off between them (2, 4, 8, 16 s).
    (state_dir / "redis" / "macha.aof").write_bytes(b"not an append-only file\n")
    server.send_signal(signal.SIGKILL)
    started = time.monotonic()
    assert ai.proc.wait(timeout=120) == 1
    assert time.monotonic() - started > 25  # it tried again for a while, then gave up
    log = ai.log.read_text()
    assert "the embedded Redis exited at start (code 1): Bad file format reading the append only file" in log
    assert "starting the embedded Redis again in 16 s" in log
    assert "failed 6 times within 600 s; stopping macha-ai" in log
    wait_for(lambda: not any(alive(p) for p in tree), 10, "every process of macha-ai to end")


def test_the_keeper_restarts_reaps_and_gives_up(state_dir) -> None:
    from macha.cli.ai import RedisKeeper

    server = EmbeddedRedis(state_dir / "redis", die_with_parent=True)
    server.start()
    keeper = RedisKeeper(server, restarts=2, window=60)
    assert keeper.keep() and keeper.failures == []
    first = server.proc
    server.client().rpush("review", b"task-1")
    first.kill()
    wait_for(lambda: dead_unreaped(first.pid), 5, "the server to die")
    assert keeper.keep()  # reaped and started again at once
    assert first.returncode == -signal.SIGKILL and not psutil.pid_exists(first.pid)
    assert server.proc.pid != first.pid and server.client().lrange("review", 0, -1) == [b"task-1"]

    (server.dir / "macha.aof").write_bytes(b"not an append-only file\n")
    second = server.proc
    second.kill()
    wait_for(lambda: dead_unreaped(second.pid), 5, "the server to die")
    assert keeper.keep() and len(keeper.failures) == 2  # dead again: the next try waits 2 s
    assert keeper.keep() and len(keeper.failures) == 2
    time.sleep(2.1)
    assert keeper.keep() is False  # that start failed too: a third failure within the window
    assert not server.running() and not server.ping()


def test_a_killed_worker_takes_its_pool_children_along(state_dir, env, macha_ai) -> None:
    ai = macha_ai(env)
    ai.wait_ready()
    supervisor = psutil.Process(ai.proc.pid)
    [worker] = [p for p in supervisor.children() if f"macha@{env['MACHA_HOSTNAME']}" in p.cmdline()]
    # Its two pool children and the embedded beat.
    pool = wait_for(lambda: len(children := worker.children()) == 3 and children, 30,
                    "the worker's pool children and beat")
    tree = [supervisor, *supervisor.children(recursive=True)]

    worker.send_signal(signal.SIGKILL)
    wait_for(lambda: not any(alive(p) for p in pool), 10, "the pool children to end with their worker")
    # A worker ended on its own: macha-ai stops the rest and says so; nothing of its tree is left.
    assert ai.proc.wait(timeout=60) != 0
    wait_for(lambda: not any(alive(p) for p in tree), 10, "every process of macha-ai to end")


def test_nothing_outlives_a_killed_macha_ai_and_nothing_queued_is_lost(state_dir, env, macha_ai) -> None:
    ai = macha_ai(env)
    ai.wait_ready()
    wait_for(lambda: "following the journal" in ai.log.read_text(), 30, "the follower to start")
    queue_elsewhere(env)
    supervisor = psutil.Process(ai.proc.pid)
    tree = supervisor.children(recursive=True)
    names = sorted(p.name() for p in tree)
    # Redis, journalctl, the worker with its beat and two pool children, the gpu worker (one process): 7.
    assert "redis-server" in names and "journalctl" in names and len(tree) >= 7, names

    supervisor.send_signal(signal.SIGKILL)  # the supervisor alone, not its process group
    ai.proc.wait()
    wait_for(lambda: not any(alive(p) for p in tree), 15, "every process macha-ai started to end")
    left = [p for p in tree if alive(p)]
    assert not left, [p.cmdline() for p in left]

    # Redis was stopped by a signal it handles (its append-only file written): the next macha-ai finds the queue
    # as it was.
    second = macha_ai(env)
    second.wait_ready()
    assert queued_elsewhere(state_dir) == 1
    assert second.stop() == 0
