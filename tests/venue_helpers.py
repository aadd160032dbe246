"""Helpers to run the local venue and the collector together in one event loop (tests only)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tradelab.collect.collector import Collector
from tradelab.collect.config import parse_config
from tradelab.venue.core import Venue
from tradelab.venue.server import start_venue
from tradelab.venue.sources import RecordingSource

CHANNELS = {"BINANCE": ["l2_book", "trades", "bbo"],
            "BINANCE_FUTURES": ["l2_book", "trades", "bbo", "funding", "open_interest"]}


def feeds_for(rv, markets: dict[str, list[str]]) -> list[dict]:
    """Collector feed configs pointing at a running venue: {exchange: [symbols]}."""
    out = []
    for ex, syms in markets.items():
        market = "spot" if ex == "BINANCE" else "usdm"
        out.append({"exchange": ex, "symbols": syms, "channels": CHANNELS[ex],
                    "endpoint": {"websocket": rv.ws_url(market), "rest": rv.rest_url}})
    return out


async def drained(venue: Venue, collector: Collector, quiet_s: float = 1.0,
                  timeout_s: float = 180.0) -> None:
    """Wait until the replay finished and the collector stopped receiving."""
    t0 = time.monotonic()
    while not venue.finished.is_set():
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError("replay did not finish")
        await asyncio.sleep(0.2)
    last = -1
    while time.monotonic() - t0 < timeout_s:
        await asyncio.sleep(quiet_s)
        total = sum(st.count for st in collector.stats.values())
        if total == last and all(c.queue.empty() for c in venue.conns):
            return
        last = total


async def replay_and_collect(files: list[Path], store: Path, markets: dict[str, list[str]],
                             speed: float, during=None, wait_clients: int | None = None,
                             flush_interval_s: float = 1.0) -> tuple[dict, Venue]:
    """Replay ``files`` through the venue into ``store`` via the real cryptofeed collector.

    ``during(venue, rv, collector)`` may run concurrently (fault injection); returns
    (summary, venue).
    """
    source = RecordingSource(files)
    venue = Venue(source, speed=speed, wait_clients=wait_clients or len(markets))
    rv = await start_venue(venue)
    cfg = parse_config({"flush_interval_s": flush_interval_s, "stats_interval_s": 3600,
                        "feeds": feeds_for(rv, markets)})
    collector = Collector(cfg, store=str(store), report=lambda line: None)
    task = asyncio.create_task(collector.run(install_signals=False))
    side = asyncio.create_task(during(venue, rv, collector)) if during else None
    try:
        await drained(venue, collector)
        if side:
            await side
    finally:
        collector.stop()
        summary = await task
        if side and not side.done():
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await side
        await rv.stop()
    return summary, venue


async def book_synced(collector: Collector, exchange: str, symbol: str,
                      timeout_s: float = 120.0) -> None:
    """Wait until the collector holds a synced book of ``symbol`` (its snapshot is applied).

    A fault meant to break the client's diff chain must wait for this: a diff withheld before
    the client fetched its REST snapshot is already inside that snapshot, so no gap follows."""
    t0 = time.monotonic()
    while True:
        st = collector.books.get((exchange, symbol))
        if st is not None and st.synced:
            return
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"the collector's {exchange} {symbol} book never synced")
        await asyncio.sleep(0.01)


@contextlib.contextmanager
def venue_in_thread(make_venue: Callable[[], Venue], **start_kw) -> Iterator:
    """A venue serving from its own event loop in a background thread (for clients that block,
    such as ccxt or a subprocess); yields the running venue and stops it afterwards."""
    ready = threading.Event()
    box: dict = {}

    def run() -> None:
        async def main() -> None:
            rv = await start_venue(make_venue(), **start_kw)
            box.update(rv=rv, loop=asyncio.get_running_loop(), stop=asyncio.Event())
            ready.set()
            await box["stop"].wait()
            await rv.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(120):
        raise TimeoutError("the venue did not start")
    try:
        yield box["rv"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


def book_source(books: dict[tuple[str, str], dict]):
    """A hand-made starting book and no stream: tests publish the market's messages
    themselves (``await venue.publish(VenueMessage(...))``)."""
    from tradelab.venue.sources import StaticSource

    return StaticSource(books, books, ("depth", "trade"))
