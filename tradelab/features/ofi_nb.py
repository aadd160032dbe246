"""Order flow imbalance (Cont, Kukanov and Stoikov, 2014) and its multi-level version.

Input: a book frame (see :mod:`tradelab.features.lob_nb`), one row per book update. For
consecutive rows ``n-1``, ``n`` with best bid ``Pb``/size ``qb`` and best ask ``Pa``/``qa``, the
contribution of update ``n`` is (CKS 2014, eq. 2)::

    e_n = 1{Pb_n >= Pb_n-1} qb_n - 1{Pb_n <= Pb_n-1} qb_n-1
        - 1{Pa_n <= Pa_n-1} qa_n + 1{Pa_n >= Pa_n-1} qa_n-1

so a bid that moves up adds its whole new size, one that moves down removes its whole old size,
and an unchanged bid adds the size change (asks mirrored). It is not the naive difference of
sizes, which is wrong whenever a price moves. OFI over a window is the sum of ``e_n`` inside it
(:func:`bucket_sum_step` sums over fixed, epoch-aligned windows as in CKS).

The multi-level version (Xu, Gould and Howison, 2019) applies the same formula to the m-th level
of each side: ``e_n^m`` with level-m prices and sizes.

NaN policy: the first row, and any row right after an invalid one, contributes 0 (there is no
previous book to compare with); an invalid row (a NaN price or size on the level) contributes NaN
and forgets the previous book. Bucket sums skip NaN contributions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradelab.features.lob_nb import ASK_PX, ASK_QTY, BID_PX, BID_QTY

# -- multi-level OFI (level 0 alone is CKS) ----------------------------------------------------
# [levels n, then per level m: valid, Pb, qb, Pa, qa]


@njit(cache=True, error_model="numpy")
def ofi_size(n: int = 1) -> int:
    """State slots of OFI over the top ``n`` levels."""
    return 1 + 5 * n


@njit(cache=True, error_model="numpy")
def ofi_init(s: np.ndarray, o: int, n: int = 1) -> None:
    """Initial state: no previous book."""
    s[o : o + 1 + 5 * n] = 0.0
    s[o] = n


@njit(cache=True, error_model="numpy", inline="always")
def ofi_level_step(s: np.ndarray, o: int, book: np.ndarray, i: int, m: int) -> float:
    """``e_n`` of level ``m`` for row ``i`` (level 0 is the CKS best-quote OFI)."""
    L = book.shape[1] // 4
    pb = book[i, BID_PX * L + m]
    qb = book[i, BID_QTY * L + m]
    pa = book[i, ASK_PX * L + m]
    qa = book[i, ASK_QTY * L + m]
    st = o + 1 + 5 * m
    if math.isnan(pb) or math.isnan(qb) or math.isnan(pa) or math.isnan(qa):
        s[st] = 0.0
        return np.nan
    e = 0.0
    if s[st] != 0.0:
        ppb = s[st + 1]
        pqb = s[st + 2]
        ppa = s[st + 3]
        pqa = s[st + 4]
        if pb >= ppb:
            e += qb
        if pb <= ppb:
            e -= pqb
        if pa <= ppa:
            e -= qa
        if pa >= ppa:
            e += pqa
    s[st] = 1.0
    s[st + 1] = pb
    s[st + 2] = qb
    s[st + 3] = pa
    s[st + 4] = qa
    return e


@njit(cache=True, error_model="numpy", inline="always")
def ofi_step(s: np.ndarray, o: int, book: np.ndarray, i: int) -> float:
    """Sum of ``e_n^m`` over the state's ``n`` levels for row ``i`` (``n = 1``: CKS OFI)."""
    n = int(s[o])
    total = 0.0
    for m in range(n):
        total += ofi_level_step(s, o, book, i, m)
    return total


@njit(cache=True, error_model="numpy")
def ofi_nb(book: np.ndarray) -> np.ndarray:
    """CKS order-flow contribution ``e_n`` of every row (best quotes)."""
    s = np.empty(ofi_size(1))
    ofi_init(s, 0, 1)
    out = np.empty(book.shape[0])
    for i in range(book.shape[0]):
        out[i] = ofi_step(s, 0, book, i)
    return out


@njit(cache=True, error_model="numpy")
def multilevel_ofi_nb(book: np.ndarray, n: int) -> np.ndarray:
    """``e_n^m`` for every row and level ``m < n``, shape ``(rows, n)``."""
    s = np.empty(ofi_size(n))
    ofi_init(s, 0, n)
    out = np.empty((book.shape[0], n))
    for i in range(book.shape[0]):
        for m in range(n):
            out[i, m] = ofi_level_step(s, 0, book, i, m)
    return out


# -- sums over fixed windows --------------------------------------------------------------------
# [width ns, current bucket id, sum, count, started]

BUCKET_SIZE = 5


@njit(cache=True, error_model="numpy")
def bucket_init(s: np.ndarray, o: int, width_ns: int) -> None:
    """Initial state of a sum over epoch-aligned windows of ``width_ns`` nanoseconds."""
    s[o] = width_ns
    s[o + 1] = 0.0
    s[o + 2] = 0.0
    s[o + 3] = 0.0
    s[o + 4] = 0.0


@njit(cache=True, error_model="numpy", inline="always")
def bucket_sum_step(
    s: np.ndarray, o: int, ts: int, x: float
) -> tuple[bool, np.int64, float, int]:
    """Add ``x`` at time ``ts`` (non-decreasing); when ``ts`` opens a new window, the previous
    one is complete. Returns ``(closed, window_start_ns, sum, count)`` for that completed window
    (``closed`` False otherwise). NaN values are skipped (not counted)."""
    w = np.int64(s[o])
    b = ts // w
    closed = False
    start = np.int64(0)
    total = 0.0
    count = 0
    if s[o + 4] != 0.0 and b != np.int64(s[o + 1]):
        closed = True
        start = np.int64(s[o + 1]) * w
        total = s[o + 2]
        count = int(s[o + 3])
        s[o + 2] = 0.0
        s[o + 3] = 0.0
    s[o + 1] = b
    s[o + 4] = 1.0
    if not math.isnan(x):
        s[o + 2] += x
        s[o + 3] += 1.0
    return closed, start, total, count


@njit(cache=True, error_model="numpy")
def bucket_sum_nb(
    ts: np.ndarray, x: np.ndarray, width_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of ``x`` per epoch-aligned window: ``(window_start_ns, sum, count)`` for every
    window holding at least one row (the last, still open window included). Pandas:
    ``x.groupby(ts // width).sum()``."""
    n = ts.shape[0]
    s = np.empty(BUCKET_SIZE)
    bucket_init(s, 0, width_ns)
    starts = np.empty(n, dtype=np.int64)
    sums = np.empty(n)
    counts = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        closed, start, total, count = bucket_sum_step(s, 0, ts[i], x[i])
        if closed:
            starts[k] = start
            sums[k] = total
            counts[k] = count
            k += 1
    if n > 0:
        starts[k] = np.int64(s[1]) * width_ns
        sums[k] = s[2]
        counts[k] = int(s[3])
        k += 1
    return starts[:k].copy(), sums[:k].copy(), counts[:k].copy()
