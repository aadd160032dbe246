"""The exchange's view of one instrument: L2 book, our orders with their queue state, fills.

All state lives in :class:`Core`, a NamedTuple of numpy arrays, so Python can hold it (and
pickle it) and numba loops can step it. Every function takes the core first and is compiled
``@njit(cache=True, error_model="numpy", _nrt=False)``: nothing here allocates, and without
numba's reference counting a call passing the core's arrays costs nothing (with it, a book
update took 12x longer). Nothing here knows about time beyond the ``ts`` it is given: latency
and the two clocks belong to the driver (the event backtester, the venue, the paper broker).

**Book.** Two dense float64 arrays of level quantities indexed by ``tick - base`` over a window
of ``n`` ticks fixed at creation (depth rows outside it are counted in ``I_DROPPED``), with the
best bid/ask indices kept up to date. A depth message ends at a row flagged ``EV_LAST``; a
message whose first row is flagged ``EV_SNAPSHOT`` clears the book first. The replay cannot
change the market, so the book is never depleted by our fills: instead ``bid_c``/``ask_c`` hold
the quantity at each level our orders already took, and that liquidity is not available to
another of our orders until the next depth update at that level resets it.

**Fill rules** (maker fills at the order's own price):

1. a trade *through* a resting order's price (a sell at a price below our bid) fills it fully;
2. a trade *at* its price advances the queue (see :mod:`.queue_nb`) and fills what reached the
   front, capped by the trade quantity not already given to our orders ahead;
3. a book that crosses it with no trade (best ask at or below our bid at the end of a depth
   message) fills it from the crossing levels' available quantity.

A taking order (market, IOC, FOK, crossing GTC) walks the visible book level by level, one
execution per level, up to its limit; FOK first checks that the depth within its limit covers
it; a crossing GTC rests its remainder; a post-only order that would take is rejected.

Every execution is its own ``fill_dt`` record (last quantity, last price, fee, position after);
status changes are ``report_dt`` records. Both are appended to the core's buffers and the caller
drains them (``I_N_FILLS`` / ``I_N_REPORTS`` back to 0) after each call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tradelab.core.events import (
    EV_BID,
    EV_BUY,
    EV_DEPTH,
    EV_GAP,
    EV_KIND_MASK,
    EV_LAST,
    EV_SNAPSHOT,
    EV_TRADE,
)
from tradelab.matching import queue_nb as qm
from tradelab.matching.types import (
    BUY,
    D_CASH,
    D_FEES,
    D_POSITION,
    D_QUEUE_N,
    D_SIZE,
    D_VOLUME,
    F_AT_PRICE,
    F_REDUCE_ONLY,
    FOK,
    GTX,
    I_AT_MSG_START,
    I_BASE,
    I_BEST_ASK,
    I_BEST_BID,
    I_DROPPED,
    I_HI,
    I_IN_SNAPSHOT,
    I_LAST_TRADE,
    I_N,
    I_N_FILLS,
    I_N_REPORTS,
    I_QUEUE_MODEL,
    I_REC,
    I_SEQ,
    I_SIZE,
    I_VALID,
    IOC,
    LIMIT,
    MARKET,
    R_BAD_QTY,
    R_FOK_DEPTH,
    R_FULL,
    R_GAP,
    R_IOC_REST,
    R_MIN_NOTIONAL,
    R_MIN_QTY,
    R_NO_LIQUIDITY,
    R_NONE,
    R_OCO,
    R_OFF_LOT,
    R_OUT_OF_RANGE,
    R_POST_ONLY,
    R_REDUCE_ONLY,
    R_UNKNOWN_ORDER,
    RP_ACCEPTED,
    RP_AMENDED,
    RP_CANCELED,
    RP_EXPIRED,
    RP_FILLED,
    RP_MODIFIED,
    RP_REJECTED,
    RP_TRIGGERED,
    ST_CANCELED,
    ST_EXPIRED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIAL,
    ST_REJECTED,
    STOP_MARKET,
    TAKE_PROFIT_MARKET,
    TRAILING_STOP_MARKET,
    fill_dt,
    instrument_dt,
    order_dt,
    report_dt,
)


class Core(NamedTuple):
    """State of one instrument's matching core (create with :func:`new_core`)."""

    inst: np.ndarray  # instrument_dt, length 1
    bid_q: np.ndarray  # float64[n] level quantity
    ask_q: np.ndarray
    bid_c: np.ndarray  # float64[n] quantity our orders took since the level's last update
    ask_c: np.ndarray
    orders: np.ndarray  # order_dt[max_orders]
    fills: np.ndarray  # fill_dt buffer
    reports: np.ndarray  # report_dt buffer
    iv: np.ndarray  # int64[I_SIZE]
    dv: np.ndarray  # float64[D_SIZE]
    scratch: np.ndarray  # int64[max_orders], working space of the trade rule


