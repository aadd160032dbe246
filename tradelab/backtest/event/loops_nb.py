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

from tradelab.matching import sim_nb as sn
from tradelab.matching import core_nb as cn
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
def write_frame_row_nb(lb: cn.Core, frame: np.ndarray, i: int) -> None:
    """Top ``L = frame.shape[1] // 4`` levels of the local book into row ``i`` of a book frame
    (``tradelab.features.lob_nb`` layout: bid prices, bid sizes, ask prices, ask sizes)."""
    levels = frame.shape[1] // 4
    base = lb.iv[I_BASE]
    n = lb.iv[I_N]
    j = lb.iv[I_BEST_BID]
    for k in range(levels):
        while j >= 0 and lb.bid_q[j] <= 0.0:
            j -= 1
        if j >= 0:
            frame[i, k] = cn.to_px_nb(lb, base + j)
            frame[i, levels + k] = lb.bid_q[j]
            j -= 1
        else:
            frame[i, k] = np.nan
            frame[i, levels + k] = np.nan
    j = lb.iv[I_BEST_ASK]
    for k in range(levels):
        while j < n and lb.ask_q[j] <= 0.0:
            j += 1
        if j < n:
            frame[i, 2 * levels + k] = cn.to_px_nb(lb, base + j)
            frame[i, 3 * levels + k] = lb.ask_q[j]
            j += 1
        else:
            frame[i, 2 * levels + k] = np.nan
            frame[i, 3 * levels + k] = np.nan


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


# ----------------------------------------------------------------------------- bar strategies

EL_BAR = 10  # bar_loop_nb: a bar just closed (read it from ``bi``/``bf``)
EL_OPEN = 11  # bar_loop_nb: the first trade after a bar closed by its timer (``bf[BF_NEXT_OPEN]``)

# bar loop int64 state
BI_STEP = 0  # bar interval (ns)
BI_CUR = 1  # open time of the bar being built (-1: none)
BI_TS = 2  # open time of the bar that just closed
BI_FINAL = 3  # 1: the last bar was closed at the end of the data
BI_BARS = 4  # bars closed so far
BI_N = 5  # trades in the bar being built
BI_DELAY = 6  # local time after a bar's end at which it closes (ns)
BI_LAST = 7  # open time of the last closed bar (-1: none)
BI_LATE = 8  # trades received after their bar had closed (not in any bar)
BI_WAIT_OPEN = 9  # 1: a bar closed by its timer; the next trade is the next bar's open
BI_SIZE = 12
# bar loop float64 state: the bar being built, the bar that just closed, the next bar's open
BF_O, BF_H, BF_L, BF_C, BF_V = 0, 1, 2, 3, 4
BF_CLOSED = 5  # closed bar: open, high, low, close, volume at 5..9
BF_NEXT_OPEN = 10  # the first trade of the next bar (NaN while not received)
BF_SIZE = 12


