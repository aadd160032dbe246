"""Order-book features over book frames: mid, spread, depth imbalance, weighted mid, microprice,
liquidity events.

Input: a book frame (see :mod:`tradelab.features.lob_nb`), a 2-D float64 array with one row per
book update and ``4 * L`` columns (bid prices best first, bid quantities, ask prices, ask
quantities), from ``Catalog.events`` or ``Catalog.book_snapshots``. Row functions take
``(book, i, ...)`` and read row ``i`` only; the ``*_nb`` forms loop over rows. Liquidity events
compare a row with the previous one and keep that previous row in an explicit state.

NaN policy: a row whose best bid or ask is NaN (an invalid or one-sided book) gives NaN; a feature
over ``n`` levels needs all ``n`` on both sides (NaN otherwise). Prices and sizes are never filled.

Definitions (``b``/``a`` best bid/ask price, ``qb``/``qa`` their sizes, ``Qb``/``Qa`` the sizes
summed over ``n`` levels):

- ``mid = (b + a) / 2``; ``spread_bps = (a - b) / mid * 1e4``;
- ``depth_imbalance = (Qb - Qa) / (Qb + Qa)`` in [-1, 1];
- ``weighted_mid = I * a + (1 - I) * b`` with ``I = qb / (qb + qa)``: Stoikov's weighted
  mid-price, which leans towards the side with less size;
- ``microprice`` over ``n`` levels: ``I_n * vwap_a + (1 - I_n) * vwap_b`` with
  ``I_n = Qb / (Qb + Qa)`` and each side's size-weighted price over its ``n`` levels. With
  ``n = 1`` it is the weighted mid. (Stoikov's 2018 micro-price, the limit of expected mids
  given imbalance and spread, needs a fitted transition model and is not this.)
- ``tilt_bps = (microprice - mid) / mid * 1e4``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradelab.features.lob_nb import ASK_PX, ASK_QTY, BID_PX, BID_QTY

# liquidity event flags (bit mask, one uint8 per row)
LIQ_BID_EMPTIED = 1
LIQ_ASK_EMPTIED = 2
LIQ_BID_DROP = 4
LIQ_ASK_DROP = 8
LIQ_BID_GAP = 16
LIQ_ASK_GAP = 32
LIQ_INVALID = 64


@njit(cache=True, error_model="numpy", inline="always")
def mid_price(book: np.ndarray, i: int) -> float:
    """``(best bid + best ask) / 2``."""
    L = book.shape[1] // 4
    return (book[i, BID_PX * L] + book[i, ASK_PX * L]) / 2.0


@njit(cache=True, error_model="numpy", inline="always")
def spread_bps(book: np.ndarray, i: int) -> float:
    """Quoted spread in basis points of the mid."""
    L = book.shape[1] // 4
    b = book[i, BID_PX * L]
    a = book[i, ASK_PX * L]
    return (a - b) / ((b + a) / 2.0) * 1e4


@njit(cache=True, error_model="numpy", inline="always")
def _depth(book: np.ndarray, i: int, col: int, n: int) -> float:
    q = 0.0
    for k in range(n):
        q += book[i, col + k]
    return q


@njit(cache=True, error_model="numpy", inline="always")
def depth_imbalance(book: np.ndarray, i: int, n: int) -> float:
    """``(Qb - Qa) / (Qb + Qa)`` over the top ``n`` levels."""
    L = book.shape[1] // 4
    qb = _depth(book, i, BID_QTY * L, n)
    qa = _depth(book, i, ASK_QTY * L, n)
    return (qb - qa) / (qb + qa)


@njit(cache=True, error_model="numpy", inline="always")
def weighted_mid(book: np.ndarray, i: int) -> float:
    """Stoikov's weighted mid ``I * ask + (1 - I) * bid``, ``I = qb / (qb + qa)``."""
    L = book.shape[1] // 4
    qb = book[i, BID_QTY * L]
    qa = book[i, ASK_QTY * L]
    imb = qb / (qb + qa)
    return imb * book[i, ASK_PX * L] + (1.0 - imb) * book[i, BID_PX * L]


@njit(cache=True, error_model="numpy", inline="always")
def microprice(book: np.ndarray, i: int, n: int) -> float:
    """``I_n * vwap_ask + (1 - I_n) * vwap_bid`` over the top ``n`` levels."""
    L = book.shape[1] // 4
    qb = 0.0
    nb = 0.0
    qa = 0.0
    na = 0.0
    for k in range(n):
        q = book[i, BID_QTY * L + k]
        qb += q
        nb += q * book[i, BID_PX * L + k]
        q = book[i, ASK_QTY * L + k]
        qa += q
        na += q * book[i, ASK_PX * L + k]
    imb = qb / (qb + qa)
    return imb * (na / qa) + (1.0 - imb) * (nb / qb)


@njit(cache=True, error_model="numpy", inline="always")
def tilt_bps(book: np.ndarray, i: int, n: int) -> float:
    """``(microprice - mid) / mid * 1e4`` over the top ``n`` levels."""
    m = mid_price(book, i)
    return (microprice(book, i, n) - m) / m * 1e4


@njit(cache=True, error_model="numpy")
def book_features_nb(book: np.ndarray, n: int) -> np.ndarray:
    """Columns ``mid, spread_bps, depth_imbalance(n), weighted_mid, microprice(n), tilt_bps(n)``
    for every row, shape ``(rows, 6)``."""
    m = book.shape[0]
    out = np.empty((m, 6))
    for i in range(m):
        out[i, 0] = mid_price(book, i)
        out[i, 1] = spread_bps(book, i)
        out[i, 2] = depth_imbalance(book, i, n)
        out[i, 3] = weighted_mid(book, i)
        out[i, 4] = microprice(book, i, n)
        out[i, 5] = tilt_bps(book, i, n)
    return out


