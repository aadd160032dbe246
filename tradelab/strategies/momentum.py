"""Momentum: ride moves that the 1-, 5- and 15-bar returns agree on.

Rule, on each bar's close, with ``r_k = close[t] / close[t-k] - 1`` for ``k`` in
``(fast_bars, mid_bars, slow_bars)`` (1, 5 and 15 minutes on 1m bars): when all three exceed
``+threshold`` the target becomes long (+1); when all three are below ``-threshold`` it becomes
short (-1), or flat with ``allow_short = 0``. A long is closed (0) when the slow return falls to
zero or below, a short when it rises to zero or above. Otherwise the target stays. Bars before
the slow return exists are flat.

Input: ``close`` per bar. Output: int8 target per bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.returns_nb import returns_init, returns_size, returns_step
from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BAR

NAME = "momentum"
KIND = BAR
INPUTS = ("close",)


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    constraints = (
        ("fast_bars < mid_bars < slow_bars is required",
         lambda c: (c["fast_bars"] < c["mid_bars"]) & (c["mid_bars"] < c["slow_bars"])),
    )
    fast_bars: int = param(1, 1, 1000, integer=True, doc="bars of the fast return")
    mid_bars: int = param(5, 2, 5000, integer=True, doc="bars of the middle return")
    slow_bars: int = param(15, 3, 20000, integer=True, doc="bars of the slow return")
    threshold: float = param(0.0, 0.0, 0.1, doc="each return must exceed this (fraction)")
    allow_short: int = param(1, 0, 1, integer=True, doc="1: short on agreeing falls, 0: flat")


FAST_BARS, MID_BARS, SLOW_BARS, THRESHOLD, ALLOW_SHORT = range(5)
# state: [target | fast return ring | mid return ring | slow return ring]
_HDR = 1


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``."""
    f, m, sl = int(p[FAST_BARS]), int(p[MID_BARS]), int(p[SLOW_BARS])
    s = np.empty(_HDR + returns_size(f) + returns_size(m) + returns_size(sl))
    s[0] = 0.0
    returns_init(s, _HDR, f)
    returns_init(s, _HDR + returns_size(f), m)
    returns_init(s, _HDR + returns_size(f) + returns_size(m), sl)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def step(p: np.ndarray, s: np.ndarray, close: float) -> np.int8:
    """Advance by one bar; returns the target position after it."""
    thr = p[THRESHOLD]
    short = -1.0 if p[ALLOW_SHORT] != 0.0 else 0.0
    o_mid = _HDR + 3 + int(p[FAST_BARS])
    o_slow = o_mid + 3 + int(p[MID_BARS])
    pos = s[0]
    r1 = returns_step(s, _HDR, close)
    r2 = returns_step(s, o_mid, close)
    r3 = returns_step(s, o_slow, close)
    if not math.isnan(r3):
        if r1 > thr and r2 > thr and r3 > thr:
            pos = 1.0
        elif r1 < -thr and r2 < -thr and r3 < -thr:
            pos = short
        elif (pos > 0.0 and r3 <= 0.0) or (pos < 0.0 and r3 >= 0.0):
            pos = 0.0
    s[0] = pos
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
