"""One chunk of a sweep: targets -> vectorbt simulation -> metrics.

Target positions in {-1, 0, +1} become vectorbt signals where they change (entries, exits, short
entries, short exits; a flip is one reversing order), simulated by ``Portfolio.from_signals``.
Every order is a market order and pays the taker fee (plus slippage); there are no resting
orders in a bar backtest, so no maker fee applies.

Execution (``Market.execution``):

- ``next_open`` (the default): the target decided on bar t's close is filled at bar t+1's open
  (the signals are shifted one bar and vectorbt is given the opens as the order price). A target
  change on the last bar has no next bar and is not filled.
- ``close``: filled at bar t's own close, the price the decision was made from. Optimistic: no
  order can trade at the close it has just seen.

Positions are valued at the close either way. ``max_orders`` is the exact number of fills:
vectorbt would otherwise preallocate a record for every cell (56 bytes x bars x sets). The
metrics come from the order records (``metrics_nb``), not from vectorbt's per-column pandas
statistics, which dominate its time and memory on wide grids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tradelab.backtest.metrics_nb import sweep_metrics_nb

Execution = Literal["next_open", "close"]
EXECUTIONS: tuple[Execution, ...] = ("next_open", "close")
LAG = {"next_open": 1, "close": 0}
"""Bars between the decision and the fill."""


@dataclass(frozen=True)
class Costs:
    """Execution costs of the vectorized backtest (fractions, e.g. 0.0004 = 4 bps). Orders are
    market orders: the taker fee applies to every fill."""

    taker_fee: float = 0.0004
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
    open: np.ndarray | None = None  # float64 (n_bars,): needed for ``next_open``
    execution: Execution = "close"

    def __post_init__(self) -> None:
        if self.execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}, "
                             f"got {self.execution!r}")
        if self.execution == "next_open" and (self.open is None
                                              or self.open.shape != self.close.shape):
            raise ValueError("execution next_open needs the bars' open prices, one per close")

    @property
    def fill_price(self) -> np.ndarray:
        """The price every order of this market fills at, per bar."""
        return self.open if self.execution == "next_open" else self.close  # type: ignore


def signals_from_targets(
    targets: np.ndarray, lag: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(entries, exits, short_entries, short_exits, n_changes), each ``(n_bars, n_sets)``.

    A target change decided on bar t is a signal on bar ``t + lag``; changes whose bar falls
    past the end are not signalled (nor counted)."""
    t = targets.T  # (n_bars, n_sets)
    n = t.shape[0]
    chg = np.zeros(t.shape, dtype=bool)
    side = np.zeros(t.shape, dtype=np.int8)  # the target decided ``lag`` bars before
    if n > lag:
        chg[lag] = t[0] != 0
        np.not_equal(t[1:n - lag], t[:n - 1 - lag], out=chg[lag + 1:])
        side[lag:] = t[:n - lag]
    entries = chg & (side == 1)
    short_entries = chg & (side == -1)
    exits = chg & (side == 0)
    return entries, exits, short_entries, exits, int(chg.sum())


def _from_signals_kwargs(costs: Costs, execution: Execution, freq: str = "1min") -> dict:
    """The keyword arguments :func:`simulate` gives ``Portfolio.from_signals``."""
    return dict(fees=costs.taker_fee, slippage=costs.slippage, init_cash=costs.init_cash,
                freq=freq, upon_opposite_entry="reverse", max_logs=0)


def simulate(targets: np.ndarray, close: np.ndarray, costs: Costs, freq: str = "1min",
             open_: np.ndarray | None = None, execution: Execution = "close"):
    """vectorbt portfolio of target positions ``(n_sets, n_bars)`` int8; returns it.

    ``execution="next_open"`` fills each change at the next bar's open (``open_`` required);
    ``"close"`` at the deciding bar's close (see the module docstring). The sweep itself runs
    the same simulation without the portfolio object (:func:`order_records`)."""
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}, got {execution!r}")
    if execution == "next_open" and open_ is None:
        raise ValueError("execution next_open needs the bars' open prices")
    entries, exits, short_entries, short_exits, n_changes = signals_from_targets(
        targets, LAG[execution])
    price = None if execution == "close" else np.asarray(open_, dtype=np.float64)[:, None]
    import vectorbt as vbt  # imported when used: workers of a sweep never need it

    return vbt.Portfolio.from_signals(
        close[:, None], entries=entries, exits=exits, short_entries=short_entries,
        short_exits=short_exits, price=price, max_orders=max(n_changes, 1),
        **_from_signals_kwargs(costs, execution, freq))


# -- the same simulation without the portfolio object ------------------------------------------
#
# ``Portfolio.from_signals`` broadcasts the close to (n_bars, n_sets), and with pandas 3 its
# wrappers copy that matrix three more times (DataFrames built from arrays copy them): about
# 270 MB per chunk of 64 sets over 130k bars, and a fifth of the chunk's time, for a portfolio
# object of which the sweep reads only the order records. vectorbt's simulator itself reads
# the close through flexible indexing, so a (n_bars, 1) column serves every set. The sweep calls
# that simulator with the very arguments ``from_signals`` passes it: they are captured once per
# (costs, execution) from a three-bar call, and only the arrays are swapped for the chunk's.
# ``tests/test_sweep.py`` holds the order records to those of ``Portfolio.from_signals``.


_SIM_ARGS: dict[tuple, dict] = {}


def simulator_args(costs: Costs, execution: Execution) -> dict:
    """Every argument of vectorbt's from-signals simulator, by name, as ``from_signals`` gives
    them for these costs and execution (captured once per process from a three-bar call that
    is not simulated; a sweep's workers are handed the main process's, see
    :func:`set_simulator_args`)."""
    key = (costs, execution)
    if key not in _SIM_ARGS:
        _SIM_ARGS[key] = _capture_simulator_args(costs.taker_fee, costs.slippage,
                                                 costs.init_cash, execution)
    return _SIM_ARGS[key]


