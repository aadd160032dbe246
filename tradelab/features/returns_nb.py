"""Return and realized-volatility kernels.

Shape and axis: 1-D float64 price arrays over time (oldest first); outputs have the input's
length. Streaming and vectorized forms share one step, as in :mod:`tradelab.features.ta_nb`: a
state vector ``s`` with the indicator at offset ``o``, ``*_init(s, o, ...)`` and
``*_step(s, o, x)``; the ``*_nb`` functions loop over the step.

NaN policy (pandas'): the first ``k`` outputs are NaN; a NaN price gives NaN for every output
whose window holds it, and the outputs recover once it has left the window.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# -- k-bar returns ----------------------------------------------------------------------------
# [k, count, ring position, ring[k]]


@njit(cache=True, error_model="numpy")
def returns_size(k: int) -> int:
    """State slots of a ``k``-bar return."""
    return 3 + k


@njit(cache=True, error_model="numpy")
def returns_init(s: np.ndarray, o: int, k: int) -> None:
    """Initial state of a ``k``-bar return."""
    s[o : o + 3 + k] = 0.0
    s[o] = k


@njit(cache=True, error_model="numpy", inline="always")
def _lagged(s: np.ndarray, o: int, x: float) -> float:
    """Push ``x`` into the ring and return the input ``k`` steps back (NaN before that)."""
    k = s[o]
    c = s[o + 1]
    s[o + 1] = c + 1.0
    pos = s[o + 2]  # a float: no int round trip on the loop-carried chain
    slot = o + 3 + int(pos)
    old = s[slot]
    s[slot] = x
    pos += 1.0
    if pos == k:
        pos = 0.0
    s[o + 2] = pos
    if c < k:
        return np.nan
    return old


@njit(cache=True, error_model="numpy", inline="always")
def returns_step(s: np.ndarray, o: int, x: float) -> float:
    """Simple return over ``k`` inputs: ``x[t] / x[t-k] - 1`` (``s / s.shift(k) - 1``)."""
    return x / _lagged(s, o, x) - 1.0


@njit(cache=True, error_model="numpy", inline="always")
def log_returns_step(s: np.ndarray, o: int, x: float) -> float:
    """Log return over ``k`` inputs: ``log(x[t] / x[t-k])`` (``np.log(s / s.shift(k))``)."""
    return math.log(x / _lagged(s, o, x))


@njit(cache=True, error_model="numpy")
def returns_nb(x: np.ndarray, k: int, log: bool = False) -> np.ndarray:
    """``k``-bar simple (or log) returns; pandas ``s / s.shift(k) - 1``."""
    s = np.empty(returns_size(k))
    returns_init(s, 0, k)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        if log:
            out[i] = log_returns_step(s, 0, x[i])
        else:
            out[i] = returns_step(s, 0, x[i])
    return out


# -- realized volatility ----------------------------------------------------------------------
# [n, count, previous price, ring position, running sum, NaNs in window, ring[n] of r**2]


@njit(cache=True, error_model="numpy")
def realized_vol_size(n: int) -> int:
    """State slots of a realized volatility over ``n`` returns."""
    return 6 + n


@njit(cache=True, error_model="numpy")
def realized_vol_init(s: np.ndarray, o: int, n: int) -> None:
    """Initial state of a realized volatility over ``n`` one-bar log returns."""
    s[o : o + 6 + n] = 0.0
    s[o] = n


@njit(cache=True, error_model="numpy", inline="always")
def realized_vol_step(s: np.ndarray, o: int, x: float) -> float:
    """Advance by one price; returns ``sqrt(sum of squared one-bar log returns over the last n)``.

    The running sum is recomputed exactly from the ring every ``n`` steps, so rounding cannot
    drift. Pandas: ``np.sqrt((np.log(s / s.shift()) ** 2).rolling(n).sum())`` (equal to ~1e-12
    relative; pandas sums with its own compensated scheme).
    """
    n = int(s[o])
    c = s[o + 1]
    s[o + 1] = c + 1.0
    prev = s[o + 2]
    s[o + 2] = x
    if c == 0.0:
        return np.nan
    r = math.log(x / prev)
    q = r * r
    pos = s[o + 3]
    slot = o + 6 + int(pos)
    if c > n:  # the window is full: the slot holds the oldest square, which leaves now
        old = s[slot]
        if math.isnan(old):
            s[o + 5] -= 1.0
        else:
            s[o + 4] -= old
    s[slot] = q
    if math.isnan(q):
        s[o + 5] += 1.0
    else:
        s[o + 4] += q
    pos += 1.0
    if pos == n:
        pos = 0.0
        total = 0.0
        for j in range(n):
            v = s[o + 6 + j]
            if not math.isnan(v):
                total += v
        s[o + 4] = total
    s[o + 3] = pos
    if c < n or s[o + 5] > 0.0:
        return np.nan
    total = s[o + 4]
    return math.sqrt(total) if total > 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def realized_vol_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Realized volatility over ``n`` one-bar log returns (not annualized)."""
    s = np.empty(realized_vol_size(n))
    realized_vol_init(s, 0, n)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = realized_vol_step(s, 0, x[i])
    return out
