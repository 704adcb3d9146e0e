"""The live feed: word that the pipeline committed something, for whoever shows it as it happens (macha-logs
--follow, the dashboard's WebSocket, the MCP server).

A Redis stream, not pub/sub: every entry has an id that orders it (the sequence number a browser keeps), and a
reader that was away reads on from the last id it saw. An entry says what was stored and for which host (a few ids
and fields to show at once), never the record itself: the database is the truth. The feed keeps the newest
``MAX_ENTRIES``; a reader whose last id was trimmed away is told so and reloads from the database, and a follower
that reads the database after its cursor on every entry misses nothing even if an entry is lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from macha.broker.client import describe, redis_client
from macha.core.states import LiveKind

log = logging.getLogger(__name__)

__all__ = ["Feed", "LiveKind", "STREAM", "last_id", "read_after", "subscribe"]

STREAM = "macha:live"
MAX_ENTRIES = 10_000


class Feed:
    """Adds entries after the rows they name are committed. A broker that cannot be reached is said once in the log
    and then left alone for this feed's life (a check without a broker, ``macha-check --local``, must not wait on it
    per batch): the rows are stored, and readers find them when they resync."""

    def __init__(self, url: str | None):
        self.url = url
        self._client: redis.Redis | None = None
        self._broken = url is None

    def publish(self, kind: LiveKind | str, hostname: str, **fields: Any) -> str | None:
        if self._broken:
            return None
        try:
            if self._client is None:
                self._client = redis_client(self.url or "", retries=0)
            entry = self._client.xadd(
                STREAM, {"kind": str(kind), "data": json.dumps({"what": str(kind), "host": hostname, **fields},
                                                               default=str)},
                maxlen=MAX_ENTRIES, approximate=True)
        except (redis.RedisError, OSError) as exc:
            self._broken = True
            log.info("live feed off: the broker at %s: %s", describe(self.url or ""), exc)
            return None
        return _text(entry)


def last_id(client: redis.Redis) -> str:
    """The newest entry's id, or "0-0" for an empty feed: where a new reader starts."""
    newest = client.xrevrange(STREAM, count=1)
    return _text(newest[0][0]) if newest else "0-0"


def read_after(client: redis.Redis, after: str, block_ms: int = 1000, count: int = 100
               ) -> tuple[list[dict[str, Any]], bool]:
    """Entries after ``after`` (waiting up to ``block_ms`` for the first; 0 waits not at all), and whether entries
    were trimmed away in between (the reader must then reload from the database)."""
    gap = False
    if after != "0-0":
        oldest = client.xrange(STREAM, count=1)
        # Trimmed past what the reader saw: the oldest entry left is newer than its last one.
        gap = bool(oldest) and _seq(_text(oldest[0][0])) > _seq(after)
    found = client.xread({STREAM: after}, count=count, block=block_ms or None) or []
    entries = []
    for _stream, items in found:
        for entry_id, fields in items:
            fields = {_text(k): _text(v) for k, v in fields.items()}
            try:
                data = json.loads(fields.get("data", "{}"))
            except ValueError:
                data = {}
            entries.append({"seq": _text(entry_id), "kind": fields.get("kind", ""),
                            "data": data if isinstance(data, dict) else {}})
    return entries, gap


class Subscription:
    """A reader that started at the feed's end when it subscribed."""

    def __init__(self, client: redis.Redis):
        self._client = client
        self.after = last_id(client)

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """The entries' data added since the last call, waiting up to ``timeout`` seconds for the first."""
        entries, _gap = read_after(self._client, self.after, max(1, int(timeout * 1000)))
        if entries:
            self.after = entries[-1]["seq"]
        return [e["data"] for e in entries]


@contextmanager
def subscribe(url: str) -> Iterator[Subscription]:
    """Reading from the feed's end when entered (before the caller's first database read), so that what is stored
    after that read is announced to it; the caller checks the broker's reachability first."""
    client = redis_client(url, retries=0)
    try:
        yield Subscription(client)
    finally:
        client.close()


def _seq(entry_id: str) -> tuple[int, int]:
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
