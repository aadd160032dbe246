"""The paper broker's exchange: the simulated exchange of :mod:`tradelab.matching.sim_nb`, fed live.

The event backtester replays stored events through the simulated exchange (the matching core
behind order and response latency queues, with the local side's book); paper trading pushes the
events the runner receives into the very same state, so a paper fill is what the backtester
would have filled: queue position, latency, partial fills, maker/taker fees. Never "fill on
touch".

Time is event time. The simulated exchange processes an event only once it knows nothing earlier
can still arrive, i.e. when a later event has been pushed (exactly as a replay's loop does), so
a step returns :data:`~tradelab.matching.sim_nb.EL_NEED_DATA` with the newest event not yet
processed, and a timer due at ``t`` fires when the first event stamped after ``t`` arrives.
Given the same events, a paper run and a backtest take the same decisions at the same moments.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tradelab.core.events import EV_DEPTH, EV_KIND_MASK, EV_TRADE, event_dt
from tradelab.matching import core_nb as cn
from tradelab.matching import sim_nb as sn
from tradelab.matching.types import QUEUE_MODELS

Step = Callable[[sn.Sim, np.ndarray], int]


def book_window(rows: np.ndarray, tick: float, window_pct: float) -> tuple[int, int]:
    """``(first tick, number of ticks)`` of a dense book spanning ``window_pct`` around the
    median price of ``rows`` (depth rows, else trades)."""
    px = rows["px"][(rows["ev"] & EV_KIND_MASK) == EV_DEPTH]
    if len(px) == 0:
        px = rows["px"][(rows["ev"] & EV_KIND_MASK) == EV_TRADE]
    if len(px) == 0:
        raise ValueError("no depth or trade rows to place the book window around")
    mid = float(np.median(px))
    lo = int(np.floor(mid * (1 - window_pct) / tick))
    hi = int(np.ceil(mid * (1 + window_pct) / tick))
    return lo, hi - lo + 1


class PaperExchange:
    """One instrument's simulated exchange, created at the first push."""

    def __init__(self, inst: np.ndarray, latency: tuple[int, np.ndarray, np.ndarray],
                 queue_model: str = "risk_averse", queue_n: float = 2.0,
                 window_pct: float = 0.1, max_orders: int = 64, log_cap: int = 1 << 14) -> None:
        if queue_model not in QUEUE_MODELS:
            raise ValueError(f"unknown queue model {queue_model!r}; choose one of "
                             f"{sorted(QUEUE_MODELS)}")
        self.inst = inst
        self.latency = latency
        self.queue_model = queue_model
        self.queue_n = queue_n
        self.window_pct = window_pct
        self.max_orders = max_orders
        self.log_cap = log_cap
        self.sim: sn.Sim | None = None
        self.ev = np.zeros(0, dtype=event_dt)
        self.pushed = 0

    def _start(self, rows: np.ndarray) -> sn.Sim:
        base, n = book_window(rows, float(self.inst[0]["tick"]), self.window_pct)
        qm = QUEUE_MODELS[self.queue_model]
        ex = cn.new_core(self.inst, base, n, qm, self.queue_n, self.max_orders)
        lb = cn.new_core(self.inst, base, n, qm, self.queue_n, 1)
        code, params, table = self.latency
        empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return sn.new_sim(ex, lb, code, params, table, empty_i, empty_f, empty_f,
                          log_cap=self.log_cap)

    def push(self, rows: np.ndarray, step: Step, on_stop: Callable[[int], None] | None = None,
             on_msgs: Callable[[np.ndarray], None] | None = None) -> None:
        """Append ``rows`` (event_dt) and run ``step`` as far as they allow. The responses the
        local side receives (msg_dt: fills, reports) go to ``on_msgs`` before every stop and at
        the end, so a decision always sees every report received before it."""
        if rows.dtype != event_dt:
            raise ValueError("rows must be event_dt records")
        if len(rows) == 0:
            return
        if self.sim is None:
            self.sim = self._start(rows)
        sim = self.sim
        sv = sim.sv
        lo = int(min(sv[sn.S_IE], sv[sn.S_IL]))
        self.ev = np.concatenate([self.ev[lo:], rows])
        sv[sn.S_IE] -= lo
        sv[sn.S_IL] -= lo
        self.pushed += len(rows)
        self._run(step, on_stop, on_msgs)

    def finish(self, step: Step, on_stop: Callable[[int], None] | None = None,
               on_msgs: Callable[[np.ndarray], None] | None = None) -> None:
        """No more events: process what is left (a timer past the last event does not fire)."""
        if self.sim is None:
            return
        self.sim.sv[sn.S_FINAL] = 1
        self._run(step, on_stop, on_msgs)

    def _run(self, step: Step, on_stop: Callable[[int], None] | None,
             on_msgs: Callable[[np.ndarray], None] | None) -> None:
        assert self.sim is not None
        while True:
            r = step(self.sim, self.ev)
            if r in (sn.EL_NEED_DATA, sn.EL_END):
                break
            self._drain(on_msgs)
            if r != sn.EL_LOG_FULL and on_stop is not None:
                on_stop(r)
        self._drain(on_msgs)

    def _drain(self, on_msgs: Callable[[np.ndarray], None] | None) -> None:
        assert self.sim is not None
        k = int(self.sim.sv[sn.S_LOG_N])
        if k:
            got = self.sim.log[:k].copy()
            self.sim.sv[sn.S_LOG_N] = 0
            if on_msgs is not None:
                on_msgs(got)

    # -- what the local side knows ------------------------------------------------------------

    @property
    def now(self) -> int:
        """The simulated local time (ns)."""
        return int(self.sim.sv[sn.S_NOW]) if self.sim is not None else 0

    @property
    def position(self) -> float:
        return float(self.sim.fv[sn.F_POS]) if self.sim is not None else 0.0

    @property
    def cash_delta(self) -> float:
        """Cash change from fills, fees and funding so far (add the starting cash)."""
        return float(self.sim.fv[sn.F_CASH]) if self.sim is not None else 0.0

    def in_flight(self) -> bool:
        """An order of ours sent and not acknowledged yet."""
        if self.sim is None:
            return False
        lo = self.sim.lorders
        live = (lo["status"] == 1) | (lo["status"] == 2)
        return bool(np.any(live & ((lo["flags"] & sn.LF_PENDING) != 0)))

    def best(self) -> tuple[float | None, float | None]:
        """The local book's best bid and ask (None when that side is empty)."""
        if self.sim is None:
            return None, None
        lb = self.sim.lb
        ib, ia, n = int(lb.iv[cn.I_BEST_BID]), int(lb.iv[cn.I_BEST_ASK]), int(lb.iv[cn.I_N])
        base = int(lb.iv[cn.I_BASE])
        bid = float(cn.to_px_nb(lb, base + ib)) if 0 <= ib < n else None
        ask = float(cn.to_px_nb(lb, base + ia)) if 0 <= ia < n else None
        return bid, ask


__all__ = ["PaperExchange", "book_window"]
