"""Plumbing shared by the strategy modules: inputs from pandas, vectorized and grid runs.

Every strategy module keeps the contract of :mod:`tradelab.strategies.contract` (``NAME``,
``KIND``, ``INPUTS``, ``Params`` and the kernels ``init_state_nb``, ``step``, ``run_nb``,
``grid_nb``). The functions here turn DataFrames, book frames and ``Params`` into the arrays
those kernels take; :func:`bind` gives a module its pandas-level ``init_state``, ``run`` and
``grid`` in one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tradelab.features.api import BookFrame
from tradelab.strategies.params import as_vector
from tradelab.strategies.types import BAR, BOOK, QUOTE, intent_dt


def _writable(x, dtype) -> np.ndarray:
    """A C-contiguous, writable array (copied only when needed). pandas hands out read-only
    views, which numba compiles separately; one array type means one compilation."""
    return np.require(np.asarray(x, dtype=dtype), requirements=["C", "W"])


def bar_inputs(module: ModuleType, data: pd.DataFrame | Mapping[str, np.ndarray]):
    """The module's ``INPUTS`` columns as contiguous float64 arrays of equal length."""
    missing = [c for c in module.INPUTS if c not in data]
    if missing:
        raise ValueError(f"{module.NAME} needs columns {', '.join(module.INPUTS)}; "
                         f"missing {', '.join(missing)}")
    cols = tuple(_writable(data[c], np.float64) for c in module.INPUTS)
    if len({c.shape for c in cols}) != 1 or cols[0].ndim != 1:
        raise ValueError(f"{module.NAME}: inputs must be 1-D and of equal length")
    return cols


def book_inputs(module: ModuleType, frame: BookFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, book)`` of a :class:`BookFrame`, checked against the levels the module needs."""
    if not isinstance(frame, BookFrame):
        raise TypeError(f"{module.NAME} reads a BookFrame (features.book_frame_from_events or "
                        f"book_frame_from_snapshots), got {type(frame).__name__}")
    ts = _writable(frame.ts, np.int64)
    book = _writable(frame.book, np.float64)
    if book.ndim != 2 or book.shape[1] % 4 or book.shape[0] != ts.shape[0]:
        raise ValueError(f"{module.NAME}: malformed book frame {book.shape} / {ts.shape}")
    return ts, book


def quote_inputs(module: ModuleType, frame: BookFrame) -> np.ndarray:
    """Top of book ``(n, 4)``: bid, bid size, ask, ask size of each row of a book frame."""
    _, book = book_inputs(module, frame)
    lv = book.shape[1] // 4
    return np.ascontiguousarray(book[:, [0, lv, 2 * lv, 3 * lv]])


def _check_levels(module: ModuleType, P: np.ndarray, book: np.ndarray) -> None:
    if "levels" in module.Params.names():
        need = int(P[:, module.Params.slot("levels")].max())
        if need > book.shape[1] // 4:
            raise ValueError(f"{module.NAME}: levels={need} but the book frame holds "
                             f"{book.shape[1] // 4} levels")


def init_state(module: ModuleType, params=None) -> np.ndarray:
    """A fresh state vector for one parameter set."""
    return module.init_state_nb(as_vector(module.Params, params))


def run(module: ModuleType, data, params=None) -> np.ndarray:
    """One parameter set over all inputs: int8 targets (bar) or ``intent_dt`` records (book)."""
    p = as_vector(module.Params, params)
    s = module.init_state_nb(p)
    if module.KIND == BAR:
        cols = bar_inputs(module, data)
        out = np.zeros(cols[0].shape[0], dtype=np.int8)
        module.run_nb(p, s, *cols, out)
        return out
    if module.KIND == BOOK:
        ts, book = book_inputs(module, data)
        _check_levels(module, p[None, :], book)
        out = np.zeros(ts.shape[0], dtype=intent_dt)  # room for one intent per update
        n = module.run_nb(p, s, ts, book, 0, out)
        if n > out.shape[0]:  # a strategy that says more than once per update: run again
            out = np.zeros(n, dtype=intent_dt)
            module.run_nb(p, module.init_state_nb(p), ts, book, 0, out)
        return out[:n].copy()
    if module.KIND == QUOTE:  # quotes of a flat book: no position in a vectorized run
        top = quote_inputs(module, data)
        q = np.empty((top.shape[0], 2))
        module.run_nb(p, s, top, np.zeros(top.shape[0]), q)
        return q
    raise ValueError(f"unknown strategy kind {module.KIND!r}")


def grid(module: ModuleType, data, grid: np.ndarray) -> np.ndarray:
    """Many parameter sets in one numba call (parallel over sets).

    Bar strategies return int8 targets of shape ``(n_sets, n_bars)`` (row ``j`` is parameter
    set ``j``; 1,000 sets x 130k bars is 130 MB). Book strategies return ``intent_dt`` records
    of every set, ordered by set then input, with ``set`` filled in.
    """
    P = module.Params.validate(grid)
    if module.KIND == BAR:
        cols = bar_inputs(module, data)
        out = np.empty((P.shape[0], cols[0].shape[0]), dtype=np.int8)
        module.grid_nb(P, *cols, out)
        return out
    if module.KIND == BOOK:
        ts, book = book_inputs(module, data)
        _check_levels(module, P, book)
        return module.grid_nb(P, ts, book)
    if module.KIND == QUOTE:
        top = quote_inputs(module, data)
        q = np.empty((P.shape[0], top.shape[0], 2))
        module.grid_nb(P, top, np.zeros(top.shape[0]), q)
        return q
    raise ValueError(f"unknown strategy kind {module.KIND!r}")


class Bound(NamedTuple):
    """A strategy module's pandas-level functions (see :func:`bind`)."""

    init_state: Callable[..., np.ndarray]
    run: Callable[..., np.ndarray]
    grid: Callable[..., np.ndarray]


def bind(module_name: str) -> Bound:
    """``init_state(params=None)``, ``run(data, params=None)`` and ``grid(data, grid)`` of the
    strategy module ``module_name``, for ``init_state, run, grid = base.bind(__name__)`` at the
    end of the module (it is looked up when called, so binding during its import is fine)."""

    def module() -> ModuleType:
        return sys.modules[module_name]

    def init_state_(params: Any = None) -> np.ndarray:
        """A fresh state vector (defaults when ``params`` is None)."""
        return init_state(module(), params)

    def run_(data: Any, params: Any = None) -> np.ndarray:
        """Targets (bar) or intents (book) of one parameter set (defaults when None)."""
        return run(module(), data, params)

    def grid_(data: Any, grid_: np.ndarray) -> np.ndarray:
        """Targets ``(n_sets, n_bars)`` (bar) or intents by set (book) of every row of a
        parameter grid (see ``Params.grid``)."""
        return grid(module(), data, grid_)

    short = module_name.rsplit(".", 1)[-1]
    for fn, name in ((init_state_, "init_state"), (run_, "run"), (grid_, "grid")):
        fn.__name__ = fn.__qualname__ = name
        fn.__module__ = module_name
        fn.__doc__ = f"{short}: {fn.__doc__}"
    return Bound(init_state_, run_, grid_)
