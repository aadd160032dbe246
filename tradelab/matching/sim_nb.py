"""Two-clock replay of ``event_dt`` rows over one matching core (numba, no I/O).

Every event has an exchange time and a local receipt time. The *exchange* side (a matching
:class:`~tradelab.matching.core_nb.Core`) sees each event at ``exch_ts``; the *local* side (the
strategy's own copy of the book) sees it at ``local_ts`` (clamped so local time never goes
back: local rows are delivered in storage order). Order requests travel to the exchange after
an entry latency, responses (executions, reports, funding) travel back after a response
latency, both through first-in first-out queues whose arrival times never decrease, so nothing
overtakes. The loop always takes the earliest of four sources; at equal times the order is:
local data, local responses, exchange data (funding settlements first), orders arriving at the
exchange, so an order arriving at ``t`` does not see a trade stamped ``t``.

State lives in :class:`Sim` (arrays only). :func:`elapse_nb` advances it to a local time and
returns why it stopped (``EL_UNTIL``; ``EL_NEED_DATA`` when a cursor reached the end of the
event chunk and more data exists; ``EL_LOG_FULL`` when the output log must be drained;
``EL_END``). The ``submit_*_nb`` functions are what a strategy calls at the current local time.

Gaps: an ``EV_GAP`` row cancels the exchange's resting orders and drops its book (orders are
refused until the resync snapshot); locally it drops the strategy's book and sets ``S_GAP``
until the next complete snapshot, so a strategy knows not to quote.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tradelab.core.events import (
    EV_BID,
    EV_DEPTH,
    EV_GAP,
    EV_KIND_MASK,
    EV_LAST,
    EV_SNAPSHOT,
    EV_TRADE,
)
from tradelab.matching import core_nb as cn
from tradelab.matching.latency_nb import entry_latency_nb, response_latency_nb
from tradelab.matching.types import (
    A_CANCEL,
    A_MODIFY,
    A_PLACE,
    D_POSITION,
    I_N_FILLS,
    I_N_REPORTS,
    I_VALID,
    R_LATENCY,
    RP_REJECTED,
    ST_CANCELED,
    ST_EXPIRED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIAL,
    ST_REJECTED,
    order_dt,
)

INF = np.iinfo(np.int64).max

# what a message to the local side carries
M_FILL = 1
M_REPORT = 2
M_FUNDING = 3

# elapse results
EL_UNTIL = 0
EL_NEED_DATA = 1
EL_LOG_FULL = 2
EL_END = 3
EL_BOOK = 4  # a local depth message just completed (only with S_STOP_ON_BOOK set)
EL_TRADE = 5  # a local trade row was just delivered (only with S_STOP_ON_TRADE set)
EL_DATA = 6  # a local data row was just delivered (only with S_STOP_ON_DATA set)

# local order flags beyond the core's
LF_PENDING = 1 << 8  # sent, not acknowledged yet
LF_CANCELING = 1 << 9  # cancel sent

req_dt = np.dtype(
    [
        ("ts", np.int64),  # arrival at the exchange
        ("req_ts", np.int64),  # local send time
        ("action", np.int64),
        ("order_id", np.int64),
        ("side", np.int64),
        ("kind", np.int64),
        ("tif", np.int64),
        ("flags", np.int64),
        ("px", np.int64),
        ("trigger", np.int64),
        ("qty", np.float64),
        ("trail", np.float64),
        ("oco", np.int64),
    ],
    align=True,
)

msg_dt = np.dtype(
    [
        ("ts", np.int64),  # local arrival time
        ("exch_ts", np.int64),
        ("what", np.int64),  # M_FILL, M_REPORT, M_FUNDING
        ("order_id", np.int64),
        ("side", np.int64),
        ("px", np.float64),  # fill price / report price / mark price at settlement
        ("qty", np.float64),  # fill quantity / funding rate
        ("leaves", np.float64),
        ("fee", np.float64),  # fill fee / funding paid (negative = received)
        ("maker", np.int64),
        ("queue_wait", np.int64),
        ("position", np.float64),
        ("kind", np.int64),  # report kind
        ("status", np.int64),
        ("reason", np.int64),
        ("req_ts", np.int64),  # local time the order's request was sent (decision time)
    ],
    align=True,
)

# int64 state slots
S_NOW = 0
S_REQ_HEAD = 1
S_REQ_TAIL = 2
S_REQ_LAST = 3
S_MSG_HEAD = 4
S_MSG_TAIL = 5
S_MSG_LAST = 6
S_LOG_N = 7
S_IE = 8  # exchange cursor into the event chunk
S_IL = 9  # local cursor
S_LOCAL_LAST = 10
S_FINAL = 11  # the chunk is the last one
S_GAP = 12  # local book not valid (before the first snapshot or inside a gap)
S_LAT_CODE = 13
S_FUND_I = 14
S_EVENTS = 15  # events processed (exchange side)
S_BOOK_MSG = 16  # local depth messages completed
S_STOP_ON_BOOK = 17  # 1: elapse_nb returns EL_BOOK after each local depth message
S_STOP_ON_TRADE = 18  # 1: elapse_nb returns EL_TRADE after each local trade row
S_STOP_ON_DATA = 19  # 1: elapse_nb returns EL_DATA after each local data row (any kind)
S_SIZE = 24

# float64 state slots (local side, from the responses)
F_POS = 0
F_CASH = 1
F_FEES = 2
F_FUNDING = 3
F_LAST_PX = 4  # last trade price seen locally
F_VOLUME = 5
F_SHORT_COST = 6  # entry value of the open short position (sum of qty x price that opened it)
F_SIZE = 8


class Sim(NamedTuple):
    """Replay state (create with :func:`new_sim`)."""

    ex: cn.Core  # the exchange's matching core
    lb: cn.Core  # the local book (its order table is unused)
    req: np.ndarray  # req_dt ring: requests on their way to the exchange
    msg: np.ndarray  # msg_dt ring: responses on their way back
    log: np.ndarray  # msg_dt: responses as received locally (drained by the caller)
    lorders: np.ndarray  # order_dt: the local view of our orders
    lat_params: np.ndarray
    lat_table: np.ndarray
    fund_ts: np.ndarray  # int64 settlement times
    fund_rate: np.ndarray
    fund_mark: np.ndarray
    sv: np.ndarray
    fv: np.ndarray


def new_sim(
    ex: cn.Core, lb: cn.Core, lat_code: int, lat_params: np.ndarray, lat_table: np.ndarray,
    fund_ts: np.ndarray, fund_rate: np.ndarray, fund_mark: np.ndarray, queue_cap: int = 4096,
    log_cap: int = 65536,
) -> Sim:
    sv = np.zeros(S_SIZE, dtype=np.int64)
    sv[S_LAT_CODE] = lat_code
    sv[S_GAP] = 1
    sv[S_LOCAL_LAST] = np.iinfo(np.int64).min
    sv[S_REQ_LAST] = np.iinfo(np.int64).min
    sv[S_MSG_LAST] = np.iinfo(np.int64).min
    sv[S_NOW] = np.iinfo(np.int64).min
    return Sim(
        ex, lb,
        np.zeros(queue_cap, dtype=req_dt),
        np.zeros(queue_cap, dtype=msg_dt),
        np.zeros(log_cap, dtype=msg_dt),
        np.zeros(ex.orders.shape[0], dtype=order_dt),
        np.ascontiguousarray(lat_params, dtype=np.int64),
        np.ascontiguousarray(lat_table, dtype=np.int64).reshape(-1, 3),
        np.ascontiguousarray(fund_ts, dtype=np.int64),
        np.ascontiguousarray(fund_rate, dtype=np.float64),
        np.ascontiguousarray(fund_mark, dtype=np.float64),
        sv,
        np.zeros(F_SIZE),
    )


# ----------------------------------------------------------------------------- queues


@njit(cache=True, error_model="numpy", _nrt=False)
def _push_msg(s: Sim, ts: int) -> int:
    """Slot of a new response arriving locally at ``ts`` (clamped: FIFO, never overtakes)."""
    cap = s.msg.shape[0]
    tail = s.sv[S_MSG_TAIL]
    if tail - s.sv[S_MSG_HEAD] >= cap:
        raise RuntimeError("event sim: response queue full")
    if ts < s.sv[S_MSG_LAST]:
        ts = s.sv[S_MSG_LAST]
    s.sv[S_MSG_LAST] = ts
    k = tail % cap
    s.msg[k].ts = ts
    s.sv[S_MSG_TAIL] = tail + 1
    return k


@njit(cache=True, error_model="numpy", _nrt=False)
def _forward(s: Sim, t: int, action: int) -> None:
    """Move the exchange core's new fills and reports to the local-bound queue, in their order."""
    c = s.ex
    nf = c.iv[I_N_FILLS]
    nr = c.iv[I_N_REPORTS]
    if nf == 0 and nr == 0:
        return
    lat = response_latency_nb(s.sv[S_LAT_CODE], s.lat_params, s.lat_table, t, action)
    a = 0
    b = 0
    while a < nf or b < nr:
        if b >= nr or (a < nf and c.fills[a].rec < c.reports[b].rec):
            f = c.fills[a]
            m = s.msg[_push_msg(s, t + lat)]
            m.exch_ts = f.ts
            m.what = M_FILL
            m.order_id = f.order_id
            m.side = f.side
            m.px = f.px
            m.qty = f.qty
            m.leaves = f.leaves
            m.fee = f.fee
            m.maker = f.maker
            m.queue_wait = f.queue_wait
            m.position = f.position
            m.kind = 0
            m.status = ST_FILLED if f.leaves == 0.0 else ST_PARTIAL
            m.reason = 0
            a += 1
        else:
            r = c.reports[b]
            m = s.msg[_push_msg(s, t + lat)]
            m.exch_ts = r.ts
            m.what = M_REPORT
            m.order_id = r.order_id
            m.side = 0
            m.px = r.px
            m.qty = 0.0
            m.leaves = r.leaves
            m.fee = 0.0
            m.maker = 0
            m.queue_wait = 0
            m.position = c.dv[D_POSITION]
            m.kind = r.kind
            m.status = r.status
            m.reason = r.reason
            b += 1
    c.iv[I_N_FILLS] = 0
    c.iv[I_N_REPORTS] = 0


