"""Strategies by name: ``get(name)`` returns the strategy's module, ``names()`` lists them.

Every module is held to the contract (:mod:`tradelab.strategies.contract`) when the registry
first loads it: a missing or misshapen member is a :class:`StrategyContractError` naming the
module and the member, raised before any sweep or runner uses it.
"""

from __future__ import annotations

import importlib
from typing import cast

from tradelab.strategies.contract import StrategyModule, check_module

_MODULES = (
    "funding_carry",
    "imbalance_microprice",
    "keltner_breakout",
    "ma_crossover",
    "market_making",
    "mean_reversion",
    "momentum",
    "ofi_reversion",
    "volatility_breakout",
)
_CHECKED: set[str] = set()


def names() -> list[str]:
    """Names of every registered strategy, sorted."""
    return sorted(_MODULES)


def get(name: str) -> StrategyModule:
    """The module of strategy ``name`` (checked against the contract on first use);
    ``KeyError`` naming the known ones otherwise."""
    if name not in _MODULES:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(names())}")
    module = importlib.import_module(f"tradelab.strategies.{name}")
    if name not in _CHECKED:
        check_module(module)
        _CHECKED.add(name)
    return cast(StrategyModule, module)
