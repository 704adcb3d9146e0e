"""One WebSocket per browser session: the live feed pushed as it comes, with sequence numbers.

The page says the last sequence it saw when it (re)connects; entries after it are sent first, so a reconnect misses
nothing the feed still holds. When the feed was trimmed past it, or the broker is down, the page is told to resync
(reload its data from the database, which is the truth), never left silently stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import redis
from fastapi import WebSocket, WebSocketDisconnect

from macha.broker import live
from macha.broker.client import redis_client
from macha.config import Settings
from macha.store.db import Store
from macha.web.auth import WebSession

log = logging.getLogger(__name__)

_SEQ = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
#: How long one read of the feed waits for news before it looks whether the browser has gone.
BLOCK_MS = 1000


class Live:
    def __init__(self, settings: Settings, store: Store):
        self.url = settings.effective_broker_url
        self.store = store
        #: Session id -> its open socket: a second socket of one session replaces the first.
        self.sockets: dict[str, WebSocket] = {}

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        yield
        for socket in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                await socket.close(code=1001)

    async def serve(self, socket: WebSocket, session: WebSession) -> None:
        await socket.accept()
        old = self.sockets.pop(session.id, None)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close(code=4409, reason="opened in another tab")
        self.sockets[session.id] = socket
        try:
            hello = await socket.receive_json()
            after = hello.get("after") if isinstance(hello, dict) else None
            client = redis_client(self.url, retries=0)
            try:
                start = await anyio.to_thread.run_sync(live.last_id, client)
            except (redis.RedisError, OSError) as exc:
                await socket.send_json({"type": "resync", "why": f"the broker is not answering: {exc}"})
                start = None
            if isinstance(after, str) and _SEQ.fullmatch(after):
                start = after
            await socket.send_json({"type": "hello", "seq": start, "account": session.account})
            await self._pump(socket, client, start)
        except WebSocketDisconnect:
            pass
        except (ValueError, json.JSONDecodeError):
            with contextlib.suppress(Exception):
                await socket.close(code=1003)
        finally:
            if self.sockets.get(session.id) is socket:
                del self.sockets[session.id]

    async def _pump(self, socket: WebSocket, client: redis.Redis, after: str | None) -> None:
        closed = asyncio.create_task(self._until_closed(socket))
        try:
            while not closed.done():
                if after is None:
                    # No broker at the start: try again, and resync once it answers.
                    await asyncio.sleep(BLOCK_MS / 1000)
                    try:
                        after = await anyio.to_thread.run_sync(live.last_id, client)
                    except (redis.RedisError, OSError):
                        continue
                    await socket.send_json({"type": "resync", "why": "the broker is back", "seq": after})
                    continue
                try:
                    entries, gap = await anyio.to_thread.run_sync(live.read_after, client, after, BLOCK_MS)
                except (redis.RedisError, OSError) as exc:
                    await socket.send_json({"type": "resync", "why": f"the broker is not answering: {exc}"})
                    after = None
                    continue
                if gap:
                    await socket.send_json({"type": "resync", "why": "missed entries were trimmed"})
                for entry in entries:
                    await socket.send_json({"type": "entry", **entry})
                    after = entry["seq"]
        finally:
            closed.cancel()

    @staticmethod
    async def _until_closed(socket: WebSocket) -> None:
        with contextlib.suppress(Exception):
            while True:
                await socket.receive_text()
