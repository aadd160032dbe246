"""The venue's own order book per instrument, kept from the diffs it publishes.

Levels are kept as the exact strings Binance sends, so a REST snapshot repeats the stream's text
byte for byte; they are ordered numerically only when a snapshot is asked for.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from tradelab.adapters.binance import depth_sync
from tradelab.adapters.binance.encode import depth_snapshot

PENDING_DIFFS = 10_000


class VenueBook:
    """Price-level book with the id of the last update applied.

    Until a snapshot arrives, diffs are kept (the diff that straddles a snapshot's id is often
    received before the snapshot itself); loading the snapshot replays them the Binance way.
    A sequence break un-syncs the book until the next snapshot.
    """

    def __init__(self, usdm: bool = False) -> None:
        self.usdm = usdm
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_update_id: int | None = None
        self.synced = False
        self._pending: deque = deque(maxlen=PENDING_DIFFS)

    def load_snapshot(self, snap: dict) -> None:
        """Replace the book with a REST snapshot body and replay the diffs received before."""
        self.bids = {p: q for p, q in snap["bids"] if Decimal(q) != 0}
        self.asks = {p: q for p, q in snap["asks"] if Decimal(q) != 0}
        self.last_update_id = int(snap["lastUpdateId"])
        self.synced = True
        pending, self._pending = list(self._pending), deque(maxlen=PENDING_DIFFS)
        for diff in pending:
            self.apply(diff, self.usdm)

    def apply(self, diff: dict, usdm: bool) -> str:
        """Apply a depthUpdate; returns 'applied', 'old' (before the snapshot), 'pending'
        (kept until a snapshot) or 'gap' (the book is no longer synced)."""
        if not self.synced:
            self._pending.append(diff)
            return "pending"
        last = self.last_update_id
        assert last is not None  # set by load_snapshot, which syncs the book
        market = "usdm" if usdm else "spot"
        if depth_sync.is_before(market, diff, last):
            return "old"
        first_after = depth_sync.straddles(market, diff, last)
        if not (first_after or depth_sync.continues(market, diff, last)):
            self.synced = False
            self._pending.append(diff)
            return "gap"
        for side, levels in ((self.bids, diff["b"]), (self.asks, diff["a"])):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_update_id = diff["u"]
        return "applied"

    def snapshot(self, limit: int, extra: dict | None = None) -> dict:
        """REST depth body: best ``limit`` levels per side."""
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[:limit]
        return depth_snapshot(self.last_update_id, [[p, q] for p, q in bids],
                              [[p, q] for p, q in asks], extra)

    def best(self) -> tuple[float | None, float | None]:
        """Best bid and ask prices (None for an empty side)."""
        bb = max((Decimal(p) for p in self.bids), default=None)
        ba = min((Decimal(p) for p in self.asks), default=None)
        return (float(bb) if bb is not None else None, float(ba) if ba is not None else None)
