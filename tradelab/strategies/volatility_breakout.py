"""Volatility breakout: trade closes beyond the recent range, then sit out a cooldown.

Rule, on each bar's close, with ``upper``/``lower`` the highest high and lowest low of the
``window`` bars *before* this one (the Donchian channel as of the previous bar): a close above
``upper * (1 + edge)`` makes the target long (+1); a close below ``lower * (1 - edge)`` makes it
short (-1), or flat with ``allow_short = 0``. After every change of target, the next
``cooldown`` bars keep it whatever happens. Otherwise the target stays; warm-up bars are flat.

Input: ``high, low, close`` per bar. Output: int8 target per bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.ta_nb import donchian_init, donchian_size, donchian_step
from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BAR

NAME = "volatility_breakout"
KIND = BAR
INPUTS = ("high", "low", "close")


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    window: int = param(20, 2, 10000, integer=True, doc="bars of the high/low range")
    edge: float = param(0.001, 0.0, 0.5, doc="distance beyond the range (fraction)")
    cooldown: int = param(5, 0, 100000, integer=True, doc="bars without change after a change")
    allow_short: int = param(1, 0, 1, integer=True, doc="1: short below the range, 0: flat")


WINDOW, EDGE, COOLDOWN, ALLOW_SHORT = range(4)
# state: [target, previous upper, previous lower, bars since the last change | Donchian]
_HDR = 4


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``."""
    s = np.empty(_HDR + donchian_size(int(p[WINDOW])))
    s[0] = 0.0
    s[1] = np.nan
    s[2] = np.nan
    s[3] = np.inf
    donchian_init(s, _HDR, int(p[WINDOW]))
    return s


@njit(cache=True, error_model="numpy", inline="always")
def step(p: np.ndarray, s: np.ndarray, high: float, low: float, close: float) -> np.int8:
    """Advance by one bar; returns the target position after it."""
    edge, cooldown = p[EDGE], p[COOLDOWN]
    short = -1.0 if p[ALLOW_SHORT] != 0.0 else 0.0
    pos, up_prev, lo_prev = s[0], s[1], s[2]
    since = s[3] + 1.0
    up, lo, _mid = donchian_step(s, _HDR, high, low)
    if since > cooldown and not math.isnan(up_prev):
        new = pos
        if close > up_prev * (1.0 + edge):
            new = 1.0
        elif close < lo_prev * (1.0 - edge):
            new = short
        if new != pos:
            pos = new
            since = 0.0
    s[0] = pos
    s[1] = up
    s[2] = lo
    s[3] = since
    return np.int8(pos)


@njit(cache=True, error_model="numpy")
def run_nb(
    p: np.ndarray, s: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
    out: np.ndarray,
) -> None:
    """The vectorized form: ``step`` over every bar, targets into ``out``."""
    for i in range(close.shape[0]):
        out[i] = step(p, s, high[i], low[i], close[i])


@njit(cache=True, error_model="numpy", parallel=True)
def grid_nb(
    P: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, out: np.ndarray
) -> None:
    """Every parameter set (rows of ``P``) in parallel; ``out`` is ``(n_sets, n_bars)`` int8."""
    for j in prange(P.shape[0]):
        p = P[j]
        run_nb(p, init_state_nb(p), high, low, close, out[j])


init_state, run, grid = base.bind(__name__)
