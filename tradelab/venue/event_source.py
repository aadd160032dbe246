"""Replay ``event_dt`` rows (the store's events, as the event backtester reads them) on the venue.

:class:`EventSource` turns the rows back into Binance spot messages: the leading snapshot rows
become the starting book (a REST depth snapshot), each later depth message (rows up to the one
flagged ``EV_LAST``) one ``depthUpdate`` with consecutive update ids, each trade row one
``trade``. Messages go out in row order, stamped with the row's exchange time (``E``, and ``T``
for trades), so the venue's matching core sees the very events, in the very order and at the
very times (in ms, the wire's resolution), that the backtester's exchange side sees.

Only a book snapshot at the start is supported: a gap or a resync snapshot later in the rows is
refused with an error naming the row (the venue would resync from a snapshot differently than
the backtester's core does).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tradelab.adapters.binance import encode
from tradelab.core.events import (
    EV_BID,
    EV_BUY,
    EV_DEPTH,
    EV_KIND_MASK,
    EV_LAST,
    EV_SNAPSHOT,
    EV_TRADE,
    event_dt,
)
from tradelab.venue.instruments import Instrument, instrument
from tradelab.venue.sources import VenueMessage

MS = 1_000_000
FIRST_UPDATE_ID = 1_000


class EventSource:
    """A venue source over one spot instrument's ``event_dt`` rows (see module docstring)."""

    def __init__(self, events: np.ndarray, symbol: str = "BTCUSDT",
                 tick: str | None = None, step: str | None = None) -> None:
        if events.dtype != event_dt:
            raise ValueError("EventSource needs event_dt rows (Catalog.events)")
        self.inst: Instrument = instrument("spot", symbol, tick, step)
        self.instruments = {self.inst.key: self.inst}
        self._pd, self._qd = self.inst.price_decimals(), self.inst.qty_decimals()
        self.events = events
        kinds = events["ev"] & EV_KIND_MASK
        snap = (kinds == EV_DEPTH) & ((events["ev"] & EV_SNAPSHOT) != 0)
        if len(events) == 0 or not snap[0]:
            raise ValueError("EventSource: the rows must start with a book snapshot "
                             "(Catalog.events anchors them at one)")
        end = int(np.flatnonzero((events["ev"] & EV_LAST) != 0)[0])
        self._start = end + 1
        later = np.flatnonzero(snap[self._start:] | ((kinds[self._start:] != EV_DEPTH)
                                                     & (kinds[self._start:] != EV_TRADE)))
        if len(later):
            i = self._start + int(later[0])
            raise ValueError(f"EventSource: row {i} is a gap, resync or snapshot after the "
                             "start; only a leading snapshot is supported")
        rows = events[: self._start]
        bid = (rows["ev"] & EV_BID) != 0
        body = {"lastUpdateId": FIRST_UPDATE_ID,
                "bids": [[self._px(p), self._qty(q)] for p, q in
                         sorted(zip(rows["px"][bid], rows["qty"][bid]), reverse=True) if q > 0],
                "asks": [[self._px(p), self._qty(q)] for p, q in
                         sorted(zip(rows["px"][~bid], rows["qty"][~bid])) if q > 0]}
        self.initial: dict = {self.inst.key: body}
        self.snapshots: list = [("spot", self.inst.symbol, body)]
        self.exhausted = False
        self.lines = 0
        self.skipped = 0
        self._it = self._messages()
        self._peeked: VenueMessage | None = None

    def _px(self, p: float) -> str:
        return f"{p:.{self._pd}f}"

    def _qty(self, q: float) -> str:
        return f"{q:.{self._qd}f}"

    def _messages(self) -> Iterator[VenueMessage]:
        ev = self.events
        sym = self.inst.symbol
        uid = FIRST_UPDATE_ID
        trade_id = 0
        bids: list[list[str]] = []
        asks: list[list[str]] = []
        for i in range(self._start, len(ev)):
            r = ev[i]
            flags = int(r["ev"])
            t_ms = int(r["exch_ts"]) // MS
            if flags & EV_KIND_MASK == EV_TRADE:
                trade_id = int(r["seq"]) if r["seq"] >= 0 else trade_id + 1
                data = encode.trade(True, t_ms, sym, trade_id, self._px(float(r["px"])),
                                    self._qty(float(r["qty"])), not flags & EV_BUY)
                yield VenueMessage(int(r["exch_ts"]), "spot", sym, "trade", data)
                continue
            (bids if flags & EV_BID else asks).append([self._px(float(r["px"])),
                                                       self._qty(float(r["qty"]))])
            if flags & EV_LAST:
                uid += 1
                data = encode.depth_update(True, t_ms, t_ms, sym, uid, uid, uid - 1, bids, asks)
                bids, asks = [], []
                yield VenueMessage(int(r["exch_ts"]), "spot", sym, "depth", data)
        self.exhausted = True

    def start_at(self) -> int:
        first = self.peek()
        return first.at if first else 0

    def peek(self) -> Any:
        if self._peeked is None:
            self._peeked = next(self._it, None)
        return self._peeked

    def take(self, until: int | None, max_n: int = 2000) -> list:
        out: list[VenueMessage] = []
        while len(out) < max_n:
            m = self.peek()
            if m is None or (until is not None and m.at > until):
                break
            out.append(m)
            self._peeked = None
            self.lines += 1
        return out

    def provides(self, kind: str) -> bool:
        return kind in ("depth", "trade")
