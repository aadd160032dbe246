"""Small numba helpers shared by the book strategies' kernels.

State vectors are float64, whose 53-bit mantissa cannot hold an int64 nanosecond timestamp
(about 1.7e18) exactly. A timestamp is therefore kept in two slots, whole milliseconds and the
nanoseconds left over, both exact, and elapsed times are computed from them exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NS_PER_MS = 1_000_000


@njit(cache=True, error_model="numpy", inline="always")
def ts_store(s: np.ndarray, k: int, ts: int) -> None:
    """Keep ``ts`` (int64 ns) in slots ``k`` and ``k + 1``."""
    ms = ts // NS_PER_MS
    s[k] = ms
    s[k + 1] = ts - ms * NS_PER_MS


@njit(cache=True, error_model="numpy", inline="always")
def ts_clear(s: np.ndarray, k: int) -> None:
    """Mark slots ``k``, ``k + 1`` as holding no time."""
    s[k] = np.nan
    s[k + 1] = np.nan


@njit(cache=True, error_model="numpy", inline="always")
def ns_since(s: np.ndarray, k: int, ts: int) -> float:
    """Nanoseconds from the time in slots ``k``, ``k + 1`` to ``ts``; +inf if none is kept."""
    if math.isnan(s[k]):
        return np.inf
    ms = ts // NS_PER_MS
    return (ms - s[k]) * NS_PER_MS + ((ts - ms * NS_PER_MS) - s[k + 1])


@njit(cache=True, error_model="numpy", inline="always")
def emit(out: np.ndarray, k: int, ts: int, idx: int, px: float, set_id: int, kind: int) -> int:
    """Write intent ``k`` into ``out`` when it fits (a zero-length ``out`` only counts);
    returns ``k + 1``."""
    if k < out.shape[0]:
        out[k].ts = ts
        out[k].idx = idx
        out[k].px = px
        out[k].set = set_id
        out[k].kind = kind
    return k + 1
