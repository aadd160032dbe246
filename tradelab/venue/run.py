"""Running the venue from the command line: build the source and history, serve until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from rich.console import Console

from tradelab.venue.core import Venue
from tradelab.venue.history import History
from tradelab.venue.server import start_venue
from tradelab.venue.sources import MarketSource, RecordingSource, StaticSource, ZISource

MIDS = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0, "BNB": 600.0}


def synthetic_source(symbols: list[str], markets: list[str], seed: int,
                     start_ns: int | None = None):
    """A zero-intelligence source for every (market, symbol), starting now (exchange time =
    wall-clock time) with Binance's 100 ms depth cadence (what cryptofeed subscribes to)."""
    import time

    from tradelab.adapters.binance.symbols import split_raw
    from tradelab.synth.zi import ZIConfig

    start = start_ns if start_ns is not None else time.time_ns() // 1_000_000 * 1_000_000
    cfgs = []
    for m_i, market in enumerate(markets):
        for i, sym in enumerate(symbols):
            base, _quote = split_raw(sym)
            cfgs.append(ZIConfig(seed=seed + 17 * i + 1000 * m_i, symbol=sym, market=market,
                                 initial_mid=MIDS.get(base, 100.0), start_ns=start,
                                 depth_cadence="100ms"))
    return ZISource(cfgs)


async def run_venue(*, files: list[Path], synthetic: bool, symbols: list[str],
                    markets: list[str], seed: int, speed: float, port: int, tls_port: int,
                    history: Path | None, synth_history_days: float, wait_clients: int,
                    exit_at_end: bool, rate_limit: int, console: Console,
                    slow_client: str = "wait", accounts: Path | None = None,
                    latency: str | None = None, queue_model: str = "risk_averse",
                    queue_n: float = 2.0, journal: Path | None = None) -> None:
    """Start the venue and serve until Ctrl-C (or the end of the replay with exit_at_end)."""
    hist = History()
    loaded = []
    if history:
        loaded += hist.load_freqtrade(history)
    if synth_history_days:
        from tradelab.synth import SynthConfig, generate_market

        loaded += hist.load_synth(generate_market(SynthConfig(days=synth_history_days,
                                                              seed=seed)))
    source: MarketSource
    if files:
        source = RecordingSource(files)
    elif synthetic:
        source = synthetic_source(symbols, markets, seed)
    else:
        source = StaticSource(hist.by_key)
    from tradelab.venue.accounts import DEMO_API_KEY, load_accounts
    from tradelab.venue.latency import parse_latency

    venue = Venue(source, hist, speed=speed, wait_clients=wait_clients, slow_client=slow_client,
                  accounts=load_accounts(accounts) if accounts else None,
                  latency=parse_latency(latency) if latency else None,
                  queue_model=queue_model, queue_n=queue_n, journal=journal)
    rv = await start_venue(venue, port=port, tls_port=tls_port, rate_limit_per_min=rate_limit)
    console.print(f"[bold]tradelab venue[/] on 127.0.0.1: REST {rv.rest_url}, "
                  f"websockets ws://127.0.0.1:{rv.port}/{{spot,usdm}}/stream, "
                  f"TLS wss://127.0.0.1:{rv.tls_port}/{{spot,usdm}}/stream")
    console.print("instruments: " + ", ".join(f"{m}:{s}" for m, s in venue.instruments))
    if loaded:
        console.print(f"history: {len(loaded)} series")
    console.print(f"collect from it: tradelab collect --venue 127.0.0.1:{rv.port}")
    n_acc = len(venue.accounts.by_key)
    console.print(f"trading: {n_acc} account(s)" + ("" if accounts else
                  f" (the built-in demo key {DEMO_API_KEY}; its secret is in "
                  "tradelab.venue.accounts)"))
    if latency:
        console.print(f"order latency: {latency} (on the venue clock); queue model "
                      f"{queue_model}")
    if venue.journal is not None:
        console.print(f"journal: {venue.journal.path} (trading state survives a restart)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiters = [asyncio.create_task(stop.wait())]
    if exit_at_end:
        waiters.append(asyncio.create_task(venue.finished.wait()))
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await w
    console.print(f"venue stopping: {venue.status()['published']}")
    await rv.stop()
    if venue.journal is not None:
        venue.journal.close()
