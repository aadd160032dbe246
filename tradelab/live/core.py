"""The runner core: market events -> bar clock -> strategy -> risk -> order manager -> broker.

Synchronous and deterministic: the asyncio shell (:mod:`tradelab.live.app`) hands it batches of
event rows and the broker's reports; it owns all the run's state (no shared mutable state) and
writes every action to the journal before it acts. Given the same rows it takes the same
decisions, whichever broker executes them.

Bars are built by the simulated exchange's bar clock on the local side
(:func:`tradelab.matching.bar_clock_nb.bar_loop_nb`) and decided by
:class:`tradelab.strategies.bar_driver.BarDriver`: the event backtester's own pieces, so a paper
run on a recording emits the orders the backtester emits on it. With the paper broker the
orders go into that same simulated exchange (fills from its matching core, after its latency);
with a venue broker they go out through ccxt and the venue's reports come back through
:meth:`BarRunnerCore.on_execution` / :meth:`BarRunnerCore.on_status`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from tradelab.live.journal import RunJournal
from tradelab.live.oco import Bracket
from tradelab.live.orders import (
    Execution,
    ManagedOrder,
    OrderManager,
    OrderState,
    Refusal,
    StatusReport,
)
from tradelab.live.paper import PaperExchange
from tradelab.live.portfolio import Portfolio
from tradelab.live.risk import RiskEngine, RiskEvent, realized_vol, vol_target_qty
from tradelab.live.summary import RunRecorder
from tradelab.matching import bar_clock_nb as bc
from tradelab.matching import sim_nb as sn
from tradelab.matching.types import (
    BUY,
    F_REDUCE_ONLY,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    R_POST_ONLY,
    RP_CANCELED,
    RP_EXPIRED,
    RP_REJECTED,
    SELL,
)
from tradelab.strategies.bar_driver import BarDriver

log = logging.getLogger("tradelab.live")


class Broker(Protocol):
    """Where orders go. ``place`` is called at the decision (it must not block)."""

    name: str

    def place(self, order: ManagedOrder, now_ns: int) -> None: ...

    def cancel(self, order: ManagedOrder, now_ns: int) -> None: ...


@dataclass(frozen=True)
class BarSetup:
    """What a bar-strategy run trades: one symbol, one parameter set, fixed units per target."""

    run_id: str
    strategy: str
    symbol: str
    interval_ns: int
    units: float  # base quantity per unit of target (target +1 -> long ``units``); 0: from
    close_delay_ns: int = 0  # ... ``notional`` at the first decision's price
    notional: float = 0.0
    start_cash: float = 0.0  # equity at the start (the daily guard watches equity)
    sizing: str = "fixed"  # fixed (units / notional) | vol_target (configs/risk.yaml sizing)


class PaperBroker:
    """Orders into the paper exchange's simulated venue at the current local time."""

    name = "paper"

    def __init__(self, engine: PaperExchange) -> None:
        self.engine = engine

    def place(self, order: ManagedOrder, now_ns: int) -> None:
        sim = self.engine.sim
        assert sim is not None
        side = BUY if order.side == "BUY" else SELL
        if order.type == "MARKET":
            sn.submit_place_nb(sim, sim_id(order.client_id), side, MARKET, IOC,
                               F_REDUCE_ONLY if order.reduce_only else 0, 0, 0,
                               float(order.qty), 0.0, 0)
            return
        assert order.price is not None
        tick = float(self.engine.inst[0]["tick"])
        tif = GTX if order.tif == "GTX" or order.type == "LIMIT_MAKER" else \
            {"GTC": GTC, "IOC": IOC, "FOK": FOK}[order.tif]
        sn.submit_place_nb(sim, sim_id(order.client_id), side, LIMIT, tif, 0,
                           int(round(float(order.price) / tick)), 0, float(order.qty), 0.0, 0)

    def cancel(self, order: ManagedOrder, now_ns: int) -> None:
        sim = self.engine.sim
        assert sim is not None
        sn.submit_cancel_nb(sim, sim_id(order.client_id))


LIVE = (OrderState.PENDING_NEW, OrderState.NEW, OrderState.PARTIALLY_FILLED)
"""States of an order that may still rest on the book."""


def _side(position: float) -> str:
    return "long" if position > 0 else "short" if position < 0 else "flat"


