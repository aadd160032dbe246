"""Funding and carry kernels for perpetual swaps.

Shapes: 1-D float64 arrays over time (oldest first), outputs of the same length; everything is
per element except the funding forecast, which keeps an explicit state. Rates are fractions per
funding interval (Binance's ``fundingRate``: 0.0001 = 0.01% per 8 h); a positive rate means longs
pay shorts. NaN in, NaN out.

- ``annualized_funding = rate * periods_per_year`` with ``periods_per_year = 365 * 24 / hours``;
- ``basis = perp / spot - 1`` (positive: the perp trades at a premium);
- ``expected_carry = horizon * forecast - 2 * (spot_fee + perp_fee)``: what a spot-long /
  perp-short position expects to collect over ``horizon`` funding periods, after paying the taker
  fee on both legs to enter and again to exit (fractions of notional);
- the funding forecast is an exponential average of the published rates, seeded with the first:
  ``f = f + alpha * (rate - f)``, ``alpha = 2 / (span + 1)``; a NaN input means "no new rate"
  and leaves it unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

HOURS_PER_YEAR = 365.0 * 24.0


@njit(cache=True, error_model="numpy", inline="always")
def annualized_funding(rate: float, interval_hours: float) -> float:
    """Funding rate per interval scaled to a year (simple, not compounded)."""
    return rate * (HOURS_PER_YEAR / interval_hours)


@njit(cache=True, error_model="numpy", inline="always")
def basis(spot: float, perp: float) -> float:
    """Spot-perp basis ``perp / spot - 1``."""
    return perp / spot - 1.0


@njit(cache=True, error_model="numpy", inline="always")
def expected_carry(forecast: float, horizon: float, spot_fee: float, perp_fee: float) -> float:
    """Expected carry of spot long / perp short over ``horizon`` funding periods, after fees."""
    return horizon * forecast - 2.0 * (spot_fee + perp_fee)


# funding forecast: [alpha, value, seeded]
FORECAST_SIZE = 3


@njit(cache=True, error_model="numpy")
def forecast_init(s: np.ndarray, o: int, span: float) -> None:
    """Initial state of the exponential funding forecast over ``span`` published rates."""
    s[o] = 2.0 / (span + 1.0)
    s[o + 1] = np.nan
    s[o + 2] = 0.0


@njit(cache=True, error_model="numpy", inline="always")
def forecast_step(s: np.ndarray, o: int, rate: float) -> float:
    """Fold in a newly published rate (NaN: none) and return the forecast (NaN before any)."""
    if not math.isnan(rate):
        if s[o + 2] == 0.0:
            s[o + 1] = rate
            s[o + 2] = 1.0
        else:
            s[o + 1] += s[o] * (rate - s[o + 1])
    return s[o + 1]


@njit(cache=True, error_model="numpy")
def forecast_nb(rate: np.ndarray, span: float) -> np.ndarray:
    """The funding forecast after every element of ``rate`` (NaN = no new rate); pandas
    ``rate.dropna().ewm(span=span, adjust=False).mean()`` forward-filled."""
    s = np.empty(FORECAST_SIZE)
    forecast_init(s, 0, span)
    out = np.empty(rate.shape[0])
    for i in range(rate.shape[0]):
        out[i] = forecast_step(s, 0, rate[i])
    return out


@njit(cache=True, error_model="numpy")
def annualized_funding_nb(rate: np.ndarray, interval_hours: float) -> np.ndarray:
    """:func:`annualized_funding` over an array."""
    out = np.empty(rate.shape[0])
    for i in range(rate.shape[0]):
        out[i] = annualized_funding(rate[i], interval_hours)
    return out


@njit(cache=True, error_model="numpy")
def basis_nb(spot: np.ndarray, perp: np.ndarray) -> np.ndarray:
    """:func:`basis` over arrays."""
    out = np.empty(spot.shape[0])
    for i in range(spot.shape[0]):
        out[i] = basis(spot[i], perp[i])
    return out


@njit(cache=True, error_model="numpy")
def expected_carry_nb(
    forecast: np.ndarray, horizon: float, spot_fee: float, perp_fee: float
) -> np.ndarray:
    """:func:`expected_carry` over an array of forecasts."""
    out = np.empty(forecast.shape[0])
    for i in range(forecast.shape[0]):
        out[i] = expected_carry(forecast[i], horizon, spot_fee, perp_fee)
    return out
