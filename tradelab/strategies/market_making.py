"""Market making around the microprice, with inventory skew and a position limit.

Rule, at each decision time (every ``requote_ms`` of local time in the event backtester): the
top-of-book microprice ``m = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)`` is shifted
against the inventory to a reservation price ``r = m * (1 - skew_bps * 1e-4 * pos / max_pos)``
(long inventory lowers both quotes so the ask fills first), and the quotes are
``r * (1 -/+ half_spread_bps * 1e-4)``. The bid is withdrawn (NaN) when buying ``qty`` more
would exceed ``max_position``; the ask likewise on the short side. An invalid book (no bid or
no ask) withdraws both.

Prices come out unrounded: rounding to the tick (bids down, asks up) and keeping post-only quotes
off the other side of the book is the order manager's business, as sizing and risk are.

Kind ``quote``: the step reads the top of book and the position, and returns two prices. The
event backtester and the paper runner call ``step`` at each decision; ``run``/``grid`` give the
quotes a flat position would get on every row of a book frame (a vectorized sweep cannot
simulate resting quotes: the event backtester is where they are tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import QUOTE

NAME = "market_making"
KIND = QUOTE
INPUTS = ("book",)


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    constraints = (("qty <= max_position is required", lambda c: c["qty"] <= c["max_position"]),)
    half_spread_bps: float = param(0.5, 0.0, 1000.0, doc="quote distance from the reservation")
    skew_bps: float = param(1.0, 0.0, 1000.0, doc="reservation shift at a full position (bps)")
    max_position: float = param(0.01, 0.0, 1e9, doc="position limit (base units)")
    qty: float = param(0.002, 0.0, 1e9, doc="size of each quote (base units)")
    requote_ms: float = param(100.0, 1.0, 3_600_000.0, doc="time between decisions (local)")


HALF_SPREAD_BPS, SKEW_BPS, MAX_POSITION, QTY, REQUOTE_MS = range(5)


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """The strategy keeps no state between decisions (an empty vector, for the contract)."""
    return np.zeros(1)


@njit(cache=True, error_model="numpy", inline="always", _nrt=False)
def step(
    p: np.ndarray, bid: float, bid_qty: float, ask: float, ask_qty: float, position: float
) -> tuple[float, float]:
    """Bid and ask quote prices for this decision; NaN for a side that should not quote."""
    if math.isnan(bid) or math.isnan(ask) or not (bid_qty + ask_qty > 0.0):
        return np.nan, np.nan
    micro = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)
    mp = p[MAX_POSITION]
    inv = position / mp if mp > 0.0 else 0.0
    r = micro * (1.0 - p[SKEW_BPS] * 1e-4 * inv)
    hs = p[HALF_SPREAD_BPS] * 1e-4
    qb = r * (1.0 - hs)
    qa = r * (1.0 + hs)
    eps = 1e-9 * max(mp, 1.0)
    if position + p[QTY] > mp + eps:
        qb = np.nan
    if position - p[QTY] < -mp - eps:
        qa = np.nan
    return qb, qa


@njit(cache=True, error_model="numpy")
def run_nb(p: np.ndarray, s: np.ndarray, top: np.ndarray, position: np.ndarray,
           out: np.ndarray) -> None:
    """``step`` on every row of ``top`` (bid, bid size, ask, ask size) at ``position[i]``;
    bid and ask quotes into ``out`` rows."""
    for i in range(top.shape[0]):
        qb, qa = step(p, top[i, 0], top[i, 1], top[i, 2], top[i, 3], position[i])
        out[i, 0] = qb
        out[i, 1] = qa


@njit(cache=True, error_model="numpy", parallel=True)
def grid_nb(P: np.ndarray, top: np.ndarray, position: np.ndarray, out: np.ndarray) -> None:
    """Every parameter set (rows of ``P``) in parallel; ``out`` is ``(n_sets, n, 2)``."""
    for j in prange(P.shape[0]):
        run_nb(P[j], init_state_nb(P[j]), top, position, out[j])


init_state, run, grid = base.bind(__name__)
