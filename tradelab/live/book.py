"""A book strategy live: the strategy's ``step`` on every local book update.

The event backtester's book loop (``tradelab.backtest.event.loops_nb.imbalance_loop_nb``) in
Python on the runner core: after each depth message that leaves the local book valid, its top
levels become one book-frame row (:func:`tradelab.matching.frame_nb.write_frame_row_nb`) and
``imbalance_microprice``'s own ``step`` decides. An entry intent becomes a post-only limit order
of ``units`` at the intent's price (a live entry is cancelled first); a cancel or exit intent
withdraws the entry and flattens any position with a reduce-only market order. Every order
passes risk and the order manager. Fed the same events, the paper book runner sends the
backtester's orders at the same local times.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from tradelab.live.core import BarRunnerCore
from tradelab.matching import core_nb as cn
from tradelab.matching import sim_nb as sn
from tradelab.matching.frame_nb import write_frame_row_nb
from tradelab.strategies import imbalance_microprice as im
from tradelab.strategies.types import IntentKind


class BookRunnerCore(BarRunnerCore):
    """``imbalance_microprice`` on one symbol (parameters ``p``, its ``Params.to_array()``)."""

    def __init__(self, *args: Any, params: np.ndarray, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.p = np.asarray(params, dtype=np.float64)
        self.ss = im.init_state_nb(self.p)
        self.frame = np.full((1, 4 * int(self.p[im.LEVELS])), np.nan)
        self.entry: str | None = None  # client id of the live entry order
        self.intents = 0
        self.updates = 0

    def _step(self, s: sn.Sim, ev: np.ndarray) -> int:
        s.sv[sn.S_STOP_ON_BOOK] = 1
        return int(sn.elapse_nb(s, ev, sn.INF))

    def _on_stop(self, code: int) -> None:
        if code != sn.EL_BOOK or self.engine.sim is None:
            return
        s = self.engine.sim
        self.updates += 1
        write_frame_row_nb(s.lb, self.frame, 0)
        kind, px = im.step(self.p, self.ss, int(s.sv[sn.S_NOW]), self.frame, 0)
        if kind == IntentKind.NONE:
            return
        self.intents += 1
        now = self.engine.now
        if self.recorder is not None:
            self.recorder.trigger(now)
        live = self._live(self.entry)
        if live is not None:
            self._cancel_order(live, now, "intent")
        if kind == IntentKind.ENTER_LONG or kind == IntentKind.ENTER_SHORT:
            side = "BUY" if kind == IntentKind.ENTER_LONG else "SELL"
            self.entry = self._enter(side, int(cn.to_tick_nb(s.lb, px)), now)
        else:
            self.entry = None
            pos = self.positions.get(self.setup.symbol, 0.0)
            if pos != 0.0:
                self._send_market(self.setup.symbol, "SELL" if pos > 0 else "BUY", abs(pos),
                                  self.marks.get(self.setup.symbol, float(px)),
                                  "exit", now, reduce_only=True)

    def _enter(self, side: str, px_t: int, now: int) -> str | None:
        sym = self.setup.symbol
        price = Decimal(px_t) * self.oms.filters[sym].tick_size
        qty = self.units if self.units > 0 else self.setup.notional / float(price)
        decision = self.risk.check(now, sym, side, qty, float(price), self.marks.get(sym),
                                   self.positions, self.marks)
        for ev in decision.events:
            self._risk_event(ev)
        if not decision.allowed:
            return None
        order = self._send(sym, side, Decimal(repr(decision.qty)), price, "LIMIT", "GTX", "entry",
                           now)
        if order is None:
            return None
        if self.recorder is not None:
            bid, ask = self.engine.best()
            self.recorder.entry(now, order.client_id, 1 if side == "BUY" else -1,
                                float(price), bid, ask)
        return order.client_id

    def save_state(self, now: int) -> None:
        if self.journal is not None:
            self.journal.state(now, symbol=self.setup.symbol, entry=self.entry,
                               risk=self.risk.state(),
                               strategy_state=[None if np.isnan(x) else float(x)
                                               for x in self.ss], intents=self.intents)

    def _restore_state(self, state: dict[str, Any]) -> None:
        """The live entry order (the newest open one the rebuilt order manager holds) and the
        strategy's own state as the last saved decision left it."""
        self.entry = None
        for o in self.oms.open_orders(self.setup.symbol):
            if o.tag == "entry":
                self.entry = o.client_id
        saved = state.get("strategy_state")
        if saved is not None and len(saved) == len(self.ss):
            self.ss[:] = [np.nan if x is None else x for x in saved]
        self.intents = int(state.get("intents") or 0)


__all__ = ["BookRunnerCore"]
