"""Import raw Binance websocket recordings into the store.

Input: text lines ``<local receipt time, ns> <raw JSON>``, gzip-compressed or plain, as recorded
from the combined stream (``{"stream": ..., "data": ...}``) plus REST depth snapshot lines
(``{"lastUpdateId": ..., "bids": ..., "asks": ...}``). Streams: ``depth`` diffs, ``trade``,
``aggTrade``, ``bookTicker`` and ``markPrice`` (USD-M funding).

The recording format, the Binance field names and the book's sequence rules live in
:mod:`tradelab.adapters.binance`; this module keeps the per-symbol state and writes the store.

The book is synced the Binance way. Diffs are buffered until a snapshot arrives; diffs older than
the snapshot are skipped (counted as ``diff_before_sync``); the first diff applied must straddle
the snapshot id (spot ``U <= id+1 <= u``, USD-M ``U <= id <= u``); after that every diff must
continue the previous one (spot ``U == last_u + 1``, USD-M ``pu == last_u``). A break is written
to ``quality_events`` as a ``gap``, and stored deltas resume only after a new snapshot
(a ``resync``). When an import starts without a snapshot, a stream that continues exactly where
the store's last stored book message ends is resumed from the store (e.g. a recording split at
midnight imported file by file).

Several files in one call are read as one continuous recording (ordered by their first receipt
time), each committed on its own: a file that fails leaves nothing visible, and the files after it
do not chain onto what it read. The sync state rolls back to the end of the last committed file,
so the next file's first diff no longer continues the chain: it is recorded as a ``gap`` (named
after the failed file) and deltas resume from the next snapshot.

A file whose book never synced (it had depth diffs but stored none: they waited for a snapshot,
or for a stored book they continue, e.g. the second half of a split recording imported before or
in parallel with the first) is committed with its other rows and listed under ``book_unsynced``
in the manifest. Such a file does not count as imported: importing it again, once the file before
it is stored, resumes the stored book and adds the missing deltas (the rows already stored are
dropped by their content keys).

Values are checked line by line (see :mod:`tradelab.adapters.binance.parse`): a line with a NaN,
infinite, negative or zero price (or size, where it cannot be zero) is rejected with its line
number and reason, and the rest of the file imports. A depth diff is atomic: a diff with one bad
level is rejected whole, and since skipping it breaks the update-id chain, a synced book records
a ``gap`` naming that line and waits for the next snapshot (a diff rejected while the book waits
for its first snapshot is named by the gap found when the buffered diffs are replayed, if the
snapshot needs it). A bad snapshot is rejected whole; the book waits for another. Every line is
checked against the recording's market: a line of the other market (spot vs USD-M) refuses the
whole file, naming the line, since such a file mixes two recordings.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from tradelab.adapters.binance import depth_sync, parse
from tradelab.adapters.binance.recording import (
    SNIFF_LINES,
    first_recv_ts,
    open_recording,
    sniff_market,
    split_line,
)
from tradelab.adapters.binance.schema import MARKETS, split_stream, stream_kind, stream_symbol
from tradelab.adapters.binance.symbols import EXCHANGE, store_symbol_of_raw
from tradelab.collect.importers.base import FileReport, ImportRun, sha256_of
from tradelab.collect.rows import QE_COLS
from tradelab.errors import ImportFailed, StoreError
from tradelab.store.catalog import Catalog
from tradelab.store.schema import BOOK_LAST, BOOK_SNAPSHOT
from tradelab.store.writer import StoreWriter

BUFFER_MAX = 20_000
FLUSH_ROWS = 1_000_000
MS = 1_000_000

_BIDASK = pa.array(["bid", "ask"])
_BUYSELL = pa.array(["buy", "sell"])


# -- per-symbol buffers ----------------------------------------------------------------------


@dataclass
class _BookCols:
    m_ts: list = field(default_factory=list)
    m_recv: list = field(default_factory=list)
    m_seq: list = field(default_factory=list)
    m_prev: list = field(default_factory=list)
    m_nb: list = field(default_factory=list)
    m_na: list = field(default_factory=list)
    m_snap: list = field(default_factory=list)
    px: list = field(default_factory=list)
    qty: list = field(default_factory=list)

    def rows(self) -> int:
        return len(self.px)

    def table(self) -> dict[str, Any] | None:
        if not self.m_ts:
            return None
        nb = np.asarray(self.m_nb, dtype=np.int64)
        na = np.asarray(self.m_na, dtype=np.int64)
        cnt = nb + na
        pairs = np.stack([nb, na], axis=1).ravel()
        side_idx = np.repeat(np.tile(np.array([0, 1], dtype=np.int8), len(nb)), pairs)
        flags = np.repeat(np.where(np.asarray(self.m_snap), BOOK_SNAPSHOT, 0).astype(np.uint8), cnt)
        ends = np.cumsum(cnt)[cnt > 0] - 1
        flags[ends] |= BOOK_LAST
        prev = pa.array(self.m_prev, type=pa.int64())
        return {
            "ts": np.repeat(np.asarray(self.m_ts, dtype=np.int64), cnt),
            "recv_ts": np.repeat(np.asarray(self.m_recv, dtype=np.int64), cnt),
            "seq": np.repeat(np.asarray(self.m_seq, dtype=np.int64), cnt),
            "prev_seq": prev.take(pa.array(np.repeat(np.arange(len(nb)), cnt))),
            "side": pa.DictionaryArray.from_arrays(pa.array(side_idx), _BIDASK),
            "price": np.asarray(self.px, dtype=np.float64),
            "qty": np.asarray(self.qty, dtype=np.float64),
            "flags": flags,
        }


@dataclass
class _Rows:
    """Rows of a flat table (trades, bbo, funding), kept as one flat list (row after row, no
    object per row for the garbage collector to track) and sliced into columns when taken."""

    names: tuple[str, ...]
    data: list = field(default_factory=list)

    def rows(self) -> int:
        return len(self.data) // len(self.names)

    def add(self, *values: Any) -> None:
        """Append one row, values in the order of ``names``."""
        if len(values) != len(self.names):
            raise ValueError(f"a row of {self.names} needs {len(self.names)} values")
        self.data.extend(values)

    def take(self) -> dict[str, list]:
        data, self.data = self.data, []
        k = len(self.names)
        return {n: data[i::k] for i, n in enumerate(self.names)}


_Snapshot = tuple[int, int, list[tuple[float, float]], list[tuple[float, float]], int]
"""A REST depth snapshot: (receipt ns, lastUpdateId, bids, asks, line number)."""


@dataclass
class _Depth:
    """Sync state of one symbol's book."""

    symbol: str
    synced: bool = False
    ever_synced: bool = False
    last_u: int = -1
    buffer: deque = field(default_factory=lambda: deque())  # (recv, diff, line, levels)
    snap: _Snapshot | None = None
    store_checked: bool = False
    buffered_here: bool = False  # diffs of the current file waited for a sync
    applied_here: bool = False  # a diff of the current file was stored
    broken_by: str | None = None  # a failed file broke the chain after the last commit
    rejected: dict[int, int] = field(default_factory=dict)  # update id a bad diff followed -> line

    def copy(self) -> _Depth:
        return replace(self, buffer=deque(self.buffer), rejected=dict(self.rejected))


