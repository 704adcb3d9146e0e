"""Sending an action the policy made ready to its host's worker, from the MCP server process: the same dispatcher
the pipeline's tasks use (workers.dispatch). The server is an interface, like macha/cli, so it may import Celery."""

from __future__ import annotations

import threading

from macha.config import Settings
from macha.core.errors import BrokerError
from macha.core.followups import FollowUps
from macha.mcp.writes import Dispatch


def celery_dispatch(settings: Settings) -> Dispatch:
    lock = threading.Lock()
    app = None

    def send(follow: FollowUps) -> str:
        nonlocal app
        from macha.broker.client import ensure_reachable
        from workers.app import create_app
        from workers.dispatch import dispatch

        try:
            ensure_reachable(settings.effective_broker_url)
            with lock:
                if app is None:
                    app = create_app(settings)
            dispatch(app, follow)
        except BrokerError as exc:
            # Ready in the database either way: the worker's reconciler sends ready actions whose task is missing.
            return f"ready; it runs when the worker is back ({exc})"
        hosts = ", ".join(sorted({host for _, host in follow.execute}))
        return f"sent to the worker of {hosts}" if hosts else "announced"

    return send
