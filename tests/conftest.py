"""Shared fixtures: real PostgreSQL and Redis servers, SQLite files, real journal files, real Macha processes.
Helpers that are not fixtures live in tests/helpers/, the fakes in tests/fakes/."""

from __future__ import annotations

import os
import signal
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# tests/ on the path: test modules in its sub-folders import helpers.* and fakes.*
sys.path.insert(0, str(Path(__file__).parent))

from helpers.journal import Entry, append_journal, build_journal, have_journal_remote  # noqa: E402
from helpers.processes import MachaAI  # noqa: E402
from helpers.servers import PG_ADMIN_URL, REDIS_URL, unavailable  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"PostgreSQL at {PG_ADMIN_URL} ({exc})")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import psycopg2

    name = f"macha_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_server)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        from macha.store import db as store_db

        for store in list(store_db._stores.values()):
            store.dispose()
        store_db._stores.clear()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'macha.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'macha.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} ({exc})")
    client.flushdb()
    return REDIS_URL


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short path: the embedded broker's unix socket path must fit in 107 bytes.
    path = Path(f"/tmp/macha-t-{uuid.uuid4().hex[:8]}")
    path.mkdir()
    yield path
    sock = path / "redis" / "redis.sock"
    if sock.exists():
        from macha.broker.embedded import EmbeddedRedis

        EmbeddedRedis(sock.parent).stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The recording stand-in `systemctl`, first on PATH (no systemd runs as PID 1 here)."""
    from fakes.systemctl import FakeSystemctl

    stand_in = FakeSystemctl(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{stand_in.bindir}:{os.environ['PATH']}")
    return stand_in


@pytest.fixture
def fake():
    """A fake Ollama server (a real HTTP server speaking its API); the model's context length is asked afresh."""
    from fakes.ollama import FakeOllama

    from macha.review.model_turn import _context_lengths

    server = FakeOllama()
    _context_lengths.clear()
    yield server
    server.close()


@pytest.fixture
def make_journal(tmp_path: Path) -> Callable[..., Path]:
    if not have_journal_remote():
        unavailable("systemd-journal-remote (Debian package systemd-journal-remote)")

    def make(entries: list[Entry], name: str = "test.journal", **kw) -> Path:
        return build_journal(entries, tmp_path / name, **kw)

    return make


@pytest.fixture
def macha_ai(tmp_path: Path) -> Iterator[Callable[..., MachaAI]]:
    started: list[MachaAI] = []

    def start(env: dict[str, str], *args: str) -> MachaAI:
        m = MachaAI(env, list(args), tmp_path / f"macha-ai-{len(started)}.log").start()
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()
        if m.proc is not None and m.proc.poll() is None:
            os.killpg(m.proc.pid, signal.SIGKILL)


@pytest.fixture
def journal_dir(tmp_path: Path, make_journal) -> Path:
    """A journal directory with one entry, to follow or to append to (helpers.journal.append_journal)."""
    d = tmp_path / "journal"
    d.mkdir()
    append_journal(d, [Entry("boot: hello", priority=6)])
    return d
