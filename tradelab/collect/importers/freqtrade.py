"""Import freqtrade data files (feather) into the store.

File names follow freqtrade: spot candles ``BTC_USDT-1m.feather``; futures candles
``BTC_USDT_USDT-1m-futures.feather``; ``-8h-funding_rate`` (the rate is in ``open``), ``-8h-mark``
and ``-8h-index`` files; trades ``BTC_USDT-trades.feather``. Futures files usually sit in a
``futures/`` sub-folder; the folder is searched recursively.

Pairs become normalised symbols (``BTC_USDT`` -> ``BTC-USDT``, ``BTC_USDT_USDT`` ->
``BTC-USDT-PERP``); futures go to the exchange's futures venue the cryptofeed way
(``BINANCE`` -> ``BINANCE_FUTURES``, inverse ``BTC_USD_BTC`` -> ``BINANCE_DELIVERY``).

Rows are checked (finite prices, ``low <= open, close <= high``, volume >= 0, candle times on the
timeframe's grid, no duplicate times); bad rows are rejected with their row number and reason.
Re-importing is idempotent: rows whose time is already stored for the same symbol, interval and
kind are skipped and counted. A file with other columns is refused as a whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from tradelab.adapters.freqtrade.files import OHLCV_COLUMNS, TRADES_COLUMNS, classify, venue
from tradelab.collect.importers.base import FileReport, ImportRun, sha256_of
from tradelab.core.timeutil import candle_slots
from tradelab.errors import ImportFailed, StoreError
from tradelab.store.catalog import Catalog
from tradelab.store.paths import check_exchange
from tradelab.store.writer import StoreWriter


def _exchange(rep: FileReport) -> str:
    """The store exchange of a file being imported (resolved from its name before any row)."""
    if rep.exchange is None:
        raise RuntimeError(f"{rep.path}: exchange not resolved before writing rows")
    return rep.exchange


class FileRefused(ImportFailed):
    """The file as a whole cannot be imported."""


class FreqtradeImporter:
    """Imports every freqtrade file under a directory (see module docstring)."""

    def __init__(
        self, run: ImportRun, exchange: str, progress: Callable[[str, int, int], None] | None = None
    ) -> None:
        self.run = run
        self.exchange = check_exchange(exchange)
        self.progress = progress
        self._catalog: Catalog | None = None

    def import_dir(self, directory: str | Path) -> list[FileReport]:
        """Import all freqtrade files under ``directory`` (or one file)."""
        root = Path(directory)
        if not root.exists():
            raise StoreError(f"no such directory: {root}")
        files = (
            [root]
            if root.is_file()
            else sorted(p for p in root.rglob("*") if p.is_file() and p.suffix == ".feather")
        )
        if not files:
            raise StoreError(f"no .feather files under {root}")
        reports = []
        for i, path in enumerate(files):
            if self.progress:
                self.progress(str(path), i, len(files))
            reports.append(self._import_file(path))
            self.run.files.append(reports[-1])
        if self.progress:
            self.progress("", len(files), len(files))
        return reports

    def _import_file(self, path: Path) -> FileReport:
        rep = FileReport(path=str(path))
        t0 = time.perf_counter()
        info = classify(path)
        if info is None or info["table"] is None:
            rep.status = "skipped"
            rep.detail = (info or {}).get("reason") or (
                "not a freqtrade data file name (expected e.g. BTC_USDT-1m.feather, "
                "BTC_USDT_USDT-8h-funding_rate.feather)"
            )
            return rep
        rep.exchange = venue(self.exchange, info["futures"], info["inverse"])
        rep.symbols = [info["symbol"]]
        rep.market = "futures" if info["futures"] else "spot"
        writer = StoreWriter(
            self.run.root, deferred=True, run_id=self.run.run_id, batch_rows=2_000_000
        )
        try:
            rep.sha256 = sha256_of(path)
            try:
                tbl = feather.read_table(path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise FileRefused(f"{path}: not a readable feather file: {exc}") from None
            rep.lines = tbl.num_rows
            if info["table"] == "trades":
                self._trades(path, tbl, info, rep, writer)
            else:
                self._candles(path, tbl, info, rep, writer)
            self.run.commit(rep, writer)  # one transaction with the manifest
        except FileRefused as exc:
            writer.abort()
            rep.status, rep.detail = "failed", str(exc)
        except Exception as exc:
            writer.abort()
            rep.status, rep.detail = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            rep.elapsed_s = time.perf_counter() - t0
        return rep

    # -- candles and funding ---------------------------------------------------------------

    def _candles(
        self, path: Path, tbl: pa.Table, info: dict, rep: FileReport, writer: StoreWriter
    ) -> None:
        _expect_columns(path, tbl, OHLCV_COLUMNS)
        date = tbl.column("date")
        if not pa.types.is_timestamp(date.type):
            raise FileRefused(f"{path}: column 'date' is {date.type}, expected a timestamp")
        ts = date.cast(pa.timestamp("ns", tz=date.type.tz)).cast(pa.int64()).to_numpy()
        o, h, lo, c, v = (
            tbl.column(n).cast(pa.float64()).to_numpy(zero_copy_only=False)
            for n in OHLCV_COLUMNS[1:]
        )
        try:
            _slot, on_grid = candle_slots(ts, info["interval"])
        except ValueError as exc:
            raise FileRefused(f"{path}: {exc}") from None
        funding = info["table"] == "funding"
        bad = np.zeros(len(ts), dtype=bool)

        def reject(mask: np.ndarray, reason: str) -> None:
            new = mask & ~bad
            for i in np.flatnonzero(new)[:100]:
                self.run.reject(
                    rep,
                    int(i) + 1,
                    reason,
                    f"row {i}: date={ts[i]} open={o[i]} "
                    f"high={h[i]} low={lo[i]} close={c[i]} volume={v[i]}",
                )
            extra = int(new.sum()) - min(int(new.sum()), 100)
            if extra:
                rep.rejects[reason.split(":", 1)[0]] += extra
            bad[:] |= mask

        if funding:
            reject(~np.isfinite(o), "non-finite funding rate")
            reject(np.abs(o) > 0.05, "implausible funding rate: |rate| > 5%")
        else:
            reject(
                ~(
                    np.isfinite(o)
                    & np.isfinite(h)
                    & np.isfinite(lo)
                    & np.isfinite(c)
                    & np.isfinite(v)
                ),
                "non-finite value",
            )
            reject(
                (lo > np.minimum(o, c)) | (h < np.maximum(o, c)) | (lo > h),
                "inconsistent OHLC: low/high do not bound open/close",
            )
            reject(v < 0, "negative volume")
            reject(~on_grid, f"candle time not on the {info['interval']} grid: the exchange's "
                   "days open at 00:00 UTC, weeks on Monday, months on the 1st")
        order = np.argsort(ts, kind="stable")
        dup = np.zeros(len(ts), dtype=bool)
        sorted_ts = ts[order]
        dup[order[1:]] = sorted_ts[1:] == sorted_ts[:-1]
        reject(dup, "duplicate time: an earlier row has the same date")
        keep = order[~bad[order]]
        if keep.size and not (np.diff(ts) >= 0).all():
            rep.skipped["reordered_rows"] += int(keep.size)
        keep = self._not_stored(info, rep, ts, keep)
        if not keep.size:
            return
        if funding:
            rep.rows["funding"] += writer.write(
                "funding",
                _exchange(rep),
                info["symbol"],
                {"ts": ts[keep], "rate": o[keep], "settled": np.ones(keep.size, dtype=bool)},
            )
        else:
            n = keep.size
            rep.rows["ohlcv"] += writer.write(
                "ohlcv",
                _exchange(rep),
                info["symbol"],
                {
                    "ts": ts[keep],
                    "interval": pa.repeat(pa.scalar(info["interval"]), n),
                    "kind": pa.repeat(pa.scalar(info["kind"]), n),
                    "open": o[keep],
                    "high": h[keep],
                    "low": lo[keep],
                    "close": c[keep],
                    "volume": v[keep],
                },
            )

    # -- trades ---------------------------------------------------------------------------

    def _trades(
        self, path: Path, tbl: pa.Table, info: dict, rep: FileReport, writer: StoreWriter
    ) -> None:
        _expect_columns(path, tbl, TRADES_COLUMNS)
        ts = tbl.column("timestamp").cast(pa.int64()).to_numpy() * 1_000_000
        price = tbl.column("price").cast(pa.float64()).to_numpy(zero_copy_only=False)
        qty = tbl.column("amount").cast(pa.float64()).to_numpy(zero_copy_only=False)
        side = tbl.column("side").cast(pa.string()).to_pylist()
        ok = np.isfinite(price) & (price > 0) & np.isfinite(qty) & (qty > 0)
        ok &= np.array([s in ("buy", "sell") for s in side], dtype=bool)
        for i in np.flatnonzero(~ok)[:100]:
            self.run.reject(
                rep,
                int(i) + 1,
                "bad trade: price/amount not positive or side not buy/sell",
                f"row {i}",
            )
        if (~ok).sum() > 100:
            rep.rejects["bad trade"] += int((~ok).sum()) - 100
        keep = np.flatnonzero(ok)
        info = {**info, "interval": None, "kind": None}
        keep = self._not_stored(info, rep, ts, keep)
        if keep.size:
            rep.rows["trades"] += writer.write(
                "trades",
                _exchange(rep),
                info["symbol"],
                {
                    "ts": ts[keep],
                    "price": price[keep],
                    "qty": qty[keep],
                    "side": pa.array(side).take(pa.array(keep)),
                    "trade_id": tbl.column("id").cast(pa.string()).take(pa.array(keep)),
                },
            )

    # -- idempotency ----------------------------------------------------------------------

    def _not_stored(
        self, info: dict, rep: FileReport, ts: np.ndarray, keep: np.ndarray
    ) -> np.ndarray:
        """Drop rows whose time is already stored for this symbol/interval/kind."""
        table = info["table"]
        part = self.run.root / table / f"exchange={rep.exchange}" / f"symbol={info['symbol']}"
        if not keep.size or not part.is_dir():
            return keep
        if self._catalog is None:
            self._catalog = Catalog(self.run.root)
        equal: dict[str, object] = {}
        if table == "ohlcv":
            equal = {"interval": info["interval"], "kind": info["kind"]}
        elif table == "funding":
            equal = {"settled": True}
        stored = self._catalog.stored_values(table, _exchange(rep), info["symbol"], "ts",
                                             int(ts[keep].min()), int(ts[keep].max()) + 1, equal)
        if not len(stored):
            return keep
        dup = np.isin(ts[keep], np.asarray(stored, dtype=np.int64))
        if dup.any():
            rep.skipped["already_stored"] += int(dup.sum())
        return keep[~dup]


def _expect_columns(path: Path, tbl: pa.Table, expected: tuple[str, ...]) -> None:
    got = tbl.column_names
    if sorted(got) != sorted(expected):
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        raise FileRefused(
            f"{path}: not a freqtrade file of this kind: expected columns "
            f"{list(expected)}; missing {missing}, unexpected {extra}"
        )
