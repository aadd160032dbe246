"""The collector: cryptofeed callbacks -> column buffers -> the store's writer.

Callbacks only append cryptofeed objects' values to per-partition column buffers, bounded by
``queue_size`` rows in all; what does not fit is dropped and counted (and a dropped book delta
forces a fresh snapshot, with a gap recorded, so the stored book stays consistent). A writer task
hands the buffers over and writes part files through :class:`tradelab.store.StoreWriter` every
``flush_interval_s`` or as soon as ``batch_rows`` rows wait, in a worker thread so the event
loop never blocks on Parquet. SIGINT/SIGTERM flush everything and end the run normally; after
SIGKILL every visible part file is complete and at most one flush interval of data is lost.

A store error never stops the writer: the rows the store refuses (e.g. a NaN where a value is
required) are found by bisecting the batch, logged at once with the cause, counted in the stats
line and written to ``<store>/_collect/<run>.rejects.jsonl`` with their reason; every other row
is stored and the writer keeps going.

Book rows: every exchange snapshot (first sync, or after cryptofeed detected a gap and resynced)
is stored with ``BOOK_SNAPSHOT``; a resync records a ``gap`` and a ``resync`` quality event.
A snapshot is held until the next delta so its time is never later than that delta's (cryptofeed
fetches it by REST while diffs keep arriving). A full snapshot of the book is also written every
``snapshot_interval_min``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptofeed import FeedHandler
from cryptofeed.defines import FUNDING, L2_BOOK, OPEN_INTEREST, TICKER, TRADES

from tradelab.collect import rows as R
from tradelab.collect.config import CollectConfig
from tradelab.collect.feeds import build_feed, feed_class
from tradelab.errors import StoreError
from tradelab.net.cryptofeed_feeds import prefetch_symbols
from tradelab.store.paths import new_run_id, resolve_root
from tradelab.store.writer import StoreWriter

log = logging.getLogger("tradelab.collect")
CHANNEL_NAME = {L2_BOOK: "l2_book", TRADES: "trades", TICKER: "bbo", FUNDING: "funding",
                OPEN_INTEREST: "open_interest"}


@dataclass
class BookState:
    synced: bool = False
    last_ts: int | None = None
    last_seq: int | None = None
    pending: list[tuple] | None = None  # snapshot rows waiting for the next delta
    pending_ts: int = 0
    # sync/resync records of that snapshot: (kind, expected, got, detail), written at the time
    # the snapshot is stored with, so a later gap never sorts before the sync it breaks
    pending_events: list[tuple] = field(default_factory=list)
    needs_snapshot: bool = False
    last_snapshot: float = 0.0


@dataclass
class ChannelStats:
    count: int = 0
    reported: int = 0
    last_recv: float | None = None
    gaps_ms: deque = field(default_factory=lambda: deque(maxlen=20_000))


class _ShutdownNoise(logging.Filter):
    """Once a run is stopping, cryptofeed reports its own connections closing as errors
    (e.g. an open-interest poll cut mid-read): expected, so not shown or counted."""

    def __init__(self, stopping: asyncio.Event) -> None:
        super().__init__()
        self.stopping = stopping

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.stopping.is_set() and "closed" in record.getMessage())


class _CryptofeedLog(logging.Handler):
    """Counts what cryptofeed reports: missing book updates, reconnects, handler errors."""

    def __init__(self, counters: Counter) -> None:
        super().__init__(logging.WARNING)
        self.counters = counters

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        exchange = msg.split(":", 1)[0].split(".")[0]
        if "Missing book update" in msg:
            self.counters[(exchange, "gap_detected")] += 1
            return
        if "reconnecting" in msg:
            self.counters[(exchange, "reconnect")] += 1
        if record.levelno >= logging.ERROR:  # e.g. a message cryptofeed could not handle
            self.counters[(exchange, "error")] += 1


class Collector:
    """One collection run (see the module docstring)."""

    def __init__(self, cfg: CollectConfig, store: str | None = None,
                 duration_s: float | None = None,
                 report: Callable[[str], None] | None = None,
                 writer: StoreWriter | None = None) -> None:
        self.cfg = cfg
        self.root = resolve_root(store or cfg.store, create=True)
        self.duration_s = duration_s
        self.report = report or (lambda line: log.info(line))
        self._flush_now = asyncio.Event()
        self.writer = writer or StoreWriter(self.root, batch_rows=cfg.batch_rows,
                                            fsync=cfg.fsync)
        self.depth = {f.exchange: f.depth for f in cfg.feeds}
        self.books: dict[tuple[str, str], BookState] = {}
        self.stats: dict[tuple[str, str], ChannelStats] = {}
        self.dropped: Counter = Counter()
        self.events: Counter = Counter()
        self.top: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        # cryptofeed's own (mutable) books; their top is read only when a stats line is
        # printed: asking order_book for its best level sorts the whole side (~0.6 ms)
        self._live_books: dict[tuple[str, str], object] = {}
        self.latency_s: deque = deque(maxlen=50_000)
        self._buffers: dict[tuple[str, str, str], R.ColumnBuffer] = {}
        self._receipts: list[float] = []
        self._buffered = 0  # rows waiting for the writer (bounded by queue_size)
        self._stop = asyncio.Event()
        self._t0 = time.time()
        self._log_handler = _CryptofeedLog(self.events)
        self._noise = _ShutdownNoise(self._stop)
        self.run_id = new_run_id()
        self.store_errors: Counter = Counter()  # (exchange, table) -> refused batches/errors
        self.rejected: Counter = Counter()  # (exchange, table) -> rows refused by the store
        self.reject_path = self.root / "_collect" / f"{self.run_id}.rejects.jsonl"

    # -- callbacks (hot path: no I/O) ----------------------------------------------------

    def _seen(self, exchange: str, channel: str, receipt: float) -> None:
        st = self.stats.get((exchange, channel))
        if st is None:
            st = self.stats[(exchange, channel)] = ChannelStats()
        st.count += 1
        if st.last_recv is not None:
            st.gaps_ms.append((receipt - st.last_recv) * 1000)
        st.last_recv = receipt

    def _buf(self, table: str, exchange: str, symbol: str) -> R.ColumnBuffer:
        key = (table, exchange, symbol)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = R.ColumnBuffer(R.COLUMNS[table])
        return buf

    def _room(self, n: int, exchange: str, table: str, receipt: float) -> bool:
        """Reserve room for ``n`` rows, or count them as dropped (backpressure)."""
        if self._buffered + n > self.cfg.queue_size:
            self.dropped[(exchange, table)] += n
            return False
        self._buffered += n
        self._receipts.append(receipt)
        if self._buffered >= self.cfg.batch_rows:
            self._flush_now.set()
        return True

    def _put(self, table: str, exchange: str, symbol: str, rows: list[tuple],
             receipt: float) -> bool:
        if not rows:
            return True
        if not self._room(len(rows), exchange, table, receipt):
            return False
        self._buf(table, exchange, symbol).extend_rows(rows)
        return True

    def _quality(self, exchange: str, symbol: str, ts: int, kind: str, expected, got,
                 detail: str) -> None:
        # quality records are never subject to backpressure: they must not be dropped
        self._buf("quality_events", exchange, symbol).extend_rows(
            [(ts, R.ns(time.time()), "book", kind, expected, got, "collector", detail)])
        self._buffered += 1

    def callbacks(self) -> dict[str, Callable]:
        """cryptofeed callbacks by channel."""

        async def on_trade(t, receipt):
            self._seen(t.exchange, "trades", receipt)
            if self._room(1, t.exchange, "trades", receipt):
                R.append_trade(self._buf("trades", t.exchange, t.symbol), t, receipt)

        async def on_ticker(t, receipt):
            self._seen(t.exchange, "bbo", receipt)
            self.top[(t.exchange, t.symbol)] = (float(t.bid), float(t.ask))
            if self._room(1, t.exchange, "bbo", receipt):
                R.append_bbo(self._buf("bbo", t.exchange, t.symbol), t, receipt)

        async def on_funding(f, receipt):
            self._seen(f.exchange, "funding", receipt)
            if f.rate is None:
                return
            self._put("funding", f.exchange, f.symbol, [R.funding_row(f, receipt)], receipt)

        async def on_oi(o, receipt):
            self._seen(o.exchange, "open_interest", receipt)
            self._put("open_interest", o.exchange, o.symbol, [R.oi_row(o, receipt)], receipt)

        return {TRADES: on_trade, TICKER: on_ticker, FUNDING: on_funding,
                OPEN_INTEREST: on_oi, L2_BOOK: self.on_book}

    async def on_book(self, book, receipt: float) -> None:
        ex, sym = book.exchange, book.symbol
        self._seen(ex, "l2_book", receipt)
        key = (ex, sym)
        st = self.books.get(key)
        if st is None:
            st = self.books[key] = BookState()
        recv = R.ns(receipt)
        ts = R.ns(book.timestamp, receipt)
        depth = self.depth.get(ex)
        if book.delta is None:  # a snapshot from the exchange
            self._flush_pending_events(ex, sym, st, st.pending_ts)
            if st.synced:
                gap_ts = (st.last_ts or ts) + 1
                self._quality(ex, sym, gap_ts, "gap", st.last_seq, book.sequence_number,
                              "cryptofeed resynced the book (missing update or reconnect)")
                st.pending_events.append(("resync", None, book.sequence_number,
                                          "book snapshot after a gap"))
                self.events[(ex, "resync")] += 1
            else:
                st.pending_events.append(("sync", None, book.sequence_number,
                                          "first book snapshot"))
            st.pending = R.snapshot_rows(book, ts, recv, depth)
            st.pending_ts = ts
            st.synced = True
            st.needs_snapshot = False
            st.last_snapshot = time.monotonic()
            st.last_seq = book.sequence_number
            self._live_books[key] = book
            return
        if st.pending is not None:
            t_snap = min(st.pending_ts, ts)
            self._flush_pending_events(ex, sym, st, t_snap)
            snap = [(t_snap,) + r[1:] for r in st.pending]
            if not self._put("book", ex, sym, snap, receipt):
                st.needs_snapshot = True
            st.pending = None
        if st.needs_snapshot:  # rows were dropped: the stored chain needs a fresh snapshot
            if self._put("book", ex, sym, R.snapshot_rows(book, ts, recv, depth), receipt):
                self._quality(ex, sym, ts, "resync", None, book.sequence_number,
                              "snapshot after rows were dropped by backpressure")
                st.needs_snapshot = False
                st.last_snapshot = time.monotonic()
        elif not self._room(len(book.delta["bid"]) + len(book.delta["ask"]), ex, "book",
                            receipt):
            st.needs_snapshot = True
            self._quality(ex, sym, (st.last_ts or ts) + 1, "gap", st.last_seq,
                          book.sequence_number, "book delta dropped by backpressure")
        else:
            R.append_delta(self._buf("book", ex, sym), book, ts, recv)
        if not st.needs_snapshot and \
                time.monotonic() - st.last_snapshot >= self.cfg.snapshot_interval_min * 60:
            if self._put("book", ex, sym, R.snapshot_rows(book, ts, recv, depth), receipt):
                st.last_snapshot = time.monotonic()
        st.last_ts = ts
        st.last_seq = book.sequence_number
        self._live_books[key] = book

    # -- writing -------------------------------------------------------------------------

    async def _writer_loop(self) -> None:
        """Hand the buffers to the writer every flush interval, or sooner at batch_rows."""
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._flush_now.wait(),
                                       timeout=self.cfg.flush_interval_s)
            except TimeoutError:
                pass
            self._flush_now.clear()
            try:
                await self._flush(loop)
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one error
                self.store_errors[("*", "writer")] += 1
                log.exception("collector writer error (continuing): %s", exc)

    async def drain(self) -> None:
        """Write everything buffered or held (for callbacks fed directly, without feeds)."""
        self._release_pending()
        await self._flush(asyncio.get_running_loop())

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand everything buffered to a worker thread and wait until it is written.

        The buffers are swapped here, on the event loop, so callbacks never touch what the
        thread is writing; the thread is the writer's only user."""
        buffers, receipts = self._buffers, self._receipts
        self._buffers, self._receipts, self._buffered = {}, [], 0
        await loop.run_in_executor(None, self._write, buffers, receipts)

    def _write(self, buffers: dict, receipts: list[float]) -> None:
        for (table, ex, sym), buf in buffers.items():
            if len(buf):
                self._write_rows(table, ex, sym, buf.to_dict())
        try:
            self.writer.flush()
        except Exception as exc:  # noqa: BLE001 - e.g. disk full: logged, counted, retried
            self.store_errors[("*", "flush")] += 1
            log.error("store error while writing part files (kept buffered, retried at the "
                      "next flush): %s: %s", type(exc).__name__, exc)
        done = time.time()
        self.latency_s.extend(done - r for r in receipts)

    def _write_rows(self, table: str, ex: str, sym: str, cols: dict[str, list]) -> None:
        """Hand rows to the writer; rows the store refuses are rejected, the rest stored."""
        try:
            self.writer.write(table, ex, sym, cols)
            return
        except StoreError as exc:
            first = exc
        self.store_errors[(ex, table)] += 1
        log.error("store refused %s rows for %s %s: %s; rejecting the offending rows and "
                  "storing the rest", table, ex, sym, first)
        n = len(next(iter(cols.values())))
        bad = self._bisect(table, ex, sym, cols, 0, n)
        self.rejected[(ex, table)] += len(bad)
        self._log_rejects(table, ex, sym, cols, bad)

    def _bisect(self, table: str, ex: str, sym: str, cols: dict[str, list], lo: int,
                hi: int) -> list[tuple[int, str]]:
        """Write ``cols[lo:hi]``; on refusal split it in halves. Returns the refused rows."""
        part = {k: v[lo:hi] for k, v in cols.items()}
        try:
            self.writer.write(table, ex, sym, part)
            return []
        except StoreError as exc:
            if hi - lo == 1:
                return [(lo, str(exc))]
        mid = (lo + hi) // 2
        return self._bisect(table, ex, sym, cols, lo, mid) + \
            self._bisect(table, ex, sym, cols, mid, hi)

    def _log_rejects(self, table: str, ex: str, sym: str, cols: dict[str, list],
                     bad: list[tuple[int, str]]) -> None:
        self.reject_path.parent.mkdir(exist_ok=True)
        with open(self.reject_path, "a", encoding="utf-8") as fh:
            for i, reason in bad:
                row = {k: _jsonable(v[i]) for k, v in cols.items()}
                fh.write(json.dumps({"table": table, "exchange": ex, "symbol": sym,
                                     "reason": reason, "row": row}) + "\n")

    # -- stats ---------------------------------------------------------------------------

    async def _stats_loop(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.cfg.stats_interval_s)
            except TimeoutError:
                pass
            now = time.monotonic()
            for line in self.stats_lines(now - last):
                self.report(line)
            last = now

    def stats_lines(self, elapsed: float) -> list[str]:
        """One line per exchange: rates, inter-message gaps, write latency, drops, gaps, top."""
        for key, book in self._live_books.items():
            self.top[key] = R.top_of(book)
        lines = []
        lat = np.array(self.latency_s) * 1000 if self.latency_s else None
        for ex in sorted({e for e, _ in self.stats}):
            parts = []
            gaps: list[float] = []
            for (e, ch), st in sorted(self.stats.items()):
                if e != ex:
                    continue
                rate = (st.count - st.reported) / max(elapsed, 1e-9)
                st.reported = st.count
                parts.append(f"{ch} {rate:,.1f}/s")
                gaps.extend(st.gaps_ms)
            g = np.percentile(gaps, [50, 95, 99]) if gaps else [np.nan] * 3
            dropped = sum(v for (e, _t), v in self.dropped.items() if e == ex)
            line = (f"[stats] {ex}: {', '.join(parts)} | inter-msg p50/p95/p99 "
                    f"{g[0]:.1f}/{g[1]:.1f}/{g[2]:.1f} ms")
            if lat is not None:
                p = np.percentile(lat, [50, 99])
                line += f" | write latency p50/p99 {p[0]:.0f}/{p[1]:.0f} ms"
            line += (f" | dropped {dropped} | gaps {self.events[(ex, 'gap_detected')]}"
                     f" resyncs {self._resyncs(ex)}")
            errors = sum(v for (e, _t), v in self.store_errors.items() if e in (ex, "*"))
            if errors:
                rejected = sum(v for (e, _t), v in self.rejected.items() if e == ex)
                line += f" | STORE ERRORS {errors} (rows rejected {rejected})"
            for (e, sym), (bid, ask) in sorted(self.top.items()):
                if e == ex and bid and ask:
                    spread_bps = (ask - bid) / ((ask + bid) / 2) * 1e4
                    line += f" | {sym} {bid:g}/{ask:g} {spread_bps:.2f}bps"
            lines.append(line)
        return lines

    def _resyncs(self, exchange: str) -> int:
        return self.events[(exchange, "resync")]

    # -- run -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the run to finish (flushes everything)."""
        self._stop.set()

    async def run(self, install_signals: bool = True) -> dict[str, Any]:
        """Collect until ``duration_s`` elapses or ``stop()``/a signal; returns the summary."""
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop)
        cf_log = logging.getLogger("feedhandler")
        cf_log.addHandler(self._log_handler)
        cf_log.addFilter(self._noise)
        cbs = self.callbacks()
        fh = FeedHandler(config={"uvloop": False, "log": {"disabled": True}})
        for fcfg in self.cfg.feeds:
            cls = feed_class(fcfg.exchange, fcfg.endpoint)
            await prefetch_symbols(cls)
            fh.add_feed(build_feed(fcfg, cbs, cls))
        writer = asyncio.create_task(self._writer_loop())
        stats = asyncio.create_task(self._stats_loop())
        fh.run(start_loop=False, install_signal_handlers=False)
        self._t0 = time.time()
        try:
            if self.duration_s:
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=self.duration_s)
                except TimeoutError:
                    pass
            else:
                await self._stop.wait()
        finally:
            self._stop.set()
            await fh.stop_async()
            self._release_pending()
            await writer
            await stats
            await self._flush(loop)
            await loop.run_in_executor(None, self.writer.close)
            cf_log.removeHandler(self._log_handler)
            cf_log.removeFilter(self._noise)
            if install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        return self.summary()

    def _flush_pending_events(self, ex: str, sym: str, st: BookState, ts: int) -> None:
        """Write the sync/resync records of the pending snapshot at ``ts``, its stored time."""
        for kind, expected, got, detail in st.pending_events:
            self._quality(ex, sym, ts, kind, expected, got, detail)
        st.pending_events.clear()

    def _release_pending(self) -> None:
        for (ex, sym), st in self.books.items():
            self._flush_pending_events(ex, sym, st, st.pending_ts)
            if st.pending is not None:
                self._buf("book", ex, sym).extend_rows(st.pending)
                self._buffered += len(st.pending)
                st.pending = None

    def summary(self) -> dict[str, Any]:
        """What the run wrote and saw."""
        lat = np.array(self.latency_s) * 1000 if self.latency_s else None
        channels: dict[str, dict[str, int]] = {}
        for (ex, ch), st in self.stats.items():
            channels.setdefault(ex, {})[ch] = st.count
        return {
            "store": str(self.root), "elapsed_s": round(time.time() - self._t0, 3),
            "rows": dict(self.writer.stats.rows), "files": self.writer.stats.files,
            "bytes": self.writer.stats.bytes, "messages": channels,
            "dropped": {f"{e}:{t}": v for (e, t), v in self.dropped.items()},
            "store_errors": {f"{e}:{t}": v for (e, t), v in self.store_errors.items()},
            "rejected": {f"{e}:{t}": v for (e, t), v in self.rejected.items()},
            "rejects_file": str(self.reject_path) if self.reject_path.exists() else None,
            "events": {f"{e}:{k}": v for (e, k), v in self.events.items()},
            "write_latency_ms": None if lat is None else {
                "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
