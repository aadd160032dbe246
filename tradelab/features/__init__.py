"""Features: numba kernels over arrays, each with a streaming and a vectorized form.

Kernel modules (arrays in, arrays out, ``@njit(cache=True)``; module docstrings state shape, axis
and NaN policy):

- :mod:`.ta_nb`: SMA, EMA, RSI, true range, ATR, Keltner, Donchian, rolling max/min, equal to
  TA-Lib bit for bit;
- :mod:`.returns_nb`: k-bar returns, realized volatility;
- :mod:`.lob_nb`: the L2 book from ``event_dt`` events, one event at a time, and book frames;
- :mod:`.depth_nb`: mid, spread, depth imbalance, weighted mid, microprice, liquidity events;
- :mod:`.ofi_nb`: order flow imbalance (Cont, Kukanov, Stoikov 2014), multi-level, window sums;
- :mod:`.funding_nb`: annualized funding, basis, funding forecast, expected carry.

:mod:`.align` puts timestamped events (funding rates) on the bars where they are known, and
shapes the inputs of the two-leg carry strategy (:func:`carry_inputs`).

Streaming convention: an indicator's state lives at offset ``o`` of a float64 state vector ``s``
(``*_init(s, o, ...)``, ``*_new(...)`` for a vector of its own) and ``*_step(s, o, input...)``
advances it by one input; the vectorized ``*_nb`` is a loop over that step, so both agree bit for
bit. The pandas-facing functions below wrap the vectorized forms.

Importing the package first checks numba's cache against these sources and the ground floor's
(:mod:`tradelab.core`, the event flags; see :mod:`tradelab.core.numba_cache`): numba alone
would keep kernels that inlined an older version of them.
"""

from pathlib import Path as _Path

from tradelab.core.numba_cache import clear_if_stale as _clear_if_stale

_HERE = _Path(__file__).resolve().parent
_clear_if_stale(_HERE, [_HERE.parent / "core"])

from tradelab.features.align import carry_inputs, events_on_bars  # noqa: E402
from tradelab.features.api import (  # noqa: E402
    LIQUIDITY_FLAGS,
    BookFrame,
    annualized_funding,
    atr,
    basis,
    book_features,
    book_frame_from_events,
    book_frame_from_snapshots,
    donchian,
    ema,
    expected_carry,
    funding_forecast,
    keltner,
    liquidity_events,
    multilevel_ofi,
    ofi,
    ofi_windows,
    realized_vol,
    returns,
    rsi,
    sma,
)

__all__ = [
    "LIQUIDITY_FLAGS",
    "BookFrame",
    "annualized_funding",
    "atr",
    "basis",
    "book_features",
    "book_frame_from_events",
    "book_frame_from_snapshots",
    "carry_inputs",
    "donchian",
    "ema",
    "events_on_bars",
    "expected_carry",
    "funding_forecast",
    "keltner",
    "liquidity_events",
    "multilevel_ofi",
    "ofi",
    "ofi_windows",
    "realized_vol",
    "returns",
    "rsi",
    "sma",
]
