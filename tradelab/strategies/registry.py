"""Strategies by name: ``get(name)`` returns the strategy's module, ``names()`` lists them.

A strategy module provides ``NAME``, ``KIND`` (``"bar"`` or ``"book"``), ``INPUTS``,
``Params``, ``init_state_nb(p)``/``init_state(params)``, the step kernel ``step``, ``run_nb``,
``grid_nb`` and the pandas-level ``run(data, params)`` and ``grid(data, grid)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = (
    "funding_carry",
    "imbalance_microprice",
    "keltner_breakout",
    "ma_crossover",
    "mean_reversion",
    "momentum",
    "ofi_reversion",
    "volatility_breakout",
)


def names() -> list[str]:
    """Names of every registered strategy, sorted."""
    return sorted(_MODULES)


def get(name: str) -> ModuleType:
    """The module of strategy ``name``; ``KeyError`` naming the known ones otherwise."""
    if name not in _MODULES:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(names())}")
    return importlib.import_module(f"tradelab.strategies.{name}")
