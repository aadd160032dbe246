"""A quoting strategy live: every ``requote_ms`` of local time, a bid and an ask.

The runner core of :mod:`tradelab.live.core`, with the decision of the event backtester's quote
loop (``tradelab.backtest.event.loops_nb.quote_loop_nb``) in Python: at each decision time it
reads the local book's top and the position, asks the strategy's own ``step`` kernel
(``tradelab.strategies.market_making``) for a bid and an ask, puts them on the tick grid (bids
down, asks up, never onto the other side: the quotes are post-only) and reconciles: a live quote
at another price is cancelled and a new one sent at once (an amend is a cancel and a new order,
in that order); inside a gap the quotes are withdrawn. Each new quote passes risk and the order
manager like any order. Fed the same events, the paper quote runner sends the backtester's
orders at the same local times.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from tradelab.live.core import BarRunnerCore
from tradelab.matching import core_nb as cn
from tradelab.matching import sim_nb as sn
from tradelab.matching.types import I_BASE, I_BEST_ASK, I_BEST_BID, I_N
from tradelab.strategies import market_making as mm


class QuoteRunnerCore(BarRunnerCore):
    """``market_making`` on one symbol (parameters ``p``, its ``Params.to_array()``)."""

    def __init__(self, *args: Any, params: np.ndarray, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.p = np.asarray(params, dtype=np.float64)
        self.interval = int(self.p[mm.REQUOTE_MS] * 1e6)
        self.next_t: int | None = None
        self.quotes: dict[str, str | None] = {"BUY": None, "SELL": None}  # client ids
        self.decisions = 0
        self.bi[:] = 0  # no bar clock here

    def _step(self, s: sn.Sim, ev: np.ndarray) -> int:
        if self.next_t is None:
            self.next_t = int(ev["local_ts"][0]) + self.interval
        return int(sn.elapse_nb(s, ev, self.next_t))

    def _on_stop(self, code: int) -> None:
        if code != sn.EL_UNTIL or self.engine.sim is None:
            return
        assert self.next_t is not None
        self.next_t += self.interval
        self.decisions += 1
        s = self.engine.sim
        lb = s.lb
        ib, ia, n = int(lb.iv[I_BEST_BID]), int(lb.iv[I_BEST_ASK]), int(lb.iv[I_N])
        now = self.engine.now
        if s.sv[sn.S_GAP] != 0 or ib < 0 or ia >= n:
            self._requote("BUY", -1, now)
            self._requote("SELL", -1, now)
            return
        base = int(lb.iv[I_BASE])
        bid = float(cn.to_px_nb(lb, base + ib))
        ask = float(cn.to_px_nb(lb, base + ia))
        pos = self.positions.get(self.setup.symbol, 0.0)
        qb, qa = mm.step(self.p, bid, float(lb.bid_q[ib]), ask, float(lb.ask_q[ia]), pos)
        tick = float(lb.inst[0]["tick"])
        wb = min(int(math.floor(qb / tick + 1e-9)), base + ia - 1) if not math.isnan(qb) else -1
        wa = max(int(math.ceil(qa / tick - 1e-9)), base + ib + 1) if not math.isnan(qa) else -1
        self._requote("BUY", wb, now)
        self._requote("SELL", wa, now)

    def _requote(self, side: str, want: int, now: int) -> None:
        """Keep the quote on ``side`` at tick ``want`` (-1: no quote)."""
        cid = self.quotes[side]
        order = self._live(cid)
        tick = self.oms.filters[self.setup.symbol].tick_size
        if order is not None:
            if want >= 0 and order.price == Decimal(want) * tick:
                return
            self._cancel_order(order, now, "requote" if want >= 0 else "withdraw")
            self.quotes[side] = None
        if want < 0:
            return
        price = Decimal(want) * tick
        qty = float(self.p[mm.QTY])
        mid = self.marks.get(self.setup.symbol)
        decision = self.risk.check(now, self.setup.symbol, side, qty, float(price), mid,
                                   self.positions, self.marks)
        for ev in decision.events:
            self._risk_event(ev)
        if not decision.allowed:
            return
        quote = self._send(self.setup.symbol, side, Decimal(repr(decision.qty)), price, "LIMIT",
                           "GTX", "quote", now)
        if quote is None:
            return
        self.quotes[side] = quote.client_id
        if self.recorder is not None:
            bid, ask = self.engine.best()
            self.recorder.entry(now, quote.client_id, 1 if side == "BUY" else -1, float(price),
                                bid, ask)

    def save_state(self, now: int) -> None:
        if self.journal is not None:
            self.journal.state(now, symbol=self.setup.symbol, quotes=dict(self.quotes),
                               risk=self.risk.state(), decisions=self.decisions)

    def _restore_state(self, state: dict[str, Any]) -> None:
        """The live quotes a restart must keep managing (else they would rest unwatched): the
        open quote orders the rebuilt order manager holds, the newest per side."""
        self.quotes = {"BUY": None, "SELL": None}
        for o in self.oms.open_orders(self.setup.symbol):
            if o.tag == "quote":
                self.quotes[o.side] = o.client_id
        self.decisions = int(state.get("decisions") or 0)


__all__ = ["QuoteRunnerCore"]
