"""macha-ai: run the pipeline. One worker with embedded beat on all of this host's queues, plus (on the embedded
default) the Redis server it needs. It supervises both and stops them cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import Any

from macha.broker.client import ensure_reachable, restore_orphaned_messages
from macha.broker.embedded import EmbeddedRedis
from macha.cli.common import parser, run, settings_from, setup_logging
from macha.config import Settings
from macha.store.db import Store, redact

log = logging.getLogger("macha.ai")


def main() -> None:
    p = parser("macha-ai", "Run the Macha pipeline (worker, schedule and, by default, an embedded Redis).")
    p.add_argument("--broker", help="Redis URL of the broker (default: the embedded Redis under state_dir)")
    p.add_argument("--database", help="database URL (default: SQLite under state_dir)")
    p.add_argument("--state-dir", help="state directory (default: ~/.local/state/macha)")
    p.add_argument("--concurrency", type=int, help="worker processes (default 2)")
    p.add_argument("--queues", help="comma-separated queues (default: host.<hostname>,review,gpu)")
    p.add_argument("--no-beat", action="store_true", help="do not run the periodic schedule in this process")
    p.add_argument("--loglevel", default=None, help="worker log level (default: log_level setting)")
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
    return env


def worker_argv(settings: Settings, queues: str | None, beat: bool, loglevel: str) -> list[str]:
    from workers.app import host_queue

    argv = [
        sys.executable, "-m", "celery", "-A", "workers.app", "worker",
        "--queues", queues or f"{host_queue(settings.hostname)},review,gpu",
        "--concurrency", str(settings.worker_concurrency),
        "--hostname", f"macha@{settings.hostname}",
        "--loglevel", loglevel,
        "--task-events",
    ]
    if beat:
        argv += ["--beat", "--schedule", str(settings.state_dir / "celerybeat-schedule")]
    return argv


def _main(args: Any) -> int:
    settings = settings_from(args, broker_url=args.broker, database_url=args.database, state_dir=args.state_dir,
                             worker_concurrency=args.concurrency)
    setup_logging(args.verbose, "INFO")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.effective_database_url)  # migrates, or says plainly why it cannot
    store.dispose()
    log.info("store: %s", redact(settings.effective_database_url))

    embedded = None
    if settings.embedded_broker:
        embedded = EmbeddedRedis(settings.redis_socket.parent)
        embedded.start()
        from workers.app import transport_options

        # This process owns the only worker of the embedded default: whatever the last one left unacknowledged
        # (it was killed) goes back on the queue now rather than after the visibility timeout.
        restore_orphaned_messages(settings.effective_broker_url, transport_options(settings))
    else:
        ensure_reachable(settings.effective_broker_url)
    log.info("broker: %s", settings.effective_broker_url if embedded else "Redis by URL")

    child = subprocess.Popen(
        worker_argv(settings, args.queues, not args.no_beat, args.loglevel or settings.log_level),
        env=_child_env(args, settings),
    )

    def forward(signum: int, _frame: Any) -> None:
        # Celery: the first TERM is a warm shutdown (running tasks finish); unacked ones stay queued.
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        code = child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
        if embedded is not None:
            embedded.stop()
            log.info("embedded Redis stopped")
    return 0 if code in (0, -signal.SIGTERM) else code


if __name__ == "__main__":  # pragma: no cover
    main()