# ----------------------------------------------------------------------------- local view


@njit(cache=True, error_model="numpy", _nrt=False)
def local_slot_nb(s: Sim, oid: int) -> int:
    """Slot of our live (or pending) order ``oid`` in ``s.lorders``; -1 if none."""
    lo = s.lorders
    for j in range(lo.shape[0]):
        st = lo[j].status
        if lo[j].id == oid and (st == ST_NEW or st == ST_PARTIAL):
            return j
    return -1


@njit(cache=True, error_model="numpy", _nrt=False)
def _local_receive(s: Sim) -> None:
    cap = s.msg.shape[0]
    head = s.sv[S_MSG_HEAD]
    m = s.msg[head % cap]
    s.sv[S_MSG_HEAD] = head + 1
    k = s.sv[S_LOG_N]
    s.log[k] = m
    s.sv[S_LOG_N] = k + 1
    j = local_slot_nb(s, m.order_id) if m.what != M_FUNDING else -1
    s.log[k].req_ts = s.lorders[j].accept_ts if j >= 0 else m.exch_ts
    if m.what == M_FUNDING:
        s.fv[F_CASH] -= m.fee
        s.fv[F_FUNDING] += m.fee
        return
    if m.what == M_FILL:
        pos0 = s.fv[F_POS]
        if m.side > 0 and pos0 < 0.0:  # covering: the short's cost basis shrinks pro rata
            s.fv[F_SHORT_COST] *= max(0.0, 1.0 - m.qty / -pos0)
        elif m.side < 0 and m.position < 0.0:  # opening or adding to a short
            s.fv[F_SHORT_COST] += m.px * (m.qty if pos0 <= 0.0 else -m.position)
        s.fv[F_POS] = m.position
        s.fv[F_CASH] -= m.side * m.px * m.qty + m.fee
        s.fv[F_FEES] += m.fee
        s.fv[F_VOLUME] += m.qty
        if j >= 0:
            o = s.lorders[j]
            o.leaves = m.leaves
            o.filled += m.qty
            o.flags &= ~LF_PENDING
            o.status = m.status
        return
    if j >= 0:
        o = s.lorders[j]
        o.flags &= ~LF_PENDING
        st = m.status
        if st == ST_CANCELED or st == ST_EXPIRED or st == ST_REJECTED or st == ST_FILLED:
            o.status = st
        o.leaves = m.leaves if m.kind != RP_REJECTED else o.leaves
        if m.kind != RP_REJECTED and m.px > 0.0 and o.kind == 0:
            o.px = cn.to_tick_nb(s.ex, m.px)


