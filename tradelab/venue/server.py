"""The local venue's HTTP/websocket server on 127.0.0.1.

Websocket paths follow Binance, with a market prefix because one port serves both markets:
``/spot/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade`` (combined frames
``{"stream", "data"}``), ``/usdm/ws/btcusdt@bookTicker`` (raw frames), and ``SUBSCRIBE`` /
``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` requests on any of them (ccxt.pro style). Without a
prefix the path means the only market listed (or spot). The same app is served on a plain port
and, for cryptofeed (which requires ``wss://``), on a TLS port with a self-signed certificate.

Admin: ``GET /venue/status``; ``POST /venue/fault`` with ``{"kind": "drop_diff" | "disconnect"
| "stall" | "malformed" | "rate_limit" | "reject_orders" | "delay_ack" | "drop_exec_report" |
"order_5xx" | "disconnect_user_stream", "symbol": "BTCUSDT", "count": 1, "seconds": 2}`` (see
:meth:`Venue.inject <tradelab.venue.core.Venue.inject>`); ``POST /venue/deposit`` with
``{"uid": 1, "asset": "USDT", "amount": "100"}`` (negative: a withdrawal); a bad request is a
400 naming the problem.

User data (see :mod:`~tradelab.venue.wsapi` and :mod:`~tradelab.venue.listenstream`): the
WebSocket API on ``/ws-api/v3`` and the listenKey streams ``/ws/<listenKey>``.

Fairness: every connection has a bounded send queue (the venue's ``queue_size`` frames) and a
bounded kernel send buffer (``SEND_BUFFER_BYTES``), and its own sender task. Closing a client
(a slow consumer dropped with 1008, a fault, shutdown) never waits for that client: the close
handshake runs in the background and the transport is aborted after ``CLOSE_TIMEOUT_S``, so one
client can never stall the replay for the others. A connection may hold at most
``MAX_STREAMS`` streams (Binance: 1,024) and send frames of at most ``MAX_FRAME_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import WSMsgType, web

from tradelab.net.tls import self_signed_context
from tradelab.venue.core import Conn, Venue
from tradelab.venue.limits import RateLimiter
from tradelab.venue.listenstream import listen_key_routes, stream_routes
from tradelab.venue.rest import routes
from tradelab.venue.signed import signed_routes
from tradelab.venue.userconn import UserSocket
from tradelab.venue.wsapi import ws_api_routes

log = logging.getLogger("tradelab.venue")
VENUE_KEY = web.AppKey("venue", Venue)
USER_SOCKETS = web.AppKey("user_sockets", set[UserSocket])

MAX_STREAMS = 1024
"""Streams one connection may subscribe to (Binance's limit)."""
MAX_FRAME_BYTES = 64 * 1024
"""Largest frame a client may send (requests are small; aiohttp closes with 1009 beyond)."""
SEND_BUFFER_BYTES = 256 * 1024
"""Kernel send buffer per connection: a client that stops reading backs up into its bounded
queue quickly instead of into megabytes of socket buffer."""
CLOSE_TIMEOUT_S = 30.0
"""How long a close handshake may take before the connection is aborted."""
_STREAM_RE = re.compile(r"^[a-z0-9]{1,40}@[A-Za-z0-9_@]{1,40}$")


class _ClientSocket:
    """The websocket as the replay and the sender see it. ``close`` never blocks the caller: it
    marks the connection closed (so nothing more is queued for it) and runs the close handshake
    in the background, aborting the transport if the client does not answer in time."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.conn: Conn | None = None
        self.closing: asyncio.Task | None = None

    async def send_str(self, data: str) -> None:
        await self.ws.send_str(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        if self.closing is None:
            if self.conn is not None:
                self.conn.close()
            self.closing = asyncio.create_task(self._close(code, message))
        return True

    async def _close(self, code: int, message: bytes) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            transport = self.request.transport
            if transport is not None:
                transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ws, name)


def _bound_send_buffer(request: web.Request) -> None:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


def _check_streams(names: list, have: int) -> str | None:
    """Why these stream names cannot be subscribed (None if they can)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "params must be a list of stream names"
    bad = [n for n in names if not _STREAM_RE.match(n)]
    if bad:
        return f"invalid stream name {bad[0][:60]!r}: expected <symbol>@<stream>"
    if have + len(set(names)) > MAX_STREAMS:
        return f"too many streams: at most {MAX_STREAMS} per connection"
    return None


def _market_of(venue: Venue, prefix: str | None) -> str:
    if prefix in ("spot", "usdm"):
        return prefix
    markets = {m for m, _ in venue.instruments}
    return markets.pop() if len(markets) == 1 else "spot"


async def _ws_handler(request: web.Request) -> web.StreamResponse:
    venue: Venue = request.app[VENUE_KEY]
    prefix = request.match_info.get("market")
    kind = request.match_info.get("kind", "stream")
    path_streams = request.match_info.get("streams", "")
    streams = request.query.get("streams", "") if kind == "stream" else path_streams
    names = list(filter(None, streams.split("/")))
    problem = _check_streams(names, 0)
    if problem:
        return web.json_response({"code": -1121, "msg": problem}, status=400)
    ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    _bound_send_buffer(request)
    client = _ClientSocket(ws, request)
    conn = Conn(client, _market_of(venue, prefix), combined=(kind == "stream"),
                maxsize=venue.queue_size)
    client.conn = conn
    for s in names:
        conn.subscribe(s)
    venue.add_conn(conn)
    sender = asyncio.create_task(conn.sender())
    log.info("client connected (%s, %d streams)", conn.market, len(conn.subs))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            reply = _control(conn, msg.data)
            if reply is not None:
                await ws.send_str(json.dumps(reply))
                venue.add_conn(conn)  # wake the replay if it waits for a subscriber
    finally:
        venue.drop_conn(conn)
        conn.close()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await sender
        if client.closing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await client.closing
        log.info("client disconnected (sent %d frames)", conn.sent)
    return ws


def _control(conn: Conn, text: str) -> dict | None:
    """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests, Binance style."""
    try:
        req = json.loads(text)
        method, rid = req["method"], req.get("id")
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"error": {"code": 3, "msg": "Invalid JSON: expected method and id"}, "id": None}
    if method == "SUBSCRIBE":
        params = req.get("params", [])
        have = sum(len(names) for names in conn.subs.values())
        problem = _check_streams(params, have)
        if problem:
            return {"error": {"code": 2, "msg": problem}, "id": rid}
        for s in params:
            conn.subscribe(s)
        return {"result": None, "id": rid}
    if method == "UNSUBSCRIBE":
        params = req.get("params", [])
        if not isinstance(params, list):
            return {"error": {"code": 2, "msg": "params must be a list"}, "id": rid}
        for s in params:
            conn.unsubscribe(s)
        return {"result": None, "id": rid}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": [s for names in conn.subs.values() for s in names], "id": rid}
    return {"error": {"code": 1, "msg": f"Unknown method {method!r}"}, "id": rid}


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[VENUE_KEY].status())


