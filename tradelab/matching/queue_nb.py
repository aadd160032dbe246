"""Queue-position models for a resting limit order, one small function per event.

State per order: ``front`` (quantity ahead of us at our price) and ``cum_trade`` (trade quantity
at our price since the last depth update there). The rules follow hftbacktest's queue models
(``src/backtest/models/queue.rs``), written here from their published semantics:

- new order: ``front`` = the visible quantity at our price when the exchange accepts us;
- trade of ``q`` at our price: ``front -= q`` (``cum_trade += q`` for the probabilistic models);
- depth change ``prev -> new`` at our price:

  * risk-averse (``Q_RISK_AVERSE``): ``front = min(front, new)``: only trades move us forward,
    cancels come off the back, we are never behind more than the level holds;
  * probabilistic: the part of the decrease not explained by trades, ``chg = prev - new -
    cum_trade``, is split ahead of and behind us with ``p = prob(front, back)`` (the probability
    that it happened behind us, ``back = prev - front``); a growth only caps ``front`` at ``new``.

- executable quantity: ``round(-front / lot) * lot`` once ``front`` went below zero.

The model is an integer code (``Q_*`` in :mod:`.types`) dispatched here, so a kernel selects it at
run time without defeating numba's on-disk cache.
"""

from __future__ import annotations

import math

from numba import njit

from tradelab.matching.types import (
    Q_LOG,
    Q_LOG2,
    Q_POWER,
    Q_POWER2,
    Q_POWER3,
    Q_RISK_AVERSE,
)


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def prob_nb(model: int, n: float, front: float, back: float) -> float:
    """Probability that a level decrease happened behind the order (NaN when both are 0)."""
    if model == Q_POWER:
        bn = back**n
        return bn / (bn + front**n)
    if model == Q_POWER2:
        return back**n / (back + front) ** n
    if model == Q_POWER3:
        return 1.0 - (front / (front + back)) ** n
    if model == Q_LOG:
        lb = math.log1p(back)
        return lb / (lb + math.log1p(front))
    if model == Q_LOG2:
        return math.log1p(back) / math.log1p(back + front)
    return 0.0


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def on_trade_nb(model: int, front: float, cum_trade: float, q: float) -> tuple[float, float]:
    """A trade of ``q`` at our price: returns the new ``(front, cum_trade)``."""
    if model == Q_RISK_AVERSE:
        return front - q, cum_trade
    return front - q, cum_trade + q


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def on_depth_nb(
    model: int, n: float, front: float, cum_trade: float, prev: float, new: float
) -> tuple[float, float]:
    """The level at our price changed ``prev -> new``: returns the new ``(front, cum_trade)``."""
    if model == Q_RISK_AVERSE:
        return min(front, new), 0.0
    chg = prev - new - cum_trade
    if chg < 0.0:
        return min(front, new), 0.0
    back = prev - front
    p = prob_nb(model, n, front, back)
    if math.isinf(p):
        p = 1.0
    est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    if est != est:  # NaN (front = back = 0): f64::min(NaN, new) is new
        return new, 0.0
    return min(est, new), 0.0


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def executable_nb(front: float, lot: float) -> float:
    """Quantity that reached the front of the queue (a multiple of ``lot``; 0 if none)."""
    k = round(-front / lot)
    if k > 0:
        return k * lot
    return 0.0