def new_core(
    inst: np.ndarray, base_tick: int, n_ticks: int, queue_model: int, queue_n: float,
    max_orders: int = 64,
) -> Core:
    """An empty core over ticks ``[base_tick, base_tick + n_ticks)``."""
    if inst.dtype != instrument_dt or inst.shape != (1,):
        raise ValueError("inst must be a length-1 instrument_dt array")
    iv = np.zeros(I_SIZE, dtype=np.int64)
    iv[I_BASE] = base_tick
    iv[I_N] = n_ticks
    iv[I_BEST_BID] = -1
    iv[I_BEST_ASK] = n_ticks
    iv[I_AT_MSG_START] = 1
    iv[I_QUEUE_MODEL] = queue_model
    dv = np.zeros(D_SIZE, dtype=np.float64)
    dv[D_QUEUE_N] = queue_n
    cap = 8 * max_orders + 256
    return Core(
        inst,
        np.zeros(n_ticks),
        np.zeros(n_ticks),
        np.zeros(n_ticks),
        np.zeros(n_ticks),
        np.zeros(max_orders, dtype=order_dt),
        np.zeros(cap, dtype=fill_dt),
        np.zeros(cap, dtype=report_dt),
        iv,
        dv,
        np.zeros(max_orders, dtype=np.int64),
    )


# ----------------------------------------------------------------------------- prices


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def to_tick_nb(c: Core, px: float) -> int:
    """Nearest tick of a price."""
    return int(round(px / c.inst[0].tick))


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def to_px_nb(c: Core, t: int) -> float:
    """Price of a tick, exact to the tick's decimals (0.1 * 560001 would not be)."""
    tick = c.inst[0].tick
    k = round(1.0 / tick)
    if tick < 1.0 and abs(k * tick - 1.0) < 1e-12:
        return t / k
    return t * tick


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def _lot_round(c: Core, q: float) -> float:
    lot = c.inst[0].lot
    return round(q / lot) * lot


# ----------------------------------------------------------------------------- records


@njit(cache=True, error_model="numpy", _nrt=False)
def _report(c: Core, ts: int, oid: int, kind: int, status: int, reason: int, leaves: float,
            px: float) -> None:
    k = c.iv[I_N_REPORTS]
    if k >= c.reports.shape[0]:
        raise RuntimeError("matching core: report buffer full (drain it after every call)")
    r = c.reports[k]
    r.ts = ts
    r.order_id = oid
    r.kind = kind
    r.status = status
    r.reason = reason
    r.leaves = leaves
    r.px = px
    r.rec = c.iv[I_REC]
    c.iv[I_REC] += 1
    c.iv[I_N_REPORTS] = k + 1


@njit(cache=True, error_model="numpy", _nrt=False)
def _finish(c: Core, j: int, ts: int, status: int, kind: int, reason: int) -> None:
    o = c.orders[j]
    o.status = status
    _trim_hi(c)
    px = to_px_nb(c, o.px) if o.kind == LIMIT else 0.0
    _report(c, ts, o.id, kind, status, reason, o.leaves, px)


@njit(cache=True, error_model="numpy", _nrt=False, inline="always")
def _live(status: int) -> bool:
    return status == ST_NEW or status == ST_PARTIAL


@njit(cache=True, error_model="numpy", _nrt=False)
def _trim_hi(c: Core) -> None:
    """Lower the slot high-water mark past finished orders at the top, so the per-event order
    loops stay as short as the live orders (a requoting strategy churns through slots)."""
    h = c.iv[I_HI]
    while h > 0 and not _live(c.orders[h - 1].status):
        h -= 1
    c.iv[I_HI] = h


