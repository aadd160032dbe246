"""Preloaded by the sweep's fork server before it forks any worker.

Importing it imports vectorbt and loads the cached simulator and metrics kernels (both
executions) once, in the server, so every worker forked from it starts with them in memory
instead of importing vectorbt (seconds) and loading the kernels itself. Neither kernel is
parallel: numba's threading layer is not started here, so forking stays safe.
"""

from __future__ import annotations

import numpy as np

from tradelab.backtest.vector.simulate import EXECUTIONS, Costs, Market, chunk_metrics


def warm() -> None:
    """One tiny chunk per execution."""
    targets = np.array([[0, 1, 0, -1]], dtype=np.int8)
    for execution in EXECUTIONS:
        market = Market(np.ones(4), np.ones(4, dtype=bool), np.empty(0, dtype=np.int64),
                        np.empty(0), 1.0, 1.0, np.ones(4), execution)
        chunk_metrics(targets, market, Costs())


warm()
