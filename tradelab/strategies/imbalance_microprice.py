"""Imbalance + microprice: join the side the book leans to, with hysteresis and a cooldown.

Rule, on each book update (the top ``levels`` levels): ``imbalance`` is the depth imbalance
``(Qb - Qa) / (Qb + Qa)`` and ``tilt`` the microprice minus the mid in bps (both over
``levels``; see ``tradelab.features.depth_nb``). The signal is *long* when
``imbalance > imb_entry`` and ``tilt > tilt_entry_bps``, *short* when ``imbalance < -imb_entry``
and ``tilt < -tilt_entry_bps``, else neutral. A state machine turns it into order intents:

- ``ARMED``: on a long (short) signal, and at least ``cooldown_ms`` after the previous intent,
  emit ``ENTER_LONG`` at the best bid (``ENTER_SHORT`` at the best ask) -> ``IN_TRADE``;
- ``IN_TRADE``: once the signal is no longer the one entered on (neutral or adverse), emit
  ``CANCEL`` at the mid -> ``WAIT_REARM``; an invalid book (no best bid or ask) cancels too
  (price reference NaN);
- ``WAIT_REARM``: back to ``ARMED`` once ``|imbalance| < imb_rearm`` or
  ``|tilt| < tilt_rearm_bps`` (the lean has faded), so one lean is traded once.

At most one intent per update. The defaults are the specified thresholds (0.20 / 0.5 bps to
enter, 0.10 / 0.2 bps to re-arm, 1500 ms). They suit wider books than BTCUSDT's: on the USD-M
recording (spread one tick, 0.016 bps) the 5-level tilt has a median of 0.03 bps and exceeds
0.5 bps on 0.6% of updates, so the defaults act a few dozen times in six minutes.

Input: a book frame (``features.book_frame_from_events`` from ``Catalog.events``, one row per
depth message, or ``features.book_frame_from_snapshots`` from ``Catalog.book_snapshots``, one
row per grid point) with at least ``levels`` levels; the step reads row ``i`` and its exchange
time ``ts``. Output: ``intent_dt`` records. Sizing, execution and risk are not its business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from tradelab.features.depth_nb import depth_imbalance, tilt_bps
from tradelab.features.lob_nb import ASK_PX, BID_PX
from tradelab.strategies import base
from tradelab.strategies.common_nb import NS_PER_MS, emit, ns_since, ts_clear, ts_store
from tradelab.strategies.params import StrategyParams, param
from tradelab.strategies.types import BOOK, IntentKind, Phase, intent_dt

NAME = "imbalance_microprice"
KIND = BOOK
INPUTS = ("book",)


@dataclass(frozen=True)
class Params(StrategyParams):
    strategy = NAME
    constraints = (
        ("imb_rearm <= imb_entry is required", lambda c: c["imb_rearm"] <= c["imb_entry"]),
        ("tilt_rearm_bps <= tilt_entry_bps is required",
         lambda c: c["tilt_rearm_bps"] <= c["tilt_entry_bps"]),
    )
    levels: int = param(5, 1, 50, integer=True, doc="book levels in imbalance and microprice")
    imb_entry: float = param(0.20, 0.0, 1.0, doc="signal needs |imbalance| above this ...")
    tilt_entry_bps: float = param(0.5, 0.0, 1000.0, doc="... and |tilt| (bps) above this")
    imb_rearm: float = param(0.10, 0.0, 1.0, doc="re-arm once |imbalance| is below this ...")
    tilt_rearm_bps: float = param(0.2, 0.0, 1000.0, doc="... or |tilt| (bps) is below this")
    cooldown_ms: float = param(1500.0, 0.0, 3_600_000.0, doc="minimum time between intents")


LEVELS, IMB_ENTRY, TILT_ENTRY_BPS, IMB_REARM, TILT_REARM_BPS, COOLDOWN_MS = range(6)
# state: [phase, side of the trade, last intent time (ms, ns)]
_SIZE = 4


@njit(cache=True, error_model="numpy")
def init_state_nb(p: np.ndarray) -> np.ndarray:
    """A fresh state vector for parameter vector ``p``: ARMED, no intent yet."""
    s = np.zeros(_SIZE)
    s[0] = Phase.ARMED
    ts_clear(s, 2)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def step(
    p: np.ndarray, s: np.ndarray, ts: int, book: np.ndarray, i: int
) -> tuple[int, float]:
    """Advance by one book update (row ``i`` of ``book``, exchange time ``ts``); returns
    ``(IntentKind, price reference)``, ``(NONE, nan)`` when there is nothing to do."""
    n = int(p[LEVELS])
    L = book.shape[1] // 4
    bid = book[i, BID_PX * L]
    ask = book[i, ASK_PX * L]
    phase = s[0]
    kind = IntentKind.NONE
    px = np.nan
    if math.isnan(bid) or math.isnan(ask):
        if phase == Phase.IN_TRADE:
            kind = IntentKind.CANCEL
            s[0] = Phase.WAIT_REARM
            ts_store(s, 2, ts)
        return kind, px
    imb = depth_imbalance(book, i, n)
    tilt = tilt_bps(book, i, n)
    long_sig = imb > p[IMB_ENTRY] and tilt > p[TILT_ENTRY_BPS]
    short_sig = imb < -p[IMB_ENTRY] and tilt < -p[TILT_ENTRY_BPS]
    if phase == Phase.IN_TRADE:
        if not (long_sig if s[1] > 0.0 else short_sig):
            kind = IntentKind.CANCEL
            px = (bid + ask) / 2.0
            phase = Phase.WAIT_REARM
            ts_store(s, 2, ts)
    elif phase == Phase.WAIT_REARM:
        if abs(imb) < p[IMB_REARM] or abs(tilt) < p[TILT_REARM_BPS]:
            phase = Phase.ARMED
    if (
        phase == Phase.ARMED
        and kind == IntentKind.NONE
        and (long_sig or short_sig)
        and ns_since(s, 2, ts) >= p[COOLDOWN_MS] * NS_PER_MS
    ):
        if long_sig:
            kind = IntentKind.ENTER_LONG
            px = bid
            s[1] = 1.0
        else:
            kind = IntentKind.ENTER_SHORT
            px = ask
            s[1] = -1.0
        phase = Phase.IN_TRADE
        ts_store(s, 2, ts)
    s[0] = phase
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
