"""Targets to the entry/exit signals vectorbt's ``Portfolio.from_signals`` takes.

``entries`` is True on a bar whose target is +1 after a bar whose target was not (the first bar
counts as coming from flat), ``exits`` on a bar that leaves +1; ``short_entries`` and
``short_exits`` likewise for -1. A reversal from +1 to -1 is an exit and a short entry on the
same bar. For ``Portfolio.from_orders`` no conversion is needed: the targets themselves are
``size`` with ``size_type='targetpercent'`` (times the fraction of equity to use); note that
vectorbt then rebalances to the target on every bar, so it also trades as prices move, while
``from_signals`` trades only when the target changes. Both follow the targets' sign exactly
(``tests/test_strategies_bar.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from numba import njit, prange


@njit(cache=True, error_model="numpy", parallel=True)
def targets_to_signals_nb(targets: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(entries, exits, short_entries, short_exits)`` of int8 targets ``(n_sets, n_bars)``."""
    n_sets, n = targets.shape
    le = np.zeros((n_sets, n), dtype=np.bool_)
    lx = np.zeros((n_sets, n), dtype=np.bool_)
    se = np.zeros((n_sets, n), dtype=np.bool_)
    sx = np.zeros((n_sets, n), dtype=np.bool_)
    for j in prange(n_sets):
        prev = 0
        for i in range(n):
            t = targets[j, i]
            if t != prev:
                if t == 1:
                    le[j, i] = True
                elif t == -1:
                    se[j, i] = True
                if prev == 1:
                    lx[j, i] = True
                elif prev == -1:
                    sx[j, i] = True
            prev = t
    return le, lx, se, sx


class Signals(NamedTuple):
    entries: np.ndarray | pd.DataFrame
    exits: np.ndarray | pd.DataFrame
    short_entries: np.ndarray | pd.DataFrame
    short_exits: np.ndarray | pd.DataFrame


def to_signals(
    targets: np.ndarray, index: pd.Index | None = None, columns: pd.Index | None = None
) -> Signals:
    """Entry/exit signals of targets (1-D for one set, ``(n_sets, n_bars)`` for a grid).

    With ``index`` (the bars' time index) the result is DataFrames of shape
    ``(n_bars, n_sets)``, bars down and parameter sets across (``columns``, e.g.
    ``Params.frame(grid)`` as a MultiIndex), which is vectorbt's layout; otherwise arrays in the
    targets' own shape.
    """
    t = np.asarray(targets)
    one = t.ndim == 1
    t2 = np.require(t[None, :] if one else t, dtype=np.int8, requirements=["C", "W"])
    if t2.ndim != 2:
        raise ValueError(f"targets must be 1-D or (n_sets, n_bars), got shape {t.shape}")
    out = targets_to_signals_nb(t2)
    if index is None:
        return Signals(*(a[0] if one else a for a in out))
    if len(index) != t2.shape[1]:
        raise ValueError(f"index has {len(index)} rows for {t2.shape[1]} bars")
    return Signals(*(pd.DataFrame(a.T, index=index, columns=columns) for a in out))
