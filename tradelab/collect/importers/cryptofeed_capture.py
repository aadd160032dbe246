"""Import cryptofeed's own raw captures (``*.jsonl.zst``) through the collector's callbacks.

cryptofeed's recorder writes one JSON record per line: a ``header`` (exchange, channels and
symbols), the REST bodies it read (``http``: instrument lists, book snapshots), websocket
``connect`` and ``send`` records, and every frame received (``recv``). Replaying the frames into
the real cryptofeed feed class, with the recorded REST bodies served back to it, exercises the
exchange's own parser (Bybit v5, OKX v5, Binance, ...) and then exactly the collector's row
conversion and writer, so a capture lands in the store as a live run would have written it.

Channels tradelab does not store (candles, index, liquidations) are counted and skipped; a frame
the parser rejects is a reject with its line number.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import zstandard
from cryptofeed.exchanges import EXCHANGE_MAP
from cryptofeed.symbols import Symbols

from tradelab.collect.collector import Collector
from tradelab.collect.config import EXCHANGES, CollectConfig, FeedConfig
from tradelab.collect.feeds import build_feed
from tradelab.collect.importers.base import FileReport, ImportRun, sha256_of
from tradelab.store.writer import StoreWriter

CHANNELS = {"l2_book": "l2_book", "trades": "trades", "ticker": "bbo", "funding": "funding",
            "open_interest": "open_interest"}


def read_capture(path: Path) -> list[dict]:
    """Every record of a capture file (zstd or plain JSON lines)."""
    raw = path.read_bytes()
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


def _key(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


class _Replay:
    """Recorded REST bodies, served back by URL path and query (hosts may differ)."""

    def __init__(self, records: list[dict]) -> None:
        self.bodies: dict[str, list[str]] = defaultdict(list)
        for r in records:
            if r["t"] == "http":
                self.bodies[_key(r["url"])].append(r["data"])
        self.served: dict[str, int] = defaultdict(int)

    def body(self, url: str) -> str:
        key = _key(url)
        bodies = self.bodies.get(key)
        if not bodies:
            raise LookupError(f"the capture holds no REST response for {url}")
        i = min(self.served[key], len(bodies) - 1)
        self.served[key] += 1
        return bodies[i]


def _endpoint_subscription(feed, endpoint) -> dict:
    """The subscription cryptofeed gives a connection to ``endpoint`` (filtered on normalised
    symbols, handed over in the exchange's own symbols), as ``Feed.connect`` builds it."""
    std = {chan: [feed.exchange_symbol_to_std_symbol(s) for s in syms]
           for chan, syms in feed.subscription.items()}
    return {chan: [feed.std_symbol_to_exchange_symbol(s) for s in syms]
            for chan, syms in endpoint.subscription_filter(std).items()}


async def import_capture(path: str | Path, run: ImportRun) -> FileReport:
    """Replay one capture into the run's store; returns its report."""
    path = Path(path)
    rep = FileReport(path=str(path))
    t0 = time.perf_counter()
    records = read_capture(path)
    rep.sha256 = sha256_of(path)
    rep.lines = len(records)
    header = next((r for r in records if r["t"] == "header"), None)
    if header is None or header.get("exchange") not in EXCHANGES:
        rep.status = "failed"
        rep.detail = (f"{path}: no header naming a supported exchange ({', '.join(EXCHANGES)})"
                      if header is None or header.get("exchange") not in EXCHANGE_MAP else
                      f"{path}: {header['exchange']} is not collected by tradelab")
        return rep
    exchange = header["exchange"]
    rep.exchange = exchange
    cfg_channels = header.get("config", {})
    channels = sorted({CHANNELS[c] for c in cfg_channels if c in CHANNELS})
    symbols = sorted({s for c, syms in cfg_channels.items() if c in CHANNELS for s in syms})
    for c in cfg_channels:
        if c not in CHANNELS:
            rep.skipped[f"channel_{c}"] += 1
    replay = _Replay(records)
    cls = EXCHANGE_MAP[exchange]
    data = []
    for ep in cls.rest_endpoints:
        addr = cls._symbol_endpoint_prepare(ep)
        for url in addr if isinstance(addr, list) else [addr]:
            data.append(json.loads(replay.body(url), parse_float=Decimal))
    Symbols.set(cls.id, *cls._parse_symbol_data(data if len(data) > 1 else data[0]))

    fcfg = FeedConfig.model_construct(exchange=exchange, symbols=symbols, channels=channels,
                                      depth=1000, endpoint=None)
    cfg = CollectConfig.model_construct(store=None, flush_interval_s=3600.0, batch_rows=10**9,
                                        queue_size=2 * 10**9, stats_interval_s=3600.0,
                                        snapshot_interval_min=10**6, fsync=True, feeds=[fcfg])
    writer = StoreWriter(run.root, deferred=True, run_id=run.run_id)
    collector = Collector(cfg, store=str(run.root), report=lambda line: None, writer=writer)
    feed = build_feed(fcfg, collector.callbacks(), cls)

    async def recorded_read(address, *args, **kwargs):
        return replay.body(address)

    feed.http_conn.read = recorded_read
    conns = {}
    for r in records:
        if r["t"] == "connect":
            addr = r["addr"]
            ep = next((e for e in cls.websocket_endpoints
                       if urlsplit(e.address).path.rstrip("/")
                       and urlsplit(addr).path.startswith(urlsplit(e.address).path)),
                      cls.websocket_endpoints[0])
            conns[r["conn"]] = SimpleNamespace(uuid=r["conn"], address=addr,
                                               subscription=_endpoint_subscription(feed, ep))
    for lineno, r in enumerate(records, 1):
        if r["t"] != "recv":
            continue
        conn = conns.get(r["conn"])
        if conn is None:
            run.reject(rep, lineno, f"frame on unknown connection {r['conn']!r}")
            continue
        try:
            await feed.message_handler(r["data"], conn, float(r["ts"]))
            rep.messages["frames"] += 1
        except Exception as exc:  # noqa: BLE001 - the exchange parser's own failure
            run.reject(rep, lineno, f"parser error: {type(exc).__name__} {exc}", r["data"])
    for (_ex, ch), st in collector.stats.items():
        rep.messages[ch] = st.count
    try:
        await collector.drain()
        rep.symbols = symbols
        run.commit(rep, writer)  # one transaction with the manifest
    except BaseException:
        writer.abort()
        raise
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def import_captures(paths: Sequence[str | Path], run: ImportRun) -> list[FileReport]:
    """Import several captures, each committed on its own."""
    reports = []
    for p in paths:
        rep = asyncio.run(import_capture(p, run))
        reports.append(rep)
        run.files.append(rep)
    return reports
