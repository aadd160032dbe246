"""Write a :class:`~tradelab.synth.market.SynthMarket` where the rest of tradelab reads data.

- :func:`write_freqtrade`: freqtrade's feather files, named and typed exactly as freqtrade writes
  them (the schema of the real files in the shared test data: ``date`` ``timestamp[ns, UTC]``
  candle open, ``open high low close volume`` float64).
- :func:`write_binance_ws`: raw Binance spot websocket recordings (``<recv ns> <json>`` lines,
  combined-stream envelope), one gzip file per spot symbol, with ``trade`` and ``bookTicker``
  messages, as the recorder and the Binance importer know them.
- :func:`write_store`: straight into the Parquet store with :class:`tradelab.store.StoreWriter`
  (for scale tests that skip the importers).

Every writer publishes a file only when it is complete (written under a hidden name, then
renamed) and is deterministic: the same market gives the same bytes.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from tradelab.adapters.binance.encode import spot_book_ticker_lines, spot_trade_lines
from tradelab.adapters.binance.symbols import raw_of_store_symbol
from tradelab.core.timeutil import NS_PER_DAY, NS_PER_S, interval_ns
from tradelab.store.writer import StoreWriter
from tradelab.synth import nb
from tradelab.synth.market import PERP_SUFFIX, SynthMarket, _units_per, rng_for

MS = 1_000_000
FEATHER_COLUMNS = ("date", "open", "high", "low", "close", "volume")
WS_CHUNK_LINES = 500_000


def _split(symbol: str) -> tuple[str, str]:
    spot = symbol[: -len(PERP_SUFFIX)] if symbol.endswith(PERP_SUFFIX) else symbol
    base, quote = spot.split("-", 1)
    return base, quote


def _atomic(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


# -- freqtrade ---------------------------------------------------------------------------------


def _fill_candles(df: pd.DataFrame, step: int) -> pd.DataFrame:
    """Insert candles for buckets without trades (previous close, zero volume), as Binance does."""
    ts = df["ts"].to_numpy()
    if len(ts) < 2 or (np.diff(ts) == step).all():
        return df
    full = np.arange(ts[0], ts[-1] + step, step, dtype=np.int64)
    out = df.set_index("ts")[["open", "high", "low", "close", "volume"]].reindex(full)
    close = out["close"].ffill()
    for col in ("open", "high", "low"):
        out[col] = out[col].fillna(close)
    out["close"] = close
    out["volume"] = out["volume"].fillna(0.0)
    return out.rename_axis("ts").reset_index()


def _feather(path: Path, ts: np.ndarray, o, h, lo, c, v) -> Path:
    date = pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ns", utc=True)
    df = pd.DataFrame(
        {
            "date": date.astype("datetime64[ns, UTC]"),
            "open": np.asarray(o, dtype=np.float64),
            "high": np.asarray(h, dtype=np.float64),
            "low": np.asarray(lo, dtype=np.float64),
            "close": np.asarray(c, dtype=np.float64),
            "volume": np.asarray(v, dtype=np.float64),
        }
    )
    table = pa.Table.from_pandas(df)
    # pandas 3 records its ``str`` column labels as numpy_type "str"; freqtrade's files (pandas 2)
    # say "object", which every pandas reads back. Keep the files identical to freqtrade's.
    meta = json.loads(table.schema.metadata[b"pandas"])
    for col_index in meta.get("column_indexes", []):
        if col_index.get("pandas_type") == "unicode":
            col_index["numpy_type"] = "object"
    table = table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})
    tmp = _atomic(path)
    try:
        feather.write_feather(table, tmp, compression="lz4", compression_level=9)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_freqtrade(
    market: SynthMarket, directory: str | os.PathLike, *, fill_gaps: bool = True
) -> list[Path]:
    """Write the market as a freqtrade data directory; returns the files written.

    Spot symbols go to ``<directory>/BTC_USDT-<interval>.feather`` for every bar interval of
    the market; perps to ``<directory>/futures/`` as ``BTC_USDT_USDT-<interval>-futures.feather``,
    ``BTC_USDT_USDT-8h-funding_rate.feather`` (rate in ``open``, high/low/close/volume 0, ``date``
    the jittered funding time) and ``BTC_USDT_USDT-8h-mark.feather`` (mark-price klines,
    volume 0). ``date`` is the candle open. With ``fill_gaps`` a candle interval without trades
    is written as Binance serves it: previous close, zero volume.
    """
    root = Path(directory)
    futures = root / "futures"
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    fi = market.config.funding_interval
    for symbol in market.symbols:
        base, quote = _split(symbol)
        is_perp = symbol in market.funding
        if is_perp:
            futures.mkdir(parents=True, exist_ok=True)
        for iv, bars in market.ohlcv[symbol].items():
            df = _fill_candles(bars, interval_ns(iv)) if fill_gaps else bars
            name = (
                futures / f"{base}_{quote}_{quote}-{iv}-futures.feather"
                if is_perp
                else root / f"{base}_{quote}-{iv}.feather"
            )
            written.append(
                _feather(
                    name,
                    df["ts"].to_numpy(),
                    df["open"],
                    df["high"],
                    df["low"],
                    df["close"],
                    df["volume"],
                )
            )
        if is_perp:
            f = market.funding[symbol]
            zero = np.zeros(len(f))
            written.append(
                _feather(
                    futures / f"{base}_{quote}_{quote}-{fi}-funding_rate.feather",
                    f["ts"].to_numpy(),
                    f["rate"],
                    zero,
                    zero,
                    zero,
                    zero,
                )
            )
            m = market.mark[symbol]
            written.append(
                _feather(
                    futures / f"{base}_{quote}_{quote}-{fi}-mark.feather",
                    m["ts"].to_numpy(),
                    m["open"],
                    m["high"],
                    m["low"],
                    m["close"],
                    m["volume"],
                )
            )
    return written


# -- Binance websocket recording ----------------------------------------------------------------


def book_sizes(market: SynthMarket, symbol: str) -> tuple[np.ndarray, np.ndarray]:
    """Best bid and ask sizes per second, in lots of ``qty_step`` (deterministic per symbol)."""
    cfg = market.config
    n = len(market.mid_1s[symbol])
    rng = rng_for(cfg.seed, symbol, "book-sizes")
    lpu = _units_per(cfg.qty_step, "qty_step")
    med = 20.0 * cfg.trade_notional / market.open_mid[symbol] * lpu
    sizes = np.maximum(1, np.rint(med * rng.lognormal(0.0, 1.0, size=(2, n)))).astype(np.int64)
    return sizes[0], sizes[1]


def _ws_lines(
    stream: str,
    sym: str,
    tr_ts: np.ndarray,
    tr_px: np.ndarray,
    tr_qty: np.ndarray,
    tr_m: np.ndarray,
    tr_id: np.ndarray,
    tr_recv: np.ndarray,
    tr_e: np.ndarray,
    bt_recv: np.ndarray,
    bt_u: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    bq: np.ndarray,
    aq: np.ndarray,
    tpu: int,
    lpu: int,
) -> list[pa.Array]:
    out = []
    if len(tr_ts):
        t_ms = tr_ts // MS
        out.append(
            spot_trade_lines(stream, sym, tr_recv, t_ms + tr_e, tr_id, tr_px, tr_qty, t_ms, tr_m,
                             tpu, lpu)
        )
    if len(bt_recv):
        out.append(spot_book_ticker_lines(stream, sym, bt_recv, bt_u, bid, bq, ask, aq, tpu, lpu))
    return out


def _write_lines(fh, arr: pa.Array) -> None:
    arr = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    fh.write(memoryview(arr.buffers()[2])[int(offsets[0]) : int(offsets[-1])])


def write_binance_ws(
    market: SynthMarket,
    path: str | os.PathLike,
    symbols: Iterable[str] | None = None,
    hours: float | None = None,
    *,
    compresslevel: int = 1,
) -> list[Path]:
    """Write spot trades and quotes as raw Binance websocket recordings; returns the files.

    ``path`` is a directory; each spot symbol gets its own file ``spot_<btcusdt>_<YYYYMMDD>.gz``
    (the start date), in the format of the real recordings: one message per line,
    ``<local receipt time, ns> <json>`` with the combined-stream envelope
    ``{"stream":"btcusdt@trade","data":{...}}``. Messages:

    - one spot ``trade`` per trade (``e,E,s,t,p,q,T,m,M``; ``T`` the trade time in ms, ``E`` 0-1 ms
      later, ``m`` true when the taker sold, prices and quantities as 8-decimal strings);
    - one spot ``bookTicker`` per second at the second's start (``u,s,b,B,a,A``; ``u`` strictly
      increasing) holding the quote that every trade of that second printed at.

    Lines are in exchange order (trades by time, a second's bookTicker before its trades), as one
    connection delivers a combined stream; the receipt time is the exchange time plus a latency
    (1-2 ms for bookTicker, 2 ms plus an exponential tail of mean 1 ms, capped at 20 ms, for
    trades), never earlier than the previous line's. ``symbols`` picks spot symbols
    (default all), ``hours`` keeps only the first hours of the market. No depth stream and no REST
    snapshot are written. ``compresslevel`` is gzip's (1 is fastest; the format is the same).
    """
    cfg = market.config
    directory = Path(path)
    if directory.suffix in (".gz", ".gzip"):
        raise ValueError(
            f"{str(directory)!r}: pass a directory; one recording per symbol is written into it"
        )
    spots = market.spot_symbols
    chosen = list(spots if symbols is None else symbols)
    for s in chosen:
        if s not in spots:
            raise KeyError(
                f"{s!r} is not a spot symbol of this market; spot symbols: {', '.join(spots)}"
            )
    if hours is not None and not hours > 0:
        raise ValueError(f"hours={hours!r}: must be positive")
    directory.mkdir(parents=True, exist_ok=True)
    cut = (
        market.end_ns
        if hours is None
        else min(market.end_ns, market.start_ns + int(hours * 3600 * NS_PER_S))
    )
    day = pd.Timestamp(market.start_ns, unit="ns", tz="UTC").strftime("%Y%m%d")
    written = []
    for symbol in chosen:
        sym = raw_of_store_symbol(symbol)
        stream = sym.lower()
        tpu = _units_per(cfg.tick_of(symbol), "tick_size")
        lpu = _units_per(cfg.qty_step, "qty_step")
        tr = market.trades[symbol]
        n_tr = int(np.searchsorted(tr["ts"].to_numpy(), cut))
        tr_ts = tr["ts"].to_numpy()[:n_tr]
        tr_px = np.rint(tr["price"].to_numpy()[:n_tr] * tpu).astype(np.int64)
        tr_qty = np.rint(tr["qty"].to_numpy()[:n_tr] * lpu).astype(np.int64)
        tr_m = tr["side"].cat.codes.to_numpy()[:n_tr] == 1
        tr_id = pa.array(tr["trade_id"].iloc[:n_tr]).cast(pa.string())
        tr_id = np.asarray(pc.cast(tr_id, pa.int64()))
        i1 = int(min(len(market.mid_1s[symbol]), -(-(cut - market.start_ns) // NS_PER_S)))
        bid, ask = nb.quote_ticks_nb(
            market.mid_1s[symbol][:i1], market.spread_ticks[symbol], float(tpu), 0
        )
        bq, aq = book_sizes(market, symbol)
        bq, aq = bq[:i1], aq[:i1]

        def rng(purpose: str, _s: str = symbol):
            return rng_for(cfg.seed, _s, purpose)

        tr_e = rng("ws-trade-event").integers(0, 2, n_tr)
        bt_ts = market.start_ns + np.arange(i1, dtype=np.int64) * NS_PER_S
        bt_u = 1_000_000_000 + np.cumsum(rng("ws-book-u").integers(1, 12, i1))
        # One connection delivers the combined stream in exchange order: receipt time is the
        # exchange time plus a latency, never earlier than the previous message's receipt.
        ex_ts = np.concatenate([tr_ts, bt_ts])
        latency = np.concatenate(
            [
                2 * MS
                + np.minimum(rng("ws-trade-latency").exponential(1.0 * MS, n_tr), 20 * MS).astype(
                    np.int64
                ),
                MS + rng("ws-book-latency").integers(0, MS, i1),
            ]
        )
        order = np.argsort(ex_ts, kind="stable")
        recv = np.empty_like(ex_ts)
        recv[order] = np.maximum.accumulate(ex_ts[order] + latency[order])
        tr_recv, bt_recv = recv[:n_tr], recv[n_tr:]
        del ex_ts, latency
        target = directory / f"spot_{stream}_{day}.gz"
        tmp = _atomic(target)
        try:
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
                ) as fh,
            ):
                for a in range(0, len(order), WS_CHUNK_LINES):
                    sel = order[a : a + WS_CHUNK_LINES]
                    is_tr = sel < n_tr
                    ti = sel[is_tr]
                    bi = sel[~is_tr] - n_tr
                    parts = _ws_lines(
                        stream,
                        sym,
                        tr_ts[ti],
                        tr_px[ti],
                        tr_qty[ti],
                        tr_m[ti],
                        tr_id[ti],
                        tr_recv[ti],
                        tr_e[ti],
                        bt_recv[bi],
                        bt_u[bi],
                        bid[bi],
                        ask[bi],
                        bq[bi],
                        aq[bi],
                        tpu,
                        lpu,
                    )
                    lines = pa.concat_arrays([p.cast(pa.large_string()) for p in parts])
                    pos = np.where(is_tr, np.cumsum(is_tr) - 1, len(ti) + np.cumsum(~is_tr) - 1)
                    _write_lines(fh, lines.take(pa.array(pos)))
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written.append(target)
    return written


# -- the store ---------------------------------------------------------------------------------


def _const(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int8)), pa.array([value])
    ).cast(pa.string())


def _day_slices(ts: np.ndarray) -> list[tuple[int, int]]:
    if len(ts) == 0:
        return []
    days = np.arange(ts[0] // NS_PER_DAY, ts[-1] // NS_PER_DAY + 2, dtype=np.int64) * NS_PER_DAY
    edges = np.searchsorted(ts, days)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def write_store(
    market: SynthMarket,
    root: str | os.PathLike | None = None,
    *,
    fsync: bool = True,
    bbo: bool = False,
) -> dict:
    """Write the market into the Parquet store; returns the writer's stats.

    Tables: ``trades`` (spot under ``BINANCE``, perps under ``BINANCE_FUTURES``; ``recv_ts``
    null, there is no receipt), ``ohlcv`` kind ``trade`` for every bar interval and, for perps,
    kind ``mark`` at the funding interval, ``funding`` (``settled=True``, with mark and index
    price) and, with ``bbo=True``, one ``bbo`` row per second (the quote trades printed at).
    Each day of trades is one part file and one Parquet row group, so a minute's trades are
    always read in order by one thread and DuckDB's ``sum(qty)`` reproduces ``volume`` bit for bit.
    """
    cfg = market.config
    max_day = 0
    for symbol in market.symbols:
        ts = market.trades[symbol]["ts"].to_numpy()
        for a, b in _day_slices(ts):
            max_day = max(max_day, b - a)
    writer = StoreWriter(
        root, batch_rows=1 << 62, fsync=fsync, row_group_rows=max(256_000, max_day)
    )
    with writer:
        for symbol in market.symbols:
            ex = market.exchange[symbol]
            tr = market.trades[symbol]
            ts = tr["ts"].to_numpy()
            price = tr["price"].to_numpy()
            qty = tr["qty"].to_numpy()
            codes = tr["side"].cat.codes.to_numpy()
            sides = pa.array(["buy", "sell"])
            for a, b in _day_slices(ts):
                writer.write(
                    "trades",
                    ex,
                    symbol,
                    {
                        "ts": ts[a:b],
                        "price": price[a:b],
                        "qty": qty[a:b],
                        "side": pa.DictionaryArray.from_arrays(pa.array(codes[a:b]), sides),
                        "trade_id": pa.array(tr["trade_id"].iloc[a:b]),
                    },
                )
                writer.flush()
            for iv, bars in market.ohlcv[symbol].items():
                n = len(bars)
                writer.write(
                    "ohlcv",
                    ex,
                    symbol,
                    {
                        "ts": bars["ts"].to_numpy(),
                        "interval": _const(iv, n),
                        "kind": _const("trade", n),
                        "open": bars["open"].to_numpy(),
                        "high": bars["high"].to_numpy(),
                        "low": bars["low"].to_numpy(),
                        "close": bars["close"].to_numpy(),
                        "volume": bars["volume"].to_numpy(),
                        "n_trades": bars["n_trades"].to_numpy(),
                    },
                )
            if symbol in market.mark:
                m = market.mark[symbol]
                n = len(m)
                writer.write(
                    "ohlcv",
                    ex,
                    symbol,
                    {
                        "ts": m["ts"].to_numpy(),
                        "interval": _const(cfg.funding_interval, n),
                        "kind": _const("mark", n),
                        "open": m["open"].to_numpy(),
                        "high": m["high"].to_numpy(),
                        "low": m["low"].to_numpy(),
                        "close": m["close"].to_numpy(),
                        "volume": m["volume"].to_numpy(),
                    },
                )
            if symbol in market.funding:
                f = market.funding[symbol]
                writer.write(
                    "funding",
                    ex,
                    symbol,
                    {
                        "ts": f["ts"].to_numpy(),
                        "rate": f["rate"].to_numpy(),
                        "settled": np.ones(len(f), dtype=bool),
                        "mark_price": f["mark_price"].to_numpy(),
                        "index_price": f["index_price"].to_numpy(),
                    },
                )
            if bbo:
                q = market.quotes(symbol)
                bq, aq = book_sizes(market, symbol)
                lpu = float(_units_per(cfg.qty_step, "qty_step"))
                writer.write(
                    "bbo",
                    ex,
                    symbol,
                    {
                        "ts": q["ts"].to_numpy(),
                        "seq": np.arange(1, len(q) + 1, dtype=np.int64),
                        "bid_px": q["bid"].to_numpy(),
                        "bid_qty": bq / lpu,
                        "ask_px": q["ask"].to_numpy(),
                        "ask_qty": aq / lpu,
                    },
                )
            writer.flush()
    return writer.stats.as_dict()


__all__ = ["book_sizes", "write_binance_ws", "write_freqtrade", "write_store"]
