"""Moving-average crossover: follow the fast average across the slow one.

Rule, on each bar's close, with ``fast`` and ``slow`` moving averages of the close (simple
with ``ma_type = 0``, TA-Lib's SMA; exponential with ``ma_type = 1``, TA-Lib's EMA): when the
fast average crosses above the slow one (at or below it on the previous bar, above it now) the
target becomes long (+1); when it crosses below, short (-1), or flat with ``allow_short = 0``.
Otherwise the target stays; before the first cross it is flat, as are the warm-up bars.

Input: ``close`` per bar. Output: int8 target per bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.ta_nb import EMA_SIZE, ema_init, ema_step, sma_init, sma_size, sma_step
from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BAR

NAME = "ma_crossover"
KIND = BAR
INPUTS = ("close",)


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    constraints = (("fast < slow is required", lambda c: c["fast"] < c["slow"]),)
    fast: int = param(10, 1, 1000, integer=True, doc="bars of the fast average")
    slow: int = param(50, 2, 10000, integer=True, doc="bars of the slow average")
    ma_type: int = param(0, 0, 1, integer=True, doc="0: simple (SMA), 1: exponential (EMA)")
    allow_short: int = param(1, 0, 1, integer=True, doc="1: short below, 0: flat")


FAST, SLOW, MA_TYPE, ALLOW_SHORT = range(4)
# state: [target, previous fast, previous slow | fast MA state | slow MA state]
_HDR = 3


@njit(cache=True, error_model="numpy")
def _ma_size(n: int) -> int:
    return max(sma_size(n), EMA_SIZE)


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``."""
    f, sl = int(p[FAST]), int(p[SLOW])
    s = np.zeros(_HDR + _ma_size(f) + _ma_size(sl))
    s[1] = np.nan
    s[2] = np.nan
    if p[MA_TYPE] == 0.0:
        sma_init(s, _HDR, f)
        sma_init(s, _HDR + _ma_size(f), sl)
    else:
        ema_init(s, _HDR, f, 0)
        ema_init(s, _HDR + _ma_size(f), sl, 0)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def step(p: np.ndarray, s: np.ndarray, close: float) -> np.int8:
    """Advance by one bar; returns the target position after it."""
    short = -1.0 if p[ALLOW_SHORT] != 0.0 else 0.0
    o_slow = _HDR + _ma_size(int(p[FAST]))
    pos, pf, ps = s[0], s[1], s[2]
    if p[MA_TYPE] == 0.0:
        f = sma_step(s, _HDR, close)
        sl = sma_step(s, o_slow, close)
    else:
        f = ema_step(s, _HDR, close)
        sl = ema_step(s, o_slow, close)
    warm = not (math.isnan(sl) or math.isnan(ps) or math.isnan(f) or math.isnan(pf))
    if warm and pf <= ps and f > sl:
        pos = 1.0
    elif warm and pf >= ps and f < sl:
        pos = short
    s[0] = pos
    s[1] = f
    s[2] = sl
    return np.int8(pos)


@njit(cache=True, error_model="numpy")
def run_nb(p: np.ndarray, s: np.ndarray, close: np.ndarray, out: np.ndarray) -> None:
    """The vectorized form: ``step`` over every bar, targets into ``out``."""
    for i in range(close.shape[0]):
        out[i] = step(p, s, close[i])


@njit(cache=True, error_model="numpy", parallel=True)
def grid_nb(P: np.ndarray, close: np.ndarray, out: np.ndarray) -> None:
    """Every parameter set (rows of ``P``) in parallel; ``out`` is ``(n_sets, n_bars)`` int8."""
    for j in prange(P.shape[0]):
        p = P[j]
        run_nb(p, init_state_nb(p), close, out[j])


init_state, run, grid = base.bind(__name__)