@njit(cache=True, error_model="numpy", _nrt=False)
def _find(c: Core, oid: int) -> int:
    for j in range(c.iv[I_HI]):
        if c.orders[j].id == oid and _live(c.orders[j].status):
            return j
    return -1


@njit(cache=True, error_model="numpy", _nrt=False)
def _free_slot(c: Core) -> int:
    for j in range(c.orders.shape[0]):
        if not _live(c.orders[j].status):
            return j
    return -1


@njit(cache=True, error_model="numpy", _nrt=False)
def _oco_after_fill(c: Core, j: int, ts: int, q: float) -> None:
    """Bracket links: a take-profit fill shrinks the group's stops; a stop fill cancels the rest."""
    o = c.orders[j]
    g = o.oco
    if g == 0:
        return
    tp = o.kind == TAKE_PROFIT_MARKET
    for k in range(c.iv[I_HI]):
        if k == j:
            continue
        p = c.orders[k]
        if p.oco != g or not _live(p.status):
            continue
        if tp:
            if p.kind == STOP_MARKET or p.kind == TRAILING_STOP_MARKET:
                p.leaves = _lot_round(c, p.leaves - q)
                if p.leaves <= 0.5 * c.inst[0].lot:
                    p.leaves = 0.0
                    _finish(c, k, ts, ST_CANCELED, RP_CANCELED, R_OCO)
                else:
                    _report(c, ts, p.id, RP_AMENDED, p.status, R_OCO, p.leaves, 0.0)
        else:
            _finish(c, k, ts, ST_CANCELED, RP_CANCELED, R_OCO)


@njit(cache=True, error_model="numpy", _nrt=False)
def _fill(c: Core, j: int, ts: int, t: int, q: float, maker: bool) -> float:
    """Execute ``q`` of order ``j`` at tick ``t``; returns the quantity actually executed (a
    reduce-only order is capped at the position and expires when nothing is left to reduce)."""
    o = c.orders[j]
    lot = c.inst[0].lot
    if q > o.leaves:
        q = o.leaves
    if o.flags & F_REDUCE_ONLY:
        pos = c.dv[D_POSITION]
        cap = abs(pos) if o.side * pos < 0.0 else 0.0
        if q > cap:
            q = _lot_round(c, cap)
        if q <= 0.5 * lot:
            o.leaves = _lot_round(c, o.leaves)
            _finish(c, j, ts, ST_EXPIRED, RP_EXPIRED, R_REDUCE_ONLY)
            return 0.0
    px = to_px_nb(c, t)
    inst = c.inst[0]
    notional = inst.contract_size * px * q
    fee = (inst.maker_fee if maker else inst.taker_fee) * notional
    o.leaves = _lot_round(c, o.leaves - q)
    o.filled = _lot_round(c, o.filled + q)
    pos = _lot_round(c, c.dv[D_POSITION] + o.side * q)
    c.dv[D_POSITION] = pos
    c.dv[D_CASH] -= o.side * notional + fee
    c.dv[D_FEES] += fee
    c.dv[D_VOLUME] += q
    k = c.iv[I_N_FILLS]
    if k >= c.fills.shape[0]:
        raise RuntimeError("matching core: fill buffer full (drain it after every call)")
    f = c.fills[k]
    f.ts = ts
    f.order_id = o.id
    f.side = o.side
    f.px = px
    f.qty = q
    f.leaves = o.leaves
    f.fee = fee
    f.maker = 1 if maker else 0
    f.queue_wait = ts - o.accept_ts
    f.position = pos
    f.rec = c.iv[I_REC]
    c.iv[I_REC] += 1
    c.iv[I_N_FILLS] = k + 1
    if o.leaves <= 0.5 * lot:
        o.leaves = 0.0
        o.status = ST_FILLED
        _trim_hi(c)
        _report(c, ts, o.id, RP_FILLED, ST_FILLED, R_NONE, 0.0, px)
    else:
        o.status = ST_PARTIAL
    _oco_after_fill(c, j, ts, q)
    return q


# ----------------------------------------------------------------------------- taking