# -- the importer ----------------------------------------------------------------------------


class BinanceWsImporter:
    """Streams one or more recordings of one market into a store (see module docstring)."""

    def __init__(
        self,
        run: ImportRun,
        market: str | None = None,
        *,
        force: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        if market is not None and market not in MARKETS:
            raise StoreError(f"unknown market {market!r}: use spot or usdm")
        self.run = run
        self.market_arg = market
        self._market: str | None = None  # of the recording, from its first file
        self.force = force
        self.progress = progress
        self.depth: dict[str, _Depth] = {}
        self.routes: dict[str, tuple[Callable, str, str]] = {}  # stream -> (handler, symbol, kind)
        self.book_cols: dict[str, _BookCols] = {}
        self.trades: dict[str, _Rows] = {}
        self.bbo: dict[str, _Rows] = {}
        self.funding: dict[str, _Rows] = {}
        self.qevents: dict[str, _Rows] = {}
        self.pending_snapshots: list[_Snapshot] = []
        self._writer: StoreWriter | None = None  # of the file being imported
        self._report: FileReport | None = None  # of the file being imported
        self._catalog: Catalog | None = None
        self._committed: tuple[dict[str, _Depth], list] = ({}, [])

    @property
    def market(self) -> str:
        """The recording's market (``spot`` or ``usdm``), known once a file is open."""
        if self._market is None:
            raise RuntimeError("the market is known only once a recording is open")
        return self._market

    @property
    def writer(self) -> StoreWriter:
        """The writer of the file being imported."""
        if self._writer is None:
            raise RuntimeError("no file is being imported")
        return self._writer

    @property
    def report(self) -> FileReport:
        """The report of the file being imported."""
        if self._report is None:
            raise RuntimeError("no file is being imported")
        return self._report

    # .. public ..............................................................................

    def import_files(self, paths: Iterable[str | Path]) -> list[FileReport]:
        """Import files in recording order; returns one report per file."""
        files = [Path(p) for p in paths]
        for p in files:
            if not p.exists():
                raise StoreError(f"no such file: {p}")
            if p.is_dir():
                raise StoreError(f"{p} is a directory; pass the recording files themselves")
        files.sort(key=first_recv_ts)
        reports = []
        for path in files:
            reports.append(self._import_file(path))
            self.run.files.append(reports[-1])
        self._finish_unsynced(reports)
        return reports

    # .. per file ............................................................................

    def _import_file(self, path: Path) -> FileReport:
        rep = FileReport(path=str(path))
        self._report = rep
        t0 = time.perf_counter()
        try:
            rep.sha256 = sha256_of(path)
            prior = None if self.force else self.run.already_imported(rep.sha256)
            if prior:
                rep.status, rep.detail = "skipped", f"already imported by run {prior} (use --force)"
                return rep
            self._decide_market(path, rep)
            self._writer = StoreWriter(
                self.run.root, deferred=True, run_id=self.run.run_id, batch_rows=4 * FLUSH_ROWS
            )
            self._read(path, rep)
            self._flush_all()
            self._note_unsynced(rep)
            self.run.commit(rep, self._writer)  # one transaction with the manifest
            self._checkpoint()
        except ImportFailed as exc:
            rep.status, rep.detail = "failed", str(exc)
            if self._writer is not None:
                self._writer.abort()
            self._rollback(path)
        except BaseException as exc:
            if self._writer is not None:
                self._writer.abort()
            rep.status, rep.detail = "failed", f"{type(exc).__name__}: {exc}"
            self._rollback(path)
            if not isinstance(exc, Exception):
                raise
        finally:
            rep.elapsed_s = time.perf_counter() - t0
            self._writer = None
        return rep

    def _checkpoint(self) -> None:
        """Remember the sync state at the end of a committed file."""
        self._committed = (
            {sym: st.copy() for sym, st in self.depth.items()},
            list(self.pending_snapshots),
        )

    def _rollback(self, failed: Path) -> None:
        """Forget everything a failed file read: its buffered rows and its effect on the sync
        state, which returns to the end of the last committed file. The next diff of a synced
        book then no longer continues the chain, and a gap naming ``failed`` is recorded."""
        depth, pending = self._committed
        self.depth = {sym: st.copy() for sym, st in depth.items()}
        self.pending_snapshots = list(pending)
        for st in self.depth.values():
            st.broken_by = failed.name
        for store in (self.book_cols, self.trades, self.bbo, self.funding, self.qevents):
            store.clear()

    def _note_unsynced(self, rep: FileReport) -> None:
        """List the symbols whose book this file never synced: it had diffs and stored none."""
        for sym, st in self.depth.items():
            if st.buffered_here and not st.applied_here:
                rep.book_unsynced.append(sym)
            st.buffered_here = st.applied_here = False
            st.broken_by = None

    def _decide_market(self, path: Path, rep: FileReport) -> None:
        sniffed = sniff_market(path)
        if self.market_arg and sniffed and sniffed != self.market_arg:
            raise ImportFailed(
                f"{path}: the messages look like {sniffed} but --market {self.market_arg} was given"
            )
        market = self.market_arg or sniffed
        if market is None:
            raise ImportFailed(
                f"{path}: cannot tell spot from USD-M from the first {SNIFF_LINES} "
                "lines (no Binance depth/trade/bookTicker message); pass --market"
            )
        if self._market and market != self._market:
            raise ImportFailed(
                f"{path}: is {market} but earlier files were {self._market}; "
                "import different markets in separate calls"
            )
        self._market = market
        rep.market = market
        rep.exchange = EXCHANGE[market]

    def _read(self, path: Path, rep: FileReport) -> None:
        reject = self.run.reject
        loads = orjson.loads
        self.routes.clear()  # so each file's report lists its symbols
        routes = self.routes
        lineno = 0
        size = path.stat().st_size
        try:
            fh = open_recording(path)
        except OSError as exc:
            raise ImportFailed(f"{path}: cannot open: {exc}") from None
        raw_fh = getattr(fh, "fileobj", fh)
        try:
            for raw in fh:
                lineno += 1
                if not lineno & 0x3FFF:
                    if self.progress:
                        self.progress(str(path), raw_fh.tell(), size)
                    if self._buffered_rows() >= FLUSH_ROWS:
                        self._flush_all()
                parts = split_line(raw)
                if parts is None:
                    if raw.strip():
                        reject(rep, lineno, "no receipt timestamp: expected '<ns> <json>'", raw)
                    else:
                        rep.skipped["blank_line"] += 1
                    continue
                try:
                    recv = int(parts[0])
                    msg = loads(parts[1])
                except ValueError as exc:
                    what = "bad receipt timestamp" if not parts[0].isdigit() else "malformed JSON"
                    reject(rep, lineno, f"{what}: {exc}", raw)
                    continue
                try:
                    stream = msg.get("stream")
                    if stream is not None:
                        route = routes.get(stream)
                        if route is None:
                            route = self._route(stream, msg)
                            if route is None:
                                reject(rep, lineno, f"unknown stream: {stream!r}", raw)
                                continue
                        rep.messages[route[2]] += 1
                        route[0](route[1], recv, msg["data"], lineno)
                    elif "lastUpdateId" in msg:
                        rep.messages["snapshot"] += 1
                        self._on_snapshot(recv, msg, lineno)
                    else:
                        reject(
                            rep,
                            lineno,
                            "unknown message: neither a stream envelope nor a depth snapshot",
                            raw,
                        )
                except parse.BadValue as exc:
                    what = stream_kind(stream) if stream else "snapshot"
                    reject(rep, lineno, f"bad value in {what}: {exc}", raw)
                except parse.OtherMarket as exc:
                    raise ImportFailed(
                        f"{path}: line {lineno}: {exc}; the file mixes two markets' recordings "
                        "(import each on its own), nothing of it was stored"
                    ) from None
                except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                    reject(rep, lineno, f"bad message: {type(exc).__name__} {exc}", raw)
        except EOFError:
            reject(
                rep,
                lineno + 1,
                f"truncated gzip: {path.name} ends mid-stream after line "
                f"{lineno}; lines before it were imported",
            )
        except (zlib.error, gzip.BadGzipFile, OSError) as exc:
            if lineno == 0:
                raise ImportFailed(f"{path}: not a readable recording: {exc}") from None
            reject(
                rep,
                lineno + 1,
                f"corrupt input: {exc} (after line {lineno}); lines before it were imported",
            )
        finally:
            fh.close()
        rep.lines = lineno
        if self.progress:
            self.progress(str(path), size, size)
        if lineno == 0:
            raise ImportFailed(f"{path}: empty file")
        if sum(rep.messages.values()) == 0:
            raise ImportFailed(
                f"{path}: no Binance message could be read ({rep.n_rejects} lines rejected)"
            )

    def _route(self, stream: str, msg: dict) -> tuple[Callable, str, str] | None:
        name, base = split_stream(stream)
        handler = {
            "depth": self._on_diff,
            "trade": self._on_trade,
            "aggTrade": self._on_trade,
            "bookTicker": self._on_bbo,
            "markPrice": self._on_mark,
        }.get(base)
        if handler is None or not name:
            return None
        raw_sym = stream_symbol(stream, msg.get("data", {}))
        symbol = store_symbol_of_raw(raw_sym, self.market)
        if symbol not in self.report.symbols:
            self.report.symbols.append(symbol)
        route = (handler, symbol, base)
        self.routes[stream] = route
        return route

    # .. handlers ............................................................................

    def _on_trade(self, symbol: str, recv: int, d: dict, line: int) -> None:
        ts, price, qty, side, tid = parse.trade(d, self.market)
        rows = self.trades.get(symbol)
        if rows is None:
            rows = self.trades[symbol] = _Rows(
                ("ts", "recv_ts", "price", "qty", "side", "trade_id")
            )
        rows.add(ts, recv, price, qty, side, tid)

    def _on_bbo(self, symbol: str, recv: int, d: dict, line: int) -> None:
        ts, seq, bp, bq, ap, aq = parse.book_ticker(d, recv, self.market)
        rows = self.bbo.get(symbol)
        if rows is None:
            rows = self.bbo[symbol] = _Rows(
                ("ts", "recv_ts", "seq", "bid_px", "bid_qty", "ask_px", "ask_qty")
            )
        rows.add(ts, recv, seq, bp, bq, ap, aq)

    def _on_mark(self, symbol: str, recv: int, d: dict, line: int) -> None:
        parsed = parse.mark_price(d, self.market)
        if parsed is None:
            self.report.skipped["mark_price_without_funding_rate"] += 1
            return
        ts, rate, mark, index, nxt = parsed
        rows = self.funding.get(symbol)
        if rows is None:
            rows = self.funding[symbol] = _Rows(
                ("ts", "recv_ts", "rate", "settled", "mark_price", "index_price", "next_funding_ts")
            )
        rows.add(ts, recv, rate, False, mark, index, nxt)

    # .. depth and sync ......................................................................

    def _state(self, symbol: str) -> _Depth:
        st = self.depth.get(symbol)
        if st is None:
            st = self.depth[symbol] = _Depth(symbol)
        return st

    def _on_diff(self, symbol: str, recv: int, d: dict, line: int) -> None:
        parse.check_depth_update(d, self.market)
        try:
            levels = parse.depth_levels(d)
        except parse.BadValue as exc:
            self._bad_diff(self._state(symbol), recv, d, line, exc)
            raise
        self._apply_diff(symbol, recv, d, line, levels)

    def _apply_diff(self, symbol: str, recv: int, d: dict, line: int, levels: tuple) -> None:
        u = d["u"]
        st = self._state(symbol)
        if not st.synced:
            if not st.store_checked:
                st.store_checked = True
                if self._resume_from_store(st, d):
                    self._apply_diff(symbol, recv, d, line, levels)
                    return
            self._buffer(st, recv, d, line, levels)
            self._try_sync(st)
            return
        if u <= st.last_u:
            self.report.skipped["stale_diff"] += 1
            return
        ok, expected, got = depth_sync.expected_next(self.market, d, st.last_u)
        if not ok:
            self._gap(st, recv, d, expected, got)
            self._buffer(st, recv, d, line, levels)
            self._try_sync(st)
            return
        if st.snap is not None and self._straddles(d, st.snap[1]):
            self._emit_snapshot(st, st.snap, d)
            st.snap = None
        self._emit_diff(recv, d, levels, self._book(symbol))
        st.last_u = u
        st.applied_here = True

    def _bad_diff(self, st: _Depth, recv: int, d: dict, line: int, exc: Exception) -> None:
        """A rejected diff breaks the update-id chain: a synced book records a gap at once and
        waits for a snapshot; an unsynced one remembers the line for the gap found later."""
        prev = depth_sync.prev_update_id(d)
        if not st.synced:
            st.rejected[prev] = line
            return
        if d["u"] <= st.last_u:
            return  # a stale diff: it would have been skipped anyway
        report, market = self.report, self.market
        assert report is not None and market is not None  # set before any line is read
        report.gaps += 1
        st.synced = False
        expected = depth_sync.expected_next(market, d, st.last_u)[1]
        self._quality(
            st.symbol,
            parse.event_ns(d),
            recv,
            "gap",
            expected,
            None,  # nothing usable arrived
            f"depth diff U={d['U']} u={d['u']} at line {line} rejected ({exc}); "
            "deltas stop until a new snapshot",
        )

    def _straddles(self, d: dict, snap_id: int) -> bool:
        """Whether diff ``d`` is the first one to apply on top of snapshot ``snap_id``."""
        return depth_sync.straddles(self.market, d, snap_id)

    def _buffer(self, st: _Depth, recv: int, d: dict, line: int, levels: tuple) -> None:
        st.buffered_here = True
        st.buffer.append((recv, d, line, levels))
        if len(st.buffer) > BUFFER_MAX:
            st.buffer.popleft()
            self.report.skipped["diff_before_sync"] += 1

    def _on_snapshot(self, recv: int, snap: dict, line: int) -> None:
        snap_id, bids, asks = parse.snapshot(snap)
        entry = (recv, snap_id, bids, asks, line)
        # A REST snapshot names no symbol: it belongs to the book one of whose diffs straddles
        # its id, or to the only book of the file.
        if len(self.depth) == 1:
            st = next(iter(self.depth.values()))
        else:
            owners = [
                st
                for st in self.depth.values()
                if any(self._straddles(d, snap_id) for _r, d, _l, _v in st.buffer)
            ]
            if len(owners) != 1:
                self.pending_snapshots.append(entry)
                return
            st = owners[0]
        if st.synced:
            if snap_id >= st.last_u:
                st.snap = entry  # emitted where the diff chain passes its id
            else:
                self.report.skipped["late_snapshot"] += 1
            return
        st.snap = entry
        self._try_sync(st)

    def _claim_pending(self, st: _Depth) -> None:
        for i, entry in enumerate(self.pending_snapshots):
            if len(self.depth) == 1 or any(
                self._straddles(d, entry[1]) for _r, d, _l, _v in st.buffer
            ):
                st.snap = self.pending_snapshots.pop(i)
                return

    def _try_sync(self, st: _Depth) -> None:
        if st.snap is None and self.pending_snapshots:
            self._claim_pending(st)
        if st.snap is None:
            return
        snap_id = st.snap[1]
        buf = st.buffer
        while buf and depth_sync.is_before(self.market, buf[0][1], snap_id):
            buf.popleft()
            self.report.skipped["diff_before_sync"] += 1
        if not buf:
            return
        recv, first, _line, levels = buf[0]
        if not self._straddles(first, snap_id):
            # the snapshot is older than every buffered diff: it can never be applied
            self._quality(
                st.symbol,
                parse.event_ns(first),
                recv,
                "stale_snapshot",
                snap_id,
                first["U"],
                "snapshot lastUpdateId precedes the buffered diffs; waiting for another",
            )
            self.report.skipped["stale_snapshot"] += 1
            st.snap = None
            return
        self._emit_snapshot(st, st.snap, first)
        st.snap = None
        buf.popleft()
        self._emit_diff(recv, first, levels, self._book(st.symbol))
        st.applied_here = True
        st.synced = True
        st.last_u = first["u"]
        rest = list(buf)
        buf.clear()
        for r, d, line, lv in rest:
            self._apply_diff(st.symbol, r, d, line, lv)

    def _emit_snapshot(self, st: _Depth, entry: tuple, first: dict) -> None:
        recv, snap_id, bids, asks, _line = entry
        # the first exchange time at which the snapshot state is observable
        ts = parse.event_ns(first)
        cols = self._book(st.symbol)
        for p, q in bids:
            cols.px.append(p)
            cols.qty.append(q)
        for p, q in asks:
            cols.px.append(p)
            cols.qty.append(q)
        self._book_msg(cols, ts, recv, snap_id, None, len(bids), len(asks), True)
        kind = "resync" if st.ever_synced else "sync"
        if st.ever_synced:
            self.report.resyncs += 1
        self._quality(
            st.symbol, ts, recv, kind, None, snap_id, f"book synced from snapshot {snap_id}"
        )
        st.ever_synced = True

    def _emit_diff(self, recv: int, d: dict, levels: tuple, cols: _BookCols) -> None:
        px, qty, nb = levels
        na = len(px) - nb
        if nb + na == 0:
            self.report.skipped["empty_diff"] += 1
            return
        cols.px.extend(px)
        cols.qty.extend(qty)
        prev = depth_sync.prev_update_id(d)
        self._book_msg(cols, parse.event_ns(d), recv, d["u"], prev, nb, na, False)

    @staticmethod
    def _book_msg(cols: _BookCols, ts, recv, seq, prev, nb, na, snap) -> None:
        cols.m_ts.append(ts)
        cols.m_recv.append(recv)
        cols.m_seq.append(seq)
        cols.m_prev.append(prev)
        cols.m_nb.append(nb)
        cols.m_na.append(na)
        cols.m_snap.append(snap)

    def _gap(self, st: _Depth, recv: int, d: dict, expected: int, got: int) -> None:
        self.report.gaps += 1
        st.synced = False
        why = ""
        if st.broken_by is not None:
            why = f" (the file before, {st.broken_by}, failed)"
        elif st.last_u in st.rejected:
            why = f" (the diff at line {st.rejected[st.last_u]} was rejected)"
        st.rejected.clear()
        st.broken_by = None
        self._quality(
            st.symbol,
            parse.event_ns(d),
            recv,
            "gap",
            expected,
            got,
            f"depth diff U={d['U']} u={d['u']} does not continue last_u={st.last_u}{why}; "
            "deltas stop until a new snapshot",
        )

    def _resume_from_store(self, st: _Depth, d: dict) -> bool:
        """Continue a stream whose previous part is already stored (no snapshot needed)."""
        exchange = EXCHANGE[self.market]
        if not (self.run.root / "book" / f"exchange={exchange}" / f"symbol={st.symbol}").is_dir():
            return False
        if self._catalog is None:
            self._catalog = Catalog(self.run.root)
        cat = self._catalog
        row = cat.scalar(
            f"SELECT seq FROM {cat.scan('book', exchange, st.symbol)} "
            "ORDER BY ts DESC, filename DESC, file_row_number DESC LIMIT 1"
        )
        if row is None:
            return False
        last = int(row)
        last_u = depth_sync.resumes_after(self.market, d, last)
        cont = last_u is not None
        if last_u is not None:
            st.synced = st.ever_synced = True
            st.last_u = last_u
            self._quality(
                st.symbol,
                parse.event_ns(d),
                None,
                "resume",
                last,
                d["U"],
                f"continued the stored book from update id {last}",
            )
        return cont

    def _finish_unsynced(self, reports: list[FileReport]) -> None:
        """Diffs still waiting for a snapshot at the end are counted on the last file."""
        if not reports:
            return
        for st in self.depth.values():
            if st.buffer:
                reports[-1].skipped["diff_never_synced"] += len(st.buffer)
                st.buffer.clear()
        if self.pending_snapshots:
            reports[-1].skipped["snapshot_unused"] += len(self.pending_snapshots)

    # .. output ..............................................................................

    def _book(self, symbol: str) -> _BookCols:
        cols = self.book_cols.get(symbol)
        if cols is None:
            cols = self.book_cols[symbol] = _BookCols()
        return cols

    def _quality(self, symbol, ts, recv, kind, expected, got, detail) -> None:
        rows = self.qevents.get(symbol)
        if rows is None:
            rows = self.qevents[symbol] = _Rows(QE_COLS)
        source = Path(self.report.path).name if self.report else None
        rows.add(ts, recv, "book", kind, expected, got, source, detail)

    def _buffered_rows(self) -> int:
        return (
            sum(c.rows() for c in self.book_cols.values())
            + sum(r.rows() for r in self.trades.values())
            + sum(r.rows() for r in self.bbo.values())
        )

    def _flush_all(self) -> None:
        ex = EXCHANGE[self.market]
        w = self.writer
        rep = self.report
        for sym, cols in self.book_cols.items():
            tbl = cols.table()
            if tbl is not None:
                rep.rows["book"] += w.write("book", ex, sym, tbl)
        self.book_cols.clear()
        for sym, rows in self.trades.items():
            if rows.rows():
                c = rows.take()
                side = pa.DictionaryArray.from_arrays(pa.array(c["side"], pa.int8()), _BUYSELL)
                ts = np.asarray(c["ts"], dtype=np.int64) * MS
                rep.rows["trades"] += w.write(
                    "trades",
                    ex,
                    sym,
                    {
                        "ts": ts,
                        "recv_ts": np.asarray(c["recv_ts"], dtype=np.int64),
                        "price": np.asarray(c["price"]),
                        "qty": np.asarray(c["qty"]),
                        "side": side,
                        "trade_id": pa.array(c["trade_id"]).cast(pa.string()),
                    },
                )
        for table, store in (
            ("bbo", self.bbo),
            ("funding", self.funding),
            ("quality_events", self.qevents),
        ):
            for sym, rows in store.items():
                if rows.rows():
                    rep.rows[table] += w.write(table, ex, sym, rows.take())
