"""The runner's metrics endpoint (real HTTP on 127.0.0.1, scraped and parsed with the
Prometheus text parser) and alert delivery to a local webhook and a local Telegram-like API."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tradelab.live.alerts import AlertConfig, Alerter
from tradelab.live.metrics import RunnerMetrics, serve_metrics

NS = 1_000_000_000


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_endpoint_serves_the_runners_registry_and_the_kill_action():
    async def main():
        m = RunnerMetrics("run-1", "demo")
        m.orders.labels("BTCUSDT", "FILLED").set(3)
        m.position.labels("BTCUSDT").set(-0.25)
        m.tick_to_order.observe(0.0003)
        m.tick_to_order.observe(0.002)
        killed = []
        srv = await serve_metrics(m, killed.append, lambda: {"state": "running"})
        try:
            assert srv.host == "127.0.0.1"
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{srv.url}/metrics") as r:
                    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                    got = _samples(await r.text())
                async with s.get(f"{srv.url}/health") as r:
                    assert await r.json() == {"state": "running"}
                async with s.post(f"{srv.url}/kill") as r:
                    assert (await r.json())["killed"] is True
        finally:
            await srv.stop()
        return got, killed

    got, killed = asyncio.run(main())
    assert got[("tradelab_orders", (("status", "FILLED"), ("symbol", "BTCUSDT")))] == 3
    assert got[("tradelab_position", (("symbol", "BTCUSDT"),))] == -0.25
    assert got[("tradelab_tick_to_order_seconds_count", ())] == 2
    # 0.3 ms falls in the 0.5 ms bucket, 2 ms in the 2.5 ms one
    assert got[("tradelab_tick_to_order_seconds_bucket", (("le", "0.0005"),))] == 1
    assert got[("tradelab_tick_to_order_seconds_bucket", (("le", "0.0025"),))] == 2
    assert got[("tradelab_runner_info", (("run_id", "run-1"), ("strategy", "demo")))] == 1
    assert len(killed) == 1 and killed[0].startswith("http ")


def test_alerts_reach_a_webhook_and_a_telegram_api_once_per_cooldown(monkeypatch, caplog):
    token = "123456:SECRET-TOKEN-xyz"
    monkeypatch.setenv("TRADELAB_TELEGRAM_TOKEN", token)

    async def main():
        hooks: list[dict] = []
        tg: list[tuple[str, dict]] = []

        async def hook(request: web.Request) -> web.Response:
            hooks.append(await request.json())
            return web.json_response({})

        async def telegram(request: web.Request) -> web.Response:
            tg.append((request.match_info["bot"], await request.json()))
            return web.json_response({"ok": True})

        app = web.Application()
        app.add_routes([web.post("/hook", hook), web.post("/{bot}/sendMessage", telegram)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        a = Alerter(AlertConfig(webhook_url=f"{base}/hook", telegram_chat_id="42",
                                telegram_api=base, cooldown_s=30, reject_burst=3,
                                reject_window_s=10, drawdown_pct=0.05), "run-7")
        t = 1_000 * NS
        assert not a.on_reject(t, "BTCUSDT", "-2010")
        assert not a.on_reject(t + NS, "BTCUSDT", "-2010")
        assert a.on_reject(t + 2 * NS, "BTCUSDT", "-2010")       # 3 in 10 s
        assert not a.on_reject(t + 3 * NS, "BTCUSDT", "-2010")   # cooling down
        assert not a.on_equity(t, 1000.0)
        assert not a.on_equity(t, 960.0)                          # 4 % < 5 %
        assert a.on_equity(t, 940.0)                              # 6 %
        assert a.on_stale(t, "no market data for 12 s")
        await a.close()
        # a dead webhook is logged and counted, not raised
        dead = Alerter(AlertConfig(webhook_url="http://127.0.0.1:9/none", timeout_s=1), "r")
        assert dead.on_stale(t, "x")
        await dead.close()
        await runner.cleanup()
        return a, dead, hooks, tg

    with caplog.at_level(logging.WARNING, logger="tradelab.live.alerts"):
        a, dead, hooks, tg = asyncio.run(main())
    assert sorted(h["kind"] for h in hooks) == ["drawdown", "reject_burst", "stale_feed"]
    assert all(h["run_id"] == "run-7" for h in hooks)
    assert len(tg) == 3 and {bot for bot, _ in tg} == {f"bot{token}"}
    assert all(body["chat_id"] == "42" and "run-7" in body["text"] for _, body in tg)
    assert a.sent == {"drawdown": 2, "reject_burst": 2, "stale_feed": 2}
    assert dead.failed == {"stale_feed": 1}
    assert token not in caplog.text and "ALERT reject_burst" in caplog.text