def sim_id(client_id: str) -> int:
    """The simulated exchange's integer id of a client order id ``<prefix>-<n>``."""
    return int(client_id.rsplit("-", 1)[1])


class BarRunnerCore:
    """One bar strategy on one symbol (see the module docstring)."""

    def __init__(self, setup: BarSetup, driver: BarDriver | None, engine: PaperExchange,
                 oms: OrderManager, risk: RiskEngine, broker: Broker,
                 journal: RunJournal | None = None, recorder: RunRecorder | None = None,
                 on_risk: Callable[[RiskEvent], None] | None = None,
                 portfolio: Portfolio | None = None) -> None:
        self.setup = setup
        self.driver = driver
        self.engine = engine
        self.oms = oms
        self.risk = risk
        self.broker = broker
        self.journal = journal
        self.recorder = recorder
        self.on_risk = on_risk
        # told of every order the venue refused (symbol, why, time, expected): metrics, alerts
        self.on_reject: Callable[[str, str, int, bool], None] | None = None
        self.bi, self.bf = bc.new_bar_state(setup.interval_ns, setup.close_delay_ns)
        if risk.cfg.oco.enabled:  # exits are checked at every trade, not only at bar closes
            self.bi[bc.BI_TICKS] = 1
        self.bars: list[dict[str, Any]] = []
        # the run's book of account, shared with the run's other symbols (a run of one symbol
        # has its own): positions and marks are the whole run's, as the total cap needs them
        self.portfolio = portfolio if portfolio is not None else Portfolio()
        self.portfolio.add_symbol(setup.symbol)
        self.positions = self.portfolio.positions
        self.marks = self.portfolio.marks
        self._fill_seq = 0
        self._soft_close_ns = -(1 << 62)  # the last auto-close order (soft cap), event time
        self.units = setup.units
        self.brackets: dict[str, Bracket] = {}
        self._last_px: float | None = None
        if self.units <= 0 and setup.notional <= 0 and setup.sizing != "vol_target":
            raise ValueError("give units per target or a notional to size them from")

    @property
    def realized(self) -> float:
        """Realized PnL of this core's symbol."""
        return self.portfolio.realized_by[self.setup.symbol]

    @property
    def fees(self) -> float:
        """Fees paid on this core's symbol (quote currency)."""
        return self.portfolio.fees_by[self.setup.symbol]

    # -- inputs ------------------------------------------------------------------------------

    def _step(self, s: sn.Sim, ev: np.ndarray) -> int:
        return int(bc.bar_loop_nb(s, ev, self.bi, self.bf))

    def on_rows(self, rows: np.ndarray) -> None:
        """A batch of market events (event_dt) as received."""
        if len(rows) == 0:
            return
        for ev in self.risk.on_market(int(rows["local_ts"][-1])):  # data again after stale
            self._risk_event(ev)
        self.engine.push(rows, self._step, self._on_stop, self._paper_reports)
        bid, ask = self.engine.best()
        if bid is not None and ask is not None:
            self.marks[self.setup.symbol] = (bid + ask) / 2
            if self.recorder is not None:
                self.recorder.market(self.engine.now, bid, ask)
        if self.setup.start_cash > 0 and self.marks:  # the daily guard, at every event
            for ev in self.risk.on_equity(self.engine.now, self.equity(self.setup.start_cash)):
                self._risk_event(ev)
        if self.setup.symbol in self.marks:
            self._check_soft_cap(self.engine.now)

    def _check_soft_cap(self, now: int) -> None:
        """Over its per-symbol cap for longer than the grace period (``auto_close``): trade back
        under the cap with one reduce-only market order for the excess, rounded up to the step
        and to the venue's minimum notional; at most one a second, none while an order is in
        flight."""
        sym = self.setup.symbol
        pos = self.positions.get(sym, 0.0)
        for ev in self.risk.soft_cap_breaches(now, {sym: pos}, self.marks):
            if self._in_flight() or now - self._soft_close_ns < 1_000_000_000:
                return
            self._soft_close_ns = now
            f = self.oms.filters[sym]
            step, mark = float(f.step_size), self.marks[sym]
            need = max(float(ev.detail["qty"]), float(f.min_notional) / mark)
            qty = min(math.ceil(need / step - 1e-9) * step, abs(pos))
            self._risk_event(ev)
            self._send_market(sym, "SELL" if pos > 0 else "BUY", qty, mark, "soft cap", now,
                              reduce_only=True)

    def finish(self) -> None:
        """The feed ended: close the last bar (as the backtester does at the end of data)."""
        self.engine.finish(self._step, self._on_stop, self._paper_reports)

    # -- decisions ---------------------------------------------------------------------------

    def _on_stop(self, code: int) -> None:
        if code == bc.EL_TICK or code == bc.EL_OPEN:
            self._check_brackets()
            return  # (EL_OPEN: only bar-price agreement runs wait for the next open)
        if code != bc.EL_BAR:
            return
        now = self.engine.now
        assert self.driver is not None
        bar = self.bf[bc.BF_CLOSED: bc.BF_CLOSED + 5].copy()
        target = self.driver.on_bar(bar)
        self.bars.append({"ts": int(self.bi[bc.BI_TS]), "open": bar[0], "high": bar[1],
                          "low": bar[2], "close": bar[3], "volume": bar[4], "target": target,
                          "decided_ns": now, "ordered": False})
        if self.recorder is not None and target != self.driver.held:
            self.recorder.trigger(now)
        last = self.driver.last_order
        last_rejected = last is not None and self._rejected(last)
        if self.driver.wants_order(target, self._in_flight(), last_rejected):
            self._trade_to(target, float(bar[3]), now)
        self.save_state(now)

    def _trade_to(self, target: int, price: float, now: int) -> None:
        assert self.driver is not None
        sym = self.setup.symbol
        pos = self.positions[sym]
        step = float(self.oms.filters[sym].step_size)
        if self.setup.sizing == "vol_target":
            units = self._vol_target_units(price, step)
            if units <= 0:
                self._risk_event(RiskEvent(now, "deny", "volatility-target sizing: not enough "
                                           f"bars yet for a volatility estimate "
                                           f"({len(self.bars)} of "
                                           f"{self.risk.cfg.sizing.vol_lookback + 1})", sym))
                return
            self.units = units
        elif self.units <= 0:  # fixed once, from the notional at the first decision's price
            self.units = math.floor(self.setup.notional / price / step + 1e-9) * step
        delta = target * self.units - pos
        side = "BUY" if delta > 0 else "SELL"
        qty = abs(delta)
        decision = self.risk.check(now, sym, side, qty, price, self.marks.get(sym),
                                   self.positions, self.marks)
        for ev in decision.events:
            self._risk_event(ev)
        if not decision.allowed:
            return  # the target stays unreached: the next bar tries again
        order = self._send_market(sym, side, decision.qty, price, f"target {target:+d}", now)
        if order is None:
            self.driver.sent(target, None)
            return
        self.driver.sent(target, sim_id(order.client_id))
        if self.bars:
            self.bars[-1]["ordered"] = True
        if self.recorder is not None:
            bid, ask = self.engine.best()
            self.recorder.entry(now, order.client_id, 1 if side == "BUY" else -1, None, bid,
                                ask)

    def _vol_target_units(self, price: float, step: float) -> float:
        """Units per target from ``equity x target_vol / realized vol`` of the last
        ``vol_lookback`` bar returns (annualised by the bar interval), on the step grid."""
        look = self.risk.cfg.sizing.vol_lookback
        closes = np.array([b["close"] for b in self.bars[-(look + 1):]], dtype=np.float64)
        if len(closes) < look + 1:
            return 0.0
        per_year = 365.0 * 86_400e9 / self.setup.interval_ns
        qty = vol_target_qty(self.risk.cfg, price, realized_vol(closes, per_year))
        return math.floor(qty / step + 1e-9) * step

    def _risk_event(self, ev: RiskEvent) -> None:
        if self.journal is not None:
            self.journal.risk(ev)
        if self.on_risk is not None:
            self.on_risk(ev)
        log.info("risk %s %s: %s", ev.kind, ev.symbol, ev.reason)

    def _in_flight(self) -> bool:
        return any(o.state is OrderState.PENDING_NEW or o.outcome_unknown
                   for o in self.oms.open_orders(self.setup.symbol))

    def _live(self, cid: str | None) -> ManagedOrder | None:
        """The order with client id ``cid`` if it may still rest on the book, else None."""
        if cid is None:
            return None
        o = self.oms.orders.get(cid)
        return o if o is not None and o.state in LIVE else None

    def _rejected(self, oid: int) -> bool:
        cid = f"{self.oms.id_prefix}-{oid}"
        o = self.oms.orders.get(cid)
        return o is not None and o.state is OrderState.REJECTED

    # -- reports -----------------------------------------------------------------------------

    def _paper_reports(self, msgs: np.ndarray) -> None:
        """Responses of the simulated exchange (paper broker), in the order received."""
        if self.broker.name != "paper":
            return
        for m in msgs:
            cid = f"{self.oms.id_prefix}-{int(m['order_id'])}"
            if cid not in self.oms.orders:
                continue
            ts = int(m["ts"])
            if m["what"] == sn.M_FILL:
                self._fill_seq += 1
                side = "BUY" if m["side"] > 0 else "SELL"
                self.on_execution(cid, Execution(
                    f"paper-{self._fill_seq}", Decimal(repr(float(m["qty"]))),
                    Decimal(repr(float(m["px"]))), Decimal(repr(float(m["fee"]))), "USDT",
                    ts, bool(m["maker"])), side)
            elif m["what"] == sn.M_REPORT:
                status = {RP_CANCELED: "CANCELED", RP_EXPIRED: "EXPIRED",
                          RP_REJECTED: "REJECTED"}.get(int(m["kind"]))
                if status is None:
                    self.on_ack(cid, str(int(m["order_id"])), "NEW", ts)
                elif status == "REJECTED" and self.oms.orders[cid].state is \
                        OrderState.PENDING_NEW:
                    reason = int(m["reason"])
                    self.on_rejected(cid, "post-only would take" if reason == R_POST_ONLY
                                     else f"matching engine reason {reason}", ts,
                                     expected=reason == R_POST_ONLY)
                else:
                    self.on_status(StatusReport(cid, status, ts_ns=ts))

    # -- what a broker reports (paper or venue) ----------------------------------------------

    def on_ack(self, client_id: str, venue_id: str | None, status: str, ts_ns: int) -> None:
        """The venue accepted the order."""
        self.oms.on_ack(client_id, venue_id, status)
        if self.journal is not None:
            self.journal.order_state(self.oms.orders[client_id], ts_ns)

    def on_rejected(self, client_id: str, why: str, ts_ns: int, expected: bool = False) -> None:
        """The venue refused the order for certain (``expected``: a routine refusal, such as
        a post-only quote that would have taken, logged quietly)."""
        self.oms.on_submit_failed(client_id, unknown=False, reason=why)
        if self.journal is not None:
            self.journal.order_state(self.oms.orders[client_id], ts_ns)
        if self.on_reject is not None:
            self.on_reject(self.setup.symbol, why, ts_ns, expected)
        log.log(logging.DEBUG if expected else logging.WARNING, "order %s rejected: %s",
                client_id, why)

    def on_unknown(self, client_id: str, why: str, ts_ns: int) -> None:
        """The submit's outcome is unknown (timeout, 5xx): it will be queried."""
        self.oms.on_submit_failed(client_id, unknown=True, reason=why)
        if self.journal is not None:
            self.journal.order_state(self.oms.orders[client_id], ts_ns)
        log.warning("order %s: outcome unknown (%s); querying it", client_id, why)

    def on_status(self, report: StatusReport) -> None:
        """A status from the stream or a query (fills it implies are inferred and booked)."""
        order = self.oms.orders[report.client_id]
        before = len(order.executions)
        inferred = self.oms.on_status(report)
        for ex in inferred:  # booked like any fill (the manager already counted it)
            order.executions.pop(before)
            self.on_execution(report.client_id, ex, order.side)
        if self.journal is not None:
            self.journal.order_state(order, report.ts_ns)

    def on_not_found(self, client_id: str, ts_ns: int) -> None:
        """A query says the venue never had the order."""
        self.oms.on_not_found(client_id)
        if self.journal is not None:
            self.journal.order_state(self.oms.orders[client_id], ts_ns)

    def on_execution(self, client_id: str, ex: Execution, side: str) -> None:
        """One fill of one of our orders (from any broker): counted once, journaled, booked."""
        if not self.oms.on_execution(client_id, ex):
            return
        order = self.oms.orders[client_id]
        pos0 = self.positions.get(order.symbol, 0.0)
        closed_pnl = self._book(order.symbol, side, ex)
        pos1 = self.positions[order.symbol]
        if self.journal is not None:
            self.journal.execution(order, ex, side, pos1, self.realized)
        if self.recorder is not None:
            self.recorder.fill(ex.ts_ns, client_id, 1 if side == "BUY" else -1, float(ex.qty),
                               float(ex.price), partial=order.state is not OrderState.FILLED)
            if _side(pos0) != _side(pos1):
                self.recorder.transition(ex.ts_ns, _side(pos0), _side(pos1),
                                         f"fill {ex.trade_id} of {client_id}", order.symbol)
        round_trip_over = pos1 == 0.0 or math.copysign(1, pos1) != math.copysign(1, pos0)
        if closed_pnl is not None and round_trip_over:
            for ev in self.risk.on_trade_closed(ex.ts_ns, closed_pnl):
                self._risk_event(ev)
        self._follow_bracket(order.symbol, pos0, pos1)

    # -- runner-managed exits (OCO brackets) ---------------------------------------------------

    def _follow_bracket(self, sym: str, pos0: float, pos1: float) -> None:
        """A new position (or a reversal) gets a bracket at its entry price; a smaller one
        shrinks its bracket; a flat one has none."""
        oco = self.risk.cfg.oco
        if not oco.enabled:
            return
        if pos1 == 0.0:
            self.brackets.pop(sym, None)
        elif pos0 == 0.0 or math.copysign(1, pos1) != math.copysign(1, pos0):
            entry = self.portfolio.entry_price(sym)
            self.brackets[sym] = Bracket.open(oco, sym, 1 if pos1 > 0 else -1, entry, abs(pos1))
        elif abs(pos1) < abs(pos0) and sym in self.brackets:
            self.brackets[sym].on_reduced(abs(pos0) - abs(pos1))
        else:
            return
        self.save_state(self.engine.now)  # a restart must find the bracket as it is now

    def _check_brackets(self) -> None:
        """Exits due at the last trade price: reduce-only market orders, one per exit."""
        if not self.brackets or self.engine.sim is None:
            return
        px = float(self.engine.sim.fv[sn.F_LAST_PX])
        if px <= 0 or px == self._last_px:
            return
        self._last_px = px
        now = self.engine.now
        for sym, b in list(self.brackets.items()):
            for ex in b.on_price(px):
                if self._in_flight():
                    continue
                pos = self.positions.get(sym, 0.0)
                qty = min(ex.qty, abs(pos))
                if qty <= 0:
                    continue
                self._risk_event(RiskEvent(now, "exit", f"{ex.reason} at {ex.trigger:.8g} "
                                           f"(last {px:.8g})", sym, {"qty": qty}))
                self._exit_order(sym, "SELL" if pos > 0 else "BUY", qty, px, ex.reason, now)
            if b.done:
                self.brackets.pop(sym, None)

    def _exit_order(self, sym: str, side: str, qty: float, px: float, why: str,
                    now: int) -> None:
        self._send_market(sym, side, qty, px, why, now, reduce_only=True)

    def _send_market(self, sym: str, side: str, qty: float, px: float, tag: str, now: int,
                     reduce_only: bool = False) -> ManagedOrder | None:
        """A market order (``px`` the reference its notional is checked at)."""
        return self._send(sym, side, Decimal(repr(qty)), None, "MARKET", "IOC", tag, now,
                          reduce_only, Decimal(repr(px)))

    def _send(self, sym: str, side: str, qty: Decimal, price: Decimal | None, type: str,
              tif: str, tag: str, now: int, reduce_only: bool = False,
              reference_price: Decimal | None = None) -> ManagedOrder | None:
        """An order through the order manager (on the grid, or refused as a risk event),
        journaled before it goes to the broker."""
        order = self.oms.prepare(sym, side, qty, price, type=type, tif=tif,
                                 reduce_only=reduce_only, tag=tag,
                                 reference_price=reference_price)
        if isinstance(order, Refusal):
            self._risk_event(RiskEvent(now, "deny", f"{tag}: {order.reason}: {order.detail}",
                                       sym))
            return None
        if self.journal is not None:
            self.journal.order_new(order, now)
        self.oms.on_submitted(order.client_id)
        self.broker.place(order, now)
        return order

    def _cancel_order(self, order: ManagedOrder, now: int, why: str) -> bool:
        """Cancel one open order (journaled first); False if it is already done."""
        if not self.oms.on_cancel_sent(order.client_id):
            return False
        if self.journal is not None:
            self.journal.order_state(order, now)
        self.broker.cancel(order, now)
        if self.recorder is not None:
            self.recorder.cancel(now, why)
        return True

    def _book(self, sym: str, side: str, ex: Execution) -> float | None:
        """Book one fill in the run's portfolio; the PnL it realized (None if it only added)."""
        return self.portfolio.book(sym, side, ex)

    def restore(self, records: list[dict[str, Any]], orders: bool = True) -> dict[str, Any]:
        """A restarted runner: orders, executions, position, PnL, the strategy driver's and
        the risk guards' state from its journal. ``orders=False``: the run's order manager was
        already rebuilt (a run of several symbols rebuilds it once, then restores each core).
        Returns this core's last ``state`` record."""
        from tradelab.live.journal import rehydrate

        if orders:
            rehydrate(records, self.oms)
        sym = self.setup.symbol
        for r in records:
            if r["type"] == "execution" and r["symbol"] == sym:
                self._book(sym, r["side"], Execution(
                    r["trade_id"], Decimal(r["qty"]), Decimal(r["price"]),
                    Decimal(r["fee"] or "0"), r["fee_asset"], r["ts_ns"], r["maker"],
                    r["inferred"]))
        state = self.last_state(records)
        guards = next((r for r in reversed(records) if r["type"] == "state" and r.get("risk")),
                      None)
        if guards is not None:  # the run's guards (shared by its symbols): the latest word
            self.risk.restore(guards["risk"])
        self._restore_state(state)
        if state.get("units"):
            self.units = float(state["units"])
        self.brackets = {k: Bracket.from_dict(v) for k, v in
                         (state.get("brackets") or {}).items() if k == sym}
        pos = self.positions.get(sym, 0.0)
        if pos == 0.0:
            self.brackets.pop(sym, None)
        elif sym not in self.brackets:  # a position without a saved bracket gets a fresh one
            self._follow_bracket(sym, 0.0, pos)
        return state

    def last_state(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The last ``state`` record this core wrote (records of a journal written before
        state records named their symbol count as this core's)."""
        sym = self.setup.symbol
        for r in reversed(records):
            if r["type"] == "state" and "risk" in r and r.get("symbol", sym) == sym:
                return r
        return {}

    def _restore_state(self, state: dict[str, Any]) -> None:
        """The strategy's own state from a ``state`` record (the driver of a bar strategy)."""
        if state.get("driver") and self.driver is not None:
            self.driver.restore(state["driver"])

    def save_state(self, now: int) -> None:
        """Journal what a restart needs beyond orders and fills."""
        if self.journal is not None:
            self.journal.state(now, symbol=self.setup.symbol,
                               driver=self.driver.state_dict() if self.driver else None,
                               risk=self.risk.state(),
                               units=self.units, bars=len(self.bars),
                               brackets={k: b.to_dict() for k, b in self.brackets.items()})

    # -- exits -------------------------------------------------------------------------------

    def flatten(self, now: int, why: str) -> None:
        """Close the position with a reduce-only market order (daily guard ``close_all``)."""
        sym = self.setup.symbol
        pos = self.positions.get(sym, 0.0)
        if pos == 0.0 or self._in_flight():
            return
        side = "SELL" if pos > 0 else "BUY"
        order = self._send_market(sym, side, abs(pos), self.marks.get(sym, 0.0),
                                  f"flatten: {why}", now, reduce_only=True)
        if order is not None and self.driver is not None:
            self.driver.sent(0, sim_id(order.client_id))

    def cancel_all(self, now: int, reason: str) -> int:
        """Cancel every open order of this core's symbol (kill switch, stale data); returns
        how many were asked."""
        n = 0
        for o in self.oms.open_orders(self.setup.symbol):
            n += self._cancel_order(o, now, reason)
        return n

    # -- views -------------------------------------------------------------------------------

    def equity(self, start_cash: float) -> float:
        """The run's equity: cash plus every position at its mark (fees included)."""
        return self.portfolio.equity(start_cash)

    def unrealized(self) -> float:
        """Open PnL of this core's symbol at its mark."""
        return self.portfolio.unrealized(self.setup.symbol)


__all__ = ["LIVE", "BarRunnerCore", "BarSetup", "Broker", "PaperBroker", "sim_id"]
