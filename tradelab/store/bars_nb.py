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
def trade_bars_nb(ts, price, qty, step):
    """Return ``(bar_ts, open, high, low, close, volume, n_trades)`` arrays, one entry per bar."""
    n = ts.shape[0]
    bar_ts = np.empty(n, dtype=np.int64)
    o = np.empty(n)
    h = np.empty(n)
    lo = np.empty(n)
    c = np.empty(n)
    v = np.empty(n)
    cnt = np.empty(n, dtype=np.int64)
    m = -1
    cur = 0
    for i in range(n):
        b = (ts[i] // step) * step
        p = price[i]
        if m < 0 or b != cur:
            m += 1
            cur = b
            bar_ts[m] = b
            o[m] = p
            h[m] = p
            lo[m] = p
            c[m] = p
            v[m] = qty[i]
            cnt[m] = 1
        else:
            if p > h[m]:
                h[m] = p
            if p < lo[m]:
                lo[m] = p
            c[m] = p
            v[m] += qty[i]
            cnt[m] += 1
    m += 1
    return bar_ts[:m], o[:m], h[:m], lo[:m], c[:m], v[:m], cnt[:m]


def time_ordered(ts: np.ndarray) -> np.ndarray | None:
    """None when ``ts`` is already non-decreasing, else the stable sort order."""
    if ts.shape[0] < 2 or bool((ts[1:] >= ts[:-1]).all()):
        return None
    return np.argsort(ts, kind="stable")
