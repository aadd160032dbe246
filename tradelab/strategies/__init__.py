"""Strategies: one module per strategy, each a frozen ``Params`` and one numba step kernel.

The step-kernel convention (``tradelab.strategies.<name>``):

- ``Params``: frozen dataclass with defaults and bounds; ``to_array()`` is the float64 vector
  kernels read, ``Params.grid(**ranges)`` a ``(n_sets, n_params)`` sweep matrix.
- ``init_state_nb(p) -> s``: a fresh float64 state vector (``init_state(params)`` from Python).
- ``step(p, s, input...)``: advances by one input from the explicit state, allocation-free and
  without look-ahead. Bar strategies: ``step(p, s, *bar_columns) -> int8 target`` in {-1, 0, 1}
  (columns in ``INPUTS``). Book strategies: ``step(p, s, ts, book, i) -> (IntentKind, price)``
  for row ``i`` of a book frame.
- ``run_nb``: the vectorized form, a loop over ``step``; ``grid_nb``: ``run_nb`` over many
  parameter sets with ``numba.prange``. Live runners call ``step`` one input at a time and get
  the same output bit for bit.

``run(name, data, params)`` and ``grid(name, data, grid)`` below, or the module's own ``run``
and ``grid``, take DataFrames (``Catalog.bars``) or book frames (``tradelab.features``).
"""

from __future__ import annotations

import numpy as np

from tradelab.strategies import base
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.registry import get, names
from tradelab.strategies.signals import Signals, to_signals
from tradelab.strategies.types import (
    BAR,
    BOOK,
    INTENT_NAMES,
    IntentKind,
    Phase,
    Target,
    intent_dt,
)


def run(name: str, data, params: StrategyParams | np.ndarray | None = None) -> np.ndarray:
    """Run strategy ``name`` with one parameter set (defaults when None)."""
    return base.run(get(name), data, params)


def grid(name: str, data, grid: np.ndarray) -> np.ndarray:
    """Run strategy ``name`` for every row of a parameter grid in one numba call."""
    return base.grid(get(name), data, grid)


__all__ = [
    "BAR",
    "BOOK",
    "INTENT_NAMES",
    "IntentKind",
    "Phase",
    "Signals",
    "StrategyParams",
    "Target",
    "get",
    "grid",
    "intent_dt",
    "names",
    "param",
    "run",
    "to_signals",
]
