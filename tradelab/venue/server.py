"""The local venue's HTTP/websocket server on 127.0.0.1.

Websocket paths follow Binance, with a market prefix because one port serves both markets:
``/spot/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade`` (combined frames
``{"stream", "data"}``), ``/usdm/ws/btcusdt@bookTicker`` (raw frames), and ``SUBSCRIBE`` /
``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` requests on any of them (ccxt.pro style). Without a
prefix the path means the only market listed (or spot). The same app is served on a plain port
and, for cryptofeed (which requires ``wss://``), on a TLS port with a self-signed certificate.

Admin: ``GET /venue/status``; ``POST /venue/fault`` with ``{"kind": "drop_diff" | "disconnect"
| "stall" | "malformed" | "rate_limit", "symbol": "BTCUSDT", "count": 1, "seconds": 2}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from tradelab.net.tls import self_signed_context
from tradelab.venue.core import Conn, Venue
from tradelab.venue.rest import RateLimiter, routes

log = logging.getLogger("tradelab.venue")
VENUE_KEY = web.AppKey("venue", Venue)


def _market_of(venue: Venue, prefix: str | None) -> str:
    if prefix in ("spot", "usdm"):
        return prefix
    markets = {m for m, _ in venue.instruments}
    return markets.pop() if len(markets) == 1 else "spot"


async def _ws_handler(request: web.Request) -> web.WebSocketResponse:
    venue: Venue = request.app[VENUE_KEY]
    prefix = request.match_info.get("market")
    kind = request.match_info.get("kind", "stream")
    path_streams = request.match_info.get("streams", "")
    ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=0)
    await ws.prepare(request)
    conn = Conn(ws, _market_of(venue, prefix), combined=(kind == "stream"),
                maxsize=venue.queue_size)
    streams = request.query.get("streams", "") if kind == "stream" else path_streams
    for s in filter(None, streams.split("/")):
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
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await sender
        log.info("client disconnected (sent %d frames)", conn.sent)
    return ws


def _control(conn: Conn, text: str) -> dict | None:
    """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests, Binance style."""
    try:
        req = json.loads(text)
        method, rid = req["method"], req.get("id")
    except (ValueError, KeyError, TypeError):
        return {"error": {"code": 3, "msg": "Invalid JSON: expected method and id"}, "id": None}
    if method == "SUBSCRIBE":
        for s in req.get("params", []):
            conn.subscribe(s)
        return {"result": None, "id": rid}
    if method == "UNSUBSCRIBE":
        for s in req.get("params", []):
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
        out = await venue.inject(body["kind"], body.get("symbol"), int(body.get("count", 1)),
                                 float(body.get("seconds", 0)))
    except (ValueError, KeyError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(out)


def make_app(venue: Venue, rate_limit_per_min: int = 6000) -> web.Application:
    """The aiohttp application: REST, websockets and admin."""
    app = web.Application()
    app[VENUE_KEY] = venue
    app.add_routes(routes(venue, RateLimiter(rate_limit_per_min)))
    ws_routes = []
    for base in ("", "/{market:spot|usdm}"):
        ws_routes += [web.get(f"{base}/{{kind:stream}}", _ws_handler),
                      web.get(f"{base}/{{kind:ws}}", _ws_handler),
                      web.get(f"{base}/{{kind:ws}}/{{streams:.+}}", _ws_handler)]
    app.add_routes(ws_routes)
    app.add_routes([web.get("/venue/status", _status), web.post("/venue/fault", _fault)])
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
        for conn in list(self.venue.conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"venue shutting down")
        await self.runner.cleanup()


async def start_venue(venue: Venue, host: str = "127.0.0.1", port: int = 0,
                      tls_port: int | None = 0, rate_limit_per_min: int = 6000) -> RunningVenue:
    """Start serving (port 0 picks a free port) and start the replay task."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the venue only listens on the loopback interface")
    runner = web.AppRunner(make_app(venue, rate_limit_per_min), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    real_port = site._server.sockets[0].getsockname()[1]
    real_tls = None
    if tls_port is not None:
        tls_site = web.TCPSite(runner, host, tls_port, ssl_context=self_signed_context())
        await tls_site.start()
        real_tls = tls_site._server.sockets[0].getsockname()[1]
    venue.ports = {"host": host, "port": real_port, "tls_port": real_tls}
    task = asyncio.create_task(venue.replay())
    return RunningVenue(venue, host, real_port, real_tls, runner, task)
