"""Inputs aligned to bars: events with their own timestamps put on the bar where they are known.

Pandas-level shaping (no kernels): strategies read the aligned columns, never the store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradelab.core.timeutil import interval_ns

__all__ = ["carry_inputs", "events_on_bars"]


def _bar_opens(index: pd.Index) -> np.ndarray:
    """Bar open times (int64 ns) of a DatetimeIndex, or of an integer index already in ns."""
    if isinstance(index, pd.DatetimeIndex):
        return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)
    return np.asarray(index.to_numpy(), dtype=np.int64)


def events_on_bars(opens: np.ndarray, step_ns: int, ts: np.ndarray,
                   values: np.ndarray) -> np.ndarray:
    """Each event's value on the first bar that closes after its time (close = open + step).

    So a value is known at that bar's close and never before, also across missing bars; an
    event exactly at a close goes to the next bar. Several on one bar: the last wins. Events
    after the last bar's close are dropped. Returns float64 per bar, NaN where none fell.
    """
    opens = np.asarray(opens, dtype=np.int64)
    k = np.searchsorted(opens + step_ns, np.asarray(ts, dtype=np.int64), side="right")
    keep = k < len(opens)
    out = np.full(len(opens), np.nan)
    out[k[keep]] = np.asarray(values, dtype=np.float64)[keep]
    return out


def carry_inputs(spot: pd.DataFrame, perp: pd.DataFrame, funding: pd.DataFrame) -> pd.DataFrame:
    """``funding_rate``, ``spot_close``, ``perp_close`` per bar, for ``funding_carry``.

    ``spot`` and ``perp`` are ``Catalog.bars`` frames, joined on their open time (inner join);
    ``funding`` is ``Catalog.funding(settled=True)`` (``ts``, ``rate``). Each published rate goes
    on the bar where it is first known (:func:`events_on_bars`); rates a few ms late, as
    Binance's are, stay on the bar they fall in. The bar interval is ``spot.attrs['interval']``,
    else the smallest gap between bars.
    """
    df = pd.DataFrame({"spot_close": spot["close"], "perp_close": perp["close"]}).dropna()
    if df.empty:
        raise ValueError("spot and perp bars do not overlap")
    opens = _bar_opens(df.index)
    interval = spot.attrs.get("interval")
    if interval:
        step_ns = interval_ns(interval)
    elif len(opens) > 1:
        step_ns = int(np.diff(opens).min())
    else:
        raise ValueError("cannot tell the bar interval of a single bar without attrs['interval']")
    rate = events_on_bars(opens, step_ns, funding["ts"].to_numpy(dtype=np.int64),
                          funding["rate"].to_numpy(dtype=np.float64))
    df.insert(0, "funding_rate", rate)
    return df
