"""Local venue benchmark: order round trips through real clients, and matching under replay.

1. **Place + cancel round trips** against a venue served from its own process (a hand-made
   BTCUSDT book, no stream, zero latency): a resting limit buy placed and cancelled again,
   timed per round trip (p50, p99, round trips/s), through

   - ccxt sync (``create_order`` + ``cancel_order``), and ccxt async (``ccxt.async_support``);
   - a raw aiohttp client signing by hand (``POST`` + ``DELETE /api/v3/order``);
   - reference, the HTTP floor: two ``GET /bench/noop`` round trips on the same server (an
     aiohttp handler answering ``{}``), so ``venue_cost_ratio`` = raw round trip / floor shows
     what signing, checks, matching and balances add over the bare HTTP exchange.

2. **Matching under replay**: the spot BTCUSDT recording replayed by the venue as fast as
   possible (``Venue.replay`` at speed 0, no client), messages/s with no trading at all (the
   reference), with the matching core fed but no order resting, and with N resting orders the
   core checks on every event (``ratio_vs_no_trading``).

Usage::

    python benchmarks/venue.py [--quick] [--round-trips 500]

Prints JSON (the machine, each figure and its reference). Needs ``TRADELAB_TEST_DATA`` for part 2.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, emit, log, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "bench-key", "bench-secret"
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNTS = [{"api_key": KEY, "secret": SECRET,
             "balances": {"USDT": "100000000", "BTC": "1000", "ETH": "1000"}}]
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "0.1", "price": "95.00"}


# -- the server process -----------------------------------------------------------------------


async def _serve() -> None:
    from aiohttp import web

    from tradelab.venue.core import Venue
    from tradelab.venue.server import make_app
    from tradelab.venue.sources import StaticSource

    key = ("spot", "BTCUSDT")
    venue = Venue(StaticSource([key], {key: BOOK}, ("depth", "trade")), wait_clients=0,
                  accounts=ACCOUNTS, order_limits=())  # round trips beyond 50 orders / 10 s
    app = make_app(venue, rate_limit_per_min=10**9)

    async def noop(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/bench/noop", noop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    replay = asyncio.create_task(venue.replay())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    replay.cancel()
    await runner.cleanup()


def start_server() -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip():
        proc.kill()
        raise RuntimeError("the venue server did not start")
    return proc, int(line)


# -- clients ----------------------------------------------------------------------------------


def _stats(times: list[float]) -> dict:
    a = np.asarray(times) * 1e3
    return {"n": len(a), "round_trips_per_s": round(len(a) / (a.sum() / 1e3), 1),
            "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3)}


def _ccxt_client(module, url: str):
    ex = module.binance({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False,
                         "options": {"fetchCurrencies": False, "fetchMargins": False,
                                     "fetchMarkets": {"types": ["spot"]}}})
    ex.set_sandbox_mode(True)
    for name, u in list(ex.urls["api"].items()):
        if isinstance(u, str) and "testnet.binance.vision/api" in u:
            ex.urls["api"][name] = url + u.split("testnet.binance.vision", 1)[1]
    return ex


def ccxt_sync(url: str, n: int) -> dict:
    import ccxt

    ex = _ccxt_client(ccxt, url)
    ex.load_markets()
    times = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        o = ex.create_order("BTC/USDT", "limit", "buy", 0.1, 95.0)
        ex.cancel_order(o["id"], "BTC/USDT")
        if i >= 10:  # warm-up
            times.append(time.perf_counter() - t0)
    return _stats(times)


async def ccxt_async(url: str, n: int) -> dict:
    import ccxt.async_support as accxt

    ex = _ccxt_client(accxt, url)
    try:
        await ex.load_markets()
        times = []
        for i in range(n + 10):
            t0 = time.perf_counter()
            o = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 95.0)
            await ex.cancel_order(o["id"], "BTC/USDT")
            if i >= 10:
                times.append(time.perf_counter() - t0)
    finally:
        await ex.close()
    return _stats(times)


def _signed(params: dict) -> str:
    q = urlencode({**params, "timestamp": int(time.time() * 1000)})
    return f"{q}&signature={hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()}"


async def raw_http(url: str, n: int) -> tuple[dict, dict]:
    """Place + cancel signed by hand, and the reference: two no-op round trips."""
    import aiohttp

    headers = {"X-MBX-APIKEY": KEY}
    trips, floor = [], []
    async with aiohttp.ClientSession() as s:
        for i in range(n + 20):
            t0 = time.perf_counter()
            async with s.post(f"{url}/api/v3/order?{_signed(ORDER)}", headers=headers) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"order refused: {body}")
            oid = body["orderId"]
            async with s.delete(f"{url}/api/v3/order?"
                                f"{_signed({'symbol': 'BTCUSDT', 'orderId': oid})}",
                                headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"cancel refused: {r.status}")
            t1 = time.perf_counter()
            for _ in range(2):
                async with s.get(f"{url}/bench/noop") as r:
                    await r.read()
            t2 = time.perf_counter()
            if i >= 20:
                trips.append(t1 - t0)
                floor.append(t2 - t1)
    return _stats(trips), _stats(floor)


def round_trips(n: int) -> dict:
    proc, port = start_server()
    url = f"http://127.0.0.1:{port}"
    try:
        log(f"venue server on {url}; raw aiohttp ...")
        raw, floor = asyncio.run(raw_http(url, n))
        log("ccxt sync ...")
        sync = ccxt_sync(url, max(n // 2, 50))
        log("ccxt async ...")
        asy = asyncio.run(ccxt_async(url, max(n // 2, 50)))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    ref = floor["p50_ms"]
    return {
        "reference_http_floor_2_noop": floor,
        "raw_aiohttp_signed": raw | {"venue_cost_ratio_p50": round(raw["p50_ms"] / ref, 2)},
        "ccxt_sync": sync | {"ratio_vs_floor_p50": round(sync["p50_ms"] / ref, 2),
                             "ratio_vs_raw_p50": round(sync["p50_ms"] / raw["p50_ms"], 2)},
        "ccxt_async": asy | {"ratio_vs_floor_p50": round(asy["p50_ms"] / ref, 2),
                             "ratio_vs_raw_p50": round(asy["p50_ms"] / raw["p50_ms"], 2)},
    }


# -- matching under replay --------------------------------------------------------------------


async def _replay(files: list[Path], resting: int | None) -> dict:
    """Replay ``files`` at full speed; ``resting=None``: no trading at all; else that many
    orders rest on the book (half bids 2-5 % under the mid, half asks above) from the moment
    the book is synced."""
    from tradelab.adapters.binance import trading as wire
    from tradelab.venue.core import Venue
    from tradelab.venue.sources import RecordingSource

    venue = Venue(RecordingSource(files), speed=0, wait_clients=0, pause_when_idle=False,
                  accounts=ACCOUNTS, order_limits=())
    acc = venue.accounts.get(KEY)
    book = venue.books[("spot", "BTCUSDT")]
    src = venue.source
    while not book.synced:  # up to the snapshot: untimed
        for msg in src.take(None, max_n=1):
            await venue.publish(msg)
    if resting is not None:
        bid, ask = book.best()
        assert bid is not None and ask is not None and acc is not None
        venue.trading._core(venue.instruments[("spot", "BTCUSDT")])
        for k in range(resting):
            side = "BUY" if k % 2 == 0 else "SELL"
            px = bid * (0.98 - 0.03 * k / max(resting, 1)) if side == "BUY" else \
                ask * (1.02 + 0.03 * k / max(resting, 1))
            venue.trading.new_order(acc, wire.parse_order({
                "symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.001", "price": f"{px:.2f}"}))
    before = sum(venue.published.values())
    t0 = time.perf_counter()
    await venue.replay()
    dt = time.perf_counter() - t0
    n = sum(venue.published.values()) - before
    live = len(venue.trading.open_orders(acc, "BTCUSDT")) if acc is not None else 0
    return {"messages": n, "seconds": round(dt, 3), "messages_per_s": round(n / dt, 1),
            "resting_orders": live}


def matching(files: list[Path], counts: list[int]) -> dict:
    ref = asyncio.run(_replay(files, None))
    out: dict = {"reference_no_trading": ref}
    for n in counts:
        r = asyncio.run(_replay(files, n))
        out[f"resting_{n}"] = r | {"ratio_vs_no_trading": round(
            r["messages_per_s"] / ref["messages_per_s"], 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer round trips, one file")
    ap.add_argument("--round-trips", type=int, default=None)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve())
        return
    n = args.round_trips or (200 if args.quick else 1000)
    doc: dict = {"benchmark": "venue", "machine": machine(), "round_trips": round_trips(n)}
    data = data_dir()
    if data is None:
        doc["matching"] = "skipped: set TRADELAB_TEST_DATA to the shared recordings"
    else:
        spot = Path(data) / "binance_ws"
        files = [spot / "spot_btcusdt_20240808.gz"]
        if not args.quick:
            files.append(spot / "spot_btcusdt_20240809.gz")
        log("matching under replay ...")
        doc["matching"] = {"files": [f.name for f in files],
                           **matching(files, [0, 16, 60] if not args.quick else [0, 60])}
    emit(doc)


if __name__ == "__main__":
    main()