@njit(cache=True, error_model="numpy", _nrt=False)
def available_nb(c: Core, side: int, limit_t: int) -> float:
    """Visible, not yet consumed quantity a ``side`` taker could reach up to tick ``limit_t``."""
    base = c.iv[I_BASE]
    n = c.iv[I_N]
    tot = 0.0
    if side == BUY:
        i = c.iv[I_BEST_ASK]
        last = min(limit_t - base, n - 1)
        while i <= last:
            a = c.ask_q[i] - c.ask_c[i]
            if a > 0.0:
                tot += a
            i += 1
    else:
        i = c.iv[I_BEST_BID]
        first = max(limit_t - base, 0)
        while i >= first:
            a = c.bid_q[i] - c.bid_c[i]
            if a > 0.0:
                tot += a
            i -= 1
    return tot


@njit(cache=True, error_model="numpy", _nrt=False)
def _first_available(c: Core, side: int) -> int:
    """Tick of the first level a ``side`` taker would hit (sentinel if none)."""
    base = c.iv[I_BASE]
    n = c.iv[I_N]
    if side == BUY:
        i = c.iv[I_BEST_ASK]
        while i < n and c.ask_q[i] - c.ask_c[i] <= 0.0:
            i += 1
        return base + i
    i = c.iv[I_BEST_BID]
    while i >= 0 and c.bid_q[i] - c.bid_c[i] <= 0.0:
        i -= 1
    return base + i


@njit(cache=True, error_model="numpy", _nrt=False)
def _take(c: Core, j: int, ts: int, limit_t: int, maker: bool, fill_t: int) -> None:
    """Walk the other side from its best level up to ``limit_t`` filling order ``j``; one
    execution per level at the level's price (or at ``fill_t`` when it is >= 0: a resting
    order filled by a crossing book fills at its own price)."""
    base = c.iv[I_BASE]
    n = c.iv[I_N]
    o = c.orders[j]
    if o.side == BUY:
        i = c.iv[I_BEST_ASK]
        last = min(limit_t - base, n - 1)
        while i <= last and _live(o.status):
            a = c.ask_q[i] - c.ask_c[i]
            if a > 0.0:
                q = min(a, o.leaves)
                done = _fill(c, j, ts, fill_t if fill_t >= 0 else base + i, q, maker)
                c.ask_c[i] += done
                if done <= 0.0:
                    return
            i += 1
    else:
        i = c.iv[I_BEST_BID]
        first = max(limit_t - base, 0)
        while i >= first and _live(o.status):
            a = c.bid_q[i] - c.bid_c[i]
            if a > 0.0:
                q = min(a, o.leaves)
                done = _fill(c, j, ts, fill_t if fill_t >= 0 else base + i, q, maker)
                c.bid_c[i] += done
                if done <= 0.0:
                    return
            i -= 1


# ----------------------------------------------------------------------------- order actions


@njit(cache=True, error_model="numpy", _nrt=False)
def off_lot_nb(qty: float, lot: float) -> bool:
    """True when ``qty`` is not a whole number of lots. The tolerance is 1e-6 lot, widened to
    the float rounding of ``qty / lot`` itself: with a fine lot (1e-9) and a large quantity
    (hundreds of units) the quotient is ~1e11 and carries rounding of ~1e-5, and an absolute
    1e-6 would refuse quantities that are exact multiples of the lot."""
    k = qty / lot
    return abs(k - round(k)) > max(1e-6, 8.0 * 2.220446049250313e-16 * abs(k))


@njit(cache=True, error_model="numpy", _nrt=False)
def _check_new(c: Core, side: int, kind: int, flags: int, t: int, qty: float) -> int:
    inst = c.inst[0]
    if not qty > 0.0:
        return R_BAD_QTY
    if off_lot_nb(qty, inst.lot):
        return R_OFF_LOT
    if qty < inst.min_qty - 1e-12:
        return R_MIN_QTY
    if kind == LIMIT:
        i = t - c.iv[I_BASE]
        if i < 0 or i >= c.iv[I_N]:
            return R_OUT_OF_RANGE
        ref = to_px_nb(c, t)
    else:
        other = c.iv[I_BEST_ASK] if side == BUY else c.iv[I_BEST_BID]
        ref = to_px_nb(c, t) if t != 0 else 0.0
        if 0 <= other < c.iv[I_N] and kind == MARKET:
            ref = to_px_nb(c, c.iv[I_BASE] + other)
    if inst.min_notional > 0.0 and ref > 0.0 and ref * qty * inst.contract_size < (
        inst.min_notional - 1e-9
    ):
        return R_MIN_NOTIONAL
    if kind <= MARKET and flags & F_REDUCE_ONLY:
        pos = c.dv[D_POSITION]
        if not side * pos < 0.0:
            return R_REDUCE_ONLY
    return R_NONE


