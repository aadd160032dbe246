"""Numba kernel aggregating trades into OHLCV bars.

Input: trades in time order (ties in arrival order), ``ts`` int64 ns, ``price`` and ``qty``
float64, and the bar length in ns. Buckets are aligned to the epoch: a trade at ``ts`` belongs to
the bar opening at ``ts // step * step``. Empty buckets produce no bar. The pandas equivalent is
``df.groupby(ts // step).agg(open=first, high=max, low=min, close=last, volume=sum,
n_trades=size)`` on a stably sorted frame (volume summed in trade order here).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def count_bars_nb(ts, step):
    """Number of distinct epoch-aligned buckets of ``step`` ns in time-ordered ``ts``."""
    n = ts.shape[0]
    count = 0
    end = np.iinfo(np.int64).min
    for i in range(n):
        t = ts[i]
        if count == 0 or t >= end or t < end - step:
            count += 1
            end = (t // step) * step + step
    return count


@njit(cache=True)
def trade_bars_nb(ts, price, qty, step):
    """Return ``(bar_ts, open, high, low, close, volume, n_trades)`` arrays, one entry per bar.

    Two passes (count, then fill) so the outputs are exactly sized: nothing larger than the
    result stays alive, whatever the number of trades.
    """
    m = count_bars_nb(ts, step)
    bar_ts = np.empty(m, dtype=np.int64)
    o = np.empty(m)
    h = np.empty(m)
    lo = np.empty(m)
    c = np.empty(m)
    v = np.empty(m)
    cnt = np.empty(m, dtype=np.int64)
    j = -1
    end = np.iinfo(np.int64).min  # exclusive end of the current bucket
    for i in range(ts.shape[0]):
        t = ts[i]
        p = price[i]
        if j < 0 or t >= end or t < end - step:
            j += 1
            b = (t // step) * step
            end = b + step
            bar_ts[j] = b
            o[j] = p
            h[j] = p
            lo[j] = p
            c[j] = p
            v[j] = qty[i]
            cnt[j] = 1
        else:
            if p > h[j]:
                h[j] = p
            if p < lo[j]:
                lo[j] = p
            c[j] = p
            v[j] += qty[i]
            cnt[j] += 1
    return bar_ts, o, h, lo, c, v, cnt


def time_ordered(ts: np.ndarray) -> np.ndarray | None:
    """None when ``ts`` is already non-decreasing, else the stable sort order."""
    if ts.shape[0] < 2 or bool((ts[1:] >= ts[:-1]).all()):
        return None
    return np.argsort(ts, kind="stable")
