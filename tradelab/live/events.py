"""cryptofeed's book and trade callbacks as event rows (``tradelab.core.events.event_dt``).

A book snapshot (cryptofeed's ``delta is None``: the first book, and every resync) becomes one
depth row per level flagged ``EV_SNAPSHOT``; a delta becomes one row per changed level (size 0
removes it). The last row of a message carries ``EV_LAST``: the book is consistent after it. A
trade is one ``EV_TRADE | EV_LAST`` row flagged with the taker's side.

Times: ``exch_ts`` is the exchange's message time; ``local_ts`` is the receipt time
(``clock="receipt"``, live trading) or the exchange time (``clock="exchange"``: decisions then
depend on the market's own clock only, so a replay gives the same decisions however fast it is
served).

:class:`RowStamper` keeps the exchange clock of one stream usable by the simulated exchange,
which needs it never to go back: a message stamped before the previous one (Binance's trade and
depth streams interleave by a few ms) takes the previous time, and a REST book snapshot, which
carries no exchange time at all, takes the last exchange time seen, or waits for the next
message's when none was seen yet (the local clock may be far from the exchange's).

With the receipt clock, the local time is the receipt time less the smallest ``receipt -
exchange`` difference seen so far: the two clocks' offset (a replaying venue's clock may be
minutes behind, a machine's clock off by seconds), leaving the feed's own latency (how much later
than the fastest message this one arrived). The simulated exchange then sees a feed latency of
milliseconds, not the clocks' disagreement.
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


class RowStamper:
    """Rows of one instrument's messages on a non-decreasing exchange clock (see the module)."""

    def __init__(self, clock: str = "receipt") -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
        self.clock = clock
        self.last_exch: int | None = None
        self.pending: np.ndarray | None = None  # a snapshot waiting for an exchange time
        self.clamped = 0  # messages stamped before the previous one
        self.offset: int | None = None  # min(receipt - exchange) so far (receipt clock)

    def book(self, book: Any, receipt: float, depth: int | None = None) -> np.ndarray:
        rows = book_rows(book, receipt, self.clock, depth)
        if book.delta is None and book.timestamp is None:
            if self.last_exch is None:
                self.pending = rows
                return rows[:0]
            return self._stamp(rows, self.last_exch)
        return self._stamp(rows, None)

    def trade(self, trade: Any, receipt: float) -> np.ndarray:
        return self._stamp(trade_row(trade, receipt, self.clock), None)

    def _stamp(self, rows: np.ndarray, exch: int | None) -> np.ndarray:
        if len(rows) == 0:
            return rows
        t = int(rows["exch_ts"][0]) if exch is None else exch
        if self.last_exch is not None and t < self.last_exch:
            t = self.last_exch
            self.clamped += 1
        rows["exch_ts"] = t
        if self.clock == "exchange":
            rows["local_ts"] = t
        else:
            lag = int(rows["local_ts"][0]) - t
            if exch is None and (self.offset is None or lag < self.offset):
                self.offset = lag
            rows["local_ts"] -= self.offset if self.offset is not None else lag
        self.last_exch = t
        if self.pending is not None:
            pend, self.pending = self.pending, None
            pend["exch_ts"] = t
            pend["local_ts"] = rows["local_ts"][0] if self.clock == "receipt" else t
            return np.concatenate([pend, rows])
        return rows


__all__ = ["CLOCKS", "RowStamper", "book_rows", "trade_row"]