async def _fault(request: web.Request) -> web.Response:
    venue: Venue = request.app[VENUE_KEY]
    try:
        body = await request.json()
        if not isinstance(body, dict) or "kind" not in body:
            raise ValueError('expected a JSON object like {"kind": "drop_diff", "symbol": '
                             '"BTCUSDT"}')
        symbol = body.get("symbol")
        if symbol is not None and not isinstance(symbol, str):
            raise ValueError("symbol must be a string")
        count, seconds = body.get("count", 1), body.get("seconds", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        out = await venue.inject(str(body["kind"]), symbol, count, float(seconds))
    except (ValueError, KeyError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(out)


async def _deposit(request: web.Request) -> web.Response:
    """Admin: credit (or, negative, debit) an account's free balance, as a deposit or a
    withdrawal; the account's user-data stream gets ``balanceUpdate``."""
    venue: Venue = request.app[VENUE_KEY]
    try:
        body = await request.json()
        if not isinstance(body, dict) or not {"uid", "asset", "amount"} <= set(body):
            raise ValueError('expected a JSON object like {"uid": 1, "asset": "USDT", '
                             '"amount": "100"}')
        acc = venue.accounts.by_uid(int(body["uid"]))
        if acc is None:
            raise ValueError(f"no account with uid {body['uid']!r}")
        try:
            amount = Decimal(str(body["amount"]))
        except InvalidOperation:
            raise ValueError(f"amount {body['amount']!r} is not a number") from None
        venue.trading.transfer(acc, str(body["asset"]), amount)
    except (ValueError, KeyError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    asset = str(body["asset"]).upper()
    return web.json_response({"uid": acc.uid, "asset": asset, "free": str(acc.free[asset])})


async def _close_user_sockets(app: web.Application) -> None:
    live: set[UserSocket] = app[USER_SOCKETS]
    for sock in list(live):
        sock.drop(1001, "venue shutting down")
        await sock.stop()


def make_app(venue: Venue, rate_limit_per_min: int = 6000) -> web.Application:
    """The aiohttp application: REST, websockets and admin."""
    app = web.Application()
    app[VENUE_KEY] = venue
    limiter = RateLimiter(rate_limit_per_min, venue.ban_after, venue.ban_seconds)
    venue.limiter = limiter
    app.add_routes(routes(venue, limiter))
    app.add_routes(signed_routes(venue, limiter))
    user_sockets: set[UserSocket] = set()
    app[USER_SOCKETS] = user_sockets
    app.add_routes(listen_key_routes(venue, limiter.charge))
    app.add_routes(ws_api_routes(venue, limiter.charge, rate_limit_per_min, user_sockets))
    app.add_routes(stream_routes(venue, user_sockets))  # before /ws/<streams>
    app.on_shutdown.append(_close_user_sockets)
    ws_routes = []
    for base in ("", "/{market:spot|usdm}"):
        ws_routes += [web.get(f"{base}/{{kind:stream}}", _ws_handler),
                      web.get(f"{base}/{{kind:ws}}", _ws_handler),
                      web.get(f"{base}/{{kind:ws}}/{{streams:.+}}", _ws_handler)]
    app.add_routes(ws_routes)
    app.add_routes([web.get("/venue/status", _status), web.post("/venue/fault", _fault),
                    web.post("/venue/deposit", _deposit)])
    return app


@dataclass
class RunningVenue:
    """A started venue: its ports, the runner to stop it and the replay task."""

    venue: Venue
    host: str
    port: int
    tls_port: int | None
    runner: web.AppRunner
    replay: asyncio.Task

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws_url(self, market: str, tls: bool = True) -> str:
        if tls and self.tls_port:
            return f"wss://{self.host}:{self.tls_port}/{market}"
        return f"ws://{self.host}:{self.port}/{market}"

    async def stop(self) -> None:
        self.replay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.replay
        self.venue.gate.set_streaming(False)  # the clock stops: pending order actions answer
        closing = []
        for conn in list(self.venue.conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"venue shutting down")
            task = getattr(conn.ws, "closing", None)
            if task is not None:
                closing.append(task)
        if closing:
            await asyncio.wait(closing, timeout=2.0)
        await self.runner.cleanup()


def _bound_port(site: web.TCPSite) -> int:
    """The port a started site listens on (port 0 asks the kernel for a free one)."""
    server = site._server
    if not isinstance(server, asyncio.Server) or not server.sockets:
        raise RuntimeError(f"site {site.name} is not listening")
    return int(server.sockets[0].getsockname()[1])


async def start_venue(venue: Venue, host: str = "127.0.0.1", port: int = 0,
                      tls_port: int | None = 0, rate_limit_per_min: int = 6000) -> RunningVenue:
    """Start serving (port 0 picks a free port) and start the replay task."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the venue only listens on the loopback interface")
    runner = web.AppRunner(make_app(venue, rate_limit_per_min), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    real_port = _bound_port(site)
    real_tls = None
    if tls_port is not None:
        tls_site = web.TCPSite(runner, host, tls_port, ssl_context=self_signed_context())
        await tls_site.start()
        real_tls = _bound_port(tls_site)
    venue.ports = {"host": host, "port": real_port, "tls_port": real_tls}
    task = asyncio.create_task(venue.replay())
    return RunningVenue(venue, host, real_port, real_tls, runner, task)
