#!/usr/bin/env python
"""Store benchmarks; prints one JSON document on stdout (progress on stderr).

Every figure is paired with a reference measured in the same run on the same data:

- ``import``: messages/s importing the largest recording (usdm_btcusdt_20240808) on one core,
  against only decompressing and JSON-parsing the same lines (the floor any Python importer
  pays). Target: at least 100k messages/s.
- ``bars_1m``: ``Catalog.bars('1m')`` over 3 months of stored 1m candles (BTC/USDT spot, from
  the freqtrade files) against the same selection written directly in pandas/pyarrow.
- ``bars_1s_from_trades``: ``Catalog.bars('1s')`` aggregated from stored trades (the real spot
  recordings, and a synthetic market for scale) against a pandas groupby on the same rows.
- ``book_snapshots``: rows/s of the L2 book rebuilt and sampled every 100 ms (10 levels) from the
  USD-M recording, against a plain-Python dict book doing the same.
- ``book_vs_bookticker``: share of stored book messages whose rebuilt top of book equals Binance's
  bookTicker at the same update id (an accuracy figure, not a speed).

Usage: ``python benchmarks/store.py [--synthetic-days N] [--quick]``; needs the shared recordings
(``TRADELAB_TEST_DATA`` or ../shared/data).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow.dataset as ds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, data_dir, emit, log, machine, peak_rss_mib  # noqa: E402

from tradelab.collect.importers.base import ImportRun  # noqa: E402
from tradelab.collect.importers.binance_ws import BinanceWsImporter  # noqa: E402
from tradelab.collect.importers.freqtrade import FreqtradeImporter  # noqa: E402
from tradelab.store import Catalog  # noqa: E402
from tradelab.store.schema import BOOK_LAST, BOOK_SNAPSHOT  # noqa: E402


def parse_only(path: Path) -> int:
    n = 0
    loads = orjson.loads
    with gzip.open(path, "rb") as fh:
        for line in fh:
            loads(line[line.find(b" ") + 1:])
            n += 1
    return n


def bench_import(data: Path, tmp: Path) -> dict:
    src = data / "binance_ws" / "usdm_btcusdt_20240808.gz"
    t_ref, n = best_of(lambda: parse_only(src), repeat=3)
    times = []
    for i in range(3):
        run = ImportRun("binance-ws", tmp / f"import{i}", {})
        t0 = time.perf_counter()
        (rep,) = BinanceWsImporter(run).import_files([src])
        times.append(time.perf_counter() - t0)
        run.finish()
    t = min(times)
    rate = rep.lines / t
    return {"file": src.name, "messages": rep.lines, "rows": dict(rep.rows), "seconds": t,
            "messages_per_s": rate, "reference": "gzip + orjson.loads of every line",
            "reference_messages_per_s": n / t_ref, "ratio_vs_parse_only": t / t_ref,
            "target_messages_per_s": 100_000, "meets_target": rate >= 100_000}


def pandas_bars_1m(root: Path, start: str, end: str) -> pd.DataFrame:
    """The same selection written directly with pyarrow + pandas."""
    base = root / "ohlcv" / "exchange=BINANCE" / "symbol=BTC-USDT"
    days = pd.date_range(start, end, freq="D", inclusive="left").strftime("%Y-%m-%d")
    files = [str(f) for d in days for f in sorted((base / f"date={d}").glob("*.parquet"))]
    df = ds.dataset(files, format="parquet").to_table(
        columns=["ts", "interval", "kind", "open", "high", "low", "close", "volume", "n_trades"]
    ).to_pandas()
    lo, hi = pd.Timestamp(start, tz="UTC").value, pd.Timestamp(end, tz="UTC").value
    df = df[(df["interval"] == "1m") & (df["kind"] == "trade") & (df["ts"] >= lo) & (df["ts"] < hi)]
    df = df.drop(columns=["interval", "kind"]).sort_values("ts").reset_index(drop=True)
    df.index = pd.to_datetime(df["ts"], unit="ns", utc=True).rename("time")
    return df


def bench_bars_1m(data: Path, tmp: Path) -> dict:
    root = tmp / "ohlcv"
    run = ImportRun("freqtrade", root, {})
    FreqtradeImporter(run, "BINANCE").import_dir(data / "ohlcv" / "binance_spot_2025q2q3")
    run.finish()
    start, end = "2025-05-20", "2025-08-19"
    out = {}
    for threads in (None, 1):
        cat = Catalog(root, threads=threads)
        t_cat, bars = best_of(lambda c=cat: c.bars("BINANCE", "BTC-USDT", "1m", start, end), 5)
        out["catalog_seconds" if threads is None else "catalog_seconds_1_thread"] = t_cat
    t_pd, ref = best_of(lambda: pandas_bars_1m(root, start, end), 5)
    assert len(bars) == len(ref) == 130_708
    assert np.array_equal(bars["close"].to_numpy(), ref["close"].to_numpy())
    return {"rows": len(bars), **out, "pandas_seconds": t_pd,
            "reference": "pyarrow dataset over the same partition files + pandas filter/sort",
            "speedup_vs_pandas": t_pd / out["catalog_seconds"],
            "speedup_vs_pandas_1_thread": t_pd / out["catalog_seconds_1_thread"]}


def pandas_bars_from_trades(root: Path, exchange: str, symbol: str, step_ns: int) -> pd.DataFrame:
    base = root / "trades" / f"exchange={exchange}" / f"symbol={symbol}"
    files = sorted(str(f) for f in base.glob("date=*/*.parquet"))
    df = ds.dataset(files, format="parquet").to_table(columns=["ts", "price", "qty"]).to_pandas()
    df = df.sort_values("ts", kind="stable")
    g = df.groupby(df["ts"].to_numpy() // step_ns, sort=True)
    out = g.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"),
                close=("price", "last"), volume=("qty", "sum"), n_trades=("price", "size"))
    out.index = out.index * step_ns
    return out


def compare_bars(bars: pd.DataFrame, ref: pd.DataFrame) -> dict:
    assert len(bars) == len(ref)
    assert np.array_equal(bars["ts"].to_numpy(), ref.index.to_numpy())
    for col in ("open", "high", "low", "close"):
        assert np.array_equal(bars[col].to_numpy(), ref[col].to_numpy()), col
    assert np.array_equal(bars["n_trades"].to_numpy(dtype=np.int64), ref["n_trades"].to_numpy())
    rel = np.max(np.abs(bars["volume"].to_numpy() / ref["volume"].to_numpy() - 1))
    return {"bars": len(bars), "ohlc_equal": True, "volume_max_rel_diff": float(rel)}


def bench_bars_from_trades(data: Path, tmp: Path, synthetic_days: float) -> dict:
    results = {}
    real = tmp / "spot"
    run = ImportRun("binance-ws", real, {})
    BinanceWsImporter(run).import_files(sorted((data / "binance_ws").glob("spot_btcusdt_*.gz")))
    run.finish()
    sets = [("recorded spot BTCUSDT", real, "BINANCE", "BTC-USDT")]
    if synthetic_days > 0:
        from tradelab.synth import SynthConfig, generate_market, write_store

        log(f"generating {synthetic_days} synthetic days of trades ...")
        market = generate_market(SynthConfig(days=synthetic_days, perp=False,
                                             spot_symbols={"BTC-USDT": 60_000.0}))
        synth = tmp / "synth"
        write_store(market, synth, fsync=False)
        sets.append((f"synthetic {synthetic_days} days", synth, "BINANCE", "BTC-USDT"))
        del market
    for label, root, ex, sym in sets:
        cat = Catalog(root)
        n = int(cat.sql(f"SELECT count(*) AS n FROM trades WHERE symbol = '{sym}'").n.iloc[0])
        t_cat, bars = best_of(lambda c=cat, x=ex, y=sym: c.bars(x, y, "1s"), 3)
        t_pd, ref = best_of(lambda r=root, x=ex, y=sym: pandas_bars_from_trades(r, x, y, 10**9), 3)
        results[label] = {"trades": n, **compare_bars(bars, ref), "catalog_seconds": t_cat,
                          "pandas_seconds": t_pd, "trades_per_s": n / t_cat,
                          "speedup_vs_pandas": t_pd / t_cat,
                          "reference": "pyarrow read + stable sort + pandas groupby first/max/"
                                       "min/last/sum/size"}
        log(f"  bars 1s from {label}: {n:,} trades, catalog {t_cat:.3f}s, pandas {t_pd:.3f}s")
    return results


def naive_book_samples(book: pd.DataFrame, grid: np.ndarray, levels: int) -> np.ndarray:
    """Plain-Python dict book sampled on ``grid`` (the reference for book_snapshots)."""
    ts = book["ts"].to_numpy()
    side = (book["side"] == "bid").to_numpy()
    px = book["price"].to_numpy()
    qty = book["qty"].to_numpy()
    flags = book["flags"].to_numpy()
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    out = np.full((len(grid), 2), np.nan)
    k, n = 0, len(ts)
    valid = False
    for i in range(n):
        new_msg = i == 0 or flags[i - 1] & BOOK_LAST
        if new_msg:
            while k < len(grid) and grid[k] < ts[i]:
                if valid:
                    b = sorted(bids, reverse=True)[:levels]
                    a = sorted(asks)[:levels]
                    out[k] = (b[0], a[0])
                k += 1
            if flags[i] & BOOK_SNAPSHOT:
                bids, asks = {}, {}
        d = bids if side[i] else asks
        if qty[i] == 0:
            d.pop(px[i], None)
        else:
            d[px[i]] = qty[i]
        if flags[i] & BOOK_SNAPSHOT and flags[i] & BOOK_LAST:
            valid = True
    while k < len(grid):
        b = sorted(bids, reverse=True)[:levels]
        a = sorted(asks)[:levels]
        out[k] = (b[0], a[0])
        k += 1
    return out


def bench_book(data: Path, tmp: Path) -> dict:
    root = tmp / "usdm"
    run = ImportRun("binance-ws", root, {})
    BinanceWsImporter(run).import_files([data / "binance_ws" / "usdm_btcusdt_20240808.gz"])
    run.finish()
    cat = Catalog(root)
    ex, sym = "BINANCE_FUTURES", "BTC-USDT-PERP"
    n_rows = int(cat.sql("SELECT count(*) AS n FROM book").n.iloc[0])
    t_cat, snaps = best_of(lambda: cat.book_snapshots(ex, sym, levels=10, every="100ms"), 3)
    book = cat.book(ex, sym)
    t_ref, ref = best_of(lambda: naive_book_samples(book, snaps["ts"].to_numpy(), 10), 1, 0)
    got = snaps[["bid_px_0", "ask_px_0"]].to_numpy()
    ok = np.isfinite(got[:, 0])
    assert np.array_equal(got[ok], ref[ok])
    return {"book_rows": n_rows, "samples": len(snaps), "levels": 10, "every": "100ms",
            "catalog_seconds": t_cat, "book_rows_per_s": n_rows / t_cat,
            "samples_per_s": len(snaps) / t_cat, "reference": "plain-Python dict book, sorted "
            "levels at each sample", "reference_seconds": t_ref,
            "speedup_vs_reference": t_ref / t_cat}


def bench_agreement(data: Path, tmp: Path) -> dict:
    out = {}
    stores = {"usdm BTCUSDT": (tmp / "usdm", "BINANCE_FUTURES", "BTC-USDT-PERP"),
              "spot BTCUSDT": (tmp / "spot", "BINANCE", "BTC-USDT")}
    for label, (root, ex, sym) in stores.items():
        cat = Catalog(root)
        top = cat.top_of_book(ex, sym)
        top = top[top["valid"]]
        bbo = cat.bbo(ex, sym).sort_values("seq", kind="stable")
        idx = np.searchsorted(bbo["seq"].to_numpy(), top["seq"].to_numpy(), side="right") - 1
        top, ref = top[idx >= 0], bbo.iloc[idx[idx >= 0]]
        cols = ["bid_px", "bid_qty", "ask_px", "ask_qty"]
        same = (top[cols].to_numpy() == ref[cols].to_numpy()).all(axis=1)
        out[label] = {"messages_compared": int(len(same)), "agree": int(same.sum()),
                      "agreement_rate": float(same.mean())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synthetic-days", type=float, default=30.0,
                    help="days of synthetic trades for the 1s-bars benchmark (0 to skip)")
    ap.add_argument("--quick", action="store_true", help="small synthetic set (3 days)")
    args = ap.parse_args()
    data = data_dir()
    if data is None:
        sys.exit("the shared recordings are needed: set TRADELAB_TEST_DATA to ../shared/data")
    data = Path(data)
    days = 3.0 if args.quick else args.synthetic_days
    doc = {"benchmark": "store", "machine": machine(), "started": time.time()}
    with tempfile.TemporaryDirectory(prefix="tradelab-bench-") as d:
        tmp = Path(d)
        log("import throughput ...")
        doc["import"] = bench_import(data, tmp)
        log("bars 1m from stored candles ...")
        doc["bars_1m"] = bench_bars_1m(data, tmp)
        log("bars 1s from trades ...")
        doc["bars_1s_from_trades"] = bench_bars_from_trades(data, tmp, days)
        log("book snapshots ...")
        doc["book_snapshots"] = bench_book(data, tmp)
        doc["book_vs_bookticker"] = bench_agreement(data, tmp)
    doc["peak_rss_mib"] = peak_rss_mib()
    emit(doc)


if __name__ == "__main__":
    main()
