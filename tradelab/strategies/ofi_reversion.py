"""OFI reversion: fade order-flow bursts that stand out from recent flow, when the spread is tight.

Rule: order flow imbalance (Cont, Kukanov and Stoikov 2014; summed over the top ``levels``
levels, see ``tradelab.features.ofi_nb``) is summed over epoch-aligned windows of ``window_ms``.
When a window completes (at the first update of a later window), its OFI is z-scored against the
``lookback`` windows before it (mean and population standard deviation; windows without an
update count as OFI 0). Then, from flat: ``z > z_entry`` (a buying burst) emits
``ENTER_SHORT`` at the best ask and ``z < -z_entry`` emits ``ENTER_LONG`` at the best bid, but
only if the current spread is at most ``max_spread_bps``. In a long, ``z > -z_exit`` (the
selling pressure has faded) emits ``EXIT`` at the mid; in a short, ``z < z_exit``. Decisions are
taken only when a window completes and the book is valid; nothing happens before ``lookback``
windows have completed.

Input: a book frame (``features.book_frame_from_events``: one row per depth message, the CKS
setting; or ``features.book_frame_from_snapshots``: one row per grid point) with at least
``levels`` levels, and each row's exchange time. Output: ``intent_dt`` records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.depth_nb import spread_bps
from tradelab.features.lob_nb import ASK_PX, BID_PX
from tradelab.features.ofi_nb import ofi_init, ofi_size, ofi_step
from tradelab.strategies import base
from tradelab.strategies.common_nb import NS_PER_MS, emit
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BOOK, IntentKind, intent_dt

NAME = "ofi_reversion"
KIND = BOOK
INPUTS = ("book",)


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    constraints = (("z_exit < z_entry is required", lambda c: c["z_exit"] < c["z_entry"]),)
    window_ms: int = param(1000, 10, 3_600_000, integer=True, doc="OFI window length")
    lookback: int = param(60, 3, 100_000, integer=True, doc="windows in the z-score baseline")
    z_entry: float = param(2.0, 0.1, 20.0, doc="enter when |z| exceeds this")
    z_exit: float = param(0.5, 0.0, 20.0, doc="exit when z is back within this of zero")
    levels: int = param(1, 1, 20, integer=True, doc="book levels summed in the OFI")
    max_spread_bps: float = param(2.0, 0.0, 1000.0, doc="no entry when the spread is wider")


WINDOW_MS, LOOKBACK, Z_ENTRY, Z_EXIT, LEVELS, MAX_SPREAD_BPS = range(6)
# state: [side, current window id, its OFI sum, started, ring position, windows completed,
#         ring sum, ring sum of squares | OFI state | ring[lookback] of window sums]
_HDR = 8


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``."""
    n_ofi = ofi_size(int(p[LEVELS]))
    s = np.zeros(_HDR + n_ofi + int(p[LOOKBACK]))
    ofi_init(s, _HDR, int(p[LEVELS]))
    return s


@njit(cache=True, error_model="numpy", inline="always")
def _push(s: np.ndarray, ring: int, n: int, x: float) -> None:
    """Add a completed window's OFI to the baseline ring (running sums, recomputed exactly
    each time the ring wraps)."""
    pos = int(s[4])
    if s[5] >= n:
        old = s[ring + pos]
        s[6] -= old
        s[7] -= old * old
    s[ring + pos] = x
    s[6] += x
    s[7] += x * x
    s[5] += 1.0
    pos += 1
    if pos == n:
        pos = 0
        a = 0.0
        b = 0.0
        for j in range(n):
            v = s[ring + j]
            a += v
            b += v * v
        s[6] = a
        s[7] = b
    s[4] = pos


@njit(cache=True, error_model="numpy", inline="always")
def _zscore(s: np.ndarray, n: int, x: float) -> float:
    """z of ``x`` against the ring (NaN until it holds ``n`` windows or when it is flat)."""
    if s[5] < n:
        return np.nan
    mean = s[6] / n
    var = s[7] / n - mean * mean
    if not var > 0.0:
        return np.nan
    return (x - mean) / math.sqrt(var)


