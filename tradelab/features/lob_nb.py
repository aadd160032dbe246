"""An L2 book rebuilt from ``tradelab.core.events.event_dt`` rows, one event at a time.

This is the streaming counterpart of the store's book replay (``tradelab.store.book_nb``): that
one maps prices to a dense index known in advance, which a live feed cannot know. Here each side
is a sorted array of up to ``capacity`` levels, best level last (bids ascending by price, asks
ascending by negated price), so the frequent updates near the touch move few elements. When a
side is full, the worst level is dropped (and counted). The default capacity (8192 levels per
side, 256 KiB of state) held the whole USD-M BTCUSDT book of the shared recording (about 12,000
distinct prices over six minutes, more than 4,096 alive at once) without a drop; the top levels stay
exact as long as a side never thins below what was dropped.

Message rules follow the store: a depth message ends at a row flagged ``EV_LAST``; a message
whose first row carries ``EV_SNAPSHOT`` clears the book first, and the book is valid from the end
of the first snapshot message on. Trades do not touch the book. The store's ``events()`` carries
no gap marker: after a sequence gap the stored deltas stop until the resync snapshot, so the book
stays as it was until that snapshot replaces it.

**Book frames.** Book features and book strategies read the top ``L`` levels as one float64 row
of ``4 * L`` columns: bid prices (best first), bid quantities, ask prices, ask quantities; missing
levels are NaN. A frame is a 2-D array of such rows (``book[i, BID_PX * L + k]`` is the k-th bid
price of row ``i``) with an int64 ``ts`` array beside it. :func:`book_from_events_nb` builds one
from events; ``tradelab.features.book_frame_from_snapshots`` from ``Catalog.book_snapshots``.

State vector layout: ``[capacity, n_bid, n_ask, valid, in_snapshot, at_message_start, dropped,
bid keys[capacity], bid qty[capacity], ask keys[capacity], ask qty[capacity]]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradelab.core.events import EV_BID, EV_DEPTH, EV_KIND_MASK, EV_LAST, EV_SNAPSHOT

BID_PX = 0
BID_QTY = 1
ASK_PX = 2
ASK_QTY = 3

DEFAULT_CAPACITY = 8192
_HDR = 7


@njit(cache=True, error_model="numpy")
def lob_size(capacity: int) -> int:
    """State slots of a book holding up to ``capacity`` levels per side."""
    return _HDR + 4 * capacity


@njit(cache=True, error_model="numpy")
def lob_init(s: np.ndarray, o: int, capacity: int) -> None:
    """An empty, invalid book."""
    s[o : o + _HDR + 4 * capacity] = 0.0
    s[o] = capacity
    s[o + 5] = 1.0


@njit(cache=True, error_model="numpy")
def lob_new(capacity: int = DEFAULT_CAPACITY) -> np.ndarray:
    """A state vector holding one book."""
    s = np.empty(lob_size(capacity))
    lob_init(s, 0, capacity)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def _apply_level(s: np.ndarray, o: int, side: int, key: float, qty: float) -> None:
    cap = int(s[o])
    keys = o + _HDR + 2 * side * cap
    qtys = keys + cap
    n = int(s[o + 1 + side])
    lo = 0
    hi = n
    while lo < hi:  # first slot with key >= key
        mid = (lo + hi) >> 1
        if s[keys + mid] < key:
            lo = mid + 1
        else:
            hi = mid
    j = lo
    if j < n and s[keys + j] == key:
        if qty > 0.0:
            s[qtys + j] = qty
        else:
            for m in range(j, n - 1):
                s[keys + m] = s[keys + m + 1]
                s[qtys + m] = s[qtys + m + 1]
            s[o + 1 + side] = n - 1
        return
    if qty <= 0.0:
        return
    if n == cap:  # full: the worst level (slot 0) goes
        s[o + 6] += 1.0
        if j == 0:
            return
        for m in range(0, j - 1):
            s[keys + m] = s[keys + m + 1]
            s[qtys + m] = s[qtys + m + 1]
        s[keys + j - 1] = key
        s[qtys + j - 1] = qty
        return
    for m in range(n, j, -1):
        s[keys + m] = s[keys + m - 1]
        s[qtys + m] = s[qtys + m - 1]
    s[keys + j] = key
    s[qtys + j] = qty
    s[o + 1 + side] = n + 1


@njit(cache=True, error_model="numpy", inline="always")
def lob_step(s: np.ndarray, o: int, ev: int, px: float, qty: float) -> bool:
    """Apply one event; True when it ends a depth message and the book is valid (read it now)."""
    e = np.int64(ev)
    if (e & EV_KIND_MASK) != EV_DEPTH:
        return False
    if s[o + 5] != 0.0:  # first row of a message
        if (e & EV_SNAPSHOT) != 0:
            s[o + 1] = 0.0
            s[o + 2] = 0.0
            s[o + 4] = 1.0
        else:
            s[o + 4] = 0.0
    if (e & EV_BID) != 0:
        _apply_level(s, o, 0, px, qty)
    else:
        _apply_level(s, o, 1, -px, qty)
    last = (e & EV_LAST) != 0
    s[o + 5] = 1.0 if last else 0.0
    if not last:
        return False
    if s[o + 4] != 0.0:
        s[o + 3] = 1.0
    return s[o + 3] != 0.0


@njit(cache=True, error_model="numpy", inline="always")
def lob_valid(s: np.ndarray, o: int) -> bool:
    """True once a snapshot message has completed."""
    return s[o + 3] != 0.0


@njit(cache=True, error_model="numpy", inline="always")
def lob_write_top(s: np.ndarray, o: int, book: np.ndarray, i: int) -> None:
    """Write the top ``L = book.shape[1] // 4`` levels into row ``i`` of a book frame."""
    cap = int(s[o])
    levels = book.shape[1] // 4
    for side in range(2):
        keys = o + _HDR + 2 * side * cap
        qtys = keys + cap
        n = int(s[o + 1 + side])
        sign = 1.0 if side == 0 else -1.0
        pcol = (BID_PX if side == 0 else ASK_PX) * levels
        qcol = (BID_QTY if side == 0 else ASK_QTY) * levels
        for k in range(levels):
            if k < n:
                book[i, pcol + k] = sign * s[keys + n - 1 - k]
                book[i, qcol + k] = s[qtys + n - 1 - k]
            else:
                book[i, pcol + k] = np.nan
                book[i, qcol + k] = np.nan