# -- liquidity events -------------------------------------------------------------------------
# [levels n, previous row valid, previous row (4 * n: bid px, bid qty, ask px, ask qty)]


@njit(cache=True, error_model="numpy")
def liquidity_size(n: int) -> int:
    """State slots of the liquidity-event detector over ``n`` levels."""
    return 2 + 4 * n


@njit(cache=True, error_model="numpy")
def liquidity_init(s: np.ndarray, o: int, n: int) -> None:
    """Initial state: no previous row."""
    s[o : o + 2 + 4 * n] = 0.0
    s[o] = n


@njit(cache=True, error_model="numpy", inline="always")
def _side_events(
    s: np.ndarray, o: int, book: np.ndarray, i: int, side: int, drop_frac: float
) -> int:
    n = int(s[o])
    L = book.shape[1] // 4
    pcol = (BID_PX if side == 0 else ASK_PX) * L
    qcol = (BID_QTY if side == 0 else ASK_QTY) * L
    prev_p = o + 2 + (0 if side == 0 else 2 * n)
    prev_q = prev_p + n
    sign = 1.0 if side == 0 else -1.0  # bids: better = higher
    flags = 0
    # a level emptied: a previous price that is still inside the displayed range is gone
    worst = book[i, pcol + n - 1]
    for k in range(n):
        p = s[prev_p + k]
        if math.isnan(p):
            continue
        inside = math.isnan(worst) or sign * p >= sign * worst
        if not inside:
            continue
        found = False
        for j in range(n):
            if book[i, pcol + j] == p:
                found = True
                break
        if not found:
            flags |= 1
            break
    # depth over n levels dropping by more than drop_frac
    before = 0.0
    now = 0.0
    for k in range(n):
        q = s[prev_q + k]
        before += q if not math.isnan(q) else 0.0
        q = book[i, qcol + k]
        now += q if not math.isnan(q) else 0.0
    if before > 0.0 and (before - now) > drop_frac * before:
        flags |= 2
    return flags


@njit(cache=True, error_model="numpy", inline="always")
def _has_gap(book: np.ndarray, i: int, side: int, n: int, gap_bps: float) -> bool:
    """Two adjacent displayed levels further apart than ``gap_bps`` of the mid."""
    L = book.shape[1] // 4
    pcol = (BID_PX if side == 0 else ASK_PX) * L
    sign = 1.0 if side == 0 else -1.0
    m = mid_price(book, i)
    for k in range(n - 1):
        if sign * (book[i, pcol + k] - book[i, pcol + k + 1]) / m * 1e4 > gap_bps:
            return True
    return False


@njit(cache=True, error_model="numpy", inline="always")
def liquidity_step(
    s: np.ndarray, o: int, book: np.ndarray, i: int, drop_frac: float, gap_bps: float
) -> int:
    """Liquidity events of row ``i`` against the previous row, as ``LIQ_*`` bit flags.

    Per side, over the top ``n`` levels: *emptied*, a price shown in the previous row that still
    lies inside this row's displayed range (at or better than its n-th level) is gone, so the
    level was taken or cancelled entirely (a level pushed below the n-th by better prices does
    not count); *drop*, the summed size fell by more than ``drop_frac`` (0.5 = 50%) in one update;
    *gap*, two adjacent shown levels are more than ``gap_bps`` apart. A row with no best bid or
    ask is ``LIQ_INVALID``; the row after it is compared with nothing.
    """
    n = int(s[o])
    L = book.shape[1] // 4
    if math.isnan(book[i, BID_PX * L]) or math.isnan(book[i, ASK_PX * L]):
        s[o + 1] = 0.0
        return LIQ_INVALID
    flags = 0
    if _has_gap(book, i, 0, n, gap_bps):
        flags |= LIQ_BID_GAP
    if _has_gap(book, i, 1, n, gap_bps):
        flags |= LIQ_ASK_GAP
    if s[o + 1] != 0.0:
        b = _side_events(s, o, book, i, 0, drop_frac)
        a = _side_events(s, o, book, i, 1, drop_frac)
        if b & 1:
            flags |= LIQ_BID_EMPTIED
        if a & 1:
            flags |= LIQ_ASK_EMPTIED
        if b & 2:
            flags |= LIQ_BID_DROP
        if a & 2:
            flags |= LIQ_ASK_DROP
    for k in range(n):
        s[o + 2 + k] = book[i, BID_PX * L + k]
        s[o + 2 + n + k] = book[i, BID_QTY * L + k]
        s[o + 2 + 2 * n + k] = book[i, ASK_PX * L + k]
        s[o + 2 + 3 * n + k] = book[i, ASK_QTY * L + k]
    s[o + 1] = 1.0
    return flags


@njit(cache=True, error_model="numpy")
def liquidity_events_nb(book: np.ndarray, n: int, drop_frac: float, gap_bps: float) -> np.ndarray:
    """``LIQ_*`` flags for every row (uint8)."""
    s = np.empty(liquidity_size(n))
    liquidity_init(s, 0, n)
    out = np.empty(book.shape[0], dtype=np.uint8)
    for i in range(book.shape[0]):
        out[i] = liquidity_step(s, 0, book, i, drop_frac, gap_bps)
    return out
