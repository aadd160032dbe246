"""Keltner breakout: follow the close out of the Keltner channel.

Rule, on each bar's close: the channel is TA-Lib's Keltner (``mid = EMA(typical price,
ema_period)``, ``upper/lower = mid +- k * ATR(atr_period)``). When the close crosses above the
upper band (previous close at or below the previous upper band, this close above this upper
band) the target becomes long (+1). When it crosses below the lower band it becomes short (-1),
or flat (0) with ``allow_short = 0``. Otherwise the target stays as it was. Warm-up bars (no
channel on this or the previous bar) are flat.

Input: ``high, low, close`` per bar. Output: int8 target per bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.ta_nb import KELTNER_SIZE, keltner_init, keltner_step
from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BAR

NAME = "keltner_breakout"
KIND = BAR
INPUTS = ("high", "low", "close")


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    ema_period: int = param(20, 2, 1000, integer=True, doc="EMA period of the channel mid")
    atr_period: int = param(10, 1, 1000, integer=True, doc="ATR period of the channel width")
    k: float = param(2.0, 0.1, 10.0, doc="channel half-width in ATRs")
    allow_short: int = param(1, 0, 1, integer=True, doc="1: short below the channel, 0: flat")


# parameter slots (Params field order)
EMA_PERIOD, ATR_PERIOD, K, ALLOW_SHORT = range(4)
# state: [target, previous close, previous upper, previous lower | Keltner state]
_HDR = 4


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``."""
    s = np.empty(_HDR + KELTNER_SIZE)
    s[0] = 0.0
    s[1] = np.nan
    s[2] = np.nan
    s[3] = np.nan
    keltner_init(s, _HDR, int(p[EMA_PERIOD]), int(p[ATR_PERIOD]), p[K])
    return s


@njit(cache=True, error_model="numpy", inline="always")
def step(p: np.ndarray, s: np.ndarray, high: float, low: float, close: float) -> np.int8:
    """Advance by one bar; returns the target position after it."""
    short = -1.0 if p[ALLOW_SHORT] != 0.0 else 0.0
    pos, prev_close, prev_up, prev_lo = s[0], s[1], s[2], s[3]
    _mid, up, lo = keltner_step(s, _HDR, high, low, close)
    warm = not (math.isnan(up) or math.isnan(prev_up))
    if warm and prev_close <= prev_up and close > up:
        pos = 1.0
    elif warm and prev_close >= prev_lo and close < lo:
        pos = short
    s[0] = pos
    s[1] = close
    s[2] = up
    s[3] = lo
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
