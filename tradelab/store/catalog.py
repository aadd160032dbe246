"""DuckDB catalog over the partitioned Parquet store.

One view per table (``trades``, ``book``, ``bbo``, ``funding``, ``open_interest``, ``ohlcv``,
``quality_events``) reads the part files in place with hive partitioning, so filters on
``exchange``/``symbol``/``date`` prune whole directories. There is no second copy of the data.

Time arguments (``start``/``end``) take ISO strings, datetimes, pandas Timestamps or int64 ns,
naive means UTC; intervals are half-open ``[start, end)``. Frames keep ``ts`` (and ``recv_ts``)
as int64 ns and carry a UTC ``DatetimeIndex`` named ``time`` built from ``ts``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tradelab.core.events import (
    EV_ASK,
    EV_BID,
    EV_DEPTH,
    EV_GAP,
    EV_LAST,
    EV_RESYNC,
    EV_SNAPSHOT,
    EV_TRADE,
    event_dt,
)
from tradelab.core.timeutil import TimeLike, interval_ns, ns_to_date, to_ns
from tradelab.errors import StoreError
from tradelab.store import book_nb
from tradelab.store.bars_nb import time_ordered, trade_bars_nb
from tradelab.store.paths import check_exchange, check_symbol, resolve_root, table_glob
from tradelab.store.schema import SCHEMAS, schema_for
from tradelab.store.txn import part_id, pending_ids

MIN_BAR_NS = interval_ns("1s")
MAX_BAR_NS = interval_ns("1d")
_CHUNK_ROWS = 2_000_000

_PARTITION_TYPES = "{'exchange': VARCHAR, 'symbol': VARCHAR, 'date': DATE}"


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def partition_filter(exchange: str | None = None, symbol: str | None = None,
                     date: str | None = None) -> str:
    """SQL condition on the partition columns (validated, so safe to inline); TRUE if none."""
    cond = ["TRUE"]
    if exchange:
        cond.append(f"exchange = {_sql_str(check_exchange(exchange))}")
    if symbol:
        cond.append(f"symbol = {_sql_str(check_symbol(symbol))}")
    if date:
        cond.append(f"date = DATE {_sql_str(str(pd.Timestamp(date).date()))}")
    return " AND ".join(cond)


def _with_time_index(df: pd.DataFrame) -> pd.DataFrame:
    df.index = pd.DatetimeIndex(
        pd.to_datetime(df["ts"].to_numpy(dtype="int64"), unit="ns", utc=True), name="time"
    )
    return df


class Catalog:
    """Query the store through DuckDB views; every query returns pandas unless noted."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.root = resolve_root(root)
        self.con = duckdb.connect(
            config={
                "threads": threads or os.cpu_count() or 1,
                **({"memory_limit": memory_limit} if memory_limit else {}),
            }
        )
        # DuckDB draws its own progress bar for queries over ~2 s: an ipywidget in Jupyter,
        # whose saved state would make an HTML report fetch a renderer from the network.
        self.con.execute("SET enable_progress_bar = false")
        self._view_state: dict[str, tuple[bool, tuple[str, ...]]] = {}
        self._hidden: tuple[str, ...] = ()

    def _uncommitted(self) -> str:
        """SQL condition excluding parts of uncommitted transactions ('' when there are none)."""
        if not self._hidden:
            return ""
        ids = "|".join(self._hidden)  # ids are hex: safe inside the pattern
        return f"NOT regexp_matches(filename, '/part-[0-9]+-({ids})-[0-9]+\\.parquet$')"

    def _read(self, glob: str) -> str:
        src = (
            f"read_parquet({_sql_str(glob)}, hive_partitioning=true, "
            f"hive_types={_PARTITION_TYPES}, filename=true, file_row_number=true)"
        )
        cond = self._uncommitted()
        return f"(SELECT * FROM {src} WHERE {cond})" if cond else src

    # -- views ---------------------------------------------------------------------------

    def _has_files(self, table: str) -> bool:
        base = self.root / table
        if not base.is_dir():
            return False
        return next(iter(base.glob("*/*/*/*.parquet")), None) is not None

    def source(self, table: str, exchange: str | None = None, symbol: str | None = None) -> str:
        """A ``read_parquet`` over one table, narrowed to one exchange/symbol directory.

        Globbing only the symbol's directories keeps queries fast in a store with many symbols
        and years of daily partitions; hive filters then prune dates. All part files of a table
        share one schema (the writer enforces it), so ``union_by_name`` is not needed.
        """
        self.refresh()
        ex = f"exchange={exchange}" if exchange else "*"
        sym = f"symbol={symbol}" if symbol else "*"
        base = self.root / table
        if next(iter(base.glob(f"{ex}/{sym}/*/*.parquet")), None) is None:
            return f'"_{table}_empty_src"'
        glob = str(base / ex / sym / "*" / "*.parquet")
        return self._read(glob)

    def refresh(self) -> None:
        """(Re)create the views; call after new tables appear. Queries call it themselves."""
        self._hidden = tuple(pending_ids(self.root))
        for table, schema in SCHEMAS.items():
            has = self._has_files(table)
            if self._view_state.get(table) == (has, self._hidden):
                continue
            if table not in self._view_state:
                empty = pa.Table.from_batches(
                    [],
                    schema=pa.schema(
                        [
                            *schema,
                            pa.field("exchange", pa.string()),
                            pa.field("symbol", pa.string()),
                            pa.field("date", pa.date32()),
                            pa.field("filename", pa.string()),
                            pa.field("file_row_number", pa.int64()),
                        ]
                    ),
                )
                self.con.register(f"_{table}_empty_src", empty)
            if has:
                src = self._read(table_glob(self.root, table))
                self.con.execute(f'CREATE OR REPLACE VIEW "_{table}_raw" AS SELECT * FROM {src}')
            else:
                self.con.execute(
                    f'CREATE OR REPLACE VIEW "_{table}_raw" AS SELECT * FROM "_{table}_empty_src"'
                )
            cols = ", ".join(f'"{c}"' for c in [*schema.names, "exchange", "symbol", "date"])
            self.con.execute(
                f'CREATE OR REPLACE VIEW "{table}" AS SELECT {cols} FROM "_{table}_raw"'
            )
            self._view_state[table] = (has, self._hidden)

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """Run any SQL over the views and return a DataFrame."""
        self.refresh()
        try:
            return self.con.execute(query, params or []).df()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from None

    def scalar(self, query: str, params: list | None = None):
        """First column of the first row of a query (None when there is no row)."""
        self.refresh()
        rows = self.con.execute(query, params or []).fetchall()
        return rows[0][0] if rows else None

    def _arrow(self, query: str) -> pa.Table:
        self.refresh()
        return self.con.execute(query).to_arrow_table()

    # -- inventory -----------------------------------------------------------------------

    def partitions(self, table: str | None = None) -> pd.DataFrame:
        """Every partition on disk: table, exchange, symbol, date, part files and bytes."""
        rows = []
        hidden = set(pending_ids(self.root))
        tables = (
            [table]
            if table
            else sorted(
                p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("_")
            )
        )
        for t in tables:
            for part in sorted((self.root / t).glob("exchange=*/symbol=*/date=*")):
                files = [f for f in part.glob("*.parquet") if part_id(f.name) not in hidden]
                if not files:
                    continue
                rows.append(
                    {
                        "table": t,
                        "exchange": part.parent.parent.name.split("=", 1)[1],
                        "symbol": part.parent.name.split("=", 1)[1],
                        "date": part.name.split("=", 1)[1],
                        "files": len(files),
                        "bytes": sum(f.stat().st_size for f in files),
                    }
                )
        return pd.DataFrame(rows, columns=["table", "exchange", "symbol", "date", "files", "bytes"])

    def symbols(self, table: str, exchange: str | None = None) -> list[tuple[str, str]]:
        """(exchange, symbol) pairs present in ``table``."""
        out = []
        for ex_dir in sorted((self.root / table).glob("exchange=*")):
            ex = ex_dir.name.split("=", 1)[1]
            if exchange and ex != exchange:
                continue
            for sym_dir in sorted(ex_dir.glob("symbol=*")):
                out.append((ex, sym_dir.name.split("=", 1)[1]))
        return out

    def _require(self, table: str, exchange: str, symbol: str) -> None:
        check_exchange(exchange)
        check_symbol(symbol)
        if not (self.root / table / f"exchange={exchange}" / f"symbol={symbol}").is_dir():
            known = [f"{e} {s}" for e, s in self.symbols(table)]
            hint = ", ".join(known[:20]) if known else "none"
            raise StoreError(
                f"no {table} for {exchange} {symbol} in store {str(self.root)!r}; "
                f"{table} holds: {hint}"
            )

    def scan(
        self,
        table: str,
        exchange: str,
        symbol: str,
        start: int | None = None,
        end: int | None = None,
    ) -> str:
        """``<source> WHERE <partition and time filters>`` for one symbol of one table."""
        return (
            f"{self.source(table, exchange, symbol)} "
            f"WHERE {self._where(exchange, symbol, start, end)}"
        )

    @staticmethod
    def _where(
        exchange: str, symbol: str, start: int | None, end: int | None, ts_col: str = "ts"
    ) -> str:
        cond = [f"exchange = {_sql_str(exchange)}", f"symbol = {_sql_str(symbol)}"]
        if start is not None:
            cond.append(f"date >= DATE {_sql_str(ns_to_date(start))}")
            cond.append(f"{ts_col} >= {int(start)}")
        if end is not None:
            cond.append(f"date <= DATE {_sql_str(ns_to_date(end - 1))}")
            cond.append(f"{ts_col} < {int(end)}")
        return " AND ".join(cond)

    @staticmethod
    def _range(start: TimeLike, end: TimeLike) -> tuple[int | None, int | None]:
        s, e = to_ns(start), to_ns(end)
        if s is not None and e is not None and e <= s:
            raise ValueError(f"end ({end}) must be after start ({start})")
        return s, e

    def _select(
        self,
        table: str,
        exchange: str,
        symbol: str,
        start: TimeLike,
        end: TimeLike,
        extra: str = "",
    ) -> pd.DataFrame:
        self._require(table, exchange, symbol)
        s, e = self._range(start, end)
        cols = ", ".join(f'"{c}"' for c in SCHEMAS[table].names)
        q = (
            f"SELECT {cols} FROM {self.scan(table, exchange, symbol, s, e)} "
            f"{extra} ORDER BY ts, filename, file_row_number"
        )
        return _with_time_index(self.sql(q))

    @staticmethod
    def _equal_conditions(table: str, equal: Mapping[str, object] | None) -> tuple[str, list]:
        """`` AND "col" = ?`` per item (columns checked against the schema) and the values."""
        if not equal:
            return "", []
        names = SCHEMAS[table].names
        sql = []
        for col in equal:
            if col not in names:
                raise StoreError(f"{table} has no column {col!r}; columns: {', '.join(names)}")
            sql.append(f' AND "{col}" = ?')
        return "".join(sql), list(equal.values())

    def stored_values(self, table: str, exchange: str, symbol: str, column: str = "ts",
                      start: int | None = None, end: int | None = None,
                      equal: Mapping[str, object] | None = None) -> np.ndarray:
        """Distinct values of ``column`` already stored for a symbol in ``[start, end)`` (for
        idempotent producers that skip what is there), among rows whose columns equal
        ``equal`` (e.g. ``{"interval": "1m", "kind": "trade"}``; values are bound parameters)."""
        schema_for(table)
        if column not in SCHEMAS[table].names:
            raise StoreError(f"{table} has no column {column!r}")
        if not self._has(table, exchange, symbol):
            return np.empty(0)
        extra, params = self._equal_conditions(table, equal)
        s = None if start is None else int(start)
        e = None if end is None else int(end)
        out = self.con.execute(
            f'SELECT DISTINCT "{column}" AS v FROM '
            f"{self.scan(table, exchange, symbol, s, e)}{extra}", params).fetchnumpy()["v"]
        return np.asarray(out)

    def last_time(self, table: str, exchange: str, symbol: str,
                  equal: Mapping[str, object] | None = None) -> int | None:
        """Latest stored ``ts`` for a symbol among rows whose columns equal ``equal``, or None."""
        schema_for(table)
        if not self._has(table, exchange, symbol):
            return None
        extra, params = self._equal_conditions(table, equal)
        value = self.scalar(f"SELECT max(ts) FROM {self.scan(table, exchange, symbol)}{extra}",
                            params)
        return None if value is None else int(value)

    # -- simple tables -------------------------------------------------------------------

    def trades(
        self, exchange: str, symbol: str, start: TimeLike = None, end: TimeLike = None
    ) -> pd.DataFrame:
        """Trades in time order: ts, recv_ts, price, qty, side (taker), trade_id."""
        return self._select("trades", exchange, symbol, start, end)

    def bbo(
        self, exchange: str, symbol: str, start: TimeLike = None, end: TimeLike = None
    ) -> pd.DataFrame:
        """Best bid/offer updates in time order."""
        return self._select("bbo", exchange, symbol, start, end)

    def funding(
        self,
        exchange: str,
        symbol: str,
        start: TimeLike = None,
        end: TimeLike = None,
        settled: bool | None = None,
    ) -> pd.DataFrame:
        """Funding rates; ``settled=True`` keeps realised payments only."""
        extra = "" if settled is None else f"AND settled = {str(bool(settled)).lower()}"
        return self._select("funding", exchange, symbol, start, end, extra)

    def open_interest(
        self, exchange: str, symbol: str, start: TimeLike = None, end: TimeLike = None
    ) -> pd.DataFrame:
        """Open interest samples."""
        return self._select("open_interest", exchange, symbol, start, end)

    def book(
        self, exchange: str, symbol: str, start: TimeLike = None, end: TimeLike = None
    ) -> pd.DataFrame:
        """Raw L2 delta rows in storage order (see ``tradelab.store.schema``)."""
        return self._select("book", exchange, symbol, start, end)

    def quality_events(
        self, exchange: str | None = None, symbol: str | None = None, kind: str | None = None
    ) -> pd.DataFrame:
        """Gaps, resyncs and other data-quality records."""
        where = partition_filter(exchange, symbol)
        if kind:
            where += f" AND kind = {_sql_str(kind)}"
        return self.sql(f"SELECT * FROM quality_events WHERE {where} ORDER BY ts")

    # -- bars ----------------------------------------------------------------------------

    def _has(self, table: str, exchange: str, symbol: str) -> bool:
        return (self.root / table / f"exchange={exchange}" / f"symbol={symbol}").is_dir()

    def ohlcv_intervals(
        self,
        exchange: str,
        symbol: str,
        kind: str = "trade",
        start: int | None = None,
        end: int | None = None,
    ) -> list[str]:
        """Intervals of stored OHLCV for a symbol (within [start, end) if given), shortest first."""
        if not self._has("ohlcv", exchange, symbol):
            return []
        df = self.sql(
            f"SELECT DISTINCT interval FROM {self.source('ohlcv', exchange, symbol)} "
            f"WHERE {self._where(exchange, symbol, start, end)} "
            f"AND kind = {_sql_str(kind)}"
        )
        fixed = [iv for iv in df["interval"].tolist() if not iv.strip().endswith("M")]
        return sorted(fixed, key=interval_ns)  # calendar months have no fixed length

    def bars(
        self,
        exchange: str,
        symbol: str,
        interval: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        kind: str = "trade",
        fill: bool = False,
        complete_only: bool = False,
    ) -> pd.DataFrame:
        """OHLCV bars of any interval from 1s to 1d, each saying whether it is complete.

        **Source.** Of the stored OHLCV intervals that divide ``interval`` (this very interval
        included) and, for ``kind='trade'``, the stored trades, the one that covers the most of
        ``[start, end)`` is used; on a tie the coarsest candles (trades last). So 1h bars come
        from 1m candles that run to 18:27 rather than from 5m candles that end at 18:20.
        ``df.attrs['source']`` says which (``ohlcv:<interval>`` or ``trades``).

        **Buckets** are aligned to the epoch (UTC days for ``1d``); ``ts`` is the bucket's open
        time. ``complete`` is True when the source covers the whole bucket: a stored candle of
        this very interval always; a bucket built from finer candles when its first and last
        sub-candles are there (so also when ``start``/``end`` cut into it); a bucket built from
        trades when it lies inside the span the stored trades cover (first to last trade,
        clipped to ``[start, end)``). ``complete_only=True`` drops the others (what a sweep
        uses). Buckets without data are absent unless ``fill=True``, which inserts them with the
        previous close and zero volume (complete only when built from trades: a missing candle
        is missing data, a second without trades is not).
        """
        check_exchange(exchange)
        check_symbol(symbol)
        step = interval_ns(interval)
        if not MIN_BAR_NS <= step <= MAX_BAR_NS:
            raise ValueError(f"bar interval {interval!r} is outside 1s..1d")
        s, e = self._range(start, end)
        where = f"{self._where(exchange, symbol, s, e)} AND kind = {_sql_str(kind)}"
        src = self._bar_source(exchange, symbol, interval, kind, s, e, where)
        if src is None:
            stored = self.ohlcv_intervals(exchange, symbol, kind, s, e)
            have = ", ".join(stored) or "none"
            raise StoreError(
                f"cannot make {interval} bars for {exchange} {symbol}: no stored "
                f"{kind} OHLCV that divides {interval} in this range (stored: {have}) "
                "and no trades"
            )
        if src == "trades":
            df = self._bars_from_trades(exchange, symbol, step, s, e)
            df["complete"] = self._trade_cover_complete(exchange, symbol, df, step, s, e)
        elif interval_ns(base := src.split(":", 1)[1]) == step:  # stored as is: each complete
            df = self.sql(
                "SELECT ts, open, high, low, close, volume, n_trades, TRUE AS complete "
                f"FROM {self.source('ohlcv', exchange, symbol)} WHERE {where} "
                f"AND interval = {_sql_str(base)} ORDER BY ts"
            )
        else:
            df = self.sql(self._ohlcv_bars_query(exchange, symbol, where, base, step))
            first, last = df.pop("_first").to_numpy(), df.pop("_last").to_numpy()
            ts = df["ts"].to_numpy()
            df["complete"] = (first == ts) & (last + interval_ns(base) == ts + step)
        return self._finish_bars(df, step, interval, src, fill, complete_only)

    def _finish_bars(self, df: pd.DataFrame, step: int, interval: str, src: str, fill: bool,
                     complete_only: bool) -> pd.DataFrame:
        df["n_trades"] = df["n_trades"].astype("Int64")
        df["complete"] = df["complete"].astype(bool)
        if fill and len(df):
            df = self._fill_bars(df, step, filled_complete=src == "trades")
        if complete_only:
            df = df[df["complete"].to_numpy()].reset_index(drop=True)
        df = _with_time_index(df)
        df.attrs["source"] = src
        df.attrs["interval"] = interval
        return df

    def _bar_source(self, exchange: str, symbol: str, interval: str, kind: str,
                    s: int | None, e: int | None, where: str) -> str | None:
        """``ohlcv:<interval>`` or ``trades``: what covers most of ``[s, e)`` (see :meth:`bars`);
        None when nothing can make these bars."""
        step = interval_ns(interval)
        hi = e if e is not None else np.iinfo(np.int64).max
        best: tuple[int, int] | None = None  # (covered ns, candle ns)
        best_span, best_name = (0, 0), ""
        if self._has("ohlcv", exchange, symbol):
            inv = self.sql(
                f"SELECT interval, min(ts) AS first, max(ts) AS last "
                f"FROM {self.source('ohlcv', exchange, symbol)} WHERE {where} GROUP BY interval"
            )
            for iv, first, last in inv.itertuples(index=False):
                b_ns = interval_ns(iv)
                if step % b_ns:
                    continue
                span = (int(first), min(int(last) + b_ns, hi))
                key = (span[1] - span[0], b_ns)
                if best is None or key > best:
                    best, best_span, best_name = key, span, str(iv)
        covered = best is not None and s is not None and e is not None and best_span == (s, e)
        if kind == "trade" and not covered and self._has("trades", exchange, symbol):
            trades_span = self._trade_span(exchange, symbol, s, e)
            if trades_span is not None and (
                best is None or min(trades_span[1] + 1, hi) - trades_span[0] > best[0]
            ):
                return "trades"
        if best is None:
            return None
        return f"ohlcv:{best_name}"

    def _ohlcv_bars_query(self, exchange: str, symbol: str, where: str, base: str,
                          step: int) -> str:
        ohlcv = self.source("ohlcv", exchange, symbol)
        # candle times are unique: arg_min/arg_max by ts are exact
        return (
            f"SELECT (ts // {step}) * {step} AS ts, arg_min(open, ts) AS open, "
            "max(high) AS high, min(low) AS low, arg_max(close, ts) AS close, "
            "sum(volume) AS volume, sum(n_trades) AS n_trades, "
            "min(ts) AS _first, max(ts) AS _last "
            f"FROM {ohlcv} WHERE {where} AND interval = {_sql_str(base)} "
            "GROUP BY 1 ORDER BY 1"
        )

    def _trade_span(self, exchange: str, symbol: str, s: int | None,
                    e: int | None) -> tuple[int, int] | None:
        """First and last stored trade time in ``[s, e)`` (None without trades)."""
        self.refresh()
        rows = self.con.execute(
            f"SELECT min(ts), max(ts) FROM {self.scan('trades', exchange, symbol, s, e)}"
        ).fetchall()
        if not rows or rows[0][0] is None:
            return None
        return int(rows[0][0]), int(rows[0][1])

    def _trade_cover_complete(self, exchange: str, symbol: str, df: pd.DataFrame, step: int,
                              s: int | None, e: int | None) -> np.ndarray:
        """Buckets inside the span the stored trades cover, clipped to ``[s, e)``: the span
        starts at ``s`` when trades exist before it (else at the first trade) and ends at ``e``
        when trades exist at or after it (else just after the last trade)."""
        span = self._trade_span(exchange, symbol, None, None)
        if span is None or df.empty:
            return np.zeros(len(df), dtype=bool)
        first, last = span
        lo = s if s is not None and first < s else first
        hi = e if e is not None and last >= e else last + 1
        ts = df["ts"].to_numpy(dtype=np.int64)
        return (ts >= lo) & (ts + step <= hi)

    def trade_bars(
        self,
        exchange: str,
        symbol: str,
        interval: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        complete_only: bool = False,
    ) -> pd.DataFrame:
        """Bars aggregated from stored trades, whatever OHLCV is stored (see :meth:`bars`)."""
        self._require("trades", exchange, symbol)
        step = interval_ns(interval)
        s, e = self._range(start, end)
        df = self._bars_from_trades(exchange, symbol, step, s, e)
        df["complete"] = self._trade_cover_complete(exchange, symbol, df, step, s, e)
        return self._finish_bars(df, step, interval, "trades", False, complete_only)

    def _bars_from_trades(
        self, exchange: str, symbol: str, step: int, start: int | None, end: int | None
    ) -> pd.DataFrame:
        """Trades read in storage order (files by name, rows as written), stably sorted by time
        if needed, aggregated in one numba pass: ties keep arrival order, so open and close are
        deterministic. Memory: about 24 bytes per trade in the range."""
        self.refresh()
        tbl = self.con.sql(
            f"SELECT ts, price, qty FROM {self.scan('trades', exchange, symbol, start, end)}"
        ).to_arrow_table()
        ts, price, qty = (tbl.column(k).to_numpy() for k in ("ts", "price", "qty"))
        order = time_ordered(ts)
        if order is not None:
            ts, price, qty = ts[order], price[order], qty[order]
        out = trade_bars_nb(ts, price, qty, step)
        return pd.DataFrame(
            dict(zip(("ts", "open", "high", "low", "close", "volume", "n_trades"), out))
        )

    @staticmethod
    def _fill_bars(df: pd.DataFrame, step: int, filled_complete: bool = False) -> pd.DataFrame:
        full = np.arange(int(df["ts"].iloc[0]), int(df["ts"].iloc[-1]) + step, step, dtype=np.int64)
        out = df.set_index("ts").reindex(full)
        close = out["close"].ffill()
        for col in ("open", "high", "low"):
            out[col] = out[col].fillna(close)
        out["close"] = close
        out["volume"] = out["volume"].fillna(0.0)
        out["n_trades"] = out["n_trades"].fillna(0)
        if "complete" in out:
            out["complete"] = out["complete"].astype("boolean").fillna(filled_complete)
            out["complete"] = out["complete"].astype(bool)
        return out.rename_axis("ts").reset_index()

    # -- the book ------------------------------------------------------------------------

    def _book_anchor(self, exchange: str, symbol: str, start: int | None) -> int | None:
        """ts of the snapshot to start replaying from: the last one at or before ``start``."""
        base = f"FROM {self.scan('book', exchange, symbol)} AND flags & 1 = 1"
        if start is not None:
            row = self.scalar(
                f"SELECT max(ts) {base} AND date <= DATE {_sql_str(ns_to_date(start))} "
                f"AND ts <= {start}"
            )
            if row is not None:
                return int(row)
            row = self.scalar(f"SELECT min(ts) {base} AND ts > {start}")
        else:
            row = self.scalar(f"SELECT min(ts) {base}")
        return None if row is None else int(row)

    def _book_source(self, exchange: str, symbol: str, start: TimeLike, end: TimeLike):
        """Common preparation for book replays: anchor, prices, gaps, row reader."""
        self._require("book", exchange, symbol)
        s, e = self._range(start, end)
        self.refresh()
        anchor = self._book_anchor(exchange, symbol, s)
        if anchor is None:
            raise StoreError(
                f"no book snapshot for {exchange} {symbol}"
                + (f" at or after {start}" if start is not None else "")
                + ": the book cannot be rebuilt from deltas alone"
            )
        book = self.scan("book", exchange, symbol, anchor, e)
        qev = self.scan("quality_events", exchange, symbol, anchor, e)
        distinct = self.con.execute(f"SELECT DISTINCT price FROM {book} ORDER BY price")
        prices = np.asarray(distinct.fetchnumpy()["price"], dtype=np.float64)
        gaps = (
            self.con.execute(
                f"SELECT ts FROM {qev} AND table_name = 'book' AND kind = 'gap' ORDER BY ts"
            )
            .fetchnumpy()["ts"]
            .astype(np.int64)
        )
        last_ts = self.scalar(f"SELECT max(ts) FROM {book}")
        if last_ts is None:  # a range before the first snapshot (or after end): nothing to replay
            last_ts = -1
        query = (
            "SELECT ts, recv_ts, seq, CASE WHEN side = 'bid' THEN 1 ELSE -1 END::TINYINT AS side, "
            f"price, qty, flags FROM {book} ORDER BY ts, filename, file_row_number"
        )
        return s, e, anchor, prices, gaps, int(last_ts), query

    def _chunks(self, query: str) -> Iterator[dict[str, np.ndarray]]:
        reader = self.con.sql(query).to_arrow_reader(_CHUNK_ROWS)
        for batch in reader:
            yield {
                name: batch.column(i).to_numpy(zero_copy_only=False)
                for i, name in enumerate(batch.schema.names)
            }

    def book_snapshots(
        self,
        exchange: str,
        symbol: str,
        levels: int = 10,
        every: str = "1s",
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pd.DataFrame:
        """The L2 book rebuilt from snapshot + deltas, sampled on a regular exchange-time grid.

        Row ``ts`` holds the book after every message with exchange time ``<= ts``. The grid runs
        on multiples of ``every`` from the first valid book (or ``start``) to the last stored row
        (or ``end``). Columns: ``ts``, ``bid_px_0..``, ``bid_qty_0..``, ``ask_px_0..``,
        ``ask_qty_0..``; rows where the book is invalid (before sync, inside a recorded gap) are
        NaN. Replay starts from the last snapshot at or before ``start``.
        """
        if levels < 1:
            raise ValueError("levels must be at least 1")
        step = interval_ns(every)
        s, e, anchor, prices, gaps, last_ts, query = self._book_source(exchange, symbol, start, end)
        first = max(anchor, s) if s is not None else anchor
        stop = min(last_ts, e - 1) if e is not None else last_ts
        g0 = -(-first // step) * step
        grid = (
            np.arange(g0, stop + 1, step, dtype=np.int64) if stop >= g0 else np.empty(0, np.int64)
        )
        n = grid.shape[0]
        valid = np.zeros(n, dtype=np.bool_)
        out = [np.full((n, levels), np.nan) for _ in range(4)]
        st = book_nb.new_state(prices.shape[0])
        for ch in self._chunks(query):
            pidx = np.searchsorted(prices, ch["price"]).astype(np.int64)
            book_nb.sample_book_chunk_nb(
                ch["ts"],
                ch["side"],
                pidx,
                ch["qty"],
                ch["flags"],
                prices,
                grid,
                gaps,
                levels,
                st.bid_q,
                st.ask_q,
                st.ivec,
                valid,
                *out,
            )
        book_nb.sample_book_finish_nb(
            prices, grid, gaps, levels, st.bid_q, st.ask_q, st.ivec, valid, *out
        )
        data = {"ts": grid}
        for name, arr in zip(("bid_px", "bid_qty", "ask_px", "ask_qty"), out):
            for k in range(levels):
                data[f"{name}_{k}"] = arr[:, k]
        df = _with_time_index(pd.DataFrame(data))
        df.attrs.update(source="book", anchor_ts=anchor, every=every, levels=levels)
        return df

    def top_of_book(
        self, exchange: str, symbol: str, start: TimeLike = None, end: TimeLike = None
    ) -> pd.DataFrame:
        """Best bid/ask after every stored book message (event time, not a grid).

        Columns: ts, recv_ts, seq, valid, bid_px, bid_qty, ask_px, ask_qty. Messages before
        ``start`` that were replayed only to build the book are dropped.
        """
        s, e, anchor, prices, gaps, _last, query = self._book_source(exchange, symbol, start, end)
        st = book_nb.new_state(prices.shape[0])
        parts = []
        for ch in self._chunks(query):
            pidx = np.searchsorted(prices, ch["price"]).astype(np.int64)
            rows, ok, bpx, bsz, apx, asz = book_nb.top_of_book_chunk_nb(
                ch["ts"],
                ch["side"],
                pidx,
                ch["qty"],
                ch["flags"],
                prices,
                gaps,
                st.bid_q,
                st.ask_q,
                st.ivec,
            )
            recv = ch["recv_ts"]
            seq = ch["seq"]
            parts.append(
                pd.DataFrame(
                    {
                        "ts": ch["ts"][rows],
                        "recv_ts": pd.array(recv[rows], dtype="Int64")
                        if recv.dtype == object
                        else recv[rows],
                        "seq": pd.array(seq[rows], dtype="Int64")
                        if seq.dtype == object
                        else seq[rows],
                        "valid": ok,
                        "bid_px": bpx,
                        "bid_qty": bsz,
                        "ask_px": apx,
                        "ask_qty": asz,
                    }
                )
            )
        df = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(
                columns=["ts", "recv_ts", "seq", "valid", "bid_px", "bid_qty", "ask_px", "ask_qty"]
            )
        )
        if s is not None:
            df = df[df["ts"] >= s].reset_index(drop=True)
        return _with_time_index(df)

    # -- events for the event-driven backtester -----------------------------------------

    def events(
        self,
        exchange: str,
        symbol: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        anchor: bool = True,
        markers: bool = True,
    ) -> np.ndarray:
        """Book and trade events ordered by exchange time, as a numpy ``event_dt`` array.

        Depth rows start at the last snapshot at or before ``start`` (so a consumer can build the
        book; ``anchor=False`` starts them at ``start`` too, for the next chunk of a replay);
        trades start at ``start``. With ``markers``, the book gaps and resyncs recorded in
        ``quality_events`` appear as ``EV_GAP`` / ``EV_RESYNC`` rows (no price or quantity; a
        consumer drops its book at a gap and trusts it again after the next snapshot). At equal
        exchange time, markers come first, then depth, then trades, each source in its storage
        order. ``local_ts`` falls back to ``exch_ts`` when the receipt time is unknown; ``seq``
        is -1 when the source has none (non-numeric trade ids).
        """
        check_exchange(exchange)
        check_symbol(symbol)
        s, e = self._range(start, end)
        has_book = (self.root / "book" / f"exchange={exchange}" / f"symbol={symbol}").is_dir()
        has_trades = (self.root / "trades" / f"exchange={exchange}" / f"symbol={symbol}").is_dir()
        if not (has_book or has_trades):
            self._require("book", exchange, symbol)
        self.refresh()
        parts = []
        if has_book:
            first = self._book_anchor(exchange, symbol, s) if anchor else s
            if first is not None or not anchor:
                parts.append(
                    "SELECT ts, coalesce(recv_ts, ts) AS local_ts, "
                    f"({EV_DEPTH} | CASE WHEN side = 'bid' THEN {EV_BID} ELSE {EV_ASK} END "
                    f"| CASE WHEN flags & 1 = 1 THEN {EV_SNAPSHOT} ELSE 0 END "
                    f"| CASE WHEN flags & 2 = 2 THEN {EV_LAST} ELSE 0 END)::UBIGINT AS ev, "
                    "price AS px, qty, coalesce(seq, -1) AS seq, 0 AS src, filename, "
                    f"file_row_number FROM {self.scan('book', exchange, symbol, first, e)}"
                )
            if markers and self._has_files("quality_events"):
                parts.append(
                    "SELECT ts, coalesce(recv_ts, ts) AS local_ts, "
                    f"(CASE WHEN kind = 'gap' THEN {EV_GAP} ELSE {EV_RESYNC} END)::UBIGINT AS ev, "
                    "0.0 AS px, 0.0 AS qty, coalesce(got_seq, -1) AS seq, -1 AS src, filename, "
                    "file_row_number FROM "
                    f"{self.scan('quality_events', exchange, symbol, first, e)} "
                    "AND table_name = 'book' AND kind IN ('gap', 'resync')"
                )
        if has_trades:
            parts.append(
                "SELECT ts, coalesce(recv_ts, ts) AS local_ts, "
                f"({EV_TRADE} | {EV_LAST} | CASE WHEN side = 'buy' THEN {EV_BID} "
                f"ELSE {EV_ASK} END)::UBIGINT AS ev, price AS px, qty, "
                "coalesce(try_cast(trade_id AS BIGINT), -1) AS seq, 1 AS src, filename, "
                f"file_row_number FROM {self.scan('trades', exchange, symbol, s, e)}"
            )
        if not parts:
            return np.zeros(0, dtype=event_dt)
        q = (
            "SELECT ev, ts, local_ts, px, qty, seq FROM ("
            + " UNION ALL ".join(parts)
            + ") ORDER BY ts, src, filename, file_row_number"
        )
        cols = self.con.execute(q).fetchnumpy()
        out = np.empty(len(cols["ts"]), dtype=event_dt)
        out["ev"] = cols["ev"]
        out["exch_ts"] = cols["ts"]
        out["local_ts"] = cols["local_ts"]
        out["px"] = cols["px"]
        out["qty"] = cols["qty"]
        out["seq"] = cols["seq"]
        return out

    def iter_events(
        self,
        exchange: str,
        symbol: str,
        start: TimeLike = None,
        end: TimeLike = None,
        chunk: str | int = "1h",
    ) -> Iterator[np.ndarray]:
        """:meth:`events` over ``[start, end)`` in consecutive time chunks of ``chunk`` (an
        interval like ``15m`` or nanoseconds), so a replay holds one chunk at a time. The first
        chunk starts at the book snapshot before ``start``; the chunks together hold exactly the
        rows of one :meth:`events` call over the whole span."""
        step = interval_ns(chunk) if isinstance(chunk, str) else int(chunk)
        if step <= 0:
            raise ValueError(f"chunk must be positive, got {chunk!r}")
        s, e = self._range(start, end)
        lo = s
        if lo is None or e is None:
            span = self._event_span(exchange, symbol)
            if span is None:
                return
            lo = span[0] if lo is None else lo
            e = span[1] + 1 if e is None else e
        t = lo
        first = True
        while t < e:
            t2 = min(t + step, e)
            ev = self.events(exchange, symbol, t, t2, anchor=first)
            first = False
            if len(ev):
                yield ev
            t = t2

    def _event_span(self, exchange: str, symbol: str) -> tuple[int, int] | None:
        lo: list[int] = []
        hi: list[int] = []
        for table in ("book", "trades"):
            if (self.root / table / f"exchange={exchange}" / f"symbol={symbol}").is_dir():
                row = self.con.execute(
                    f"SELECT min(ts), max(ts) FROM {self.scan(table, exchange, symbol)}"
                ).fetchone()
                if row is not None and row[0] is not None:
                    lo.append(int(row[0]))
                    hi.append(int(row[1]))
        return (min(lo), max(hi)) if lo else None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
