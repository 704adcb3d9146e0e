"""Shared fixtures: real PostgreSQL and Redis servers, SQLite files, real journal files, real Macha processes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from journal_export import Entry, build_journal, have_journal_remote  # noqa: E402

PG_ADMIN_URL = os.environ.get("MACHA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MACHA_TEST_REDIS", "redis://127.0.0.1:6379/13")
# CI sets this: a missing server is then a failure, not a skip.
REQUIRE = os.environ.get("MACHA_TEST_REQUIRE_SERVICES") == "1"
FIXTURES = Path(__file__).parent / "fixtures"
VENV_BIN = Path(sys.executable).parent


def _unavailable(what: str) -> None:
    if REQUIRE:
        pytest.fail(f"{what} is not available and MACHA_TEST_REQUIRE_SERVICES=1")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"PostgreSQL at {PG_ADMIN_URL} ({exc})")
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
        _unavailable(f"Redis at {REDIS_URL} ({exc})")
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
    from standin import FakeSystemctl

    stand_in = FakeSystemctl(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{stand_in.bindir}:{os.environ['PATH']}")
    return stand_in


@pytest.fixture
def fake():
    """A fake Ollama server (a real HTTP server speaking its API); the model's context length is asked afresh."""
    from fake_ollama import FakeOllama

    from macha.review.model_turn import _context_lengths

    server = FakeOllama()
    _context_lengths.clear()
    yield server
    server.close()


@pytest.fixture
def make_journal(tmp_path: Path) -> Callable[..., Path]:
    if not have_journal_remote():
        _unavailable("systemd-journal-remote (Debian package systemd-journal-remote)")

    def make(entries: list[Entry], name: str = "test.journal", **kw) -> Path:
        return build_journal(entries, tmp_path / name, **kw)

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def macha_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MACHA_")}
    # This machine's own metrics and services (a full CI disk, a failed unit on a developer's laptop) would add
    # events the journal tests do not expect; the tests that want them send those tasks themselves. Likewise SAR
    # imports, semantic memory (each worker would load the embedding model) and background analyses (they would
    # take a fake model server's scripted answers): tests that want them say so.
    env.update({"MACHA_STATE_DIR": str(state), "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
                "MACHA_COLLECT_METRICS": "false", "MACHA_CHECK_SERVICES": "false", "MACHA_ENABLE_SAR": "false",
                "MACHA_MEMORY__ENABLE": "false", "MACHA_META__BACKGROUND_INTERVAL": "0"})
    env.update(extra)
    return env


class MachaAI:
    """A real `macha-ai` process (supervisor, Celery worker, embedded beat and possibly embedded Redis)."""

    def __init__(self, env: dict[str, str], args: list[str], log: Path):
        self.env, self.args, self.log = env, args, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> MachaAI:
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "macha-ai"), *self.args],
            env=self.env,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"macha-ai exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            text = self.log.read_text(errors="replace")
            # Both workers: the main one (host and review queues) and the gpu one, unless --queues chose.
            queues = self.args[self.args.index("--queues") + 1].split(",") if "--queues" in self.args else ["gpu", "x"]
            wanted = (["gpu@"] if "gpu" in queues else []) + (["macha@"] if set(queues) - {"gpu"} else [])
            if all(re.search(rf"{w}\S* ready\.", text) for w in wanted):
                return
            time.sleep(0.2)
        raise AssertionError(f"macha-ai not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill_hard(self) -> None:
        """SIGKILL the supervisor and every process under it at once, the programs its tasks started too (the
        embedded Redis ends through its parent-death signal, after writing its append-only file)."""
        import psutil

        assert self.proc is not None
        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        os.killpg(self.proc.pid, signal.SIGKILL)
        for child in tree:
            try:
                if child.name() != "redis-server":
                    child.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()


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


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll until predicate() is truthy and return its value; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def run_cli(*argv: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]], env=env, capture_output=True, text=True, timeout=timeout
    )


__all__ = ["Entry", "MachaAI", "free_port", "macha_env", "run_cli", "wait_for", "FIXTURES"]
