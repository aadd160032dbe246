"""Numba kernel: every sweep metric of many parameter sets from vectorbt's order records.

vectorbt simulates the orders; this kernel replays each column's order records over the bars
(cash, position, equity), applies funding payments for perpetuals, and computes in one pass:
total return, CAGR, Sharpe, Sortino, Calmar, max drawdown, hit rate, expectancy, profit factor,
number of trades, exposure, turnover, fees paid, and the per-period statistics PSR/DSR need
(per-period Sharpe, observations, skewness, Pearson kurtosis), plus the per-period returns.

Conventions (also in ``METRICS``):

- equity at bar t = cash + position * close[t]; orders fill at their record's price and fee;
- a funding settlement at bar t moves cash by ``-position * close[t] * rate`` (longs pay a
  positive rate, shorts receive it);
- period returns are equity changes between period ends (the last bar of each period), the
  first measured from the initial cash; Sharpe and Sortino are annualized from them with
  ``periods_per_year``; the per-period Sharpe is not annualized;
- skewness and kurtosis are sample moments (m3 / m2^1.5, m4 / m2^2: Pearson, 3 for a normal);
- a trade is a position episode: from leaving flat (or flipping) until flat (or the next flip),
  its P&L the equity change over it (fees included); an episode still open at the end is closed
  at the last bar; hit rate, expectancy (mean episode return) and profit factor use them;
- exposure is the share of bars with a position; turnover is traded notional / mean equity per
  year; fees paid are in units of the initial cash.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

METRICS = ("total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "hit_rate",
           "expectancy", "profit_factor", "n_trades", "exposure", "turnover", "fees_paid",
           "final_equity", "sr_period", "n_obs", "skew", "kurt")
(TOTAL_RETURN, CAGR, SHARPE, SORTINO, CALMAR, MAX_DD, HIT_RATE, EXPECTANCY, PROFIT_FACTOR,
 N_TRADES, EXPOSURE, TURNOVER, FEES_PAID, FINAL_EQUITY, SR_PERIOD, N_OBS, SKEW, KURT) = range(18)


@njit(cache=True)
def _moments(r):
    """mean, sample std (ddof=1), skew (m3/m2^1.5), Pearson kurtosis (m4/m2^2)."""
    n = r.shape[0]
    if n < 2:
        return np.nan, np.nan, np.nan, np.nan
    mean = 0.0
    for x in r:
        mean += x
    mean /= n
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    for x in r:
        d = x - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
    m2 /= n
    m3 /= n
    m4 /= n
    std = math.sqrt(m2 * n / (n - 1))
    if m2 <= 0.0:
        return mean, 0.0, np.nan, np.nan
    return mean, std, m3 / m2 ** 1.5, m4 / (m2 * m2)


# slots of the trade accumulator
EP_N, EP_WINS, EP_SUM_WIN, EP_SUM_LOSS, EP_SUM_RET = range(5)


@njit(cache=True, inline="always")
def _close_episode(pnl, start_equity, acc):
    """Count one finished position episode (its P&L and the equity it started from)."""
    acc[EP_N] += 1.0
    acc[EP_SUM_RET] += pnl / start_equity if start_equity > 0.0 else 0.0
    if pnl > 0.0:
        acc[EP_WINS] += 1.0
        acc[EP_SUM_WIN] += pnl
    else:
        acc[EP_SUM_LOSS] -= pnl


@njit(cache=True, nogil=True)
def sweep_metrics_nb(close, order_col, order_idx, order_size, order_price, order_fees,
                     order_side, n_cols, init_cash, period_end, funding_idx, funding_rate,
                     periods_per_year, years):
    """Metrics ``(n_cols, len(METRICS))`` and period returns ``(n_periods, n_cols)``.

    Orders must be sorted by (col, idx); ``order_side`` is vectorbt's (0 buy, 1 sell) and
    ``order_size`` is positive. ``period_end[t]`` is True on the last bar of each period.
    """
    n = close.shape[0]
    n_periods = 0
    for t in range(n):
        if period_end[t]:
            n_periods += 1
    metrics = np.full((n_cols, len(METRICS)), np.nan)
    prets = np.full((n_periods, n_cols), np.nan)
    n_fund = funding_idx.shape[0]
    o = 0
    n_orders = order_col.shape[0]
    for col in range(n_cols):
        while o < n_orders and order_col[o] < col:
            o += 1
        cash = init_cash
        pos = 0.0
        peak = init_cash
        max_dd = 0.0
        exposed = 0
        notional = 0.0
        fees = 0.0
        eq_sum = 0.0
        prev_period_eq = init_cash
        p = 0
        f = 0
        ep_open = False
        ep_start = 0.0
        acc = np.zeros(5)
        for t in range(n):
            price_t = close[t]
            while o < n_orders and order_col[o] == col and order_idx[o] == t:
                eq_before = cash + pos * order_price[o]
                size = order_size[o] if order_side[o] == 0 else -order_size[o]
                new_pos = pos + size
                fee = order_fees[o]
                cash -= size * order_price[o] + fee
                fees += fee
                notional += abs(size) * order_price[o]
                eq_after = cash + new_pos * order_price[o]
                flipped = pos != 0.0 and new_pos != 0.0 and (pos > 0.0) != (new_pos > 0.0)
                if ep_open and (new_pos == 0.0 or flipped):
                    # a flip's fee is split by the closed and the opened size, as vectorbt does
                    end_eq = eq_before - fee * abs(pos) / abs(size) if flipped else eq_after
                    _close_episode(end_eq - ep_start, ep_start, acc)
                    ep_open = False
                    if flipped:
                        ep_open = True
                        ep_start = end_eq
                if not ep_open and new_pos != 0.0:
                    ep_open = True
                    ep_start = eq_before
                pos = new_pos
                o += 1
            while f < n_fund and funding_idx[f] < t:
                f += 1
            while f < n_fund and funding_idx[f] == t:
                cash -= pos * price_t * funding_rate[f]
                f += 1
            eq = cash + pos * price_t
            eq_sum += eq
            if pos != 0.0:
                exposed += 1
            if eq > peak:
                peak = eq
            if peak > 0.0:
                dd = 1.0 - eq / peak
                if dd > max_dd:
                    max_dd = dd
            if period_end[t]:
                prets[p, col] = eq / prev_period_eq - 1.0 if prev_period_eq != 0.0 else np.nan
                prev_period_eq = eq
                p += 1
        eq_end = cash + pos * close[n - 1] if n > 0 else init_cash
        if ep_open:
            _close_episode(eq_end - ep_start, ep_start, acc)
        n_ep = acc[EP_N]
        m = metrics[col]
        total = eq_end / init_cash - 1.0
        m[TOTAL_RETURN] = total
        m[FINAL_EQUITY] = eq_end
        m[CAGR] = (eq_end / init_cash) ** (1.0 / years) - 1.0 if eq_end > 0.0 and years > 0 \
            else -1.0
        m[MAX_DD] = max_dd
        m[CALMAR] = m[CAGR] / max_dd if max_dd > 0.0 else np.nan
        m[N_TRADES] = n_ep
        m[HIT_RATE] = acc[EP_WINS] / n_ep if n_ep > 0 else np.nan
        m[EXPECTANCY] = acc[EP_SUM_RET] / n_ep if n_ep > 0 else np.nan
        if acc[EP_SUM_LOSS] > 0.0:
            m[PROFIT_FACTOR] = acc[EP_SUM_WIN] / acc[EP_SUM_LOSS]
        elif acc[EP_SUM_WIN] > 0.0:
            m[PROFIT_FACTOR] = np.inf
        m[EXPOSURE] = exposed / n if n > 0 else np.nan
        mean_eq = eq_sum / n if n > 0 else init_cash
        m[TURNOVER] = notional / mean_eq / years if mean_eq > 0.0 and years > 0 else np.nan
        m[FEES_PAID] = fees / init_cash
        r = prets[:, col]
        mean, std, skew, kurt = _moments(r)
        m[N_OBS] = r.shape[0]
        m[SKEW] = skew
        m[KURT] = kurt
        if std > 0.0:
            m[SR_PERIOD] = mean / std
            m[SHARPE] = mean / std * math.sqrt(periods_per_year)
        down = 0.0
        for x in r:
            if x < 0.0:
                down += x * x
        if r.shape[0] > 0 and down > 0.0:
            m[SORTINO] = mean / math.sqrt(down / r.shape[0]) * math.sqrt(periods_per_year)
    return metrics, prets
