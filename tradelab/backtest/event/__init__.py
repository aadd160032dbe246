"""Event-driven L2 backtester: a two-clock replay of stored events over the matching core.

- :mod:`tradelab.matching.sim_nb` (shared with the paper broker): the numba two-clock replay
  state and loop (exchange and local sides, latency queues);
- :mod:`.replay`: the Python driver over chunks of ``Catalog.iter_events`` (bounded memory);
- :mod:`.loops_nb`: strategy loops (quoting, book intents) on the replay (bars from trades:
  :mod:`tradelab.matching.bar_clock_nb`);
- :mod:`.bars`: bar strategies (their own ``step`` per bar, market orders via the core);
- :mod:`.agreement`: ``compare_with_sweep``, the event engine against a saved sweep's set;
- :mod:`.multi`: several instruments (and venues) in one run, merged by local time;
- :mod:`.analysis_nb`, :mod:`.run`, :mod:`.config`, :mod:`.funding`: runs from a config, their
  analysis (PnL decomposition, metrics) and how they are saved.

The kernels here link the matching core's, the strategies' and the features' kernels into their
cached machine code, so importing the package drops its numba cache when any of those sources
changed (numba alone checks only each kernel's own file).
"""

from pathlib import Path as _Path

from tradelab.core.numba_cache import clear_if_stale as _clear_if_stale

_HERE = _Path(__file__).resolve().parent
_ROOT = _HERE.parent.parent
_clear_if_stale(_HERE, [_ROOT / "matching", _ROOT / "strategies", _ROOT / "features",
                        _ROOT / "core", _ROOT / "store"])
