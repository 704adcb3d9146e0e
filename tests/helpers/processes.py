"""Real Macha processes for tests: its console scripts and a supervised `macha-ai`, with the environment they run in."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def macha_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MACHA_")}
    # This machine's own metrics and services (a full CI disk, a failed unit on a developer's laptop) would add
    # events the journal tests do not expect; the tests that want them send those tasks themselves. Likewise SAR
    # imports, semantic memory (each worker would load the embedding model) and background analyses (they would
    # take a fake model server's scripted answers), and the MCP server (each macha-ai would bind port 8081): tests
    # that want them say so.
    env.update({"MACHA_STATE_DIR": str(state), "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
                "MACHA_COLLECT_METRICS": "false", "MACHA_CHECK_SERVICES": "false", "MACHA_ENABLE_SAR": "false",
                "MACHA_MEMORY__ENABLE": "false", "MACHA_META__BACKGROUND_INTERVAL": "0",
                # Every macha-ai would start a dashboard on port 8080 and an MCP server on 8081: the tests of
                # the interfaces start theirs.
                "MACHA_WEB_INTERFACE__ENABLE": "false", "MACHA_MCP_SERVER__ENABLE": "false"})
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
            role = self.args[self.args.index("--role") + 1] if "--role" in self.args else "all"
            by_role = {"all": ["gpu", "x"], "collector": ["x"], "brain": ["review"], "gpu": ["gpu"]}
            queues = self.args[self.args.index("--queues") + 1].split(",") if "--queues" in self.args else by_role[role]
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
