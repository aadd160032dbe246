"""A runner's Prometheus metrics and its small HTTP endpoint (127.0.0.1 by default).

``GET /metrics`` is the Prometheus text format of the runner's own registry (never the global
one, so two runners in one process, or a test, do not mix); ``GET /health`` is a JSON line;
``POST /kill`` pulls the kill switch (the runner cancels everything and stops). The endpoint
binds the loopback interface unless told otherwise, because ``/kill`` has no authentication.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS_S = (50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
                     100e-3, 250e-3, 1.0)


class RunnerMetrics:
    """Every metric a runner exports, in its own registry."""

    def __init__(self, run_id: str, strategy: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = {"run_id": run_id, "strategy": strategy}
        self.info = Gauge("tradelab_runner_info", "Runner identity (value 1)",
                          list(labels), registry=r)
        self.info.labels(**labels).set(1)
        self.feed_up = Gauge("tradelab_feed_up", "1 while the market-data feed is connected",
                             ["symbol"], registry=r)
        self.feed_uptime = Gauge("tradelab_feed_uptime_seconds",
                                 "Seconds the feed has been connected since the last (re)connect",
                                 ["symbol"], registry=r)
        self.messages = Counter("tradelab_feed_messages", "Market-data messages received",
                                ["symbol", "kind"], registry=r)
        self.message_rate = Gauge("tradelab_feed_messages_per_second",
                                  "Market-data messages per second over the last refresh "
                                  "interval (about 1 s)", ["symbol"], registry=r)
        self.last_event_age = Gauge("tradelab_feed_last_event_age_seconds",
                                    "Seconds since the last market event", ["symbol"], registry=r)
        self.tick_to_order = Histogram("tradelab_tick_to_order_seconds",
                                       "From the market event to the order leaving the runner",
                                       buckets=LATENCY_BUCKETS_S, registry=r)
        self.orders = Gauge("tradelab_orders", "The run's orders by current status",
                            ["symbol", "status"], registry=r)
        self.rejects = Counter("tradelab_order_rejects", "Orders refused (by the venue or risk)",
                               ["symbol", "source"], registry=r)
        self.reject_rate = Gauge("tradelab_order_reject_rate",
                                 "Rejected share of the orders of the last minute", registry=r)
        self.realized_pnl = Gauge("tradelab_pnl_realized", "Realized PnL (quote)",
                                  ["symbol"], registry=r)
        self.unrealized_pnl = Gauge("tradelab_pnl_unrealized", "Unrealized PnL at the mark",
                                    ["symbol"], registry=r)
        self.position = Gauge("tradelab_position", "Position (base units, signed)",
                              ["symbol"], registry=r)
        self.equity = Gauge("tradelab_equity", "The run's equity across its symbols (quote)",
                            registry=r)
        self.exposure = Gauge("tradelab_exposure", "Gross notional of the run's positions at "
                              "the marks (quote)", registry=r)
        self.risk_state = Gauge("tradelab_risk_halted", "1 while the risk engine halts trading",
                                registry=r)
        self.guard_trips = Counter("tradelab_guard_trips", "Risk guard trips by guard",
                                   ["guard"], registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class MetricsServer:
    """The running endpoint: its address and how to stop it."""

    host: str
    port: int
    runner: web.AppRunner

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve_metrics(metrics: RunnerMetrics, on_kill: Callable[[str], Any],
                        health: Callable[[], dict], host: str = "127.0.0.1",
                        port: int = 0) -> MetricsServer:
    """Start the endpoint (port 0: a free one). ``on_kill(source)`` is called by ``POST /kill``
    (and may be a coroutine function)."""

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_health(_: web.Request) -> web.Response:
        return web.json_response(health())

    async def post_kill(request: web.Request) -> web.Response:
        out = on_kill(f"http {request.remote}")
        if asyncio.iscoroutine(out):
            await out
        return web.json_response({"killed": True})

    app = web.Application()
    app.add_routes([web.get("/metrics", get_metrics), web.get("/health", get_health),
                    web.post("/kill", post_kill)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server) and server.sockets
    return MetricsServer(host, int(server.sockets[0].getsockname()[1]), runner)


__all__ = ["MetricsServer", "RunnerMetrics", "serve_metrics"]
