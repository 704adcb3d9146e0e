"""macha-ai: run the pipeline. A worker with embedded beat on this host's queue and the review queue, a worker of
one process for the gpu queue (the meta model), the live journal follower, and (on the embedded default) the Redis
server they need. It supervises them all and stops them cleanly.

Nothing it starts outlives it: the workers and the Redis server get a parent-death signal (`macha.core.lifetime`), so
even `kill -9` of macha-ai takes them along, and each worker runs in a process group of its own that is swept when
the worker has ended.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from macha.broker.client import ensure_reachable, restore_orphaned_messages
from macha.broker.embedded import EmbeddedRedis
from macha.cli.common import parser, run, settings_from, setup_logging
from macha.config import ROLES, Settings
from macha.core.errors import BrokerError, MachaError
from macha.core.lifetime import tied_argv
from macha.store.db import Store, redact
from macha.store.timeseries import setup_timescale

log = logging.getLogger("macha.ai")
#: How often the supervisor looks at its children (a signal to stop is handled at once).
SUPERVISE_EVERY = 2.0
#: The embedded Redis is restarted at most this many times within the window; one more failure stops macha-ai,
#: for its service manager to see.
REDIS_RESTARTS = 5
REDIS_RESTART_WINDOW = 600.0
#: The longest wait before an interface server that keeps ending is started again.
INTERFACE_BACKOFF_MAX = 60.0


def main() -> None:
    p = parser("macha-ai", "Run the Macha pipeline (worker, schedule and, by default, an embedded Redis).")
    p.add_argument("--role", choices=ROLES, default=None,
                   help="what runs here: all (the default: everything on one host), collector (this host's "
                        "checks, follower and actions), brain (schedule, reviews, memory, dashboard, MCP) or gpu "
                        "(the meta model's queue); a fleet's roles share brokerUrl and databaseUrl")
    p.add_argument("--broker", help="Redis URL of the broker (default: the embedded Redis under state_dir)")
    p.add_argument("--database", help="database URL (default: SQLite under state_dir)")
    p.add_argument("--state-dir", help="state directory (default: ~/.local/state/macha)")
    p.add_argument("--concurrency", type=int, help="worker processes (default 2)")
    p.add_argument("--queues", help="comma-separated queues (default: host.<hostname>,review,gpu)")
    p.add_argument("--no-beat", action="store_true", help="do not run the periodic schedule in this process")
    p.add_argument("--loglevel", default=None, help="worker log level (default: log_level setting)")
    p.add_argument("--no-follow", action="store_true",
                   help="do not follow the journal live (checks then run on the schedule only)")
    p.add_argument("--no-web", action="store_true",
                   help="do not start the dashboard (started by default with the schedule when webInterface.enable)")
    p.add_argument("--no-mcp", action="store_true",
                   help="do not start the MCP server (started by default with the schedule when mcpServer.enable)")
    args = p.parse_args()
    run("macha-ai", lambda: _main(args))


def _child_env(args: Any, settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    # The worker loads Settings itself: hand it what the command line overrode.
    env["MACHA_STATE_DIR"] = str(settings.state_dir)
    if args.broker:
        env["MACHA_BROKER_URL"] = args.broker
    if args.database:
        env["MACHA_DATABASE_URL"] = args.database
    if args.concurrency:
        env["MACHA_WORKER_CONCURRENCY"] = str(args.concurrency)
    # The worker builds its schedule (and the import guard of a collector) from the role.
    env["MACHA_ROLE"] = settings.role
    return env


#: What each role runs: its queues ("{host}" is this host's queue), whether the schedule, the journal follower and
#: the interfaces (dashboard, MCP server) run here.
ROLE_PLAN: dict[str, dict[str, Any]] = {
    "all": {"queues": "{host},review,gpu", "beat": True, "follow": True, "interfaces": True},
    "collector": {"queues": "{host}", "beat": True, "follow": True, "interfaces": False},
    "brain": {"queues": "review", "beat": True, "follow": False, "interfaces": True},
    "gpu": {"queues": "gpu", "beat": False, "follow": False, "interfaces": False},
}


def plan_for(settings: Settings, args: Any) -> dict[str, Any]:
    """The role's plan with the command line's narrowing (--queues, --no-beat, --no-follow) applied."""
    from workers.app import host_queue

    plan = dict(ROLE_PLAN[settings.role])
    plan["queues"] = args.queues or plan["queues"].format(host=host_queue(settings.hostname))
    plan["beat"] = plan["beat"] and not args.no_beat
    plan["follow"] = plan["follow"] and settings.live_follow and not args.no_follow
    # The interfaces belong with the schedule (the brain), not on every collector.
    plan["interfaces"] = plan["interfaces"] and not args.no_beat
    if settings.role != "all" and (settings.embedded_broker or settings.database_url is None):
        raise MachaError(f"--role {settings.role} is one part of a fleet: set brokerUrl and databaseUrl (or "
                         "brokerUrlFile and databaseUrlFile) to the Redis and PostgreSQL every role shares")
    return plan


#: Task events for Flower, and an idle worker that stays idle: no gossip (each worker would process the other's
#: heartbeats), no mingle (nothing to sync: Macha revokes no task), and a heartbeat every 10 s rather than 2 s
#: (Flower reads the interval from the events themselves).
QUIET_WORKER = ["--task-events", "--without-gossip", "--without-mingle", "--heartbeat-interval", "10"]


def worker_argvs(settings: Settings, queues: str | None, beat: bool, loglevel: str) -> list[list[str]]:
    """The Celery workers to run: one for the host's and the review queue (with beat), and the gpu queue in a
    worker of its own, one process running one task and holding one message at a time, so that priorities order the
    meta model's work and two analyses never share the model server."""
    from workers.app import host_queue

    wanted = [q.strip() for q in (queues or f"{host_queue(settings.hostname)},review,gpu").split(",") if q.strip()]
    if not wanted:
        raise MachaError("--queues names no queue (e.g. host.NAME,review,gpu)")
    others = [q for q in wanted if q != "gpu"]
    # `celery`, tied to this process and its pool children tied to it (macha.cli.celery_worker).
    celery = [sys.executable, "-m", "macha.cli.celery_worker", str(os.getpid())]
    argvs = []
    if others:
        argv = [
            *celery, "-A", "workers.app", "worker",
            "--queues", ",".join(others),
            "--concurrency", str(settings.worker_concurrency),
            "--hostname", f"macha@{settings.hostname}",
            "--loglevel", loglevel,
            *QUIET_WORKER,
        ]
        if beat:
            argv += ["--beat", "--schedule", str(settings.state_dir / "celerybeat-schedule")]
        argvs.append(argv)
    if "gpu" in wanted:
        argvs.append([
            *celery, "-A", "workers.app", "worker",
            # One process: the solo pool runs the task in the worker itself (no idle pool child holding a second
            # copy of the imports). Celery enforces no time limit there; workers/solo_limits.py does.
            "--queues", "gpu", "--pool", "solo", "--prefetch-multiplier", "1",
            "--hostname", f"gpu@{settings.hostname}",
            "--loglevel", loglevel,
            *QUIET_WORKER,
        ])
    if beat and not others:
        # Beat runs beside a gpu-only worker too: the schedule must run somewhere.
        argvs[-1] += ["--beat", "--schedule", str(settings.state_dir / "celerybeat-schedule")]
    return argvs