@njit(cache=True, error_model="numpy", _nrt=False)
def _enter_limit(c: Core, j: int, ts: int, is_new: bool) -> None:
    """Match a (new or re-queued) limit order against the book, then rest or expire it."""
    o = c.orders[j]
    other = _first_available(c, o.side)
    crossing = other <= o.px if o.side == BUY else other >= o.px
    if crossing:
        if o.tif == GTX:
            _finish(c, j, ts, ST_REJECTED if is_new else ST_CANCELED,
                    RP_REJECTED if is_new else RP_CANCELED, R_POST_ONLY)
            return
        if o.tif == FOK and available_nb(c, o.side, o.px) < o.leaves - 0.5 * c.inst[0].lot:
            _finish(c, j, ts, ST_EXPIRED, RP_EXPIRED, R_FOK_DEPTH)
            return
        if is_new:
            _report(c, ts, o.id, RP_ACCEPTED, o.status, R_NONE, o.leaves, to_px_nb(c, o.px))
        _take(c, j, ts, o.px, False, -1)
        if not _live(o.status):
            return
    elif is_new:
        if o.tif == IOC or o.tif == FOK:
            _finish(c, j, ts, ST_EXPIRED, RP_EXPIRED, R_FOK_DEPTH if o.tif == FOK else R_IOC_REST)
            return
        _report(c, ts, o.id, RP_ACCEPTED, o.status, R_NONE, o.leaves, to_px_nb(c, o.px))
    if o.tif == IOC or o.tif == FOK:
        _finish(c, j, ts, ST_EXPIRED, RP_EXPIRED, R_IOC_REST)
        return
    i = o.px - c.iv[I_BASE]
    o.front = c.bid_q[i] if o.side == BUY else c.ask_q[i]
    o.cum_trade = 0.0


@njit(cache=True, error_model="numpy", _nrt=False)
def place_nb(
    c: Core, ts: int, oid: int, side: int, kind: int, tif: int, flags: int, px_t: int,
    trigger_t: int, qty: float, trail: float, oco: int,
) -> int:
    """An order reaches the exchange at ``ts``; returns its slot (-1 when rejected).

    ``px_t`` is the limit price in ticks (limit orders), ``trigger_t`` the trigger price in
    ticks (stop / take-profit / trailing; for a trailing stop the initial stop), ``trail`` the
    trailing distance as a fraction of price, ``oco`` the bracket id (0 = none)."""
    at_price = kind == MARKET and (flags & F_AT_PRICE) != 0
    reason = _check_new(c, side, kind, flags,
                        px_t if kind == LIMIT or at_price else trigger_t, qty)
    if reason == R_NONE and c.iv[I_VALID] == 0 and not at_price:
        reason = R_GAP
    j = -1
    if reason == R_NONE:
        j = _free_slot(c)
        if j < 0:
            reason = R_FULL
    if reason != R_NONE:
        _report(c, ts, oid, RP_REJECTED, ST_REJECTED, reason, qty,
                to_px_nb(c, px_t) if kind == LIMIT else 0.0)
        return -1
    if j >= c.iv[I_HI]:
        c.iv[I_HI] = j + 1
    o = c.orders[j]
    o.id = oid
    o.status = ST_NEW
    o.side = side
    o.kind = kind
    o.tif = tif
    o.flags = flags
    o.px = px_t if kind == LIMIT else 0
    o.trigger = trigger_t
    o.qty = qty
    o.leaves = qty
    o.filled = 0.0
    o.front = 0.0
    o.cum_trade = 0.0
    o.trail = trail
    o.oco = oco
    o.accept_ts = ts
    o.seq = c.iv[I_SEQ]
    c.iv[I_SEQ] += 1
    if kind == LIMIT:
        _enter_limit(c, j, ts, True)
    elif at_price:  # agreement checks: the whole quantity at the given price (F_AT_PRICE)
        _report(c, ts, oid, RP_ACCEPTED, ST_NEW, R_NONE, qty, to_px_nb(c, px_t))
        _fill(c, j, ts, px_t, qty, False)
        if _live(o.status):
            _finish(c, j, ts, ST_EXPIRED, RP_EXPIRED, R_IOC_REST)
    elif kind == MARKET:
        _report(c, ts, oid, RP_ACCEPTED, ST_NEW, R_NONE, qty, 0.0)
        _market(c, j, ts)
    else:
        _report(c, ts, oid, RP_ACCEPTED, ST_NEW, R_NONE, qty, to_px_nb(c, trigger_t))
    return j


