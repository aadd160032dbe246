"""Funding carry: hold spot long / perp short while the expected funding beats the fees.

Rule, on each bar: ``forecast`` is an exponential average (span ``span`` settlements) of the
funding rates published so far; the expected carry over ``horizon`` funding periods is
``horizon * forecast - 2 * (spot_fee + perp_fee)`` (enter and exit both legs). From flat, the
target becomes +1 (long spot, short the perpetual, equal notional) when the expected carry
exceeds ``entry`` and the spot-perp basis is within ``max_basis_bps``. The position is closed
(0) when the expected funding alone, ``horizon * forecast``, falls below ``exit`` (the entry fees
are sunk; the exit fees are due whenever it closes). Bars before the first published rate are
flat. The target is never -1.

Input per bar: ``funding_rate`` (the rate published during the bar, NaN when none: see
:func:`tradelab.features.carry_inputs`, which shapes them from the store's bars and
funding), ``spot_close`` and ``perp_close``. Output: int8 target per bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.funding_nb import (
    FORECAST_SIZE,
    basis,
    expected_carry,
    forecast_init,
    forecast_step,
)
from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BAR

NAME = "funding_carry"
KIND = BAR
INPUTS = ("funding_rate", "spot_close", "perp_close")


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    span: float = param(3.0, 1.0, 1000.0, doc="settlements in the funding forecast average")
    horizon: float = param(21.0, 1.0, 10000.0, doc="funding periods the carry is held for")
    spot_fee: float = param(0.001, 0.0, 0.01, doc="spot taker fee (fraction)")
    perp_fee: float = param(0.0005, 0.0, 0.01, doc="perpetual taker fee (fraction)")
    entry: float = param(0.0, -0.05, 0.05, doc="minimum expected carry after fees to enter")
    exit: float = param(0.0, -0.05, 0.05, doc="exit when horizon * forecast falls below this")
    max_basis_bps: float = param(50.0, 0.0, 10000.0, doc="no entry when |basis| exceeds this")


SPAN, HORIZON, SPOT_FEE, PERP_FEE, ENTRY, EXIT, MAX_BASIS_BPS = range(7)
# state: [target | funding forecast]
_HDR = 1


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``."""
    s = np.empty(_HDR + FORECAST_SIZE)
    s[0] = 0.0
    forecast_init(s, _HDR, p[SPAN])
    return s


@njit(cache=True, error_model="numpy", inline="always")
def step(
    p: np.ndarray, s: np.ndarray, funding_rate: float, spot_close: float, perp_close: float
) -> np.int8:
    """Advance by one bar; returns the target position after it."""
    horizon = p[HORIZON]
    pos = s[0]
    f = forecast_step(s, _HDR, funding_rate)
    carry = expected_carry(f, horizon, p[SPOT_FEE], p[PERP_FEE])
    basis_bps = abs(basis(spot_close, perp_close)) * 1e4
    if pos == 0.0 and carry > p[ENTRY] and basis_bps <= p[MAX_BASIS_BPS]:
        pos = 1.0
    elif pos != 0.0 and horizon * f < p[EXIT]:
        pos = 0.0
    s[0] = pos
    return np.int8(pos)


@njit(cache=True, error_model="numpy")
def run_nb(
    p: np.ndarray, s: np.ndarray, funding_rate: np.ndarray, spot_close: np.ndarray,
    perp_close: np.ndarray, out: np.ndarray,
) -> None:
    """The vectorized form: ``step`` over every bar, targets into ``out``."""
    for i in range(spot_close.shape[0]):
        out[i] = step(p, s, funding_rate[i], spot_close[i], perp_close[i])


@njit(cache=True, error_model="numpy", parallel=True)
def grid_nb(
    P: np.ndarray, funding_rate: np.ndarray, spot_close: np.ndarray, perp_close: np.ndarray,
    out: np.ndarray,
) -> None:
    """Every parameter set (rows of ``P``) in parallel; ``out`` is ``(n_sets, n_bars)`` int8."""
    for j in prange(P.shape[0]):
        p = P[j]
        run_nb(p, init_state_nb(p), funding_rate, spot_close, perp_close, out[j])


init_state, run, grid = base.bind(__name__)
