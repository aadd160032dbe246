"""Shared helpers of the feature and strategy tests: real bars and book frames, and a driver that
calls a streaming step from Python one input at a time (what a live runner does)."""

from __future__ import annotations

import functools

import numpy as np

from tradelab.store import Catalog


@functools.lru_cache(maxsize=4)
def real_bars(store, symbol: str = "BTC-USDT"):
    """3 months of Binance spot 1m bars from the imported freqtrade files (read once)."""
    cat = Catalog(store)
    bars = cat.bars("BINANCE", symbol, "1m", "2025-05-20", "2025-08-19")
    cat.close()
    assert len(bars) == 130_708
    return bars


def hlc(bars, n: int | None = None):
    cols = [np.ascontiguousarray(bars[c].to_numpy(dtype=np.float64)) for c in ("high", "low",
                                                                               "close")]
    return cols if n is None else [c[:n].copy() for c in cols]


def same(a, b) -> bool:
    """Bit-for-bit equality (NaN equal to NaN)."""
    a = np.asarray(a)
    b = np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
