"""A bar clock on the simulated exchange's local side: OHLCV bars from the trades it receives.

Shared by the event backtester (bar strategies over stored events) and the paper broker (bar
strategies over live events), so both build the same bars from the same trades and close them at
the same moments. See :func:`bar_loop_nb`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradelab.matching import sim_nb as sn

EL_BAR = 10  # bar_loop_nb: a bar just closed (read it from ``bi``/``bf``)
EL_OPEN = 11  # bar_loop_nb: the first trade after a bar closed by its timer (``bf[BF_NEXT_OPEN]``)
EL_TICK = 12  # bar_loop_nb with ``bi[BI_TICKS]`` set: a trade was received (price in its row)

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
BI_TICKS = 10  # 1: also return EL_TICK after every trade received (runner-managed exits)
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
                if bi[BI_TICKS] != 0:
                    return EL_TICK
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
            if bi[BI_TICKS] != 0:
                return EL_TICK
            continue
        if r == sn.EL_END and bi[BI_CUR] >= 0 and bi[BI_FINAL] == 0:
            _close_bar(bi, bf, np.nan)
            bi[BI_FINAL] = 1
            bi[BI_CUR] = -1
            return EL_BAR
        return r