@njit(cache=True, error_model="numpy", _nrt=False)
def _local_data(s: Sim, e: int, px: float, qty: float) -> None:
    kind = e & EV_KIND_MASK
    if kind == EV_DEPTH:
        last = (e & EV_LAST) != 0
        cn.on_depth_nb(s.lb, s.sv[S_NOW], (e & EV_BID) != 0, px, qty, (e & EV_SNAPSHOT) != 0,
                       last)
        if last:
            s.sv[S_BOOK_MSG] += 1
            if s.lb.iv[I_VALID] == 1:
                s.sv[S_GAP] = 0
    elif kind == EV_TRADE:
        s.fv[F_LAST_PX] = px
    elif kind == EV_GAP:
        cn.gap_nb(s.lb, s.sv[S_NOW])
        s.lb.iv[I_N_REPORTS] = 0
        s.sv[S_GAP] = 1


# ----------------------------------------------------------------------------- submit


@njit(cache=True, error_model="numpy", _nrt=False)
def _new_local(s: Sim, oid: int, side: int, kind: int, tif: int, flags: int, px_t: int,
               qty: float) -> None:
    lo = s.lorders
    for j in range(lo.shape[0]):
        st = lo[j].status
        if not (st == ST_NEW or st == ST_PARTIAL):
            o = lo[j]
            o.id = oid
            o.status = ST_NEW
            o.side = side
            o.kind = kind
            o.tif = tif
            o.flags = flags | LF_PENDING
            o.px = px_t
            o.qty = qty
            o.leaves = qty
            o.filled = 0.0
            o.accept_ts = s.sv[S_NOW]
            return
    raise RuntimeError("event sim: too many open orders on the local side")


