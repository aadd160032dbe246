"""One chunk of a sweep: targets -> vectorbt simulation -> metrics.

Target positions in {-1, 0, +1} become vectorbt signals where they change (entries, exits, short
entries, short exits; a flip is one reversing order), simulated by ``Portfolio.from_signals`` at
the bar's close with the taker fee and slippage. ``max_orders`` is the exact number of target
changes: vectorbt would otherwise preallocate a record for every cell (56 bytes x bars x sets).
The metrics come from the order records (``metrics_nb``), not from vectorbt's per-column pandas
statistics, which dominate its time and memory on wide grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vectorbt as vbt

from tradelab.backtest.vector.metrics_nb import sweep_metrics_nb


@dataclass(frozen=True)
class Costs:
    """Execution costs of the vectorized backtest (fractions, e.g. 0.0004 = 4 bps)."""

    taker_fee: float = 0.0004
    maker_fee: float = 0.0002
    slippage: float = 0.0
    init_cash: float = 10_000.0


@dataclass(frozen=True)
class Market:
    """The arrays a chunk needs, shared by all chunks of a sweep."""

    close: np.ndarray  # float64 (n_bars,)
    period_end: np.ndarray  # bool (n_bars,): last bar of each period
    funding_idx: np.ndarray  # int64 bar index of each funding settlement (perpetuals)
    funding_rate: np.ndarray  # float64 rate of each settlement
    periods_per_year: float
    years: float


def signals_from_targets(targets: np.ndarray) -> tuple[np.ndarray, ...]:
    """(entries, exits, short_entries, short_exits, n_changes), each ``(n_bars, n_sets)``."""
    t = targets.T  # (n_bars, n_sets)
    chg = np.empty(t.shape, dtype=bool)
    chg[0] = t[0] != 0
    np.not_equal(t[1:], t[:-1], out=chg[1:])
    entries = chg & (t == 1)
    short_entries = chg & (t == -1)
    exits = chg & (t == 0)
    return entries, exits, short_entries, exits, int(chg.sum())


def simulate(targets: np.ndarray, close: np.ndarray, costs: Costs, freq: str = "1min"):
    """vectorbt portfolio of target positions ``(n_sets, n_bars)`` int8; returns it."""
    entries, exits, short_entries, short_exits, n_changes = signals_from_targets(targets)
    return vbt.Portfolio.from_signals(
        close[:, None], entries=entries, exits=exits, short_entries=short_entries,
        short_exits=short_exits, fees=costs.taker_fee, slippage=costs.slippage,
        init_cash=costs.init_cash, freq=freq, upon_opposite_entry="reverse",
        max_orders=max(n_changes, 1), max_logs=0)


def chunk_metrics(targets: np.ndarray, market: Market, costs: Costs,
                  freq: str = "1min") -> tuple[np.ndarray, np.ndarray, int]:
    """Simulate one chunk; returns (metrics (n_sets, n_metrics), period returns
    (n_periods, n_sets), number of orders)."""
    pf = simulate(targets, market.close, costs, freq)
    rec = pf.order_records
    order = np.lexsort((rec["idx"], rec["col"]))
    rec = rec[order]
    metrics, prets = sweep_metrics_nb(
        market.close, rec["col"], rec["idx"], rec["size"], rec["price"], rec["fees"],
        rec["side"], targets.shape[0], costs.init_cash, market.period_end,
        market.funding_idx, market.funding_rate, market.periods_per_year, market.years)
    return metrics, prets, len(rec)
