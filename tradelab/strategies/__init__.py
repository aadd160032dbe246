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

Importing the package clears numba's cache of these modules when they, the features or the store
changed (see ``tradelab.core.numba_cache``): the kernels inline feature steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tradelab.core.numba_cache import clear_if_stale

_HERE = Path(__file__).resolve().parent
clear_if_stale(_HERE, [_HERE.parent / "features", _HERE.parent / "core", _HERE.parent / "store"])

from tradelab.strategies import base  # noqa: E402
from tradelab.strategies.params import StrategyParams, param  # noqa: E402
from tradelab.strategies.registry import get, names  # noqa: E402
from tradelab.strategies.signals import Signals, to_signals  # noqa: E402
from tradelab.strategies.types import (  # noqa: E402
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