def _main(args: Any) -> int:
    settings = settings_from(args, broker_url=args.broker, database_url=args.database, state_dir=args.state_dir,
                             worker_concurrency=args.concurrency, role=args.role)
    setup_logging(args.verbose, "INFO")
    plan = plan_for(settings, args)
    argvs = worker_argvs(settings, plan["queues"], plan["beat"], args.loglevel or settings.log_level)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.effective_database_url)  # migrates, or says plainly why it cannot
    if store.dialect == "postgresql":
        # TimescaleDB when the server has it: hypertables and policies. Never required; what is missing is said.
        status = setup_timescale(store, settings.timescaledb.enable, settings.timescaledb.retention_days)
        (log.info if status.installed else log.warning if settings.timescaledb.enable else log.info)(
            "TimescaleDB: %s", status.note)
    # Imported here, used once: the check modules stay out of the supervisor unless it starts.
    from macha.monitor.checks.fleet import register

    # The fleet registry: this host, its role and facts (a collector's beats follow every triggerInterval).
    register(store, settings, settings.role)
    store.dispose()
    log.info("store: %s", redact(settings.effective_database_url))
    log.info("role: %s (queues %s)", settings.role, plan["queues"])

    embedded = None
    if settings.embedded_broker:
        embedded = EmbeddedRedis(settings.redis_socket.parent, die_with_parent=True)
        embedded.start()
        from workers.app import transport_options

        # This process owns the only worker of the embedded default: whatever the last one left unacknowledged
        # (it was killed) goes back on the queue now rather than after the visibility timeout.
        restore_orphaned_messages(settings.effective_broker_url, transport_options(settings))
    else:
        ensure_reachable(settings.effective_broker_url)
    log.info("broker: %s", settings.effective_broker_url if embedded else "Redis by URL")

    env = _child_env(args, settings)
    embedder = embedding_server(settings)
    children: list[subprocess.Popen] = []
    follower: Follower | None = None
    interfaces: list[InterfaceKeeper] = []
    keeper = RedisKeeper(embedded) if embedded is not None else None
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        # Celery: the first TERM is a warm shutdown (running tasks finish); unacked ones stay queued. A second
        # signal (a second Ctrl-C: the workers, in groups of their own, do not see the terminal's) is a cold one.
        sig = signal.SIGQUIT if stopping else signal.SIGTERM
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(sig)
        if follower is not None:
            follower.request_stop()
        for interface in interfaces:
            interface.request_stop()

    # Before any child starts: a signal while they start still stops them all.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        for argv in argvs:
            if not stopping:
                # A process group of its own: what the worker leaves behind is swept with it (see _end).
                children.append(subprocess.Popen(argv, env=env, process_group=0))
        if plan["follow"] and not stopping:
            follower = Follower(settings)
        if not stopping and plan["interfaces"]:
            interfaces = interface_keepers(settings, env, web=not args.no_web, mcp=not args.no_mcp)
        # One worker ending (crashed, or stopped by a signal) ends macha-ai: its service manager restarts all. The
        # embedded Redis ending does not: it is started again (the workers reconnect), unless it keeps failing.
        broker_lost = False
        while not stopping and all(child.poll() is None for child in children):
            if keeper is not None and not keeper.keep():
                broker_lost = True
                break
            for interface in interfaces:
                interface.keep()
            time.sleep(SUPERVISE_EVERY)
        ended_alone = not stopping
        if ended_alone:
            forward(signal.SIGTERM, None)
        codes = [_end(child) for child in children]
        code = next((c for c in codes if c not in (0, -signal.SIGTERM)), 0)
        if broker_lost:
            code = 1
        elif ended_alone and code == 0 and children:
            # A worker stopped though nobody asked macha-ai to: a service manager must see a failure and restart.
            log.error("a worker stopped on its own (exit codes %s); stopping macha-ai", codes)
            code = 1
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                _end(child)
        if follower is not None:
            follower.stop()
        for interface in interfaces:
            interface.stop()
        if embedder is not None:
            embedder.stop()
        if embedded is not None:
            embedded.stop()
            log.info("embedded Redis stopped")
    return 0 if code in (0, -signal.SIGTERM) else code


