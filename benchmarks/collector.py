#!/usr/bin/env python
"""Collector benchmark: messages/s through cryptofeed into Parquet; prints JSON on stdout.

The local venue (its own process) replays ``usdm_btcusdt_20240808.gz`` (93,954 messages: depth
diffs, bookTicker, trades) as fast as the client reads. Three clients are measured, each in a
fresh process with its own peak RSS:

- ``raw``: a plain websocket reader that parses nothing (the venue's own ceiling);
- ``noop``: cryptofeed with callbacks that do nothing (the reference);
- ``collect``: the tradelab collector, writing Parquet through the store's writer.

The writer's cost is ``1 - collect_rate / noop_rate``; target: under 20%.
Usage: ``python benchmarks/collector.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, emit, log, machine, peak_rss_mib  # noqa: E402

FEED = {"exchange": "BINANCE_FUTURES", "symbols": ["BTC-USDT-PERP"],
        "channels": ["l2_book", "trades", "bbo"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_venue(recording: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradelab.cli", "venue", "--replay", str(recording), "--speed",
         "0", "--port", str(port), "--tls-port", str(port + 1), "--wait-clients", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/venue/status", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the venue did not start")


def venue_finished(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/venue/status", timeout=5) as r:
        status = json.loads(r.read())
    return bool(status["finished"])


def cpu_s() -> float:
    """User + system CPU time of this process."""
    t = os.times()
    return t.user + t.system


async def client(mode: str, port: int, store: str) -> dict:
    """Run one client until the replay is over and the stream has gone quiet."""
    times = {"first": None, "last": None, "n": 0, "cpu_first": None, "cpu_last": None}

    def seen() -> None:
        now = time.perf_counter()
        if times["first"] is None:
            times["first"], times["cpu_first"] = now, cpu_s()
        times["last"] = now
        times["n"] += 1
        if times["n"] % 1000 == 0:
            times["cpu_last"] = cpu_s()

    feed_cfg = {**FEED, "endpoint": {"websocket": f"wss://127.0.0.1:{port + 1}/usdm",
                                     "rest": f"http://127.0.0.1:{port}"}}
    if mode == "raw":
        import aiohttp

        async with aiohttp.ClientSession() as session:
            url = (f"ws://127.0.0.1:{port}/usdm/stream?streams=btcusdt@depth@100ms/"
                   "btcusdt@aggTrade/btcusdt@bookTicker")
            async with session.ws_connect(url, max_msg_size=0) as ws:
                task = asyncio.create_task(_read_raw(ws, seen))
                await _until_quiet(port, times)
                task.cancel()
    elif mode == "noop":
        from cryptofeed import FeedHandler
        from cryptofeed.defines import L2_BOOK, TICKER, TRADES

        from tradelab.collect.config import parse_config
        from tradelab.collect.feeds import build_feed, feed_class
        from tradelab.net.cryptofeed_feeds import prefetch_symbols

        async def noop(obj, receipt):
            seen()

        fcfg = parse_config({"feeds": [feed_cfg]}).feeds[0]
        cls = feed_class(fcfg.exchange, fcfg.endpoint)
        await prefetch_symbols(cls)
        fh = FeedHandler(config={"uvloop": False, "log": {"disabled": True}})
        fh.add_feed(build_feed(fcfg, {L2_BOOK: noop, TRADES: noop, TICKER: noop}, cls))
        fh.run(start_loop=False, install_signal_handlers=False)
        await _until_quiet(port, times)
        await fh.stop_async()
    else:
        from tradelab.collect.collector import Collector
        from tradelab.collect.config import parse_config

        cfg = parse_config({"flush_interval_s": 5, "stats_interval_s": 3600, "fsync": True,
                            "feeds": [feed_cfg]})
        col = Collector(cfg, store=store, report=lambda line: None)
        orig = col._seen

        def counting(ex, ch, receipt):
            seen()
            orig(ex, ch, receipt)

        col._seen = counting
        run = asyncio.create_task(col.run(install_signals=False))
        await _until_quiet(port, times)
        t0 = time.perf_counter()
        col.stop()
        summary = await run
        times["final_flush_s"] = time.perf_counter() - t0
        times["rows"] = summary["rows"]
        times["dropped"] = summary["dropped"]
    span = (times["last"] or 0) - (times["first"] or 0)
    cpu = (times["cpu_last"] or 0) - (times["cpu_first"] or 0)
    per_msg_cpu = cpu / (times["n"] // 1000 * 1000) * 1e6 if times["n"] >= 1000 else None
    return {"mode": mode, "messages": times["n"], "seconds": span,
            "messages_per_s": times["n"] / span if span > 0 else 0.0,
            "client_cpu_us_per_message": per_msg_cpu,
            "peak_rss_mib": peak_rss_mib(),
            **{k: v for k, v in times.items() if k in ("final_flush_s", "rows", "dropped")}}


async def _read_raw(ws, seen) -> None:
    async for _msg in ws:
        seen()


async def _until_quiet(port: int, times: dict, quiet_s: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    while not await loop.run_in_executor(None, venue_finished, port):
        await asyncio.sleep(0.25)
    last = -1
    while times["n"] != last:
        last = times["n"]
        await asyncio.sleep(quiet_s)


def run_mode(mode: str, recording: Path) -> dict:
    """One client in a fresh process against a fresh venue process."""
    venue, port = start_venue(recording)
    try:
        with tempfile.TemporaryDirectory(prefix="tradelab-bench-collect-") as store:
            out = subprocess.run([sys.executable, __file__, "--client", mode, "--port",
                                  str(port), "--store", store],
                                 capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                raise RuntimeError(f"{mode} client failed: {out.stderr[-2000:]}")
            return json.loads(out.stdout)
    finally:
        venue.terminate()
        venue.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="runs per client (best is kept)")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client(args.client, args.port, args.store))))
        return
    data = data_dir()
    if data is None:
        sys.exit("the shared recordings are needed: set TRADELAB_TEST_DATA to ../shared/data")
    recording = Path(data) / "binance_ws" / "usdm_btcusdt_20240808.gz"
    doc = {"benchmark": "collector", "machine": machine(), "recording": recording.name,
           "cpu_count": os.cpu_count()}
    for mode in ("raw", "noop", "collect"):
        runs = []
        for i in range(args.repeat):
            log(f"{mode} run {i + 1}/{args.repeat} ...")
            runs.append(run_mode(mode, recording))
        doc[mode] = max(runs, key=lambda r: r["messages_per_s"])
    if doc["collect"].get("dropped"):
        sys.exit(f"the collector dropped rows, the run is not comparable: {doc['collect']}")
    ratio = doc["collect"]["messages_per_s"] / doc["noop"]["messages_per_s"]
    doc["collect_vs_noop_ratio"] = ratio
    doc["writer_cost"] = 1 - ratio
    # With the venue near its own ceiling (compare 'raw'), the throughput ratio can flatter
    # the collector; the CPU the client spends per message cannot: the writer's share of it.
    cpu_noop = doc["noop"]["client_cpu_us_per_message"]
    cpu_collect = doc["collect"]["client_cpu_us_per_message"]
    doc["writer_cpu_share"] = 1 - cpu_noop / cpu_collect
    doc["reference_bounded_by_venue"] = doc["noop"]["messages_per_s"] > 0.9 * doc["raw"][
        "messages_per_s"]
    doc["target_writer_cost"] = 0.20
    doc["meets_target"] = doc["writer_cost"] < 0.20
    emit(doc)


if __name__ == "__main__":
    main()