def set_simulator_args(costs: Costs, execution: Execution, args: dict) -> None:
    """Use ``args`` (from :func:`simulator_args` in another process) for these costs."""
    _SIM_ARGS[(costs, execution)] = args


def _capture_simulator_args(taker_fee: float, slippage: float, init_cash: float,
                            execution: Execution) -> dict:
    import inspect

    from vectorbt.portfolio import dispatch
    from vectorbt.portfolio.enums import log_dt, order_dt

    from tradelab.backtest.vector.vbt_nb import PARAMS

    captured: list[dict] = []
    original = dispatch.simulate_from_signals
    sig = inspect.signature(original)

    def spy(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        captured.append(dict(bound.arguments))
        return np.empty(0, dtype=order_dt), np.empty(0, dtype=log_dt)

    tiny = np.array([[0, 1, 0]], dtype=np.int8)
    dispatch.simulate_from_signals = spy
    try:
        simulate(tiny, np.ones(3), Costs(taker_fee, slippage, init_cash), "1min",
                 np.ones(3), execution)
    finally:
        dispatch.simulate_from_signals = original
    if len(captured) != 1 or not set(PARAMS) <= set(captured[0]):
        raise RuntimeError("this vectorbt's from_signals does not call its simulator as "
                           "tradelab.backtest.vector.vbt_nb expects")
    return captured[0]


def _column(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1, 1))


def _changes(targets: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every target change as (set, fill bar, new target), ordered by set then bar: the same
    signals as :func:`signals_from_targets`, without the ``(n_bars, n_sets)`` matrices."""
    t = np.ascontiguousarray(targets)
    n = t.shape[1]
    chg = np.zeros(t.shape, dtype=bool)
    if n > lag:
        chg[:, 0] = t[:, 0] != 0
        np.not_equal(t[:, 1:n - lag], t[:, :n - 1 - lag], out=chg[:, 1:n - lag])
    sets, bars = np.nonzero(chg)
    return sets, bars + lag, t[sets, bars]


def order_records(targets: np.ndarray, market: Market, costs: Costs) -> np.ndarray:
    """vectorbt's order records of target positions ``(n_sets, n_bars)``, equal to
    ``simulate(...).order_records`` (see the note above), ordered by set then bar.

    Without stops, vectorbt's from-signals simulator does nothing on a bar without a signal
    (an all-in market order sizes from cash and position, which change only at orders, and
    values at the order price), so each set is simulated on its own signal bars only and the
    records are mapped back (bar index, column, record id): the cost follows the orders, not
    bars x sets. ``tests/test_sweep.py`` holds the result to ``Portfolio.from_signals``."""
    from tradelab.backtest.vector.vbt_nb import PARAMS, simulate_from_signals_nb

    base = simulator_args(costs, market.execution)
    if base["use_stops"]:
        raise RuntimeError("the sweep's simulator arguments carry stops: every bar matters")
    sets, bars, side = _changes(targets, LAG[market.execution])
    edges = np.searchsorted(sets, np.arange(targets.shape[0] + 1))
    close, fill = market.close, market.fill_price
    kw = dict(base)
    kw.update(group_lens=np.ones(1, dtype=np.int64),
              init_cash=np.full(1, float(costs.init_cash)))
    parts = []
    for j in range(targets.shape[0]):
        lo, hi = edges[j], edges[j + 1]
        if hi == lo:
            continue
        rows, sd = bars[lo:hi], side[lo:hi]
        exits = (sd == 0).reshape(-1, 1)
        kw.update(
            target_shape=(hi - lo, 1), call_seq=np.zeros((hi - lo, 1), dtype=np.int64),
            long_entries=(sd == 1).reshape(-1, 1), long_exits=exits,
            short_entries=(sd == -1).reshape(-1, 1), short_exits=exits,
            close=_column(close[rows]), max_orders=hi - lo)
        if market.execution == "next_open":
            kw["price"] = _column(fill[rows])
        rec, _ = simulate_from_signals_nb(*(kw[name] for name in PARAMS))
        rec["col"] = j
        rec["idx"] = rows[rec["idx"]]
        parts.append(rec)
    if not parts:
        from vectorbt.portfolio.enums import order_dt

        return np.empty(0, dtype=order_dt)
    out = np.concatenate(parts)
    out["id"] = np.arange(len(out))
    return out


def _sorted_by_set_then_bar(rec: np.ndarray) -> np.ndarray:
    col, idx = rec["col"], rec["idx"]
    if len(rec) < 2:
        return rec
    same = col[1:] == col[:-1]
    if (col[1:] >= col[:-1]).all() and (idx[1:][same] > idx[:-1][same]).all():
        return rec
    return rec[np.lexsort((idx, col))]


def chunk_metrics(targets: np.ndarray, market: Market, costs: Costs,
                  freq: str = "1min") -> tuple[np.ndarray, np.ndarray, int]:
    """Simulate one chunk; returns (metrics (n_sets, n_metrics), period returns
    (n_periods, n_sets), number of orders)."""
    rec = _sorted_by_set_then_bar(order_records(targets, market, costs))
    metrics, prets = sweep_metrics_nb(
        market.close, rec["col"], rec["idx"], rec["size"], rec["price"], rec["fees"],
        rec["side"], targets.shape[0], costs.init_cash, market.period_end,
        market.funding_idx, market.funding_rate, market.periods_per_year, market.years)
    return metrics, prets, len(rec)