@njit(cache=True, error_model="numpy", _nrt=False)
def _send(s: Sim, action: int, oid: int, side: int, kind: int, tif: int, flags: int, px_t: int,
          trig_t: int, qty: float, trail: float, oco: int) -> bool:
    now = s.sv[S_NOW]
    lat = entry_latency_nb(s.sv[S_LAT_CODE], s.lat_params, s.lat_table, now, action)
    if lat < 0:  # the exchange rejects it; the rejection is back after |lat|
        m = s.msg[_push_msg(s, now - lat)]
        m.exch_ts = now
        m.what = M_REPORT
        m.order_id = oid
        m.side = side
        m.px = 0.0
        m.qty = 0.0
        m.leaves = qty
        m.fee = 0.0
        m.maker = 0
        m.queue_wait = 0
        m.position = s.fv[F_POS]
        m.kind = RP_REJECTED
        m.status = ST_REJECTED if action == A_PLACE else ST_NEW
        m.reason = R_LATENCY
        return False
    cap = s.req.shape[0]
    tail = s.sv[S_REQ_TAIL]
    if tail - s.sv[S_REQ_HEAD] >= cap:
        raise RuntimeError("event sim: request queue full")
    ts = now + lat
    if ts < s.sv[S_REQ_LAST]:
        ts = s.sv[S_REQ_LAST]
    s.sv[S_REQ_LAST] = ts
    r = s.req[tail % cap]
    r.ts = ts
    r.req_ts = now
    r.action = action
    r.order_id = oid
    r.side = side
    r.kind = kind
    r.tif = tif
    r.flags = flags
    r.px = px_t
    r.trigger = trig_t
    r.qty = qty
    r.trail = trail
    r.oco = oco
    s.sv[S_REQ_TAIL] = tail + 1
    return True


