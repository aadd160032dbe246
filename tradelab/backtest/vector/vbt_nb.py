"""vectorbt's from-signals simulator, compiled once and kept in numba's on-disk cache.

vectorbt compiles ``simulate_from_signals_nb`` without ``cache=True``: every process that
simulates pays its compilation again (about 10 s, more on a busy machine), and in a sweep every
worker process did. Here a cached kernel calls it (numba links the callee's code into the
caller's cached library), so a process after the first loads it in a fraction of a second. The
kernel releases the GIL while it runs (the sweep's pool feeder thread runs meanwhile).

The cache is cleared when vectorbt's portfolio sources change (a vectorbt upgrade), the way
:mod:`tradelab.core.numba_cache` keeps the strategy kernels honest.
"""

from __future__ import annotations

from pathlib import Path

import vectorbt.portfolio.nb as _vbt_nb
from numba import njit

from tradelab.core.numba_cache import clear_if_stale

_HERE = Path(__file__).resolve().parent
clear_if_stale(_HERE, [Path(_vbt_nb.__file__).resolve().parent])

_simulate_from_signals_nb = _vbt_nb.simulate_from_signals_nb
PARAMS = (
    "target_shape", "group_lens", "init_cash", "call_seq", "entries", "exits", "direction",
    "long_entries", "long_exits", "short_entries", "short_exits", "size", "price", "size_type",
    "fees", "fixed_fees", "slippage", "min_size", "max_size", "size_granularity",
    "reject_prob", "lock_cash", "allow_partial", "raise_reject", "log", "accumulate",
    "upon_long_conflict", "upon_short_conflict", "upon_dir_conflict", "upon_opposite_entry",
    "val_price", "open", "high", "low", "close", "sl_stop", "sl_trail", "tp_stop",
    "stop_entry_price", "stop_exit_price", "upon_stop_exit", "upon_stop_update", "use_stops",
    "auto_call_seq", "ffill_val_price", "update_value", "max_orders", "max_logs",
    "init_temp_records", "flex_2d",
)
"""The simulator's parameters, in order (the sweep checks them against vectorbt's)."""


@njit(cache=True, nogil=True)
def simulate_from_signals_nb(*args):  # type: ignore[no-untyped-def]
    """``vectorbt.portfolio.nb.simulate_from_signals_nb(*args)``: (order records, logs)."""
    return _simulate_from_signals_nb(*args)
