#!/usr/bin/env python
"""Signal benchmarks; prints one JSON document on stdout (progress on stderr).

Every figure is paired with a reference measured in the same run on the same data:

- ``indicators``: our vectorized kernels (each a loop over its streaming step) against TA-Lib's
  own functions on 3 months of Binance BTC/USDT 1m bars (130,708), with the largest difference
  seen (0.0 means bit-identical). ``ratio_vs_talib`` is our time over TA-Lib's (below 1: faster).
- ``streaming``: the cost of one step-kernel call from Python, what a live runner pays per input.
- ``grid``: each strategy over a 1,000-set parameter grid in one numba call (parallel over sets):
  bars x sets per second, the wall time, the int8 output size and the peak resident memory the
  call added (``VmHWM`` after resetting it). The reference is the same Keltner sweep written the
  usual way, TA-Lib's KC plus numpy/pandas per parameter set, timed on a sample of sets and
  scaled to the grid (its targets are checked equal to ours first).
- ``book_grid``: the two book strategies over 1,000 sets on the USD-M BTCUSDT recording (one row
  per depth message), updates x sets per second.

Usage: ``python benchmarks/signals.py [--sets N] [--quick]``; needs the shared data
(``TRADELAB_TEST_DATA`` or ../shared/data).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import talib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, data_dir, emit, log, machine, peak_rss_mib  # noqa: E402

from tradelab import features, strategies  # noqa: E402
from tradelab.collect.importers.base import ImportRun  # noqa: E402
from tradelab.collect.importers.binance_ws import BinanceWsImporter  # noqa: E402
from tradelab.collect.importers.freqtrade import FreqtradeImporter  # noqa: E402
from tradelab.features import ta_nb  # noqa: E402
from tradelab.store import Catalog  # noqa: E402


def _hwm_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS, so the next peak counts only new allocations."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_peak(fn):
    """Run ``fn`` once; returns (seconds, result, MiB of resident memory it added at peak)."""
    _release_free_memory()
    before = _status_mib("VmRSS")
    ok = _hwm_reset()
    t0 = time.perf_counter()
    result = fn()
    dt = time.perf_counter() - t0
    peak = _status_mib("VmHWM") if ok else peak_rss_mib()
    return dt, result, peak - before


# -- data -------------------------------------------------------------------------------------


def load(data: Path, tmp: Path):
    root = tmp / "store"
    run = ImportRun("freqtrade", root, {})
    FreqtradeImporter(run, "BINANCE").import_dir(data / "ohlcv")
    run.finish()
    run = ImportRun("binance-ws", root, {})
    BinanceWsImporter(run).import_files([data / "binance_ws" / "usdm_btcusdt_20240808.gz"])
    run.finish()
    cat = Catalog(root)
    bars = cat.bars("BINANCE", "BTC-USDT", "1m", "2025-05-20", "2025-08-19")
    spot = cat.bars("BINANCE", "ETH-USDT", "1m", "2025-05-20", "2025-06-16")
    perp = cat.bars("BINANCE_FUTURES", "ETH-USDT-PERP", "1m", "2025-05-20", "2025-06-16")
    fund = cat.funding("BINANCE_FUTURES", "ETH-USDT-PERP", "2025-05-20", "2025-06-16")
    carry = features.carry_inputs(spot, perp, fund)
    frame = features.book_frame_from_events(cat.events("BINANCE_FUTURES", "BTC-USDT-PERP"), 10)
    cat.close()
    return bars, carry, frame


# -- indicators -------------------------------------------------------------------------------


def bench_indicators(bars: pd.DataFrame) -> dict:
    h, lo, c = (np.ascontiguousarray(bars[k].to_numpy(dtype=np.float64))
                for k in ("high", "low", "close"))
    cases = {
        "EMA(20)": (lambda: ta_nb.ema_nb(c, 20), lambda: talib.EMA(c, 20)),
        "SMA(20)": (lambda: ta_nb.sma_nb(c, 20), lambda: talib.SMA(c, 20)),
        "RSI(14)": (lambda: ta_nb.rsi_nb(c, 14), lambda: talib.RSI(c, 14)),
        "ATR(14)": (lambda: ta_nb.atr_nb(h, lo, c, 14), lambda: talib.ATR(h, lo, c, 14)),
        "Keltner(20,10,2)": (
            lambda: ta_nb.keltner_nb(h, lo, c, 20, 10, 2.0),
            lambda: talib.KC(h, lo, c, 20, 10, 2.0),
        ),
        "Donchian(20)": (lambda: ta_nb.donchian_nb(h, lo, 20), lambda: talib.DONCHIAN(h, lo, 20)),
    }
    out = {}
    for name, (ours, ref) in cases.items():
        t_ours, a = best_of(ours, repeat=20)
        t_ref, b = best_of(ref, repeat=20)
        a = np.atleast_2d(np.asarray(a))
        b = np.atleast_2d(np.asarray(b))
        if name.startswith("Keltner"):
            b = b[[1, 0, 2]]  # talib: upper, mid, lower
        elif name.startswith("Donchian"):
            b = b[[0, 2, 1]]  # talib: upper, mid, lower
        same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
        out[name] = {
            "seconds": t_ours,
            "talib_seconds": t_ref,
            "ratio_vs_talib": t_ours / t_ref,
            "bars_per_s": len(c) / t_ours,
            "max_abs_diff": float(np.nanmax(np.abs(a - b))),
            "warmup_nans_equal": same_nan,
        }
        log(f"  {name}: {t_ours * 1e3:.3f} ms vs talib {t_ref * 1e3:.3f} ms")
    return out


def bench_streaming(bars: pd.DataFrame) -> dict:
    c = bars["close"].to_numpy(dtype=np.float64)[:20_000]
    h = bars["high"].to_numpy(dtype=np.float64)[:20_000]
    lo = bars["low"].to_numpy(dtype=np.float64)[:20_000]
    s = ta_nb.ema_new(20)
    ta_nb.ema_step(s, 0, c[0])
    t0 = time.perf_counter()
    for x in c:
        ta_nb.ema_step(s, 0, x)
    ema_us = (time.perf_counter() - t0) / len(c) * 1e6
    m = strategies.get("keltner_breakout")
    p = m.Params().to_array()
    s = m.init_state(p)
    m.step(p, s, h[0], lo[0], c[0])
    t0 = time.perf_counter()
    for a, b, x in zip(h, lo, c):
        m.step(p, s, a, b, x)
    kb_us = (time.perf_counter() - t0) / len(c) * 1e6
    return {"ema_step_us_per_call_from_python": ema_us,
            "keltner_breakout_step_us_per_call_from_python": kb_us,
            "note": "numba dispatch from the interpreter dominates; inside numba a step costs "
                    "the vectorized time per bar"}


# -- grids ------------------------------------------------------------------------------------


def grids(n_sets: int) -> dict[str, np.ndarray]:
    """About ``n_sets`` parameter sets per strategy (10 x 10 x 10 for 1,000)."""
    k = max(2, round(n_sets ** (1 / 3)))

    def ints(a: float, b: float, n: int = k) -> np.ndarray:
        return np.unique(np.linspace(a, b, n).round())

    lin = np.linspace
    P = {name: strategies.get(name).Params for name in strategies.names()}
    out = {
        "keltner_breakout": P["keltner_breakout"].grid(
            ema_period=ints(10, 200), atr_period=ints(5, 100), k=lin(0.5, 3.0, k)),
        "momentum": P["momentum"].grid(
            mid_bars=ints(2, 11), slow_bars=ints(15, 240), threshold=lin(0.0, 0.002, k)),
        "ma_crossover": P["ma_crossover"].grid(
            fast=ints(2, 50), slow=ints(60, 600, round(k * 2.5)), ma_type=[0, 1],
            allow_short=[0, 1]),
        "mean_reversion": P["mean_reversion"].grid(
            window=ints(20, 1440), edge=lin(0.001, 0.02, k), exit_edge=lin(0.0, 0.001, k)),
        "volatility_breakout": P["volatility_breakout"].grid(
            window=ints(10, 500), edge=lin(0.0, 0.005, k), cooldown=ints(0, 120)),
        "funding_carry": P["funding_carry"].grid(
            span=lin(1, 10, k), horizon=lin(3, 180, k), entry=lin(-0.001, 0.002, k)),
        "imbalance_microprice": P["imbalance_microprice"].grid(
            imb_entry=lin(0.1, 0.5, k), tilt_entry_bps=lin(0.01, 0.5, k), tilt_rearm_bps=[0.005],
            cooldown_ms=lin(0, 3000, k)),
        "ofi_reversion": P["ofi_reversion"].grid(
            window_ms=ints(100, 5000), z_entry=lin(1.0, 4.0, k), lookback=ints(20, 300)),
    }
    return out


def reference_keltner(h, lo, c, n_ema, n_atr, k, allow_short) -> np.ndarray:
    """The same rule written the usual way: TA-Lib KC, numpy crossings, a pandas ffill."""
    up, _mid, low = talib.KC(h, lo, c, n_ema, n_atr, k)
    pc, pu, pl = np.roll(c, 1), np.roll(up, 1), np.roll(low, 1)
    pu[0] = pl[0] = np.nan
    with np.errstate(invalid="ignore"):
        cross_up = (pc <= pu) & (c > up)
        cross_dn = (pc >= pl) & (c < low)
    sig = np.where(cross_up, 1.0, np.where(cross_dn, -1.0 if allow_short else 0.0, np.nan))
    return pd.Series(sig).ffill().fillna(0.0).to_numpy().astype(np.int8)


def bench_grids(bars, carry, frame, n_sets: int) -> dict:
    out = {}
    G = grids(n_sets)
    threads = numba.get_num_threads()
    for name, grid in G.items():
        m = strategies.get(name)
        data = {"funding_carry": carry}.get(name, bars)
        data = frame if m.KIND == "book" else data
        m.grid(data if m.KIND == "book" else data.iloc[:500], grid[:2])  # compile
        dt, res, added = measure_peak(lambda m=m, d=data, g=grid: m.grid(d, g))
        rows = len(frame) if m.KIND == "book" else len(data)
        entry = {"sets": len(grid), "rows": rows, "seconds": dt,
                 "row_sets_per_s": rows * len(grid) / dt, "threads": threads,
                 "peak_rss_added_mib": added, "output_mib": res.nbytes / 2**20}
        if m.KIND == "bar":
            entry["in_market_share"] = float((res != 0).mean())
        else:
            entry["intents"] = len(res)
        out[name] = entry
        log(f"  {name}: {len(grid)} sets x {rows} rows in {dt:.2f}s, +{added:.0f} MiB")
        del res
    # parallel scaling of one sweep, and the reference
    kb = strategies.get("keltner_breakout")
    grid = G["keltner_breakout"]
    numba.set_num_threads(1)
    t1, _ = best_of(lambda: kb.grid(bars, grid), repeat=1, warmup=0)
    numba.set_num_threads(threads)
    out["keltner_breakout"]["seconds_1_thread"] = t1
    out["keltner_breakout"]["parallel_speedup"] = t1 / out["keltner_breakout"]["seconds"]
    h, lo, c = (bars[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close"))
    sample = grid[np.linspace(0, len(grid) - 1, 20).astype(int)]
    ours = kb.grid(bars, sample)
    t0 = time.perf_counter()
    for j, p in enumerate(sample):
        ref = reference_keltner(h, lo, c, int(p[0]), int(p[1]), p[2], bool(p[3]))
        assert np.array_equal(ref, ours[j]), "the reference disagrees with the kernel"
    per_set = (time.perf_counter() - t0) / len(sample)
    out["reference_keltner_talib_numpy_pandas"] = {
        "what": "per parameter set: talib.KC + numpy crossings + pandas ffill (targets checked "
                "equal to the kernel's on a 20-set sample), timed on the sample, scaled",
        "seconds_per_set": per_set, "seconds_for_grid": per_set * len(grid),
        "row_sets_per_s": len(c) / per_set,
        "kernel_speedup": per_set * len(grid) / out["keltner_breakout"]["seconds"],
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=int, default=1000, help="parameter sets per grid")
    ap.add_argument("--quick", action="store_true", help="125 sets per grid")
    args = ap.parse_args()
    data = data_dir()
    if data is None:
        sys.exit("the shared data is needed: set TRADELAB_TEST_DATA to ../shared/data")
    n_sets = 125 if args.quick else args.sets
    doc = {"benchmark": "signals", "machine": machine(), "started": time.time(),
           "numba_threads": numba.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="tradelab-bench-") as d:
        log("importing the shared data ...")
        bars, carry, frame = load(Path(data), Path(d))
    doc["data"] = {"bars": "BINANCE BTC-USDT 1m 2025-05-20..2025-08-18", "n_bars": len(bars),
                   "carry": "ETH-USDT spot + perp 1m with 8h funding", "n_carry_bars": len(carry),
                   "book": "BINANCE_FUTURES BTC-USDT-PERP depth messages, 10 levels",
                   "n_book_rows": len(frame)}
    log("indicators vs TA-Lib ...")
    doc["indicators"] = bench_indicators(bars)
    doc["streaming"] = bench_streaming(bars)
    log(f"parameter grids ({n_sets} sets) ...")
    doc["grid"] = bench_grids(bars, carry, frame, n_sets)
    doc["peak_rss_mib"] = peak_rss_mib()
    emit(doc)


if __name__ == "__main__":
    main()