@njit(cache=True, error_model="numpy", inline="always")
def step(
    p: np.ndarray, s: np.ndarray, ts: int, book: np.ndarray, i: int
) -> tuple[int, float]:
    """Advance by one book update (row ``i``, exchange time ``ts``); returns ``(IntentKind,
    price reference)``, ``(NONE, nan)`` when there is nothing to do."""
    n = int(p[LOOKBACK])
    ring = _HDR + ofi_size(int(p[LEVELS]))
    e = ofi_step(s, _HDR, book, i)
    w = ts // (np.int64(p[WINDOW_MS]) * NS_PER_MS)
    kind = IntentKind.NONE
    px = np.nan
    if s[3] != 0.0 and w != s[1]:
        # the current window is complete, and so is every empty one after it
        z = np.nan
        gaps = min(int(w - np.int64(s[1])) - 1, n)
        if gaps == 0:
            z = _zscore(s, n, s[2])
        _push(s, ring, n, s[2])
        for g in range(gaps):
            if g == gaps - 1:
                z = _zscore(s, n, 0.0)
            _push(s, ring, n, 0.0)
        L = book.shape[1] // 4
        bid = book[i, BID_PX * L]
        ask = book[i, ASK_PX * L]
        if not (math.isnan(z) or math.isnan(bid) or math.isnan(ask)):
            side = s[0]
            if side == 0.0:
                if spread_bps(book, i) <= p[MAX_SPREAD_BPS]:
                    if z > p[Z_ENTRY]:
                        kind = IntentKind.ENTER_SHORT
                        px = ask
                        s[0] = -1.0
                    elif z < -p[Z_ENTRY]:
                        kind = IntentKind.ENTER_LONG
                        px = bid
                        s[0] = 1.0
            elif (side > 0.0 and z > -p[Z_EXIT]) or (side < 0.0 and z < p[Z_EXIT]):
                kind = IntentKind.EXIT
                px = (bid + ask) / 2.0
                s[0] = 0.0
        s[2] = 0.0
    s[1] = w
    s[3] = 1.0
    if not math.isnan(e):
        s[2] += e
    return kind, px


@njit(cache=True, error_model="numpy")
def run_nb(
    p: np.ndarray, s: np.ndarray, ts: np.ndarray, book: np.ndarray, set_id: int, out: np.ndarray
) -> int:
    """The vectorized form: ``step`` over every row; intents into ``out`` (as many as fit) and
    the number of intents returned."""
    k = 0
    for i in range(ts.shape[0]):
        kind, px = step(p, s, ts[i], book, i)
        if kind != IntentKind.NONE:
            k = emit(out, k, ts[i], i, px, set_id, kind)
    return k


@njit(cache=True, error_model="numpy", parallel=True)
def grid_nb(P: np.ndarray, ts: np.ndarray, book: np.ndarray) -> np.ndarray:
    """Every parameter set in parallel: a counting pass, then a filling pass into one record
    array sized exactly, ordered by set then row."""
    n_sets = P.shape[0]
    counts = np.zeros(n_sets, dtype=np.int64)
    none = np.empty(0, dtype=intent_dt)
    for j in prange(n_sets):
        counts[j] = run_nb(P[j], init_state_nb(P[j]), ts, book, j, none)
    starts = np.zeros(n_sets + 1, dtype=np.int64)
    for j in range(n_sets):
        starts[j + 1] = starts[j] + counts[j]
    out = np.empty(starts[n_sets], dtype=intent_dt)
    for j in prange(n_sets):
        run_nb(P[j], init_state_nb(P[j]), ts, book, j, out[starts[j]:starts[j + 1]])
    return out


init_state, run, grid = base.bind(__name__)
