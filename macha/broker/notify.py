"""Word on the broker that something was stored: followers (macha-logs --follow, the web dashboard's WebSocket)
wake up and read what is new from the database with their cursor.

The message carries no data, only which host and what kind of thing, so it can be lost without loss: the database
is the record, and a follower that subscribes before its first read and reads after its cursor on every wake-up
misses nothing. Pub/sub, not a stream: nobody needs a notice sent while they were away.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from macha.broker.client import describe, redis_client

log = logging.getLogger(__name__)

#: One channel for every stored thing; ``what`` says which (events today; reviews, approvals... as they join).
CHANNEL = "macha:stored"


class Notifier:
    """Publishes notices; a broker that cannot be reached is said once in the log and then left alone for this
    notifier's life (a check without a broker, ``macha-check --local``, must not wait on it per batch)."""

    def __init__(self, url: str | None):
        self.url = url
        self._client: redis.Redis | None = None
        self._broken = url is None

    def publish(self, what: str, hostname: str, **ids: int) -> None:
        if self._broken:
            return
        try:
            if self._client is None:
                self._client = redis_client(self.url or "", retries=0)
            self._client.publish(CHANNEL, json.dumps({"what": what, "host": hostname, **ids}))
        except (redis.RedisError, OSError) as exc:
            self._broken = True
            log.info("stored-notices off: the broker at %s: %s", describe(self.url or ""), exc)


class Subscription:
    def __init__(self, pubsub: Any):
        self._pubsub = pubsub

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """Notices received within ``timeout`` seconds (the first one waited for, the rest already there)."""
        out: list[dict[str, Any]] = []
        message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        while message is not None:
            try:
                data = json.loads(message["data"])
            except (ValueError, TypeError):
                data = None
            if isinstance(data, dict):
                out.append(data)
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
        return out


@contextmanager
def subscribe(url: str) -> Iterator[Subscription]:
    """Subscribed when entered (before the caller's first read); BrokerError-free: the caller checks reachability."""
    client = redis_client(url, retries=0)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(CHANNEL)
        # Wait for the broker's confirmation: from then on nothing published is missed.
        pubsub.get_message(timeout=5)
        yield Subscription(pubsub)
    finally:
        pubsub.close()
        client.close()