def _end(worker: subprocess.Popen) -> int:
    """Wait for a worker, then kill what is left in its process group: a pool child, or a program a task started
    (journalctl, systemctl), whose parent is gone. At once: a group id stays its group's while a member lives, and
    an empty group's id could name another process's group later."""
    code = worker.wait()
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return code


class RedisKeeper:
    """Starts the embedded Redis again when it dies (its append-only file keeps what was queued; the workers'
    broker connections retry and come back): the first time at once, then after 2, 4, 8... s. After
    ``restarts`` failures (deaths or failed starts) within ``window`` seconds it gives up."""

    def __init__(self, server: EmbeddedRedis, restarts: int = REDIS_RESTARTS, window: float = REDIS_RESTART_WINDOW):
        self.server = server
        self.restarts = restarts
        self.window = window
        self.failures: list[float] = []
        self.retry_at: float | None = None

    def keep(self) -> bool:
        """Called on each round of supervision (the main thread: the server is tied to it). False: give up."""
        if self.retry_at is None:
            if self.server.running():  # also reaps a dead server: no zombie is left
                return True
            log.error("the embedded Redis %s", self.server.ended())
            if not self._failed():
                return False
        if time.monotonic() < self.retry_at:
            return True
        try:
            self.server.start()
        except BrokerError as exc:
            log.error("%s", exc)
            return self._failed()
        self.retry_at = None
        log.warning("embedded Redis restarted (%d failure(s) in the last %.0f s)", len(self.failures), self.window)
        return True

    def _failed(self) -> bool:
        now = time.monotonic()
        self.failures = [t for t in self.failures if now - t < self.window] + [now]
        if len(self.failures) > self.restarts:
            log.error("the embedded Redis failed %d times within %.0f s; stopping macha-ai", len(self.failures),
                      self.window)
            return False
        delay = 0.0 if len(self.failures) == 1 else float(2 ** (len(self.failures) - 1))
        self.retry_at = now + delay
        if delay:
            log.warning("starting the embedded Redis again in %.0f s", delay)
        return True