@njit(cache=True, error_model="numpy", _nrt=False)
def _market(c: Core, j: int, ts: int) -> None:
    o = c.orders[j]
    before = o.leaves
    lim = c.iv[I_BASE] + c.iv[I_N] - 1 if o.side == BUY else c.iv[I_BASE]
    _take(c, j, ts, lim, False, -1)
    if _live(o.status):
        _finish(c, j, ts, ST_EXPIRED, RP_EXPIRED,
                R_NO_LIQUIDITY if o.leaves == before else R_IOC_REST)


@njit(cache=True, error_model="numpy", _nrt=False)
def cancel_nb(c: Core, ts: int, oid: int) -> bool:
    """A cancel reaches the exchange; False (and a rejected report) if the order is not live."""
    j = _find(c, oid)
    if j < 0:
        _report(c, ts, oid, RP_REJECTED, ST_REJECTED, R_UNKNOWN_ORDER, 0.0, 0.0)
        return False
    _finish(c, j, ts, ST_CANCELED, RP_CANCELED, R_NONE)
    return True


@njit(cache=True, error_model="numpy", _nrt=False)
def modify_nb(c: Core, ts: int, oid: int, px_t: int, leaves: float) -> bool:
    """Change a live order's price (ticks; its trigger for a contingent order) and remaining
    quantity. A limit order keeps its queue place on a quantity decrease at the same price and
    re-queues (behind the level, possibly taking) when the price changes or the quantity grows."""
    j = _find(c, oid)
    if j < 0:
        _report(c, ts, oid, RP_REJECTED, ST_REJECTED, R_UNKNOWN_ORDER, 0.0, 0.0)
        return False
    o = c.orders[j]
    if not leaves > 0.0 or off_lot_nb(leaves, c.inst[0].lot):
        _report(c, ts, oid, RP_REJECTED, o.status, R_OFF_LOT, o.leaves, 0.0)
        return False
    if o.kind != LIMIT:
        o.trigger = px_t
        o.leaves = leaves
        _report(c, ts, oid, RP_MODIFIED, o.status, R_NONE, leaves, to_px_nb(c, px_t))
        return True
    i = px_t - c.iv[I_BASE]
    if i < 0 or i >= c.iv[I_N]:
        _report(c, ts, oid, RP_REJECTED, o.status, R_OUT_OF_RANGE, o.leaves, 0.0)
        return False
    if px_t == o.px and leaves <= o.leaves:
        o.leaves = leaves
        _report(c, ts, oid, RP_MODIFIED, o.status, R_NONE, leaves, to_px_nb(c, px_t))
        return True
    if o.tif == GTX:
        other = _first_available(c, o.side)
        if (other <= px_t) if o.side == BUY else (other >= px_t):
            _report(c, ts, oid, RP_REJECTED, o.status, R_POST_ONLY, o.leaves, to_px_nb(c, o.px))
            return False
    o.px = px_t
    o.leaves = leaves
    o.qty = o.filled + leaves
    o.accept_ts = ts
    o.seq = c.iv[I_SEQ]
    c.iv[I_SEQ] += 1
    _report(c, ts, oid, RP_MODIFIED, o.status, R_NONE, leaves, to_px_nb(c, px_t))
    _enter_limit(c, j, ts, False)
    return True


@njit(cache=True, error_model="numpy", _nrt=False)
def cancel_all_nb(c: Core, ts: int, reason: int) -> int:
    """Cancel every live order (e.g. ``R_GAP`` when the feed breaks); returns how many."""
    k = 0
    for j in range(c.iv[I_HI]):
        if _live(c.orders[j].status):
            _finish(c, j, ts, ST_CANCELED, RP_CANCELED, reason)
            k += 1
    return k


# ----------------------------------------------------------------------------- market data