@njit(cache=True, error_model="numpy", _nrt=False)
def submit_place_nb(s: Sim, oid: int, side: int, kind: int, tif: int, flags: int, px_t: int,
                    trig_t: int, qty: float, trail: float, oco: int) -> bool:
    """Send a new order now (local time); False if the latency model rejects it."""
    _new_local(s, oid, side, kind, tif, flags, px_t, qty)
    return _send(s, A_PLACE, oid, side, kind, tif, flags, px_t, trig_t, qty, trail, oco)


@njit(cache=True, error_model="numpy", _nrt=False)
def submit_cancel_nb(s: Sim, oid: int) -> bool:
    """Send a cancel now; the local order is marked as being cancelled."""
    j = local_slot_nb(s, oid)
    if j >= 0:
        s.lorders[j].flags |= LF_CANCELING
    return _send(s, A_CANCEL, oid, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0)


@njit(cache=True, error_model="numpy", _nrt=False)
def submit_modify_nb(s: Sim, oid: int, px_t: int, leaves: float) -> bool:
    """Send a modify (new price in ticks, new remaining quantity) now."""
    return _send(s, A_MODIFY, oid, 0, 0, 0, 0, px_t, 0, leaves, 0.0, 0)


# ----------------------------------------------------------------------------- the loop


@njit(cache=True, error_model="numpy", _nrt=False)
def _exchange_order(s: Sim, t: int) -> None:
    cap = s.req.shape[0]
    head = s.sv[S_REQ_HEAD]
    r = s.req[head % cap]
    s.sv[S_REQ_HEAD] = head + 1
    if r.action == A_PLACE:
        cn.place_nb(s.ex, t, r.order_id, r.side, r.kind, r.tif, r.flags, r.px, r.trigger, r.qty,
                    r.trail, r.oco)
    elif r.action == A_CANCEL:
        cn.cancel_nb(s.ex, t, r.order_id)
    else:
        cn.modify_nb(s.ex, t, r.order_id, r.px, r.qty)
    _forward(s, t, r.action)


@njit(cache=True, error_model="numpy", _nrt=False)
def _settle_funding(s: Sim, t: int) -> None:
    i = s.sv[S_FUND_I]
    s.sv[S_FUND_I] = i + 1
    pos = s.ex.dv[D_POSITION]
    if pos == 0.0:
        return
    mark = s.fund_mark[i]
    rate = s.fund_rate[i]
    paid = pos * s.ex.inst[0].contract_size * mark * rate  # longs pay a positive rate
    s.ex.dv[1] -= paid  # D_CASH
    lat = response_latency_nb(s.sv[S_LAT_CODE], s.lat_params, s.lat_table, t, A_PLACE)
    m = s.msg[_push_msg(s, t + lat)]
    m.exch_ts = t
    m.what = M_FUNDING
    m.order_id = 0
    m.side = 0
    m.px = mark
    m.qty = rate
    m.leaves = 0.0
    m.fee = paid
    m.maker = 0
    m.queue_wait = 0
    m.position = pos
    m.kind = 0
    m.status = 0
    m.reason = 0


