"""The one event record shared by the catalog, the event-driven backtester and the runners.

``event_dt`` is an aligned numpy record (numba reads it directly). ``ev`` packs the kind in its low
byte and flags above it, so a kernel tests ``ev & 0xFF == EV_DEPTH`` and ``ev & EV_BID``:

============  =========  ==========================================================
field         type       meaning
============  =========  ==========================================================
ev            uint64     kind (``EV_DEPTH``, ``EV_TRADE``, ``EV_GAP``, ``EV_RESYNC``) | flags
exch_ts       int64      exchange time, UTC ns
local_ts      int64      local receipt time, UTC ns (``exch_ts`` where unknown)
px            float64    price
qty           float64    level quantity after the change (depth, 0 removes) or trade size
seq           int64      exchange update id (depth) or numeric trade id; -1 if none
============  =========  ==========================================================

Flags: ``EV_SNAPSHOT`` (depth row of a full snapshot: clear the book before the first one),
``EV_LAST`` (last row of an exchange message: the book is consistent after it; every trade
carries it), ``EV_BID``/``EV_BUY`` and ``EV_ASK``/``EV_SELL`` (book side, or taker side of a trade).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EV_ASK",
    "EV_BID",
    "EV_BUY",
    "EV_DEPTH",
    "EV_GAP",
    "EV_KIND_MASK",
    "EV_LAST",
    "EV_RESYNC",
    "EV_SELL",
    "EV_SNAPSHOT",
    "EV_TRADE",
    "describe",
    "empty_events",
    "event_dt",
]

EV_DEPTH = 1
EV_TRADE = 2
EV_GAP = 3  # the recorder lost book updates here: the book is stale until the next snapshot
EV_RESYNC = 4  # the recorder resynchronised (a snapshot follows)
EV_KIND_MASK = 0xFF

EV_SNAPSHOT = 1 << 8
EV_LAST = 1 << 9
EV_BID = 1 << 10
EV_ASK = 1 << 11
EV_BUY = EV_BID
EV_SELL = EV_ASK

event_dt = np.dtype(
    [
        ("ev", np.uint64),
        ("exch_ts", np.int64),
        ("local_ts", np.int64),
        ("px", np.float64),
        ("qty", np.float64),
        ("seq", np.int64),
    ],
    align=True,
)


def empty_events(n: int = 0) -> np.ndarray:
    """A zeroed event array of length ``n``."""
    return np.zeros(n, dtype=event_dt)


def describe(ev: int) -> str:
    """Human-readable form of an ``ev`` value, e.g. ``'depth|bid|snapshot|last'``."""
    kind = {EV_DEPTH: "depth", EV_TRADE: "trade", EV_GAP: "gap", EV_RESYNC: "resync"}.get(
        ev & EV_KIND_MASK, f"kind{ev & EV_KIND_MASK}"
    )
    parts = [kind]
    if ev & EV_BID:
        parts.append("bid" if kind == "depth" else "buy")
    if ev & EV_ASK:
        parts.append("ask" if kind == "depth" else "sell")
    if ev & EV_SNAPSHOT:
        parts.append("snapshot")
    if ev & EV_LAST:
        parts.append("last")
    return "|".join(parts)
