"""Matching core: the exchange's view of one instrument, shared by every place that fills orders.

Ground floor (numpy, numba and the store's event record only). The event backtester drives it
from a replay inside numba loops; the local venue and the paper broker drive it from Python
through :class:`MatchingCore`.

Modules: :mod:`.types` (constants, ``order_dt``/``fill_dt``/``report_dt``/``instrument_dt``),
:mod:`.queue_nb` (queue-position models), :mod:`.latency_nb` (order latency models),
:mod:`.core_nb` (book, orders, fill rules; every function ``@njit(cache=True)``), :mod:`.api`
(the Python class), :mod:`.sim_nb` (the two-clock simulated exchange: the core behind order and
response latency queues, with the local side's book and view of its orders; the event
backtester replays stored events through it and the paper broker feeds it live ones).

Numba stamps a cached kernel with its own file only, while these kernels inline each other and
read constants from :mod:`.types`; importing the package therefore checks a digest of all its
sources (and the event record's) and drops stale cache files, as ``tradelab.features`` does.
"""

from pathlib import Path as _Path

from tradelab.core.numba_cache import clear_if_stale as _clear_if_stale

_HERE = _Path(__file__).resolve().parent
_clear_if_stale(_HERE, [_HERE.parent / "core"])

from tradelab.matching import types as _types  # noqa: E402
from tradelab.matching.api import Executions, MatchingCore, instrument  # noqa: E402
from tradelab.matching.types import *  # noqa: E402,F403

__all__ = ["Executions", "MatchingCore", "instrument"] + [
    n for n in dir(_types) if n.isupper() or n.endswith("_dt")
]
