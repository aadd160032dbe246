"""The older user-data stream: listenKeys over REST and the ``/ws/<listenKey>`` stream.

REST (API-key header only, not signed): spot ``POST/PUT/DELETE /api/v3/userDataStream``
(PUT and DELETE name the ``listenKey``), USD-M ``POST/PUT/DELETE /fapi/v1/listenKey`` (the
account's one key; a ``listenKey`` param, if sent, must be it). A key expires 60 minutes after
its last keepalive; its stream then receives ``listenKeyExpired`` and is closed.

Stream: ``/ws/<listenKey>`` (also under the ``/spot`` or ``/usdm`` prefix, and as
``/private/ws?listenKey=<key>``, the USD-M form ccxt.pro builds) delivers the account's events
of the key's market as raw frames, one event per frame. An unknown, closed or expired key is
refused before the websocket opens (HTTP 400, -1125).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from tradelab.adapters.binance import trading as wire
from tradelab.adapters.binance import userdata
from tradelab.venue.accounts import Account
from tradelab.venue.core import Venue
from tradelab.venue.listenkeys import ListenKey
from tradelab.venue.userconn import UserSocket

log = logging.getLogger("tradelab.venue")

Charge = Callable[[int], tuple[bool, int]]
REST_PATHS = {"spot": ("/api/v3/userDataStream", 2), "usdm": ("/fapi/v1/listenKey", 1)}
"""Each market's listenKey endpoint and its request weight."""
EXPIRY_CHECK_S = 1.0


def _account(venue: Venue, api_key: str | None) -> Account:
    if not api_key:
        raise wire.BinanceError(401, -2014, "API-key format invalid.")
    acc = venue.accounts.get(api_key)
    if acc is None:
        raise wire.BinanceError(401, -2015, wire.MSG_BAD_KEY)
    return acc


def listen_key_call(venue: Venue, market: str, method: str, acc: Account,
                    params: dict[str, str]) -> dict:
    """One listenKey REST call of ``market`` for ``acc``: the answer body, or BinanceError."""
    keys = venue.listen_keys
    if method == "POST":
        return {"listenKey": keys.create(acc.uid, market)}
    key = params.get("listenKey")
    if market == "usdm" and not key:  # the account's one key
        key = keys.key_of(acc.uid, market)
    if not key:
        raise wire.missing("listenKey")
    if method == "PUT":
        if not keys.keepalive(key, acc.uid, market):
            raise userdata.unknown_listen_key()
        return {"listenKey": key} if market == "usdm" else {}
    if not keys.close(key, acc.uid, market):
        raise userdata.unknown_listen_key()
    return {}


def listen_key_routes(venue: Venue, charge: Charge) -> list[web.RouteDef]:
    """aiohttp routes of both markets' listenKey endpoints."""

    def endpoint(market: str, weight: int) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            ok, used = charge(weight)
            headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
            if not ok:
                return web.json_response({"code": -1003, "msg": "Too many requests."},
                                         status=429, headers={**headers, "Retry-After": "1"})
            params = dict(request.query)
            if request.can_read_body:
                params.update(await request.post())  # type: ignore[arg-type]
            try:
                acc = _account(venue, request.headers.get("X-MBX-APIKEY"))
                out = listen_key_call(venue, market, request.method, acc,
                                      {k: str(v) for k, v in params.items()})
            except wire.BinanceError as exc:
                log.info("listenKey %s %s refused: %d", market, request.method, exc.code)
                return web.json_response(exc.body(), status=exc.status, headers=headers)
            return web.json_response(out, headers=headers)
        return handler

    routes = []
    for market, (path, weight) in REST_PATHS.items():
        fn = endpoint(market, weight)
        routes += [web.post(path, fn), web.put(path, fn), web.delete(path, fn)]
    return routes


def stream_routes(venue: Venue, live: set[UserSocket]) -> list[web.RouteDef]:
    """aiohttp routes of the listenKey streams. Register them before the market-data
    ``/ws/<streams>`` routes: a listenKey is a path segment without ``@``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        prefix = request.match_info.get("market")
        key = request.match_info.get("key") or request.query.get("listenKey", "")
        lk = venue.listen_keys.get(key, prefix)
        if lk is None:
            err = userdata.unknown_listen_key()
            log.info("user-data stream refused: unknown listenKey")
            return web.json_response(err.body(), status=err.status)
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=64 * 1024)
        await ws.prepare(request)
        sock = UserSocket(ws, venue.queue_size)
        live.add(sock)
        token = venue.user_events.subscribe(lk.uid, lk.market, sock.push, on_disconnect=sock.drop)
        watcher = asyncio.create_task(_watch_expiry(venue, lk, sock))
        log.info("user-data stream of account %d opened (%s)", lk.uid, lk.market)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.CLOSE:
                    break
        finally:
            venue.user_events.unsubscribe(token)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            live.discard(sock)
            await sock.stop()
        return ws

    routes = []
    for base in ("", "/{market:spot|usdm}"):
        routes += [web.get(f"{base}/ws/{{key:[^@/]+}}", handler),
                   web.get(f"{base}/private/ws", handler)]
    return routes


async def _watch_expiry(venue: Venue, lk: ListenKey, sock: UserSocket) -> None:
    """Close the stream when its key expires (after ``listenKeyExpired``) or is closed."""
    keys = venue.listen_keys
    while not sock.closed:
        if keys.get(lk.key) is None:
            if lk.expires_ms <= keys.clock_ms():
                sock.push(userdata.listen_key_expired(keys.clock_ms(), lk.key))
                await sock.flush()
            sock.drop(1000, "listenKey expired or closed")
            return
        wait_s = (lk.expires_ms - keys.clock_ms()) / 1000
        await asyncio.sleep(min(max(wait_s, 0.01), EXPIRY_CHECK_S))