@njit(cache=True, error_model="numpy")
def lob_dropped(s: np.ndarray, o: int) -> int:
    """Levels dropped so far because a side was full."""
    return int(s[o + 6])


@njit(cache=True, error_model="numpy")
def book_from_events_nb(
    ev: np.ndarray,
    ts: np.ndarray,
    px: np.ndarray,
    qty: np.ndarray,
    levels: int,
    capacity: int = DEFAULT_CAPACITY,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A book frame with one row per completed depth message once the book is valid.

    Inputs are the ``ev``, ``exch_ts``, ``px`` and ``qty`` columns of an ``event_dt`` array.
    Returns ``(ts, book, event_index, dropped)``: the message's exchange time, the top
    ``levels`` levels after it, the index of its last event and the levels dropped at capacity.
    """
    n = ev.shape[0]
    m_max = 0
    for r in range(n):
        e = np.int64(ev[r])
        if (e & EV_KIND_MASK) == EV_DEPTH and (e & EV_LAST) != 0:
            m_max += 1
    s = lob_new(capacity)
    out_ts = np.empty(m_max, dtype=np.int64)
    out_idx = np.empty(m_max, dtype=np.int64)
    book = np.empty((m_max, 4 * levels))
    m = 0
    for r in range(n):
        if lob_step(s, 0, ev[r], px[r], qty[r]):
            lob_write_top(s, 0, book, m)
            out_ts[m] = ts[r]
            out_idx[m] = r
            m += 1
    return out_ts[:m].copy(), book[:m].copy(), out_idx[:m].copy(), lob_dropped(s, 0)
