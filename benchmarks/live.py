#!/usr/bin/env python
"""Live runner benchmark; prints JSON on stdout.

Two measurements on the USD-M recording ``usdm_btcusdt_20240808.gz``:

1. **In process** (``core``): the recording's event rows are pushed into the paper runner core
   one exchange message at a time (as cryptofeed delivers them), with ``ma_crossover`` on 1 s
   bars. Tick-to-order is the time of a push whose message made the runner send an order
   (market event in, order handed to the broker), p50/p99; the reference in the same run is the
   same push into the bare simulated exchange with the same bar clock and no strategy, risk,
   order manager or journal. Also events per second of the whole core against the event
   backtester over the same rows (``run_bar_strategy``, one chunk).
2. **Through the venue** (``feed``): the local venue (its own process) replays the recording as
   fast as the client reads; the paper runner (LiveRun: cryptofeed, the core, journal,
   metrics) consumes it in a fresh process. Reported: market messages per second it sustains
   and CPU per message, against cryptofeed with callbacks that do nothing (the reference).

Usage: ``python benchmarks/live.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collector import _until_quiet, cpu_s, start_venue  # noqa: E402
from common import data_dir, emit, log, machine, peak_rss_mib  # noqa: E402

PARAMS = {"fast": 2, "slow": 4, "ma_type": 0, "allow_short": 1}
MS = 1_000_000


def _events(recording: Path) -> np.ndarray:
    from tradelab.collect.importers.base import ImportRun
    from tradelab.collect.importers.binance_ws import BinanceWsImporter
    from tradelab.store.catalog import Catalog

    with tempfile.TemporaryDirectory(prefix="tradelab-bench-live-") as store:
        run = ImportRun("binance-ws", store, {})
        BinanceWsImporter(run, None).import_files([recording])
        run.finish()
        with Catalog(store) as cat:
            return np.concatenate([c.copy() for c in cat.iter_events(
                "BINANCE_FUTURES", "BTC-USDT-PERP", chunk="1m")])


def _messages(ev: np.ndarray) -> list[np.ndarray]:
    from tradelab.core.events import EV_LAST

    ends = np.flatnonzero((ev["ev"] & EV_LAST) != 0) + 1
    return np.split(ev, ends[:-1] if len(ends) and ends[-1] == len(ev) else ends)


def in_process(ev: np.ndarray) -> dict:
    from tradelab.adapters.binance.filters import symbol_filters
    from tradelab.backtest.event.bars import run_bar_strategy
    from tradelab.backtest.event.replay import Latency, Replay
    from tradelab.live.core import BarRunnerCore, BarSetup, PaperBroker
    from tradelab.live.journal import RunJournal
    from tradelab.live.orders import OrderManager
    from tradelab.live.paper import PaperExchange
    from tradelab.live.risk import RiskEngine
    from tradelab.live.risk_config import RiskConfig
    from tradelab.matching import bar_clock_nb as bc
    from tradelab.matching import instrument
    from tradelab.matching import latency_nb as L
    from tradelab.strategies import get
    from tradelab.strategies.bar_driver import BarDriver

    inst = instrument(0.1, 0.001, taker_fee=0.0004, maker_fee=0.0002)
    lat = L.constant(20 * MS, 15 * MS)
    msgs = _messages(ev)
    risk = RiskConfig.model_validate({
        "caps": {"per_symbol_usdt": 1e12, "total_usdt": 1e12},
        "orders": {"max_orders_per_s": 1e6, "price_band_pct": 1.0, "stale_after_s": 1e9},
        "daily": {"max_loss_usdt": 1e12, "max_drawdown_pct": 1.0,
                  "max_consecutive_losses": 10**6}})

    def core_run(tmp: str) -> tuple[float, list[float], int]:
        engine = PaperExchange(inst, lat, queue_model="power", queue_n=3.0)
        oms = OrderManager({"BTCUSDT": symbol_filters("usdm", "BTCUSDT")},
                           lambda: engine.now, "tl")
        journal = RunJournal(Path(tmp) / "j.log")
        core = BarRunnerCore(BarSetup("b", "ma_crossover", "BTCUSDT", 1_000_000_000, 0.01),
                             BarDriver(get("ma_crossover"), PARAMS), engine, oms,
                             RiskEngine(risk), PaperBroker(engine), journal=journal)
        ticks: list[float] = []
        t_all = time.perf_counter()
        for m in msgs:
            n0 = len(oms.orders)
            t0 = time.perf_counter_ns()
            core.on_rows(m)
            dt = time.perf_counter_ns() - t0
            if len(oms.orders) > n0:
                ticks.append(dt / 1e3)
        total = time.perf_counter() - t_all
        journal.close()
        return total, ticks, len(oms.orders)

    def bare_run() -> tuple[float, list[float]]:
        engine = PaperExchange(inst, lat, queue_model="power", queue_n=3.0)
        bi, bf = bc.new_bar_state(1_000_000_000, 0)
        times: list[float] = []

        def step(s, e):
            return int(bc.bar_loop_nb(s, e, bi, bf))

        t_all = time.perf_counter()
        for m in msgs:
            t0 = time.perf_counter_ns()
            engine.push(m, step, None, None)
            times.append((time.perf_counter_ns() - t0) / 1e3)
        return time.perf_counter() - t_all, times

    with tempfile.TemporaryDirectory() as tmp:
        core_run(tmp)  # compile and warm
    bare_run()
    best = None
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            r = core_run(tmp)
        best = r if best is None or r[0] < best[0] else best
    assert best is not None
    core_s, ticks, orders = best
    bare_s, bare_times = min((bare_run() for _ in range(3)), key=lambda r: r[0])
    t0 = time.perf_counter()
    run_bar_strategy(Replay([ev], inst, Latency(*lat), feed_offset=0), "ma_crossover", PARAMS,
                     "1s", fill="book", sizing=0.01)
    bt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_bar_strategy(Replay([ev], inst, Latency(*lat), feed_offset=0), "ma_crossover", PARAMS,
                     "1s", fill="book", sizing=0.01)
    bt_s = min(bt_s, time.perf_counter() - t0)
    p = np.percentile
    return {
        "events": int(len(ev)), "messages": len(msgs), "orders": orders,
        "tick_to_order_us": {"p50": float(p(ticks, 50)), "p99": float(p(ticks, 99)),
                             "samples": len(ticks)},
        "reference_bare_push_us": {"p50": float(p(bare_times, 50)),
                                   "p99": float(p(bare_times, 99))},
        "core_events_per_s": len(ev) / core_s,
        "backtester_events_per_s": len(ev) / bt_s,
        "core_vs_backtester": (len(ev) / core_s) / (len(ev) / bt_s),
        "journal_fsync": True,
    }


async def feed_client(mode: str, port: int, run_dir: str) -> dict:
    """One client (``noop`` cryptofeed, or the paper runner) until the replay is over."""
    times = {"first": None, "last": None, "n": 0, "cpu_first": None, "cpu_last": None}

    def seen() -> None:
        now = time.perf_counter()
        if times["first"] is None:
            times["first"], times["cpu_first"] = now, cpu_s()
        times["last"] = now
        times["n"] += 1
        if times["n"] % 1000 == 0:
            times["cpu_last"] = cpu_s()

    rest, ws = f"http://127.0.0.1:{port}", f"wss://127.0.0.1:{port + 1}/usdm"
    if mode == "noop":
        from cryptofeed import FeedHandler
        from cryptofeed.defines import L2_BOOK, TRADES

        from tradelab.net.cryptofeed_feeds import prefetch_symbols, repointed_feed_class

        async def noop(obj, receipt):
            seen()

        cls = repointed_feed_class("BINANCE_FUTURES", ws, rest)
        await prefetch_symbols(cls)
        fh = FeedHandler(config={"uvloop": False, "log": {"disabled": True}})
        fh.add_feed(cls(symbols=["BTC-USDT-PERP"], channels=[L2_BOOK, TRADES],
                        callbacks={L2_BOOK: noop, TRADES: noop}, depth_interval="100ms",
                        config={"uvloop": False, "log": {"disabled": True}}))
        fh.run(start_loop=False, install_signal_handlers=False)
        await _until_quiet(port, times)
        await fh.stop_async()
    else:
        from tradelab.core.timeutil import interval_ns
        from tradelab.live.app import LiveRun, RunConfig, fetch_filters
        from tradelab.live.risk_config import RiskConfig

        cfg = RunConfig(run_id="bench", strategy="ma_crossover", params=PARAMS,
                        symbol="BTCUSDT", market="usdm", interval_ns=interval_ns("1s"),
                        units=0.01, venue_rest=rest, venue_ws=ws, run_dir=Path(run_dir),
                        risk=RiskConfig.model_validate({
                            "caps": {"per_symbol_usdt": 1e9, "total_usdt": 1e9},
                            "orders": {"max_orders_per_s": 1e6, "stale_after_s": 1e6}}))
        run = LiveRun(cfg, await fetch_filters(rest, "usdm", "BTCUSDT"))
        orig = run._feed

        def counting(leg, rows, kind):
            seen()
            orig(leg, rows, kind)

        run._feed = counting  # type: ignore[method-assign]
        task = asyncio.create_task(run.run())
        await _until_quiet(port, times)
        run.stop.set()
        summary = await task
        times["orders"] = summary["orders"]
        times["bars"] = summary["bars"]
    span = (times["last"] or 0) - (times["first"] or 0)
    cpu = (times["cpu_last"] or 0) - (times["cpu_first"] or 0)
    per_msg = cpu / (times["n"] // 1000 * 1000) * 1e6 if times["n"] >= 1000 else None
    return {"mode": mode, "messages": times["n"], "seconds": span,
            "messages_per_s": times["n"] / span if span > 0 else 0.0,
            "cpu_us_per_message": per_msg, "peak_rss_mib": peak_rss_mib(),
            **{k: times[k] for k in ("orders", "bars") if k in times}}


def run_feed(mode: str, recording: Path) -> dict:
    venue, port = start_venue(recording)
    try:
        with tempfile.TemporaryDirectory(prefix="tradelab-bench-live-") as run_dir:
            out = subprocess.run([sys.executable, __file__, "--client", mode, "--port",
                                  str(port), "--run-dir", run_dir],
                                 capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                raise RuntimeError(f"{mode} client failed: {out.stderr[-2000:]}")
            return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        venue.terminate()
        venue.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="feed runs per client (best kept)")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(asyncio.run(feed_client(args.client, args.port, args.run_dir))))
        return
    data = data_dir()
    if data is None:
        sys.exit("the shared recordings are needed: set TRADELAB_TEST_DATA to ../shared/data")
    recording = Path(data) / "binance_ws" / "usdm_btcusdt_20240808.gz"
    doc: dict = {"benchmark": "live", "machine": machine(), "recording": recording.name,
                 "cpu_count": os.cpu_count()}
    log("in-process core vs bare simulated exchange vs event backtester ...")
    doc["core"] = in_process(_events(recording))
    for mode in ("noop", "runner"):
        runs = []
        for i in range(args.repeat):
            log(f"feed {mode} run {i + 1}/{args.repeat} ...")
            runs.append(run_feed(mode, recording))
        doc[f"feed_{mode}"] = max(runs, key=lambda r: r["messages_per_s"])
    doc["runner_vs_cryptofeed_noop"] = (doc["feed_runner"]["messages_per_s"]
                                        / doc["feed_noop"]["messages_per_s"])
    emit(doc)


if __name__ == "__main__":
    main()
