"""The strategy contract: what a module under ``tradelab.strategies`` provides, and its check.

A strategy module defines, at top level:

- ``NAME``: its registry name, equal to the module's own name;
- ``KIND``: ``BAR`` (bars in, int8 target per bar), ``BOOK`` (book frame in, intents out) or
  ``QUOTE`` (top of book and position in, a bid and an ask price out: market making);
- ``INPUTS``: the bar columns the step reads, in order (``("book",)`` for book strategies);
- ``Params``: a frozen :class:`StrategyParams` subclass whose ``strategy`` is ``NAME``;
- ``init_state_nb(p) -> s``: a fresh float64 state vector for parameter vector ``p``;
- ``step``: the one-input kernel. Bar: ``step(p, s, *INPUTS) -> int8``; book:
  ``step(p, s, ts, book, i) -> (IntentKind, price)``; quote:
  ``step(p, bid, bid_qty, ask, ask_qty, position) -> (bid_px, ask_px)`` (NaN: no quote; a quote
  strategy keeps no state between decisions);
- ``run_nb``: ``step`` over every input. Bar: ``run_nb(p, s, *INPUTS, out)``; book:
  ``run_nb(p, s, ts, book, set_id, out) -> n_intents``; quote: ``run_nb(p, s, top, position,
  out)`` (``top`` rows of bid, bid size, ask, ask size; ``out`` rows of bid and ask quotes);
- ``grid_nb``: ``run_nb`` over the rows of a parameter matrix. Bar: ``grid_nb(P, *INPUTS, out)``;
  book: ``grid_nb(P, ts, book) -> intents``; quote: ``grid_nb(P, top, position, out)`` with
  ``out`` of shape ``(n_sets, n, 2)``.

The four kernels are numba functions compiled with ``cache=True``. ``run_nb`` and ``grid_nb`` are
written out in each module: a shared loop taking ``step`` as an argument would be compiled per
caller and could not be cached on disk. The pandas-level ``init_state``, ``run`` and ``grid`` are
the shared ones of :mod:`tradelab.strategies.base`, bound once per module (``base.bind``).

:func:`check_module` holds a module to this; the registry runs it on every module it loads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

from tradelab.strategies.params import StrategyParams
from tradelab.strategies.types import BAR, BOOK, QUOTE

KERNELS = ("init_state_nb", "step", "run_nb", "grid_nb")
MEMBERS = ("NAME", "KIND", "INPUTS", "Params", *KERNELS)


class StrategyContractError(TypeError):
    """A strategy module lacks a member of the contract or has it in the wrong shape."""


class StrategyModule(Protocol):
    """The members every strategy module provides (a module satisfies this structurally)."""

    NAME: str
    KIND: str
    INPUTS: tuple[str, ...]
    Params: type[StrategyParams]
    init_state_nb: Callable[..., Any]
    step: Callable[..., Any]
    run_nb: Callable[..., Any]
    grid_nb: Callable[..., Any]
    init_state: Callable[..., Any]
    run: Callable[..., Any]
    grid: Callable[..., Any]


def _arity(kernel: Any) -> int:
    return len(inspect.signature(kernel.py_func).parameters)


def _expected_arity(kind: str, n_inputs: int) -> dict[str, int]:
    if kind == BAR:
        return {"init_state_nb": 1, "step": 2 + n_inputs, "run_nb": 3 + n_inputs,
                "grid_nb": 2 + n_inputs}
    if kind == QUOTE:
        return {"init_state_nb": 1, "step": 6, "run_nb": 5, "grid_nb": 4}
    return {"init_state_nb": 1, "step": 5, "run_nb": 6, "grid_nb": 3}


def check_module(module: ModuleType) -> None:
    """Raise :class:`StrategyContractError` naming the module and every member that is missing
    or wrong; return quietly when the module keeps the contract."""
    where = module.__name__
    short = where.rsplit(".", 1)[-1]
    missing = [m for m in MEMBERS if not hasattr(module, m)]
    if missing:
        raise StrategyContractError(f"strategy module {where} lacks {', '.join(missing)} "
                                    f"(the contract: {', '.join(MEMBERS)}; see "
                                    "tradelab.strategies.contract)")
    problems = []
    name, kind, inputs, params = module.NAME, module.KIND, module.INPUTS, module.Params
    if name != short:
        problems.append(f"NAME is {name!r}, expected the module's name {short!r}")
    if kind not in (BAR, BOOK, QUOTE):
        problems.append(f"KIND is {kind!r}, expected {BAR!r}, {BOOK!r} or {QUOTE!r}")
    if not (isinstance(inputs, tuple) and inputs and all(isinstance(c, str) for c in inputs)):
        problems.append(f"INPUTS is {inputs!r}, expected a non-empty tuple of column names")
    elif kind in (BOOK, QUOTE) and inputs != ("book",):
        problems.append(f"INPUTS of a {kind} strategy is ('book',), got {inputs!r}")
    if not (isinstance(params, type) and issubclass(params, StrategyParams)):
        problems.append("Params is not a StrategyParams subclass")
    elif params.strategy != name:
        problems.append(f"Params.strategy is {params.strategy!r}, expected {name!r}")
    arity = _expected_arity(kind, len(inputs) if isinstance(inputs, tuple) else 0)
    for k in KERNELS:
        kernel = getattr(module, k)
        if not hasattr(kernel, "py_func"):
            problems.append(f"{k} is not a numba kernel (@njit(cache=True))")
            continue
        if type(getattr(kernel, "_cache", None)).__name__ in ("NullCache", "NoneType"):
            problems.append(f"{k} is not compiled with cache=True")
        if kind in (BAR, BOOK, QUOTE) and _arity(kernel) != arity[k]:
            problems.append(f"{k} takes {_arity(kernel)} arguments, expected {arity[k]}")
    if problems:
        raise StrategyContractError(f"strategy module {where}: " + "; ".join(problems))
