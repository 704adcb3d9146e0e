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
from macha.meta.chat import stream_key
from macha.store.db import Store
from macha.web.auth import WebSession

log = logging.getLogger(__name__)

_SEQ = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
#: How long one read of the feed waits for news before it looks whether the browser has gone.
BLOCK_MS = 1000
#: While a chat answer streams, the feed is read without waiting long, so tokens flow as they are written.
CHAT_BLOCK_MS = 50
#: Chat answers one page may wait for at once.
MAX_CHATS = 8


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
            await self._pump(socket, client, start, session)
        except WebSocketDisconnect:
            pass
        except (ValueError, json.JSONDecodeError):
            with contextlib.suppress(Exception):
                await socket.close(code=1003)
        finally:
            if self.sockets.get(session.id) is socket:
                del self.sockets[session.id]

    async def _pump(self, socket: WebSocket, client: redis.Redis, after: str | None, session: WebSession) -> None:
        #: The chat answers this page waits for: message id -> the last stream entry sent.
        chats: dict[int, str] = {}
        closed = asyncio.create_task(self._listen(socket, session, chats))
        try:
            while not closed.done():
                if chats:
                    await self._chat(socket, client, chats)
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
                    entries, gap = await anyio.to_thread.run_sync(live.read_after, client, after,
                                                                  CHAT_BLOCK_MS if chats else BLOCK_MS)
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
    async def _listen(socket: WebSocket, session: WebSession, chats: dict[int, str]) -> None:
        """What the page asks for after its hello: the stream of a chat answer it is waiting for (operators only,
        as only they may chat). Returns when the browser has gone."""
        with contextlib.suppress(Exception):
            while True:
                try:
                    asked = json.loads(await socket.receive_text())
                except ValueError:
                    continue
                if (isinstance(asked, dict) and asked.get("type") == "chat" and session.may_act
                        and isinstance(asked.get("message_id"), int) and 0 < asked["message_id"] < 2**63
                        and len(chats) < MAX_CHATS):
                    chats.setdefault(asked["message_id"], "0-0")

    @staticmethod
    async def _chat(socket: WebSocket, client: redis.Redis, chats: dict[int, str]) -> None:
        streams = {stream_key(m): last for m, last in chats.items()}
        try:
            found = await anyio.to_thread.run_sync(lambda: client.xread(streams, count=200, block=1) or [])
        except (redis.RedisError, OSError):
            return
        for key, items in found:
            message_id = int((key.decode() if isinstance(key, bytes) else key).rsplit(":", 1)[1])
            for entry_id, fields in items:
                chats[message_id] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                kind = fields.get(b"type", b"").decode()
                await socket.send_json({"type": "chat", "message_id": message_id, "kind": kind,
                                        "text": fields.get(b"text", b"").decode(errors="replace")})
                if kind in ("done", "error"):
                    chats.pop(message_id, None)
