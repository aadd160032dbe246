"""cryptofeed's book and trade callbacks as event rows (``tradelab.core.events.event_dt``).

A book snapshot (cryptofeed's ``delta is None``: the first book, and every resync) becomes one
depth row per level flagged ``EV_SNAPSHOT``; a delta becomes one row per changed level (size 0
removes it). The last row of a message carries ``EV_LAST``: the book is consistent after it. A
trade is one ``EV_TRADE | EV_LAST`` row flagged with the taker's side.

Times: ``exch_ts`` is the exchange's message time; ``local_ts`` is the receipt time
(``clock="receipt"``, live trading) or the exchange time (``clock="exchange"``: decisions then
depend on the market's own clock only, so a replay gives the same decisions however fast it is
served).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradelab.core.events import (
    EV_ASK,
    EV_BID,
    EV_BUY,
    EV_DEPTH,
    EV_LAST,
    EV_SELL,
    EV_SNAPSHOT,
    EV_TRADE,
    event_dt,
)
from tradelab.net.cryptofeed_feeds import ns

CLOCKS = ("receipt", "exchange")


def _times(ts: float | None, receipt: float, clock: str) -> tuple[int, int]:
    recv = ns(receipt)
    exch = ns(ts, receipt)
    return exch, (recv if clock == "receipt" else exch)


def book_rows(book: Any, receipt: float, clock: str = "receipt",
              depth: int | None = None) -> np.ndarray:
    """Rows of one cryptofeed L2 update (snapshot or delta)."""
    exch, local = _times(book.timestamp, receipt, clock)
    seq = int(book.sequence_number) if book.sequence_number is not None else -1
    levels: list[tuple[int, float, float]] = []
    if book.delta is None:
        for side_flag, side in ((EV_BID, book.book.bids), (EV_ASK, book.book.asks)):
            items = side.to_list()
            if depth is not None:
                items = items[:depth]
            levels += [(EV_DEPTH | EV_SNAPSHOT | side_flag, float(p), float(q))
                       for p, q in items]
    else:
        for key, side_flag in (("bid", EV_BID), ("ask", EV_ASK)):
            levels += [(EV_DEPTH | side_flag, float(p), float(q))
                       for p, q in book.delta.get(key, ())]
    out = np.zeros(len(levels), dtype=event_dt)
    if not levels:
        return out
    out["ev"] = [e for e, _, _ in levels]
    out["px"] = [p for _, p, _ in levels]
    out["qty"] = [q for _, _, q in levels]
    out["exch_ts"] = exch
    out["local_ts"] = local
    out["seq"] = seq
    out["ev"][-1] |= EV_LAST
    return out


def trade_row(trade: Any, receipt: float, clock: str = "receipt") -> np.ndarray:
    """The row of one cryptofeed trade (``side`` is the taker's)."""
    exch, local = _times(trade.timestamp, receipt, clock)
    out = np.zeros(1, dtype=event_dt)
    out["ev"] = EV_TRADE | EV_LAST | (EV_BUY if trade.side == "buy" else EV_SELL)
    out["exch_ts"] = exch
    out["local_ts"] = local
    out["px"] = float(trade.price)
    out["qty"] = float(trade.amount)
    try:
        out["seq"] = int(trade.id)
    except (TypeError, ValueError):
        out["seq"] = -1
    return out


__all__ = ["CLOCKS", "book_rows", "trade_row"]
