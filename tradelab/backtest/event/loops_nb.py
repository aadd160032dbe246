"""Strategy loops over the two-clock replay (numba): decide at local time, send orders, repeat.

``quote_loop_nb`` runs a quoting strategy (``tradelab.strategies.market_making.step``): every
``requote_ms`` of local time it reads the local book's top and the locally known position, asks
the strategy for a bid and an ask, rounds them to the tick (bids down, asks up, never onto the
other side of the book: the quotes are post-only) and reconciles: a live quote at another price
is cancelled and a new one is sent at once (the cancel and the new order travel in order through
the same latency queue). Inside a gap (``S_GAP``) it cancels its quotes and waits.

The loop is resumable: it returns whenever ``elapse_nb`` asks for data or a log drain, with its
own state in ``st`` (int64), and picks up where it left off when called again.

``imbalance_loop_nb`` runs the book strategy ``imbalance_microprice`` unchanged: its ``step``
reads a one-row book frame written from the local book after every local depth message.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradelab.matching import core_nb as cn
from tradelab.matching import sim_nb as sn
from tradelab.matching.frame_nb import write_frame_row_nb
from tradelab.matching.types import (
    BUY,
    F_REDUCE_ONLY,
    GTX,
    I_BASE,
    I_BEST_ASK,
    I_BEST_BID,
    I_N,
    LIMIT,
    MARKET,
    SELL,
)
from tradelab.strategies import imbalance_microprice as im
from tradelab.strategies import market_making as mm
from tradelab.strategies.types import IntentKind

# quote loop state slots
Q_NEXT = 0  # next decision time (local)
Q_BID = 1  # id of our live bid (0 = none)
Q_ASK = 2
Q_NEXT_ID = 3
Q_DECISIONS = 4
Q_SIZE = 8


def new_quote_state(first_local_ts: int, requote_ms: float, first_id: int = 1) -> np.ndarray:
    st = np.zeros(Q_SIZE, dtype=np.int64)
    st[Q_NEXT] = first_local_ts + int(requote_ms * 1e6)
    st[Q_NEXT_ID] = first_id
    return st


@njit(cache=True, error_model="numpy", _nrt=False)
def _live(s: sn.Sim, oid: int) -> bool:
    if oid == 0:
        return False
    j = sn.local_slot_nb(s, oid)
    return j >= 0 and (s.lorders[j].flags & sn.LF_CANCELING) == 0


@njit(cache=True, error_model="numpy", _nrt=False)
def _requote(s: sn.Sim, st: np.ndarray, slot: int, side: int, want: int, qty: float) -> None:
    oid = st[slot]
    if _live(s, oid):
        j = sn.local_slot_nb(s, oid)
        if want >= 0 and s.lorders[j].px == want:
            return
        sn.submit_cancel_nb(s, oid)
        st[slot] = 0
    if want >= 0:
        nid = st[Q_NEXT_ID]
        st[Q_NEXT_ID] = nid + 1
        sn.submit_place_nb(s, nid, side, LIMIT, GTX, 0, want, 0, qty, 0.0, 0)
        st[slot] = nid


@njit(cache=True, error_model="numpy", _nrt=False)
def quote_loop_nb(s: sn.Sim, ev: np.ndarray, p: np.ndarray, st: np.ndarray) -> int:
    """Run the market-making strategy ``p`` (its ``Params.to_array()``) over the chunk ``ev``."""
    interval = int(p[mm.REQUOTE_MS] * 1e6)
    qty = p[mm.QTY]
    lb = s.lb
    while True:
        r = sn.elapse_nb(s, ev, st[Q_NEXT])
        if r != sn.EL_UNTIL:
            return r
        st[Q_NEXT] += interval
        st[Q_DECISIONS] += 1
        ib = lb.iv[I_BEST_BID]
        ia = lb.iv[I_BEST_ASK]
        if s.sv[sn.S_GAP] != 0 or ib < 0 or ia >= lb.iv[I_N]:
            _requote(s, st, Q_BID, BUY, -1, qty)
            _requote(s, st, Q_ASK, SELL, -1, qty)
            continue
        base = lb.iv[I_BASE]
        bid = cn.to_px_nb(lb, base + ib)
        ask = cn.to_px_nb(lb, base + ia)
        qb, qa = mm.step(p, bid, lb.bid_q[ib], ask, lb.ask_q[ia], s.fv[sn.F_POS])
        tick = lb.inst[0].tick
        wb = -1
        wa = -1
        if not math.isnan(qb):
            wb = min(int(math.floor(qb / tick + 1e-9)), base + ia - 1)
        if not math.isnan(qa):
            wa = max(int(math.ceil(qa / tick - 1e-9)), base + ib + 1)
        _requote(s, st, Q_BID, BUY, wb, qty)
        _requote(s, st, Q_ASK, SELL, wa, qty)


# ----------------------------------------------------------------------------- book strategies

# intent loop state slots
B_ENTRY = 0  # id of our live entry order (0 = none)
B_NEXT_ID = 1
B_INTENTS = 2
B_UPDATES = 3
B_SIZE = 8


def new_intent_state(first_id: int = 1) -> np.ndarray:
    st = np.zeros(B_SIZE, dtype=np.int64)
    st[B_NEXT_ID] = first_id
    return st


@njit(cache=True, error_model="numpy", _nrt=False)
def _close_position(s: sn.Sim, st: np.ndarray) -> None:
    pos = s.fv[sn.F_POS]
    if pos != 0.0:
        nid = st[B_NEXT_ID]
        st[B_NEXT_ID] = nid + 1
        sn.submit_place_nb(s, nid, SELL if pos > 0 else BUY, MARKET, 0, F_REDUCE_ONLY, 0, 0,
                           abs(pos), 0.0, 0)


@njit(cache=True, error_model="numpy", _nrt=False)
def imbalance_loop_nb(s: sn.Sim, ev: np.ndarray, p: np.ndarray, ss: np.ndarray,
                      st: np.ndarray, frame: np.ndarray, qty: float) -> int:
    """Run ``imbalance_microprice`` (parameters ``p``, strategy state ``ss``) on every local
    book update; its intents become orders: an entry is a post-only limit of ``qty`` at the
    intent's price (best bid for a long, best ask for a short), CANCEL withdraws the entry and
    flattens any position with a reduce-only market order, EXIT flattens."""
    s.sv[sn.S_STOP_ON_BOOK] = 1
    lb = s.lb
    while True:
        r = sn.elapse_nb(s, ev, sn.INF)
        if r != sn.EL_BOOK:
            return r
        st[B_UPDATES] += 1
        write_frame_row_nb(lb, frame, 0)
        kind, px = im.step(p, ss, s.sv[sn.S_NOW], frame, 0)
        if kind == IntentKind.NONE:
            continue
        st[B_INTENTS] += 1
        if kind == IntentKind.ENTER_LONG or kind == IntentKind.ENTER_SHORT:
            if _live(s, st[B_ENTRY]):
                sn.submit_cancel_nb(s, st[B_ENTRY])
            nid = st[B_NEXT_ID]
            st[B_NEXT_ID] = nid + 1
            side = BUY if kind == IntentKind.ENTER_LONG else SELL
            sn.submit_place_nb(s, nid, side, LIMIT, GTX, 0, cn.to_tick_nb(lb, px), 0, qty, 0.0,
                               0)
            st[B_ENTRY] = nid
        else:
            if _live(s, st[B_ENTRY]):
                sn.submit_cancel_nb(s, st[B_ENTRY])
            st[B_ENTRY] = 0
            _close_position(s, st)
