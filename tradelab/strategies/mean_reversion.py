"""Mean reversion: fade closes that stray from their rolling mean.

Rule, on each bar's close, with ``mean`` the simple moving average of the last ``window`` closes
(this one included; TA-Lib's SMA): from flat, a close below ``mean * (1 - edge)`` makes the
target long (+1) and a close above ``mean * (1 + edge)`` short (-1; ignored with
``allow_short = 0``). A long is closed (0) once the close is back at or above
``mean * (1 - exit_edge)``, a short once it is at or below ``mean * (1 + exit_edge)``
(``exit_edge = 0``: at the mean). Warm-up bars are flat.

Input: ``close`` per bar. Output: int8 target per bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.ta_nb import sma_init, sma_size, sma_step
from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BAR

NAME = "mean_reversion"
KIND = BAR
INPUTS = ("close",)


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    constraints = (("exit_edge <= edge is required", lambda c: c["exit_edge"] <= c["edge"]),)
    window: int = param(60, 2, 10000, integer=True, doc="bars of the rolling mean")
    edge: float = param(0.002, 0.0, 0.5, doc="entry distance from the mean (fraction)")
    exit_edge: float = param(0.0, 0.0, 0.5, doc="exit distance from the mean (fraction)")
    allow_short: int = param(1, 0, 1, integer=True, doc="1: also fade rises, 0: long only")


WINDOW, EDGE, EXIT_EDGE, ALLOW_SHORT = range(4)
# state: [target | SMA state]
_HDR = 1


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``."""
    s = np.empty(_HDR + sma_size(int(p[WINDOW])))
    s[0] = 0.0
    sma_init(s, _HDR, int(p[WINDOW]))
    return s


@njit(cache=True, error_model="numpy", inline="always")
def step(p: np.ndarray, s: np.ndarray, close: float) -> np.int8:
    """Advance by one bar; returns the target position after it."""
    edge, exit_edge, can_short = p[EDGE], p[EXIT_EDGE], p[ALLOW_SHORT] != 0.0
    pos = s[0]
    mean = sma_step(s, _HDR, close)
    if not math.isnan(mean):
        if pos == 0.0:
            if close < mean * (1.0 - edge):
                pos = 1.0
            elif can_short and close > mean * (1.0 + edge):
                pos = -1.0
        elif pos > 0.0 and close >= mean * (1.0 - exit_edge):
            pos = 0.0
        elif pos < 0.0 and close <= mean * (1.0 + exit_edge):
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