@njit(cache=True, error_model="numpy", _nrt=False)
def _set_level(c: Core, is_bid: bool, i: int, q: float) -> float:
    n = c.iv[I_N]
    if is_bid:
        prev = c.bid_q[i]
        c.bid_q[i] = q
        c.bid_c[i] = 0.0
        b = c.iv[I_BEST_BID]
        if q > 0.0:
            if i > b:
                c.iv[I_BEST_BID] = i
        elif i == b:
            k = i - 1
            while k >= 0 and c.bid_q[k] <= 0.0:
                k -= 1
            c.iv[I_BEST_BID] = k
    else:
        prev = c.ask_q[i]
        c.ask_q[i] = q
        c.ask_c[i] = 0.0
        a = c.iv[I_BEST_ASK]
        if q > 0.0:
            if i < a:
                c.iv[I_BEST_ASK] = i
        elif i == a:
            k = i + 1
            while k < n and c.ask_q[k] <= 0.0:
                k += 1
            c.iv[I_BEST_ASK] = k
    return prev


@njit(cache=True, error_model="numpy", _nrt=False)
def _clear_book(c: Core) -> None:
    n = c.iv[I_N]
    c.bid_q[:] = 0.0
    c.ask_q[:] = 0.0
    c.bid_c[:] = 0.0
    c.ask_c[:] = 0.0
    c.iv[I_BEST_BID] = -1
    c.iv[I_BEST_ASK] = n


@njit(cache=True, error_model="numpy", _nrt=False)
def _check_crossed(c: Core, ts: int) -> None:
    """Fill resting orders that the book crosses (no trade needed)."""
    base = c.iv[I_BASE]
    for j in range(c.iv[I_HI]):
        o = c.orders[j]
        if o.kind != LIMIT or not _live(o.status):
            continue
        if o.side == BUY:
            if base + c.iv[I_BEST_ASK] <= o.px:
                _take(c, j, ts, o.px, True, o.px)
        elif base + c.iv[I_BEST_BID] >= o.px:
            _take(c, j, ts, o.px, True, o.px)


@njit(cache=True, error_model="numpy", _nrt=False)
def on_depth_nb(c: Core, ts: int, is_bid: bool, px: float, qty: float, snapshot: bool,
                last: bool) -> None:
    """One depth row: the level at ``px`` now holds ``qty`` (0 removes it)."""
    if snapshot and c.iv[I_AT_MSG_START] == 1:
        _clear_book(c)
        c.iv[I_IN_SNAPSHOT] = 1
    c.iv[I_AT_MSG_START] = 1 if last else 0
    t = to_tick_nb(c, px)
    i = t - c.iv[I_BASE]
    if 0 <= i < c.iv[I_N]:
        prev = _set_level(c, is_bid, i, qty)
        if c.iv[I_IN_SNAPSHOT] == 0:
            side = BUY if is_bid else -BUY
            model = c.iv[I_QUEUE_MODEL]
            n = c.dv[D_QUEUE_N]
            for j in range(c.iv[I_HI]):
                o = c.orders[j]
                if o.px == t and o.side == side and o.kind == LIMIT and _live(o.status):
                    o.front, o.cum_trade = qm.on_depth_nb(model, n, o.front, o.cum_trade, prev,
                                                            qty)
    else:
        c.iv[I_DROPPED] += 1
    if last:
        if c.iv[I_IN_SNAPSHOT] == 1:
            c.iv[I_IN_SNAPSHOT] = 0
            c.iv[I_VALID] = 1
            base = c.iv[I_BASE]
            for j in range(c.iv[I_HI]):
                o = c.orders[j]
                if o.kind == LIMIT and _live(o.status):
                    lvl = c.bid_q[o.px - base] if o.side == BUY else c.ask_q[o.px - base]
                    o.front = min(o.front, lvl)
                    o.cum_trade = 0.0
        _check_crossed(c, ts)


