"""Talking to the broker's Redis directly: reachability, single-flight locks, recovery of orphaned messages."""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlparse

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from macha.core.errors import BrokerError

log = logging.getLogger(__name__)


def redis_client(url: str, retries: int = 3) -> redis.Redis:
    retry = Retry(ExponentialBackoff(cap=2), retries) if retries else Retry(NoBackoff(), 0)
    if url.startswith(("redis+socket://", "unix://")):
        return redis.Redis(unix_socket_path=urlparse(url).path, socket_timeout=10, retry=retry)
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, retry=retry)


def describe(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def ensure_reachable(url: str, hint: str = "") -> None:
    try:
        redis_client(url, retries=0).ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise BrokerError(f"the broker at {describe(url)} is not reachable ({exc}){hint}") from None
    except redis.AuthenticationError as exc:
        raise BrokerError(f"the broker at {describe(url)} refused the credentials ({exc})") from None


def restore_orphaned_messages(url: str, transport_options: dict) -> int:
    """Put every delivered-but-unacknowledged message back on its queue at once.

    Only safe when no other worker is alive (the embedded default at start-up): the owners of these messages
    died, and waiting for the visibility timeout would only delay their work.
    """
    from kombu import Connection

    with Connection(url, transport_options={**transport_options, "visibility_timeout": 0}) as conn:
        channel = conn.default_channel
        client = channel.client
        index_key = channel.unacked_index_key
        before = client.zcard(index_key)
        remaining = before
        while remaining:
            channel.qos.restore_visible(num=1000, interval=1)
            now = client.zcard(index_key)
            if now >= remaining:
                break
            remaining = now
        restored = before - remaining
    if restored:
        log.warning("re-queued %d task(s) left unacknowledged by a worker that died", restored)
    return restored


class SingleFlight:
    """At most one holder per name across every worker: a Redis lock with a short expiry that a live holder keeps
    renewing, so that the lock of a holder killed with -9 frees itself within ``ttl`` seconds, while a long task
    keeps it as long as it runs."""

    def __init__(self, url: str, name: str, ttl: float = 30):
        # Not thread-local: the renewing thread must see the token the holder acquired.
        self._lock = redis_client(url).lock(f"macha:lock:{name}", timeout=ttl, blocking=False, thread_local=False)
        self._ttl = ttl
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.acquired = False

    def __enter__(self) -> SingleFlight:
        self.acquired = bool(self._lock.acquire(blocking=False))
        if self.acquired:
            self._renewer = threading.Thread(target=self._renew, name="single-flight-renew", daemon=True)
            self._renewer.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                self._lock.reacquire()
            except (redis.exceptions.LockError, redis.RedisError) as exc:
                log.warning("could not renew single-flight lock %s: %s", self._lock.name, exc)
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.acquired:
            try:
                self._lock.release()
            except redis.exceptions.LockError:
                log.warning("single-flight lock %s expired before its holder finished", self._lock.name)
