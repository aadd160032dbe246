"""The venue's WebSocket API, ``/ws-api/v3``: signed order entry and the user-data stream.

Requests are ``{"id", "method", "params"}``; answers ``{"id", "status", "result" | "error",
"rateLimits"}`` (``rateLimits`` left out when the request says ``returnRateLimits: false``).
Methods: ``order.place``, ``order.cancel``, ``order.status`` (the same orders and answers as
``/api/v3``), ``userDataStream.subscribe.signature`` (what ccxt.pro's ``watch_orders`` and
``watch_balance`` use) and ``userDataStream.unsubscribe``. Signed requests carry ``apiKey``,
``timestamp`` and ``signature`` (HMAC-SHA256 over the other params sorted by name; the venue's
accounts have HMAC secrets only, so Ed25519/RSA signatures and ``session.logon`` are not
offered). The account's events then arrive as ``{"subscriptionId": N, "event": {...}}`` on the
same connection. Each request charges its weight to the venue's shared per-minute limiter.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from tradelab.adapters.binance import trading as wire
from tradelab.adapters.binance import userdata
from tradelab.matching.types import A_CANCEL, A_PLACE
from tradelab.venue import signed
from tradelab.venue.accounts import Account
from tradelab.venue.core import Venue
from tradelab.venue.userconn import UserSocket

log = logging.getLogger("tradelab.venue")

WS_API_PATH = "/ws-api/v3"
MAX_FRAME_BYTES = 64 * 1024

Charge = Callable[[int], tuple[bool, int]]


class WsApiSession:
    """One WebSocket API connection: answers its requests and holds its subscriptions."""

    def __init__(self, venue: Venue, sock: UserSocket, charge: Charge, per_minute: int,
                 clock_ms: Callable[[], int] = signed.wall_ms) -> None:
        self.venue = venue
        self.sock = sock
        self.charge = charge
        self.per_minute = per_minute
        self.clock_ms = clock_ms
        self.subscriptions: dict[int, int] = {}  # subscriptionId -> bus token
        self._ids = itertools.count(0)

    async def handle(self, text: str) -> dict:
        """The answer to one request frame (order actions after the venue's latency, as on
        REST)."""
        try:
            raw = json.loads(text)
        except ValueError:
            return userdata.ws_error(None, wire.BinanceError(
                400, -1100, "Illegal request: the frame is not valid JSON."), None)
        try:
            req = userdata.parse_ws_request(raw)
        except wire.BinanceError as exc:
            return userdata.ws_error(raw.get("id") if isinstance(raw, dict) else None, exc, None)
        weight = userdata.WS_WEIGHT.get(req.method)
        if weight is None:
            return userdata.ws_error(req.id, wire.BinanceError(
                400, -1020, f"Unsupported method '{req.method[:60]}'."), None)
        ok, used = self.charge(weight)
        limits = None if str(req.params.get("returnRateLimits", "")).lower() == "false" \
            else userdata.rate_limits(used, self.per_minute)
        faults = self.venue.faults
        if faults.rate_limit > 0 or not ok:
            if faults.rate_limit > 0:
                faults.rate_limit -= 1
                faults.fired["rate_limit"] += 1
            return userdata.ws_error(req.id, wire.BinanceError(
                429, -1003, "Too many requests; current limit of IP is "
                            f"{self.per_minute} request weight per 1 MINUTE."), limits)
        try:
            result = await self._dispatch(req)
        except wire.BinanceError as exc:
            log.info("ws-api %s refused: %d", req.method, exc.code)
            return userdata.ws_error(req.id, exc, limits)
        except Exception:  # a venue bug: answer it as Binance does, keep the connection
            log.exception("ws-api %s failed", req.method)
            return userdata.ws_error(req.id, wire.BinanceError(
                500, -1000, "An unknown error occurred while processing the request."), limits)
        return userdata.ws_result(req.id, result, limits)

    def _signed(self, params: dict[str, Any]) -> tuple[Account, dict[str, str]]:
        """The account a signed request speaks for and its params as strings."""
        key = params.get("apiKey")
        if not isinstance(key, str) or not key:
            raise wire.missing("apiKey")
        acc = self.venue.accounts.get(key)
        if acc is None:
            raise wire.BinanceError(401, -2015, wire.MSG_BAD_KEY)
        userdata.check_ws_signature(params, acc.secret)
        strings = userdata.ws_params(params)
        wire.check_timestamp(strings, self.clock_ms())
        return acc, strings

    async def _dispatch(self, req: userdata.WsRequest) -> object:
        if req.method == "userDataStream.unsubscribe":
            return self._unsubscribe(req.params)
        acc, params = self._signed(req.params)
        if req.method == "order.place":
            return await self.venue.gate.call(
                A_PLACE, lambda: signed.post_order(self.venue, acc, params))
        if req.method == "order.cancel":
            return await self.venue.gate.call(
                A_CANCEL, lambda: signed.delete_order(self.venue, acc, params))
        if req.method == "order.status":
            return signed.get_order(self.venue, acc, params)
        assert req.method == "userDataStream.subscribe.signature"
        return self._subscribe(acc)

    def _subscribe(self, acc: Account) -> dict:
        sid = next(self._ids)
        sock = self.sock

        def deliver(event: dict) -> None:
            sock.push(userdata.ws_event(sid, event))

        self.subscriptions[sid] = self.venue.user_events.subscribe(acc.uid, "spot", deliver,
                                                                   on_disconnect=sock.drop)
        log.info("ws-api user-data subscription %d of account %d", sid, acc.uid)
        return {"subscriptionId": sid}

    def _unsubscribe(self, params: dict[str, Any]) -> dict:
        raw = params.get("subscriptionId")
        if raw is None:
            self.close()
            return {}
        try:
            sid = int(raw)
        except (TypeError, ValueError):
            raise wire.BinanceError(400, -1100, "Illegal characters found in parameter "
                                                "'subscriptionId'.") from None
        token = self.subscriptions.pop(sid, None)
        if token is None:
            raise wire.BinanceError(400, -1100, f"No subscription with subscriptionId {sid}.")
        self.venue.user_events.unsubscribe(token)
        return {}

    def close(self) -> None:
        """Drop every subscription of the connection."""
        for token in self.subscriptions.values():
            self.venue.user_events.unsubscribe(token)
        self.subscriptions.clear()


def ws_api_routes(venue: Venue, charge: Charge, per_minute: int,
                  live: set[UserSocket]) -> list[web.RouteDef]:
    """aiohttp routes of the WebSocket API (plain and under the ``/spot`` prefix); ``live``
    collects the open sockets so the server can close them at shutdown."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        sock = UserSocket(ws, venue.queue_size)
        live.add(sock)
        session = WsApiSession(venue, sock, charge, per_minute)
        log.info("ws-api client connected")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    sock.push(await session.handle(msg.data))
                    await asyncio.sleep(0)  # let the sender run between requests
        finally:
            session.close()
            live.discard(sock)
            await sock.stop()
            log.info("ws-api client disconnected (sent %d frames)", sock.sent)
        return ws

    return [web.get(WS_API_PATH, handler), web.get(f"/spot{WS_API_PATH}", handler)]
