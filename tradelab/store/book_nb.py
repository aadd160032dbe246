"""Numba kernels that rebuild an L2 book from stored snapshot + delta rows.

Inputs are the ``book`` table's columns as arrays, in storage order: ``ts`` (int64 ns),
``side`` (int8: +1 bid, -1 ask), ``pidx`` (int64 index of the row's price in ``prices``, the
sorted unique prices of the whole query), ``qty`` (float64; 0 removes the level) and ``flags``
(uint8, ``BOOK_SNAPSHOT`` | ``BOOK_LAST``). Mapping prices to a dense index space makes each
level update O(1) and keeps levels exactly ordered without float keys.

A message starts after a row flagged ``BOOK_LAST`` (or where ``ts`` changes). A snapshot message
clears the book first. The book is *valid* from the end of the first snapshot message; a time in
``gap_ts`` (sorted) marks the book invalid until the next snapshot.

The kernels take their state explicitly (``BookState``: two quantity arrays and a small int64
vector) so a long query is processed chunk by chunk with bounded memory. No pandas, no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tradelab.store.schema import BOOK_LAST, BOOK_SNAPSHOT

# slots of the int64 state vector
S_BEST_BID = 0
S_BEST_ASK = 1
S_VALID = 2
S_IN_SNAPSHOT = 3
S_GRID_POS = 4
S_GAP_POS = 5
S_PREV_LAST = 6  # previous row ended a message (1) or not (0); 1 before the first row
S_PREV_TS = 7
S_SIZE = 8


class BookState(NamedTuple):
    """Explicit state of the book kernels (create with :func:`new_state`)."""

    bid_q: np.ndarray
    ask_q: np.ndarray
    ivec: np.ndarray


def new_state(n_prices: int) -> BookState:
    """An empty, invalid book over ``n_prices`` price slots."""
    ivec = np.zeros(S_SIZE, dtype=np.int64)
    ivec[S_BEST_BID] = -1
    ivec[S_BEST_ASK] = n_prices
    ivec[S_PREV_LAST] = 1
    ivec[S_PREV_TS] = np.iinfo(np.int64).min
    return BookState(np.zeros(n_prices), np.zeros(n_prices), ivec)


@njit(cache=True, inline="always")
def _apply_row(side, i, q, bid_q, ask_q, best_bid, best_ask):
    n = bid_q.shape[0]
    if side > 0:
        bid_q[i] = q
        if q > 0.0:
            if i > best_bid:
                best_bid = i
        elif i == best_bid:
            j = i - 1
            while j >= 0 and bid_q[j] <= 0.0:
                j -= 1
            best_bid = j
    else:
        ask_q[i] = q
        if q > 0.0:
            if i < best_ask:
                best_ask = i
        elif i == best_ask:
            j = i + 1
            while j < n and ask_q[j] <= 0.0:
                j += 1
            best_ask = j
    return best_bid, best_ask


@njit(cache=True, inline="always")
def _begin_message(t, flag, gap_ts, bid_q, ask_q, ivec, best_bid, best_ask):
    """At the first row of a message: recorded gaps up to ``t`` invalidate the book, and a
    snapshot message clears it. Returns the (possibly reset) best bid/ask indices."""
    g = ivec[S_GAP_POS]
    while g < gap_ts.shape[0] and gap_ts[g] <= t:
        ivec[S_VALID] = 0
        g += 1
    ivec[S_GAP_POS] = g
    if (flag & BOOK_SNAPSHOT) != 0:
        ivec[S_IN_SNAPSHOT] = 1
        bid_q[:] = 0.0
        ask_q[:] = 0.0
        return -1, bid_q.shape[0]
    ivec[S_IN_SNAPSHOT] = 0
    return best_bid, best_ask


@njit(cache=True)
def _fill_levels(
    prices, bid_q, ask_q, best_bid, best_ask, levels, row, bid_px, bid_sz, ask_px, ask_sz
):
    n = bid_q.shape[0]
    j = best_bid
    k = 0
    while j >= 0 and k < levels:
        if bid_q[j] > 0.0:
            bid_px[row, k] = prices[j]
            bid_sz[row, k] = bid_q[j]
            k += 1
        j -= 1
    j = best_ask
    k = 0
    while j < n and k < levels:
        if ask_q[j] > 0.0:
            ask_px[row, k] = prices[j]
            ask_sz[row, k] = ask_q[j]
            k += 1
        j += 1


@njit(cache=True)
def _emit_until(
    t,
    inclusive,
    prices,
    grid,
    gap_ts,
    levels,
    bid_q,
    ask_q,
    ivec,
    valid_out,
    bid_px,
    bid_sz,
    ask_px,
    ask_sz,
):
    """Emit grid points before ``t`` (or up to and including it) from the current state.

    A gap at or before a grid point invalidates the book from that point on, even though no
    message arrives between the gap and the grid point.
    """
    k = ivec[S_GRID_POS]
    g = ivec[S_GAP_POS]
    n_grid = grid.shape[0]
    n_gap = gap_ts.shape[0]
    while k < n_grid and (grid[k] < t or (inclusive and grid[k] == t)):
        while g < n_gap and gap_ts[g] <= grid[k]:
            ivec[S_VALID] = 0
            g += 1
        if ivec[S_VALID] != 0:
            valid_out[k] = True
            _fill_levels(
                prices,
                bid_q,
                ask_q,
                ivec[S_BEST_BID],
                ivec[S_BEST_ASK],
                levels,
                k,
                bid_px,
                bid_sz,
                ask_px,
                ask_sz,
            )
        k += 1
    ivec[S_GRID_POS] = k
    ivec[S_GAP_POS] = g


@njit(cache=True)
def sample_book_chunk_nb(
    ts,
    side,
    pidx,
    qty,
    flags,
    prices,
    grid,
    gap_ts,
    levels,
    bid_q,
    ask_q,
    ivec,
    valid_out,
    bid_px,
    bid_sz,
    ask_px,
    ask_sz,
):
    """Advance the book over one chunk of rows, writing grid samples in place.

    Grid point ``grid[k]`` receives the book after every message with ``ts <= grid[k]``.
    Output arrays have shape ``(len(grid), levels)`` and must start as NaN / False.
    """
    best_bid = ivec[S_BEST_BID]
    best_ask = ivec[S_BEST_ASK]
    for r in range(ts.shape[0]):
        t = ts[r]
        if ivec[S_PREV_LAST] != 0 or ivec[S_PREV_TS] != t:
            ivec[S_BEST_BID] = best_bid
            ivec[S_BEST_ASK] = best_ask
            _emit_until(
                t,
                False,
                prices,
                grid,
                gap_ts,
                levels,
                bid_q,
                ask_q,
                ivec,
                valid_out,
                bid_px,
                bid_sz,
                ask_px,
                ask_sz,
            )
            best_bid, best_ask = _begin_message(
                t, flags[r], gap_ts, bid_q, ask_q, ivec, best_bid, best_ask
            )
        best_bid, best_ask = _apply_row(side[r], pidx[r], qty[r], bid_q, ask_q, best_bid, best_ask)
        last = (flags[r] & BOOK_LAST) != 0
        if last and ivec[S_IN_SNAPSHOT] != 0:
            ivec[S_VALID] = 1
        ivec[S_PREV_LAST] = 1 if last else 0
        ivec[S_PREV_TS] = t
    ivec[S_BEST_BID] = best_bid
    ivec[S_BEST_ASK] = best_ask


@njit(cache=True)
def sample_book_finish_nb(
    prices, grid, gap_ts, levels, bid_q, ask_q, ivec, valid_out, bid_px, bid_sz, ask_px, ask_sz
):
    """Emit the remaining grid points from the final state (after the last chunk)."""
    if ivec[S_IN_SNAPSHOT] != 0:
        ivec[S_VALID] = 1  # a snapshot at the very end without BOOK_LAST still completes
    _emit_until(
        np.iinfo(np.int64).max,
        True,
        prices,
        grid,
        gap_ts,
        levels,
        bid_q,
        ask_q,
        ivec,
        valid_out,
        bid_px,
        bid_sz,
        ask_px,
        ask_sz,
    )


@njit(cache=True)
def top_of_book_chunk_nb(ts, side, pidx, qty, flags, prices, gap_ts, bid_q, ask_q, ivec):
    """Best bid/ask after every message that ends in this chunk.

    Returns ``(end_row, valid, bid_px, bid_qty, ask_px, ask_qty)``, one entry per message, where
    ``end_row`` indexes the message's last row within the chunk. A message ends at a row flagged
    ``BOOK_LAST``; a chunk boundary never splits a message as long as producers set that flag.
    Missing sides are NaN.
    """
    n = ts.shape[0]
    n_px = prices.shape[0]
    end_row = np.empty(n, dtype=np.int64)
    valid_out = np.zeros(n, dtype=np.bool_)
    bpx = np.full(n, np.nan)
    bsz = np.full(n, np.nan)
    apx = np.full(n, np.nan)
    asz = np.full(n, np.nan)
    best_bid = ivec[S_BEST_BID]
    best_ask = ivec[S_BEST_ASK]
    m = 0
    for r in range(n):
        t = ts[r]
        if ivec[S_PREV_LAST] != 0 or ivec[S_PREV_TS] != t:
            best_bid, best_ask = _begin_message(
                t, flags[r], gap_ts, bid_q, ask_q, ivec, best_bid, best_ask
            )
        best_bid, best_ask = _apply_row(side[r], pidx[r], qty[r], bid_q, ask_q, best_bid, best_ask)
        last = (flags[r] & BOOK_LAST) != 0
        ends = last or (r + 1 < n and ts[r + 1] != t)
        if ends:
            if ivec[S_IN_SNAPSHOT] != 0:
                ivec[S_VALID] = 1
            end_row[m] = r
            valid_out[m] = ivec[S_VALID] != 0
            if best_bid >= 0:
                bpx[m] = prices[best_bid]
                bsz[m] = bid_q[best_bid]
            if best_ask < n_px:
                apx[m] = prices[best_ask]
                asz[m] = ask_q[best_ask]
            m += 1
        ivec[S_PREV_LAST] = 1 if last else 0
        ivec[S_PREV_TS] = t
    ivec[S_BEST_BID] = best_bid
    ivec[S_BEST_ASK] = best_ask
    return end_row[:m], valid_out[:m], bpx[:m], bsz[:m], apx[:m], asz[:m]