class InterfaceKeeper:
    """An interface server (the dashboard, the MCP server) as a child of macha-ai: restarted with backoff
    when it ends, but never the reason the pipeline stops. A port in use or a bad TLS file is logged (the child
    says why in one line) and tried again, at most every ``INTERFACE_BACKOFF_MAX`` seconds."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name, self.argv, self.env = name, argv, env
        self.proc: subprocess.Popen | None = None
        self.retry_at = 0.0
        self.backoff = 1.0
        self.started = 0.0

    def keep(self) -> None:
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return
            _end(self.proc)
            self.proc = None
            if time.monotonic() - self.started > 60:
                self.backoff = 1.0  # it ran for a while: a fresh failure, not a loop
            log.error("%s stopped (exit code %s); starting it again in %.0f s", self.name, code, self.backoff)
            self.retry_at = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, INTERFACE_BACKOFF_MAX)
        if time.monotonic() >= self.retry_at:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, process_group=0)
            log.info("%s started (pid %s)", self.name, self.proc.pid)

    def request_stop(self) -> None:
        """From a signal handler: ask the child to end, wait for nothing."""
        self.retry_at = float("inf")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        self.retry_at = float("inf")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc is not None:
            _end(self.proc)


def interface_keepers(settings: Settings, env: dict[str, str], *, web: bool = True,
                      mcp: bool = True) -> list[InterfaceKeeper]:
    """The dashboard and the MCP server, in one child process (macha.cli.interfaces): a Python process apiece
    would hold the store, settings and read layer twice."""
    web = web and settings.web_interface.enable
    mcp = mcp and settings.mcp_server.enable
    if not (web or mcp):
        return []
    name = " and ".join(n for n, on in (("the dashboard", web), ("the MCP server", mcp)) if on)
    argv = [sys.executable, "-m", "macha.cli.interfaces", *([] if web else ["--no-web"]), *([] if mcp else ["--no-mcp"])]
    # SIGTERM when macha-ai dies (a parent-death signal, like the workers): uvicorn then closes cleanly.
    return [InterfaceKeeper(name, tied_argv(argv, signal.SIGTERM), env)]


def embedding_server(settings: Settings) -> Any:
    """The offline embedding model, served to the workers from this process (loaded at the first request): one
    ONNX session for the whole tree rather than one per worker process that remembers or recalls."""
    memory = settings.memory
    if not memory.enable or memory.embedding != "onnx":
        return None
    from macha.context.memory.embed_service import EmbeddingServer, socket_path
    from macha.context.memory.embeddings import make_embedding

    state_dir = settings.state_dir
    server = EmbeddingServer(socket_path(state_dir), lambda: make_embedding(state_dir))
    try:
        server.start()
    except OSError as exc:
        # Not needed: each worker then loads the model itself.
        log.warning("cannot serve the embedding model on %s (%s); each worker loads its own", server.path, exc)
        return None
    return server


class Follower:
    """The live journal follower, in a thread of this process: restarted with backoff when it fails."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="journal-follower", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from macha.cli.follow import follow_and_send

        backoff = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                code = follow_and_send(self.settings, self._stop.is_set)
                problem = f"journalctl ended (exit code {code})"
            except MachaError as exc:
                problem = str(exc)
            except Exception as exc:  # noqa: BLE001 - the follower must come back, whatever went wrong
                log.exception("the journal follower failed")
                problem = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set():
                break
            if time.monotonic() - started > 60:
                backoff = 1.0  # it ran for a while: a fresh failure, not a loop
            log.warning("the journal follower stopped (%s); restarting in %.0f s", problem, backoff)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, 60.0)

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=15)


if __name__ == "__main__":  # pragma: no cover
    main()