@njit(cache=True, error_model="numpy", _nrt=False)
def _trigger_contingent(c: Core, ts: int, t: int) -> None:
    """Update trailing stops to the last trade price ``t`` and fire the contingent orders
    it reaches (as market orders, walking the book)."""
    for j in range(c.iv[I_HI]):
        o = c.orders[j]
        if not _live(o.status) or o.kind == LIMIT or o.kind == MARKET:
            continue
        if o.kind == TRAILING_STOP_MARKET:
            # a sell stop protects a long: it trails up, never down (mirror for a buy stop)
            if o.side == -BUY:
                cand = int(np.floor(t * (1.0 - o.trail) + 1e-9))
                if cand > o.trigger:
                    o.trigger = cand
            else:
                cand = int(np.ceil(t * (1.0 + o.trail) - 1e-9))
                if cand < o.trigger or o.trigger == 0:
                    o.trigger = cand
        if o.kind == TAKE_PROFIT_MARKET:
            fire = t >= o.trigger if o.side == -BUY else t <= o.trigger
        else:
            fire = t <= o.trigger if o.side == -BUY else t >= o.trigger
        if fire:
            _report(c, ts, o.id, RP_TRIGGERED, o.status, R_NONE, o.leaves, to_px_nb(c, o.trigger))
            o.flags |= F_REDUCE_ONLY
            _market(c, j, ts)


@njit(cache=True, error_model="numpy", _nrt=False)
def on_trade_nb(c: Core, ts: int, taker_buy: bool, px: float, qty: float) -> None:
    """One market trade. A sell taker hits bids: our bids above its price fill fully, our bids
    at its price advance in the queue and fill what reached the front (the trade's quantity is
    shared in queue order among our orders at that price). Mirror for a buy taker."""
    t = to_tick_nb(c, px)
    c.iv[I_LAST_TRADE] = t
    lot = c.inst[0].lot
    model = c.iv[I_QUEUE_MODEL]
    hit = -BUY if taker_buy else BUY  # side of the resting orders this trade executes against
    m = c.iv[I_HI]
    # at the trade's price: queue order (front, then arrival) among our orders there
    idx = c.scratch
    k = 0
    for j in range(m):
        o = c.orders[j]
        if o.kind != LIMIT or o.side != hit or not _live(o.status):
            continue
        through = o.px > t if hit == BUY else o.px < t
        if through:
            _fill(c, j, ts, o.px, o.leaves, True)
        elif o.px == t:
            o.front, o.cum_trade = qm.on_trade_nb(model, o.front, o.cum_trade, qty)
            idx[k] = j
            k += 1
    # insertion sort by (front, seq)
    for a in range(1, k):
        v = idx[a]
        b = a - 1
        while b >= 0 and (
            c.orders[idx[b]].front > c.orders[v].front
            or (c.orders[idx[b]].front == c.orders[v].front and c.orders[idx[b]].seq >
                c.orders[v].seq)
        ):
            idx[b + 1] = idx[b]
            b -= 1
        idx[b + 1] = v
    used = 0.0
    for a in range(k):
        j = idx[a]
        o = c.orders[j]
        ex = qm.executable_nb(o.front + used, lot)
        if ex > 0.0:
            o.front = 0.0
            done = _fill(c, j, ts, o.px, min(ex, o.leaves), True)
            used += done
    _trigger_contingent(c, ts, t)


@njit(cache=True, error_model="numpy", _nrt=False)
def on_event_nb(c: Core, ev: int, ts: int, px: float, qty: float) -> None:
    """One ``event_dt`` row (depth or trade) at exchange time ``ts``."""
    kind = ev & EV_KIND_MASK
    if kind == EV_GAP:
        gap_nb(c, ts)
    elif kind == EV_DEPTH:
        on_depth_nb(c, ts, (ev & EV_BID) != 0, px, qty, (ev & EV_SNAPSHOT) != 0,
                    (ev & EV_LAST) != 0)
    elif kind == EV_TRADE:
        on_trade_nb(c, ts, (ev & EV_BUY) != 0, px, qty)


@njit(cache=True, error_model="numpy", _nrt=False)
def gap_nb(c: Core, ts: int) -> int:
    """The feed lost updates: drop the stale book and cancel every live order (``R_GAP``);
    orders are refused until the next snapshot makes the book valid again."""
    k = cancel_all_nb(c, ts, R_GAP)
    _clear_book(c)
    c.iv[I_VALID] = 0
    c.iv[I_AT_MSG_START] = 1
    c.iv[I_IN_SNAPSHOT] = 0
    return k


@njit(cache=True, error_model="numpy", _nrt=False)
def live_count_nb(c: Core) -> int:
    """Number of live orders."""
    k = 0
    for j in range(c.iv[I_HI]):
        if _live(c.orders[j].status):
            k += 1
    return k