@njit(cache=True, error_model="numpy", _nrt=False)
def elapse_nb(s: Sim, ev: np.ndarray, until: int) -> int:
    """Process everything up to and including local time ``until`` (see module docstring)."""
    n = ev.shape[0]
    sv = s.sv
    nf = s.fund_ts.shape[0]
    margin = s.log.shape[0] - 2 * s.ex.fills.shape[0]
    while True:
        if sv[S_LOG_N] >= margin:
            return EL_LOG_FULL
        ie = sv[S_IE]
        il = sv[S_IL]
        if (ie >= n or il >= n) and sv[S_FINAL] == 0:
            return EL_NEED_DATA
        t0 = INF
        if il < n:
            t0 = ev[il].local_ts
            if t0 < sv[S_LOCAL_LAST]:
                t0 = sv[S_LOCAL_LAST]
        t1 = s.msg[sv[S_MSG_HEAD] % s.msg.shape[0]].ts if sv[S_MSG_HEAD] < sv[S_MSG_TAIL] else INF
        t2 = ev[ie].exch_ts if ie < n else INF
        tf = s.fund_ts[sv[S_FUND_I]] if sv[S_FUND_I] < nf else INF
        t3 = s.req[sv[S_REQ_HEAD] % s.req.shape[0]].ts if sv[S_REQ_HEAD] < sv[S_REQ_TAIL] else INF
        t = min(min(t0, t1), min(min(t2, tf), t3))
        if t == INF:
            if until != INF:
                sv[S_NOW] = until
            return EL_END
        if t > until:
            sv[S_NOW] = until
            return EL_UNTIL
        sv[S_NOW] = t
        if t0 == t:
            # a run of local rows: they go first up to the other sources' next time (local
            # data never changes those), so the five-way choice is made once per run
            bound = min(min(min(t1, t2), min(tf, t3)), until)
            while True:
                sv[S_LOCAL_LAST] = t
                r = ev[il]
                e = np.int64(r.ev)
                _local_data(s, e, r.px, r.qty)
                il += 1
                sv[S_IL] = il
                if (sv[S_STOP_ON_BOOK] != 0 and (e & EV_KIND_MASK) == EV_DEPTH
                        and (e & EV_LAST) != 0 and sv[S_GAP] == 0):
                    return EL_BOOK
                if sv[S_STOP_ON_TRADE] != 0 and (e & EV_KIND_MASK) == EV_TRADE:
                    return EL_TRADE
                if sv[S_STOP_ON_DATA] != 0:
                    return EL_DATA
                if il >= n:
                    break
                tn = ev[il].local_ts
                if tn < t:
                    tn = t
                if tn > bound:
                    break
                t = tn
                sv[S_NOW] = t
        elif t1 == t:
            _local_receive(s)
        elif tf == t:
            _settle_funding(s, t)
        elif t2 == t:
            # a run of exchange rows, before the next local row, response or settlement and
            # not after the next order's arrival, until one of them produces a response
            before = min(min(t0, t1), tf)
            upto = min(t3, until)
            while True:
                r = ev[ie]
                cn.on_event_nb(s.ex, np.int64(r.ev), t, r.px, r.qty)
                ie += 1
                sv[S_IE] = ie
                sv[S_EVENTS] += 1
                if s.ex.iv[I_N_FILLS] != 0 or s.ex.iv[I_N_REPORTS] != 0:
                    _forward(s, t, A_PLACE)
                    break
                if ie >= n:
                    break
                tn = ev[ie].exch_ts
                if tn >= before or tn > upto:
                    break
                t = tn
                sv[S_NOW] = t
        else:
            _exchange_order(s, t)


@njit(cache=True, error_model="numpy", _nrt=False)
def replay_nb(s: Sim, ev: np.ndarray) -> int:
    """Replay with no strategy (to the end of the chunk, or until the log needs draining)."""
    return elapse_nb(s, ev, INF)

