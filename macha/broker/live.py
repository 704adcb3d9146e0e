"""The live feed: what the pipeline committed, for the pages and commands that show it as it happens.

A Redis stream, not pub/sub: every entry has an id that orders it (the sequence number a browser keeps), and a
reader that was away reads on from the last id it saw. The feed is a doorbell with a short memory (the newest
``MAX_ENTRIES``); the database is the truth, so a reader whose id has been trimmed away reloads from it.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from typing import Any

import redis

from macha.broker.client import redis_client

log = logging.getLogger(__name__)

STREAM = "macha:live"
MAX_ENTRIES = 10_000


class LiveKind(StrEnum):
    """What an entry is about (the payload says which rows: ids, host, a few fields to show at once)."""

    EVENTS = "events"  # new log and trigger events of a host
    REVIEW = "review"
    ANALYSIS = "analysis"
    APPROVAL = "approval"  # an action queued, approved, rejected or expired
    ACTION = "action"  # an action's outcome
    METRICS = "metrics"  # a sample of a host's metrics
    CHAT = "chat"  # a chat reply's tokens


def publish(url: str, kind: str, payload: dict[str, Any]) -> str | None:
    """Add one entry after the rows it names are committed. A broker that is down loses the doorbell only: the
    rows are stored, and readers find them when they resync. Returns the entry's id."""
    try:
        entry = redis_client(url, retries=0).xadd(
            STREAM, {"kind": kind, "data": json.dumps(payload, default=str)}, maxlen=MAX_ENTRIES, approximate=True
        )
    except (redis.RedisError, OSError) as exc:
        log.info("live feed not told of %s: %s", kind, exc)
        return None
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def last_id(client: redis.Redis) -> str:
    """The newest entry's id, or "0-0" for an empty feed: where a new reader starts."""
    newest = client.xrevrange(STREAM, count=1)
    return _text(newest[0][0]) if newest else "0-0"


def read_after(client: redis.Redis, after: str, block_ms: int = 1000, count: int = 100
               ) -> tuple[list[dict[str, Any]], bool]:
    """Entries after ``after`` (waiting up to ``block_ms`` for the first), and whether entries were trimmed away
    in between (the reader must then reload from the database)."""
    gap = False
    if after != "0-0":
        oldest = client.xrange(STREAM, count=1)
        # Trimmed past what the reader saw: the oldest entry left is newer than its last one.
        gap = bool(oldest) and _seq(_text(oldest[0][0])) > _seq(after)
    found = client.xread({STREAM: after}, count=count, block=block_ms) or []
    entries = []
    for _stream, items in found:
        for entry_id, fields in items:
            fields = {_text(k): _text(v) for k, v in fields.items()}
            try:
                data = json.loads(fields.get("data", "{}"))
            except ValueError:
                data = {}
            entries.append({"seq": _text(entry_id), "kind": fields.get("kind", ""), "data": data})
    return entries, gap


def _seq(entry_id: str) -> tuple[int, int]:
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
