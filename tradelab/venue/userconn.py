"""One user-data websocket client (WebSocket API or listenKey stream): a bounded outgoing
queue with its own sender task, fed synchronously by the user-data bus.

Nothing a client is owed is dropped silently: a client whose queue fills up (it stopped reading)
is disconnected with close code 1008, as Binance drops slow consumers, and the log says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from aiohttp import web

log = logging.getLogger("tradelab.venue")

CLOSE_TIMEOUT_S = 5.0


class UserSocket:
    """A websocket the venue pushes user data to."""

    def __init__(self, ws: web.WebSocketResponse, maxsize: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.closed = False
        self.sent = 0
        self._sender = asyncio.create_task(self._send_loop())
        self._closing: asyncio.Task | None = None

    def push(self, message: dict) -> None:
        """Queue a JSON message for the client (never blocks)."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(orjson.dumps(message).decode())
        except asyncio.QueueFull:
            log.warning("user-data client too slow: disconnecting it (queue of %d full)",
                        self.queue.maxsize)
            self.drop(1008, "slow consumer")

    def drop(self, code: int = 1001, reason: str = "venue fault: user-data disconnect") -> None:
        """Close the connection in the background (safe to call from a sync callback)."""
        if self.closed:
            return
        self.closed = True
        self._closing = asyncio.get_running_loop().create_task(
            self._close(code, reason.encode()))

    async def _close(self, code: int, message: bytes) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=message), CLOSE_TIMEOUT_S)

    async def _send_loop(self) -> None:
        while True:
            frame = await self.queue.get()
            await self.ws.send_str(frame)
            self.sent += 1

    async def flush(self, timeout_s: float = 1.0) -> None:
        """Wait (briefly) until what is queued has been sent."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while not self.queue.empty() and not self._sender.done() and loop.time() < end:
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop the sender and finish a pending close."""
        self.closed = True
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # the client may be gone
            await self._sender
        if self._closing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._closing
