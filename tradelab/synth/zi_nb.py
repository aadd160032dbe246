"""Numba kernels of the zero-intelligence order book of :mod:`tradelab.synth.zi`.

Arrays in, arrays out, no pandas, no I/O. All state is explicit and mutated in place:

- ``q`` and ``n``: int64 ``(2, W)`` lots and order counts per price level; row ``BID`` / ``ASK``,
  column = tick - ``iv[I_BASE]`` (a window of ``W`` ticks that is re-centred on the mid when the
  mid drifts into its outer quarters; levels that fall off are removed as ordinary changes).
- ``iv``: int64 vector (slots ``I_*``): window base, best and deepest level of each side, order
  and lot totals per side, time of the pending event, next update/trade/aggTrade ids, next
  reference-price step.
- ``fv``: float64 vector (slot ``F_REF``): the reference price in ticks.
- ``rng``: uint64 ``(2, 4)`` xoshiro256** states, row 0 for the order flow, row 1 for the
  reference price. Random numbers are drawn here (not passed in) because how many an event
  consumes depends on the book; the generator is explicit state, so the stream is a pure
  function of the seed and does not depend on how time is cut into windows.

The simulation is event-driven (Gillespie): after each event the waiting time to the next one is
drawn from the total rate of the new state and stored in ``iv[I_TNEXT]``; a window ``[t0, t1)``
processes events while that time is ``< t1`` and leaves the pending one for the next call.

Outputs are records (``zi_event_dt``, ``zi_change_dt``, ``zi_trade_dt``); prices are absolute
integer ticks, quantities integer lots. Sides are +1 (bid / buy) and -1 (ask / sell).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

W = 1 << 16
"""Width of the book window in ticks."""
BID = 0
ASK = 1

EV_LIMIT = 0
EV_CANCEL = 1
EV_MARKET = 2

I_BASE = 0
I_BB = 1  # best bid index (-1 if none)
I_BA = 2  # best ask index (W if none)
I_DB = 3  # deepest (lowest) bid index (W if none)
I_DA = 4  # deepest (highest) ask index (-1 if none)
I_NOB = 5  # orders on the bid side
I_NOA = 6
I_LQB = 7  # lots on the bid side
I_LQA = 8
I_TNEXT = 9  # exchange time of the pending event, ns
I_UID = 10  # next update id
I_TID = 11  # next trade id
I_AID = 12  # next aggTrade id
I_REFT = 13  # time of the next reference-price step, ns
I_SIZE = 14

F_REF = 0
F_SIZE = 1

P_MU = 0  # market order rate, 1/s
P_LMED = 1  # limit order size: median lots, log-sd
P_LSIG = 2
P_MMED = 3  # market order size: median lots, log-sd
P_MSIG = 4
P_REFSIG = 5  # reference price: sd per step, ticks
P_REFSTEP = 6  # step, ns
P_REFGAP = 7  # largest distance to the mid, ticks
P_SCALE = 8  # steering: distance (ticks) at which tanh saturates
P_GMKT = 9  # steering gain of the market order side
P_GLIM = 10  # steering gain of the limit order side
P_LAM = 11  # total limit order rate per side, 1/s
P_SIZE = 12

zi_event_dt = np.dtype(
    [
        ("t", np.int64),  # exchange time, ns
        ("kind", np.int64),  # EV_LIMIT, EV_CANCEL, EV_MARKET
        ("side", np.int64),  # book side (limit, cancel) or aggressor side (market): +1 / -1
        ("px", np.int64),  # limit/cancel level; market: first level hit (-1 if nothing filled)
        ("size", np.int64),  # lots asked (limit, market) or removed (cancel)
        ("filled", np.int64),  # lots filled (market), else == size
        ("ch_end", np.int64),  # end of this event's changes in the change array
        ("tr_end", np.int64),  # end of this event's trades in the trade array
        ("bid_px", np.int64),  # top of book after the event
        ("bid_qty", np.int64),
        ("ask_px", np.int64),
        ("ask_qty", np.int64),
        ("top", np.int64),  # 1 if the top of book changed
    ],
    align=True,
)
zi_change_dt = np.dtype(
    [("side", np.int64), ("px", np.int64), ("qty", np.int64), ("uid", np.int64)], align=True
)
zi_trade_dt = np.dtype(
    [("px", np.int64), ("qty", np.int64), ("tid", np.int64), ("aid", np.int64)], align=True
)

_U53 = 1.0 / 9007199254740992.0


# -- random numbers: xoshiro256** -----------------------------------------------------------


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def next_u64_nb(rng: np.ndarray, row: int) -> np.uint64:
    """Next 64-bit output of the xoshiro256** state ``rng[row]`` (advanced in place)."""
    s = rng[row]
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True)
def uniform_nb(rng: np.ndarray, row: int) -> float:
    """Uniform on [0, 1) with 53 random bits."""
    return np.float64(next_u64_nb(rng, row) >> np.uint64(11)) * _U53


@njit(cache=True)
def normal_nb(rng: np.ndarray, row: int) -> float:
    """Standard normal (Box-Muller, one of the pair)."""
    u1 = 1.0 - uniform_nb(rng, row)
    u2 = uniform_nb(rng, row)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def _lots(rng, median, sigma):
    x = median * math.exp(sigma * normal_nb(rng, 0))
    v = np.int64(math.floor(x + 0.5))
    return v if v > 0 else np.int64(1)


# -- book bookkeeping ----------------------------------------------------------------------


@njit(cache=True)
def _touch(q, iv, side, i):
    """Fix best/deepest pointers of ``side`` after level ``i`` changed."""
    if side == BID:
        if q[BID, i] > 0:
            if i > iv[I_BB]:
                iv[I_BB] = i
            if i < iv[I_DB]:
                iv[I_DB] = i
        elif i == iv[I_BB]:
            lo = iv[I_DB]
            j = i - 1
            while j >= lo and q[BID, j] == 0:
                j -= 1
            if j < lo:
                iv[I_BB] = -1
                iv[I_DB] = W
            else:
                iv[I_BB] = j
        elif i == iv[I_DB]:
            j = i + 1
            while q[BID, j] == 0:
                j += 1
            iv[I_DB] = j
    else:
        if q[ASK, i] > 0:
            if i < iv[I_BA]:
                iv[I_BA] = i
            if i > iv[I_DA]:
                iv[I_DA] = i
        elif i == iv[I_BA]:
            hi = iv[I_DA]
            j = i + 1
            while j <= hi and q[ASK, j] == 0:
                j += 1
            if j > hi:
                iv[I_BA] = W
                iv[I_DA] = -1
            else:
                iv[I_BA] = j
        elif i == iv[I_DA]:
            j = i - 1
            while q[ASK, j] == 0:
                j -= 1
            iv[I_DA] = j


@njit(cache=True)
def _change(ch, k, iv, side, i, qty):
    ch[k].side = 1 if side == BID else -1
    ch[k].px = iv[I_BASE] + i
    ch[k].qty = qty
    ch[k].uid = iv[I_UID]
    iv[I_UID] += 1
    return k + 1


@njit(cache=True)
def _rescan(q, iv):
    """Recompute best/deepest pointers of both sides from scratch."""
    iv[I_BB] = -1
    iv[I_DB] = W
    iv[I_BA] = W
    iv[I_DA] = -1
    for i in range(W):
        if q[BID, i] > 0:
            if iv[I_DB] == W:
                iv[I_DB] = i
            iv[I_BB] = i
        if q[ASK, i] > 0:
            if iv[I_BA] == W:
                iv[I_BA] = i
            iv[I_DA] = i


@njit(cache=True)
def _recentre(q, n, iv, ch, k):
    """Shift the window so the mid sits in its middle once it leaves the inner half."""
    if iv[I_BB] < 0 or iv[I_BA] >= W:
        return k
    mid = (iv[I_BB] + iv[I_BA]) // 2
    if W // 4 <= mid <= 3 * W // 4:
        return k
    shift = mid - W // 2
    for s in range(2):
        for i in range(W):
            j = i - shift
            if q[s, i] > 0 and (j < 0 or j >= W):
                if s == BID:
                    iv[I_LQB] -= q[s, i]
                    iv[I_NOB] -= n[s, i]
                else:
                    iv[I_LQA] -= q[s, i]
                    iv[I_NOA] -= n[s, i]
                q[s, i] = 0
                n[s, i] = 0
                k = _change(ch, k, iv, s, i, 0)
    if shift > 0:
        for s in range(2):
            for i in range(W - shift):
                q[s, i] = q[s, i + shift]
                n[s, i] = n[s, i + shift]
            for i in range(W - shift, W):
                q[s, i] = 0
                n[s, i] = 0
    else:
        for s in range(2):
            for i in range(W - 1, -shift - 1, -1):
                q[s, i] = q[s, i + shift]
                n[s, i] = n[s, i + shift]
            for i in range(-shift):
                q[s, i] = 0
                n[s, i] = 0
    iv[I_BASE] += shift
    _rescan(q, iv)
    return k


@njit(cache=True)
def cancel_rate_nb(n: np.ndarray, iv: np.ndarray, theta: np.ndarray) -> float:
    """Total cancellation rate: sum over levels of ``theta[distance] * orders``.

    A bid's distance is measured from the best ask and an ask's from the best bid (as the
    arrival distance is), clamped to ``len(theta) - 1``. A side holding a single order does not
    cancel it, so the book stays two-sided.
    """
    dmax = theta.shape[0] - 1
    total = 0.0
    if iv[I_NOB] > 1:
        ba = iv[I_BA]
        for i in range(iv[I_BB], iv[I_DB] - 1, -1):
            if n[BID, i] > 0:
                d = ba - i
                total += theta[d if d < dmax else dmax] * n[BID, i]
    if iv[I_NOA] > 1:
        bb = iv[I_BB]
        for i in range(iv[I_BA], iv[I_DA] + 1):
            if n[ASK, i] > 0:
                d = i - bb
                total += theta[d if d < dmax else dmax] * n[ASK, i]
    return total


@njit(cache=True)
def _pick_cancel(n, iv, theta, target):
    """The level whose cumulative cancellation weight first exceeds ``target``."""
    dmax = theta.shape[0] - 1
    acc = 0.0
    last_s = -1
    last_i = -1
    if iv[I_NOB] > 1:
        ba = iv[I_BA]
        for i in range(iv[I_BB], iv[I_DB] - 1, -1):
            if n[BID, i] > 0:
                d = ba - i
                acc += theta[d if d < dmax else dmax] * n[BID, i]
                last_s = BID
                last_i = i
                if acc > target:
                    return BID, i
    if iv[I_NOA] > 1:
        bb = iv[I_BB]
        for i in range(iv[I_BA], iv[I_DA] + 1):
            if n[ASK, i] > 0:
                d = i - bb
                acc += theta[d if d < dmax else dmax] * n[ASK, i]
                last_s = ASK
                last_i = i
                if acc > target:
                    return ASK, i
    return last_s, last_i


@njit(cache=True)
def _step_reference(t, iv, fv, rng, prm):
    """Advance the reference random walk through its steps at or before ``t``; keep it within
    ``P_REFGAP`` ticks of the mid."""
    step = np.int64(prm[P_REFSTEP])
    while iv[I_REFT] <= t:
        fv[F_REF] += prm[P_REFSIG] * normal_nb(rng, 1)
        iv[I_REFT] += step
    if iv[I_BB] >= 0 and iv[I_BA] < W:
        mid = iv[I_BASE] + 0.5 * (iv[I_BB] + iv[I_BA])
        gap = prm[P_REFGAP]
        if fv[F_REF] > mid + gap:
            fv[F_REF] = mid + gap
        elif fv[F_REF] < mid - gap:
            fv[F_REF] = mid - gap


# -- events --------------------------------------------------------------------------------


@njit(cache=True)
def _limit(q, n, iv, fv, rng, lam_cdf, prm, ch, k, side):
    dist = np.int64(np.searchsorted(lam_cdf, uniform_nb(rng, 0), side="right")) + 1
    if dist > lam_cdf.shape[0]:
        dist = lam_cdf.shape[0]
    size = _lots(rng, prm[P_LMED], prm[P_LSIG])
    if side == BID:
        ref = iv[I_BA] if iv[I_BA] < W else np.int64(fv[F_REF] - iv[I_BASE]) + 1
        i = ref - dist
        if iv[I_BASE] + i < 1:  # prices stay positive
            i = 1 - iv[I_BASE]
        iv[I_NOB] += 1
        iv[I_LQB] += size
    else:
        ref = iv[I_BB] if iv[I_BB] >= 0 else np.int64(fv[F_REF] - iv[I_BASE])
        i = ref + dist
        iv[I_NOA] += 1
        iv[I_LQA] += size
    q[side, i] += size
    n[side, i] += 1
    _touch(q, iv, side, i)
    return _change(ch, k, iv, side, i, q[side, i]), i, size


@njit(cache=True)
def _cancel(q, n, iv, side, i, ch, k):
    removed = q[side, i] // n[side, i]
    q[side, i] -= removed
    n[side, i] -= 1
    if side == BID:
        iv[I_NOB] -= 1
        iv[I_LQB] -= removed
    else:
        iv[I_NOA] -= 1
        iv[I_LQA] -= removed
    _touch(q, iv, side, i)
    return _change(ch, k, iv, side, i, q[side, i]), removed


@njit(cache=True)
def _market(q, n, iv, rng, prm, ch, k, tr, m, buy):
    """A market order walks the opposite side; one trade per maker order it fills.

    The orders of a level are taken as equal (the level's lots split evenly, the remainder
    going to the front orders). The order is capped so that one lot stays on the side.
    """
    size = _lots(rng, prm[P_MMED], prm[P_MSIG])
    side = ASK if buy else BID
    avail = (iv[I_LQA] if buy else iv[I_LQB]) - 1
    left = size if size < avail else avail
    if left < 0:
        left = 0
    filled = left
    first_px = np.int64(-1)
    while left > 0:
        i = iv[I_BA] if buy else iv[I_BB]
        if first_px < 0:
            first_px = iv[I_BASE] + i
        lvl_q = q[side, i]
        lvl_n = n[side, i]
        base = lvl_q // lvl_n
        extra = lvl_q - base * lvl_n
        aid = iv[I_AID]
        iv[I_AID] += 1
        done_orders = 0
        took = 0
        for j in range(lvl_n):
            osz = base + (1 if j < extra else 0)
            take = osz if osz < left else left
            tr[m].px = iv[I_BASE] + i
            tr[m].qty = take
            tr[m].tid = iv[I_TID]
            tr[m].aid = aid
            iv[I_TID] += 1
            m += 1
            left -= take
            took += take
            if take == osz:
                done_orders += 1
            if left == 0:
                break
        q[side, i] = lvl_q - took
        n[side, i] = lvl_n - done_orders
        if side == BID:
            iv[I_LQB] -= took
            iv[I_NOB] -= done_orders
        else:
            iv[I_LQA] -= took
            iv[I_NOA] -= done_orders
        _touch(q, iv, side, i)
        k = _change(ch, k, iv, side, i, q[side, i])
    return k, m, size, filled, first_px


@njit(cache=True)
def _top(q, iv):
    bb = iv[I_BB]
    ba = iv[I_BA]
    bpx = iv[I_BASE] + bb if bb >= 0 else np.int64(-1)
    bq = q[BID, bb] if bb >= 0 else np.int64(0)
    apx = iv[I_BASE] + ba if ba < W else np.int64(-1)
    aq = q[ASK, ba] if ba < W else np.int64(0)
    return bpx, bq, apx, aq


@njit(cache=True)
def _waiting_ns(rng, rate):
    dt = -math.log(1.0 - uniform_nb(rng, 0)) / rate * 1e9
    v = np.int64(dt)
    return v if v > 0 else np.int64(1)


@njit(cache=True)
def schedule_next_nb(
    t: int, n: np.ndarray, iv: np.ndarray, rng: np.ndarray, theta: np.ndarray, prm: np.ndarray
) -> None:
    """Draw the time of the event after ``t`` from the total rate of the current state."""
    rate = 2.0 * prm[P_LAM] + prm[P_MU] + cancel_rate_nb(n, iv, theta)
    iv[I_TNEXT] = t + _waiting_ns(rng, rate)


@njit(cache=True)
def simulate_nb(
    t1: int,
    q: np.ndarray,
    n: np.ndarray,
    iv: np.ndarray,
    fv: np.ndarray,
    rng: np.ndarray,
    lam_cdf: np.ndarray,
    theta: np.ndarray,
    prm: np.ndarray,
    cap_ev: int,
    cap_ch: int,
    cap_tr: int,
):
    """Run the events whose time is before ``t1``; stop early when an output would overflow.

    Each event is, with probabilities proportional to its rate:

    - a limit order (rate ``2 * P_LAM``): side by ``p_buy = (1 + tanh(P_GLIM * x)) / 2`` with
      ``x = (reference - mid) / P_SCALE``; distance ``k >= 1`` ticks from the *opposite* best
      drawn from ``lam_cdf`` (the normalised cumulative ``lambda(k)``); lognormal size in lots;
    - a cancellation (rate ``sum theta(d) * orders``): the level drawn by weight, one order of
      average size (``lots // orders``) leaves it;
    - a market order (rate ``P_MU``): buy with ``(1 + tanh(P_GMKT * x)) / 2``; lognormal size,
      walking the opposite side level by level.

    Returns ``(n_events, done, events, changes, trades)``; ``done`` is False when the outputs
    filled up before ``t1`` (call again with fresh outputs: the state is consistent).
    """
    ev = np.empty(cap_ev, dtype=zi_event_dt)
    ch = np.empty(cap_ch, dtype=zi_change_dt)
    tr = np.empty(cap_tr, dtype=zi_trade_dt)
    ne = 0
    k = 0
    m = 0
    done = False
    lam2 = 2.0 * prm[P_LAM]
    mu = prm[P_MU]
    while True:
        t = iv[I_TNEXT]
        if t >= t1:
            done = True
            break
        most = iv[I_NOB] if iv[I_NOB] > iv[I_NOA] else iv[I_NOA]
        if ne >= cap_ev or k + iv[I_NOB] + iv[I_NOA] + 2 > cap_ch or m + most + 1 > cap_tr:
            break
        _step_reference(t, iv, fv, rng, prm)
        k = _recentre(q, n, iv, ch, k)
        b0, bq0, a0, aq0 = _top(q, iv)
        x = 0.0
        if iv[I_BB] >= 0 and iv[I_BA] < W:
            x = (fv[F_REF] - (iv[I_BASE] + 0.5 * (iv[I_BB] + iv[I_BA]))) / prm[P_SCALE]
        crate = cancel_rate_nb(n, iv, theta)
        u = uniform_nb(rng, 0) * (lam2 + crate + mu)
        e = ev[ne]
        e.t = t
        if u < lam2:
            p_buy = 0.5 * (1.0 + math.tanh(prm[P_GLIM] * x))
            side = BID if uniform_nb(rng, 0) < p_buy else ASK
            k, i, size = _limit(q, n, iv, fv, rng, lam_cdf, prm, ch, k, side)
            e.kind = EV_LIMIT
            e.side = 1 if side == BID else -1
            e.px = iv[I_BASE] + i
            e.size = size
            e.filled = size
        elif u < lam2 + crate:
            side, i = _pick_cancel(n, iv, theta, u - lam2)
            e.kind = EV_CANCEL
            e.side = 1 if side == BID else -1
            e.px = iv[I_BASE] + i
            k, removed = _cancel(q, n, iv, side, i, ch, k)
            e.size = removed
            e.filled = removed
        else:
            p_buy = 0.5 * (1.0 + math.tanh(prm[P_GMKT] * x))
            buy = uniform_nb(rng, 0) < p_buy
            k, m, size, filled, first_px = _market(q, n, iv, rng, prm, ch, k, tr, m, buy)
            e.kind = EV_MARKET
            e.side = 1 if buy else -1
            e.px = first_px
            e.size = size
            e.filled = filled
        e.ch_end = k
        e.tr_end = m
        b1, bq1, a1, aq1 = _top(q, iv)
        e.bid_px = b1
        e.bid_qty = bq1
        e.ask_px = a1
        e.ask_qty = aq1
        e.top = 1 if (b1 != b0 or bq1 != bq0 or a1 != a0 or aq1 != aq0) else 0
        ne += 1
        schedule_next_nb(t, n, iv, rng, theta, prm)
    return ne, done, ev[:ne], ch[:k], tr[:m]


@njit(cache=True)
def seed_book_nb(
    q: np.ndarray, n: np.ndarray, iv: np.ndarray, mid: int, counts: np.ndarray, lots: int
) -> None:
    """Initial book: ``counts[k-1]`` orders of ``lots`` lots at ``k`` ticks either side of
    ``mid`` (absolute ticks), the window centred on ``mid``."""
    q[:, :] = 0
    n[:, :] = 0
    iv[I_BASE] = mid - W // 2
    c = W // 2
    for j in range(counts.shape[0]):
        cnt = counts[j] if counts[j] > 0 else 1
        for s in range(2):
            i = c - (j + 1) if s == BID else c + (j + 1)
            n[s, i] = cnt
            q[s, i] = cnt * lots
    _rescan(q, iv)
    iv[I_NOB] = n[BID].sum()
    iv[I_NOA] = n[ASK].sum()
    iv[I_LQB] = q[BID].sum()
    iv[I_LQA] = q[ASK].sum()


@njit(cache=True)
def book_levels_nb(q: np.ndarray, iv: np.ndarray, side: int, limit: int):
    """Best ``limit`` levels of ``side`` as ``(abs ticks, lots)`` arrays, best first."""
    px = np.empty(limit, dtype=np.int64)
    lots = np.empty(limit, dtype=np.int64)
    k = 0
    if side == BID:
        i = iv[I_BB]
        while i >= 0 and i >= iv[I_DB] and k < limit:
            if q[BID, i] > 0:
                px[k] = iv[I_BASE] + i
                lots[k] = q[BID, i]
                k += 1
            i -= 1
    else:
        i = iv[I_BA]
        while i < W and i <= iv[I_DA] and k < limit:
            if q[ASK, i] > 0:
                px[k] = iv[I_BASE] + i
                lots[k] = q[ASK, i]
                k += 1
            i += 1
    return px[:k], lots[:k]
