"""Funding settlements for a perpetual backtest, from the store, with no silent zeros.

Binance settles USD-M funding every 8 hours (00:00, 08:00, 16:00 UTC). A perpetual backtest
over ``[start, end)`` needs a stored settled rate for every settlement time inside the span; a
missing one is an error naming the missing times (backfill them), never a zero. The payment at
a settlement is ``position * contract_size * mark * rate`` (longs pay a positive rate), with the
stored mark price at settlement (or, when the row has none, the last trade price before it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradelab.backtest.event.replay import Funding
from tradelab.errors import StoreError
from tradelab.store.catalog import Catalog

SETTLEMENT_NS = 8 * 3_600_000_000_000
TOLERANCE_NS = 60_000_000_000  # a stored settlement within a minute of the hour counts


def is_perpetual(symbol: str) -> bool:
    return symbol.endswith("-PERP")


def settlement_times(start: int, end: int, every: int = SETTLEMENT_NS) -> np.ndarray:
    """Settlement times in ``[start, end)`` on the ``every`` grid from the epoch."""
    first = -(-start // every) * every
    return np.arange(first, end, every, dtype=np.int64)


def load_funding(cat: Catalog, exchange: str, symbol: str, start: int, end: int) -> Funding:
    """Settled funding of ``symbol`` for a backtest over ``[start, end)`` (ns); raises
    ``StoreError`` naming the settlement times that have no stored rate."""
    due = settlement_times(start, end)
    if not is_perpetual(symbol) or len(due) == 0:
        return Funding()
    try:
        df = cat.funding(exchange, symbol, start=int(due[0] - TOLERANCE_NS),
                         end=int(due[-1] + TOLERANCE_NS + 1), settled=True)
    except StoreError:  # no funding table for this symbol at all
        df = pd.DataFrame()
    ts = df["ts"].to_numpy(np.int64) if len(df) else np.zeros(0, dtype=np.int64)
    missing = [int(t) for t in due if not np.any(np.abs(ts - t) <= TOLERANCE_NS)]
    if missing:
        names = ", ".join(str(pd.Timestamp(t, unit="ns", tz="UTC")) for t in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        t0, t1 = (pd.Timestamp(x, unit="ns", tz="UTC") for x in (start, end))
        span = f"{t0} -> {t1}"
        raise StoreError(
            f"no stored funding for {exchange} {symbol} at {names}{more} (backtest span {span}"
            "): backfill the funding table for that range; a perpetual backtest never assumes 0"
        )
    rows = []
    for t in due:
        k = int(np.argmin(np.abs(ts - t)))
        rows.append(df.iloc[k])
    mark = np.array([float(r["mark_price"]) if pd.notna(r.get("mark_price")) else np.nan
                     for r in rows])
    if np.isnan(mark).any():
        for i in np.flatnonzero(np.isnan(mark)):
            tr = cat.trades(exchange, symbol, end=int(due[i]) + 1)
            if len(tr) == 0:
                raise StoreError(
                    f"funding of {exchange} {symbol} at {due[i]} has no mark price and no trade "
                    "before it to stand in"
                )
            mark[i] = float(tr["price"].iloc[-1])
    return Funding(due.copy(), np.array([float(r["rate"]) for r in rows]), mark)