def new_bar_state(step_ns: int, close_delay_ns: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fresh ``(bi, bf)`` state of :func:`bar_loop_nb` for bars of ``step_ns`` that close
    ``close_delay_ns`` of local time after their end."""
    if step_ns <= 0:
        raise ValueError(f"bar interval must be positive, got {step_ns}")
    if close_delay_ns < 0:
        raise ValueError(f"bar close delay must not be negative, got {close_delay_ns}")
    bi = np.zeros(BI_SIZE, dtype=np.int64)
    bi[BI_STEP] = step_ns
    bi[BI_CUR] = -1
    bi[BI_LAST] = -1
    bi[BI_DELAY] = close_delay_ns
    bf = np.full(BF_SIZE, np.nan)
    return bi, bf


@njit(cache=True, error_model="numpy", _nrt=False)
def _close_bar(bi: np.ndarray, bf: np.ndarray, next_open: float) -> None:
    bi[BI_TS] = bi[BI_CUR]
    bi[BI_LAST] = bi[BI_CUR]
    for k in range(5):
        bf[BF_CLOSED + k] = bf[k]
    bf[BF_NEXT_OPEN] = next_open
    bi[BI_BARS] += 1


@njit(cache=True, error_model="numpy", _nrt=False)
def _open_bar(bi: np.ndarray, bf: np.ndarray, b: int, px: float, q: float) -> None:
    bi[BI_CUR] = b
    bi[BI_N] = 1
    bf[BF_O] = px
    bf[BF_H] = px
    bf[BF_L] = px
    bf[BF_C] = px
    bf[BF_V] = q


@njit(cache=True, error_model="numpy", _nrt=False)
def bar_loop_nb(s: sn.Sim, ev: np.ndarray, bi: np.ndarray, bf: np.ndarray) -> int:
    """Build OHLCV bars from the trades the local side receives, bucketed by exchange time on
    the epoch-aligned grid of ``bi[BI_STEP]`` exactly as the store builds bars from trades
    (``tradelab.store.bars_nb.trade_bars_nb``: a bucket without trades is no bar).

    A bar closes on a timer, the way a live runner's clock closes it: when local time reaches
    its end plus ``bi[BI_DELAY]`` (the grace the feed's latency needs), whether or not another
    trade follows; the loop returns ``EL_BAR`` with the closed bar in ``bf`` (its next open
    NaN) and the caller decides (and may send orders) before calling again. The first trade of
    a later bar then returns ``EL_OPEN`` with its price in ``bf[BF_NEXT_OPEN]``. Two other
    closes: a trade of a later bucket received before the timer (the bar is over on the
    exchange's clock; that trade is the next open, known at once), and the end of the data.
    A bar whose first trade arrives after its timer closes as soon as the trades received at
    that moment are in (the clock never goes back). A trade received after its bar closed is
    counted in ``bi[BI_LATE]`` and is in no bar."""
    s.sv[sn.S_STOP_ON_TRADE] = 1
    step = bi[BI_STEP]
    while True:
        until = bi[BI_CUR] + step + bi[BI_DELAY] if bi[BI_CUR] >= 0 else sn.INF
        if until < s.sv[sn.S_NOW]:  # the bar's trades came in after its timer: close now
            until = s.sv[sn.S_NOW]
        r = sn.elapse_nb(s, ev, until)
        if r == sn.EL_UNTIL:
            _close_bar(bi, bf, np.nan)
            bi[BI_CUR] = -1
            bi[BI_WAIT_OPEN] = 1
            return EL_BAR
        if r == sn.EL_TRADE:
            row = ev[s.sv[sn.S_IL] - 1]
            t = row.exch_ts
            px = row.px
            q = row.qty
            b = (t // step) * step
            cur = bi[BI_CUR]
            if cur >= 0 and b == cur:
                if px > bf[BF_H]:
                    bf[BF_H] = px
                if px < bf[BF_L]:
                    bf[BF_L] = px
                bf[BF_C] = px
                bf[BF_V] += q
                bi[BI_N] += 1
                continue
            if b <= bi[BI_LAST] or (cur >= 0 and b < cur):
                bi[BI_LATE] += 1
                continue
            if cur >= 0:  # a later bucket's trade before the timer: the bar is over
                _close_bar(bi, bf, px)
                _open_bar(bi, bf, b, px, q)
                return EL_BAR
            _open_bar(bi, bf, b, px, q)
            if bi[BI_WAIT_OPEN] != 0:
                bi[BI_WAIT_OPEN] = 0
                bf[BF_NEXT_OPEN] = px
                return EL_OPEN
            continue
        if r == sn.EL_END and bi[BI_CUR] >= 0 and bi[BI_FINAL] == 0:
            _close_bar(bi, bf, np.nan)
            bi[BI_FINAL] = 1
            bi[BI_CUR] = -1
            return EL_BAR
        return r
