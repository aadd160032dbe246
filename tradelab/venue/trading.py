"""Spot order entry on the venue: orders, balances and fills on the shared matching core.

Each spot instrument gets a :class:`~tradelab.matching.MatchingCore` fed with the venue's book
(:class:`~tradelab.venue.bookcores.BookCores`), so resting orders keep a queue position and fill
from the market's trades and crossings, and takers walk the book. The core sees prices and
quantities as floats on the tick/lot grid; balances, fees and everything on the wire are Decimal.

Balances: a limit buy locks ``price * quantity`` of the quote asset, a sell locks the quantity
of the base asset; a market buy by quantity needs the cost of walking the book free. Fees are
charged per fill at the account's maker or taker rate, in the asset received (Binance spot:
a buy pays in the base asset, a sell in the quote asset).

User data: every state change of an order publishes its ``executionReport`` on ``events`` (the
venue's :class:`~tradelab.venue.userstream.UserEvents`), followed by an
``outboundAccountPosition`` of the assets that moved; an order refused in the answer (REJECTED
by the core) publishes nothing, as on Binance.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from tradelab.adapters.binance import trading as wire
from tradelab.adapters.binance import userdata
from tradelab.adapters.binance.filters import FilterFailure
from tradelab.matching import (
    BUY,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    R_OUT_OF_RANGE,
    R_POST_ONLY,
    RP_CANCELED,
    RP_EXPIRED,
    RP_REJECTED,
    SELL,
    Executions,
    MatchingCore,
)
from tradelab.venue import conditional
from tradelab.venue.accounts import Account, Accounts, InsufficientBalance
from tradelab.venue.book import VenueBook
from tradelab.venue.bookcores import BookCores
from tradelab.venue.instruments import Instrument
from tradelab.venue.order_registry import OrderRegistry, OrdersById
from tradelab.venue.userstream import UserEvents

log = logging.getLogger("tradelab.venue")

EIGHT = Decimal("0.00000001")
TIF = {"GTC": GTC, "IOC": IOC, "FOK": FOK}


@dataclass
class Fill:
    """One execution of a venue order."""

    trade_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    time_ms: int


@dataclass
class Order:
    """A venue order and where it stands."""

    account: Account
    inst: Instrument
    order_id: int
    client_id: str
    side: str
    type: str
    tif: str
    price: Decimal  # limit price (0 for market orders)
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    update_ms: int = 0
    lock_asset: str = ""
    locked: Decimal = Decimal(0)  # still locked for this order
    fills: list[Fill] = field(default_factory=list)
    cancel_client_id: str = ""  # the cancel request's client id, once cancelled
    stop_price: Decimal = Decimal(0)  # conditional types only
    triggered_ms: int = 0  # when a conditional order was set off (0: not yet)

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def waiting(self) -> bool:
        """A conditional order whose stop price has not been reached yet."""
        return self.type in wire.CONDITIONAL_TYPES and not self.triggered_ms

    def view(self) -> wire.OrderView:
        return wire.OrderView(self.inst.symbol, self.order_id, self.client_id, self.price,
                              self.orig_qty, self.executed, self.cum_quote, self.orig_quote_qty,
                              self.status, self.tif, self.type, self.side, self.time_ms,
                              self.update_ms or self.time_ms, self.open and not self.waiting,
                              self.stop_price, self.triggered_ms or None)

    def fill_views(self) -> list[wire.FillView]:
        return [wire.FillView(f.price, f.qty, f.commission, f.commission_asset, f.trade_id)
                for f in self.fills]


class Trading(BookCores, OrderRegistry[Order]):
    """Orders of every account on the venue's spot instruments."""

    market = "spot"

    def __init__(self, accounts: Accounts, instruments: dict[tuple[str, str], Instrument],
                 books: dict[tuple[str, str], VenueBook], clock_ms: Callable[[], int],
                 events: UserEvents | None = None) -> None:
        self.accounts = accounts
        self.events = events if events is not None else UserEvents()
        self.instruments = instruments
        self.books = books
        self.clock_ms = clock_ms
        self.cores: dict[str, MatchingCore] = {}
        self.orders: OrdersById[Order] = OrdersById()
        self.trades: dict[int, list[tuple[Order, Fill]]] = {}  # account uid -> its trades
        self._order_ids = itertools.count(1)
        self._trade_ids: dict[str, itertools.count] = {}
        self._client_ids = itertools.count(1)
        self._reject_error = wire.rejected("Order rejected.")
        self._exec_ids = itertools.count(1)
        self._held: list[tuple[Account, dict]] | None = None  # events of an order being placed
        self.at_ns: int | None = None  # set while an order action takes effect (venue latency)
        self.last_px: dict[str, Decimal] = {}  # the market's last trade price per symbol
        self.off_book: dict[int, Order] = {}  # open orders not on a core: waiting conditional
        # orders, and resting orders restored from a journal until their core exists
        self.dirty = False  # state changed since the journal last looked
        self.journal_watch: tuple[set[int], int] | None = None  # see changed_state
        self.on_change: Callable[[], None] = lambda: None
        """Called after an order was placed or cancelled, before the caller answers (the
        venue journals the change here, so whatever acknowledges it, REST or WebSocket API,
        acknowledges a durable state)."""
        self.on_first_fill: Callable[[Order], None] = lambda order: None  # order limits

    # -- market data (the shared cores' feed, plus stop triggers and journal re-entry) ------

    def on_depth(self, symbol: str, diff: dict) -> None:
        """A depth diff the venue applied to its book (spot)."""
        if symbol not in self.cores:
            self._reentry_core(symbol)
        super().on_depth(symbol, diff)

    def on_trade(self, symbol: str, data: dict) -> None:
        """A market trade: matched on the core, then it may set off conditional orders."""
        self.last_px[symbol] = Decimal(str(data["p"]))
        if symbol not in self.cores and self._reentry_core(symbol) is None:
            self._set_off(symbol, self.last_px[symbol])
            return
        super().on_trade(symbol, data)
        self._set_off(symbol, self.last_px[symbol])

    def on_snapshot(self, symbol: str) -> None:
        """The venue's book was (re)loaded from a snapshot: the core takes it whole."""
        if symbol in self.cores:
            super().on_snapshot(symbol)
        else:
            self._reentry_core(symbol)

    def _core(self, inst: Instrument) -> MatchingCore:
        fresh = inst.symbol not in self.cores
        core = super()._core(inst)
        if fresh:
            self._reenter(inst, core)  # orders restored from the journal, back of the queue
        return core

    # -- orders ---------------------------------------------------------------------------

    def new_order(self, acc: Account, req: wire.OrderRequest, test: bool = False) -> Order | None:
        """Validate, lock and match a new order; raises :class:`wire.BinanceError` when Binance
        would refuse it. ``test`` validates only (``order/test``) and returns None."""
        inst = self._instrument(req.symbol)
        if not acc.can_trade:
            raise wire.BinanceError(401, -2015, wire.MSG_BAD_KEY)
        cid = req.client_id or f"venue-{next(self._client_ids)}"
        if self.orders.open_client_id(acc, cid):
            raise wire.rejected(wire.MSG_DUPLICATE)
        if req.type in wire.CONDITIONAL_TYPES:
            return self._new_conditional(acc, inst, req, cid, test)
        core = self._core(inst)
        qty = req.quantity
        lock_asset, lock = "", Decimal(0)
        if req.type == "MARKET":
            qty = self._market_qty(inst, req)
            self._check(inst, None, qty, market=True)
            if req.side == "BUY":
                cost = req.quote_qty if req.quote_qty is not None else self._walk_cost(inst, qty)
                if cost > acc.free.get(inst.quote, Decimal(0)):
                    raise wire.rejected(wire.MSG_INSUFFICIENT)
            else:
                lock_asset, lock = inst.base, qty
        else:
            assert req.price is not None and qty is not None
            self._check(inst, req.price, qty, market=False)
            if req.side == "BUY":
                lock_asset, lock = inst.quote, req.price * qty
            else:
                lock_asset, lock = inst.base, qty
        if lock_asset and lock > acc.free.get(lock_asset, Decimal(0)):
            raise wire.rejected(wire.MSG_INSUFFICIENT)
        if test:
            return None
        now = self._ms()
        order = Order(acc, inst, next(self._order_ids), cid, req.side, req.type, req.time_in_force,
                      req.price or Decimal(0), qty, req.quote_qty or Decimal(0), now,
                      update_ms=now)
        before = self._holdings(acc, inst)
        if lock_asset:
            acc.lock(lock_asset, lock)
            order.lock_asset, order.locked = lock_asset, lock
        self.orders[order.order_id] = order
        self.dirty = True
        side = BUY if req.side == "BUY" else SELL
        tif = GTX if req.type == "LIMIT_MAKER" else TIF[req.time_in_force]
        kind = MARKET if req.type == "MARKET" else LIMIT
        px = float(req.price) if kind == LIMIT and req.price is not None else None
        held: list[tuple[Account, dict]] = []
        self._held = held
        try:  # a rejected order leaves no events: hold them until the core has answered
            self._order_event(order, "NEW")
            self._balance_event(acc, inst, before)
            ex = core.place(self._ns(), order.order_id, side, float(qty), px, kind=kind, tif=tif)
            self._apply(inst.symbol, ex)
        finally:
            self._held = None
        if order.status == "REJECTED":
            del self.orders[order.order_id]
            raise self._reject_error
        self.on_change()  # journaled before anyone is told
        for owner, event in held:
            self.events.publish(owner.uid, "spot", event)
        return order

    def cancel(self, acc: Account, symbol: str, order_id: int | None,
               client_id: str | None, cancel_client_id: str | None = None) -> Order:
        """Cancel one open order (-2011 if unknown or finished); ``cancel_client_id`` names
        the cancel request (``newClientOrderId``; ``cancel-<orderId>`` if not given)."""
        inst = self._instrument(symbol)
        order = self._find(acc, inst, order_id, client_id)
        if order is None or not order.open:
            raise wire.BinanceError(400, -2011, wire.MSG_UNKNOWN_ORDER)
        order.cancel_client_id = cancel_client_id or f"cancel-{order.order_id}"
        if self.off_book.pop(order.order_id, None) is not None:
            order.status, order.update_ms = "CANCELED", self._ms()
            self._release(order)
            self._order_event(order, "CANCELED")
            self.dirty = True
        else:
            core = self.cores[inst.symbol]
            self._apply(inst.symbol, core.cancel(self._ns(), order.order_id))
        self.on_change()
        return order

    def cancel_all(self, acc: Account, symbol: str) -> list[Order]:
        """Cancel every open order of ``symbol`` (-2011 if there is none)."""
        inst = self._instrument(symbol)
        mine = [o for o in self.orders.values()
                if o.account is acc and o.inst is inst and o.open]
        if not mine:
            raise wire.BinanceError(400, -2011, wire.MSG_UNKNOWN_ORDER)
        return [self.cancel(acc, symbol, o.order_id, None) for o in mine]

    def query(self, acc: Account, symbol: str, order_id: int | None,
              client_id: str | None) -> Order:
        """One of the account's orders (-2013 if unknown)."""
        inst = self._instrument(symbol)
        order = self._find(acc, inst, order_id, client_id)
        if order is None:
            raise wire.BinanceError(400, -2013, wire.MSG_NO_SUCH_ORDER)
        return order

    def my_trades(self, acc: Account, symbol: str, order_id: int | None = None,
                  from_id: int | None = None, limit: int = 500) -> list[wire.TradeView]:
        inst = self._instrument(symbol)
        out = []
        for order, f in self.trades.get(acc.uid, []):
            if order.inst is not inst or (order_id is not None and order.order_id != order_id):
                continue
            if from_id is not None and f.trade_id < from_id:
                continue
            out.append(wire.TradeView(inst.symbol, f.trade_id, order.order_id, f.price, f.qty,
                                      f.price * f.qty, f.commission, f.commission_asset,
                                      f.time_ms, order.side == "BUY", f.maker))
        return out[:limit]

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check(inst: Instrument, price: Decimal | None, qty: Decimal, market: bool) -> None:
        failure: FilterFailure | None = inst.filters.reject_reason(price, qty, market)
        if failure is not None:
            raise wire.filter_failure(failure.reason)

    def _market_qty(self, inst: Instrument, req: wire.OrderRequest) -> Decimal:
        """A market order's base quantity: as sent, or what ``quoteOrderQty`` buys / sells
        walking the book, truncated to the step."""
        if req.quantity is not None:
            return req.quantity
        assert req.quote_qty is not None
        left, qty = req.quote_qty, Decimal(0)
        for p, q in self._levels(inst, req.side):
            take = min(q, left / p)
            qty += take
            left -= take * p
            if left <= 0:
                break
        return inst.filters.round_qty(qty, market_order=True)

    # -- durability (the journal) ---------------------------------------------------------

    def state(self) -> dict:
        """What must survive a restart (see :mod:`tradelab.venue.trading_state`)."""
        from tradelab.venue.trading_state import trading_state

        return trading_state(self)

    def changed_state(self) -> dict:
        """The part of :meth:`state` that may have changed since the last call (what the
        journal compares per change; it never deletes a key)."""
        from tradelab.venue.trading_state import changed_trading_state

        return changed_trading_state(self)

    def restore(self, state: dict) -> None:
        """Back to a journal's state; resting orders re-enter fresh cores at the back of the
        queue."""
        from tradelab.venue.trading_state import restore_trading

        restore_trading(self, state)

    # -- conditional orders ---------------------------------------------------------------

    def _new_conditional(self, acc: Account, inst: Instrument, req: wire.OrderRequest,
                         cid: str, test: bool) -> Order | None:
        """A STOP_LOSS / TAKE_PROFIT (``_LIMIT``) order: checked and locked now, kept off the
        book until a market trade reaches its stop price."""
        assert req.stop_price is not None and req.quantity is not None
        qty, stop = req.quantity, req.stop_price
        limit = conditional.works_as(req.type) == "LIMIT"
        self._check(inst, req.price if limit else None, qty, market=not limit)
        stop_failure = inst.filters.reject_reason(stop, qty, False)
        if stop_failure is not None and stop_failure.reason == "PRICE_FILTER":
            raise wire.filter_failure(stop_failure.reason)
        last = self.last_px.get(inst.symbol)
        if last is not None and conditional.triggers(req.type, req.side, stop, last):
            raise wire.rejected(wire.MSG_STOP_IMMEDIATE)
        if req.side == "SELL":
            lock_asset, lock = inst.base, qty
        else:  # a limit buy locks its limit value; a market one what it costs at the stop
            lock_asset, lock = inst.quote, (req.price if limit and req.price else stop) * qty
        if lock > acc.free.get(lock_asset, Decimal(0)):
            raise wire.rejected(wire.MSG_INSUFFICIENT)
        if test:
            return None
        now = self.clock_ms()
        order = Order(acc, inst, next(self._order_ids), cid, req.side, req.type,
                      req.time_in_force, req.price or Decimal(0), qty, Decimal(0), now,
                      update_ms=now, stop_price=stop)
        acc.lock(lock_asset, lock)
        order.lock_asset, order.locked = lock_asset, lock
        self.orders[order.order_id] = order
        self.off_book[order.order_id] = order
        self.dirty = True
        self.on_change()
        return order

    def _set_off(self, symbol: str, last: Decimal) -> None:
        """Trigger every waiting conditional order of ``symbol`` a trade at ``last`` reaches
        (after the trade itself was matched: the triggered order cannot fill from it)."""
        hits = [o for o in self.off_book.values() if o.inst.symbol == symbol and o.waiting
                and conditional.triggers(o.type, o.side, o.stop_price, last)]
        for order in sorted(hits, key=lambda o: o.order_id):
            self._trigger(order)

    def _trigger(self, order: Order) -> None:
        """Put a triggered conditional order on the book as the LIMIT or MARKET order it
        becomes."""
        inst = order.inst
        try:
            core = self._core(inst)
        except wire.BinanceError:
            return  # no market to trade on yet: stays waiting
        del self.off_book[order.order_id]
        now = self.clock_ms()
        order.triggered_ms = order.update_ms = now
        self.dirty = True
        side = BUY if order.side == "BUY" else SELL
        if conditional.works_as(order.type) == "LIMIT":
            ex = core.place(self._ns(), order.order_id, side, float(order.orig_qty),
                            float(order.price), kind=LIMIT, tif=TIF[order.tif])
        else:
            if order.side == "BUY":  # a market buy pays from free balance, as MARKET does
                self._release(order)
                order.lock_asset = ""
                if self._walk_cost(inst, order.orig_qty) > order.account.free.get(
                        inst.quote, Decimal(0)):
                    order.status = "EXPIRED"
                    log.info("triggered %s %d expired: insufficient %s", order.type,
                             order.order_id, inst.quote)
                    return
            ex = core.place(self._ns(), order.order_id, side, float(order.orig_qty), None,
                            kind=MARKET, tif=GTC)
        self._apply(inst.symbol, ex)

    def _reentry_core(self, symbol: str) -> MatchingCore | None:
        """The core of ``symbol`` once restored resting orders are waiting for it and the
        venue's book can seed it (they then re-enter it, at the back of each queue)."""
        if not any(o.inst.symbol == symbol and not o.waiting for o in self.off_book.values()):
            return None
        inst = self.instruments.get(("spot", symbol))
        if inst is None:
            return None
        try:
            return self._core(inst)
        except wire.BinanceError:
            return None

    def _reenter(self, inst: Instrument, core: MatchingCore) -> None:
        """Place restored resting orders on a fresh core with what they have left."""
        for order in sorted(self.off_book.values(), key=lambda o: o.order_id):
            if order.inst is not inst or order.waiting:
                continue
            del self.off_book[order.order_id]
            side = BUY if order.side == "BUY" else SELL
            left = order.orig_qty - order.executed
            if order.type == "MARKET" or (order.type in wire.CONDITIONAL_TYPES
                                          and conditional.works_as(order.type) == "MARKET"):
                order.status, order.update_ms = "EXPIRED", self.clock_ms()
                self._release(order)
                continue
            self._apply(inst.symbol, core.place(self._ns(), order.order_id, side, float(left),
                                                float(order.price), kind=LIMIT, tif=GTC))
            if not order.open:
                log.warning("restored order %d could not re-enter the book: %s",
                            order.order_id, order.status)

    def _apply(self, symbol: str, ex: Executions) -> None:
        """Book the core's fills and reports (in the order they happened)."""
        if len(ex.fills) or len(ex.reports):
            self.dirty = True
        events = [(int(r["rec"]), 0, r) for r in ex.fills] + [
            (int(r["rec"]), 1, r) for r in ex.reports]
        for _rec, is_report, r in sorted(events, key=lambda e: e[0]):
            order = self.orders.get(int(r["order_id"]))
            if order is None:
                continue
            if is_report:
                self._report(order, int(r["kind"]), int(r["reason"]))
            else:
                self._fill(order, r)

    def _fill(self, order: Order, r) -> None:
        inst, acc = order.inst, order.account
        before = self._holdings(acc, inst)
        px = Decimal(f"{float(r['px']):.{inst.price_decimals()}f}")
        qty = Decimal(f"{float(r['qty']):.{inst.qty_decimals()}f}")
        maker = bool(r["maker"])
        rate = acc.maker_fee if maker else acc.taker_fee
        quote = px * qty
        if order.side == "BUY":
            fee = (qty * rate).quantize(EIGHT, ROUND_DOWN)
            if order.lock_asset:  # limit buy: spend from the lock at the limit price
                acc.spend_locked(inst.quote, order.price * qty)
                order.locked -= order.price * qty
                acc.credit(inst.quote, (order.price - px) * qty)
            else:
                acc.credit(inst.quote, -quote)
            acc.credit(inst.base, qty - fee)
            fee_asset = inst.base
        else:
            fee = (quote * rate).quantize(EIGHT, ROUND_DOWN)
            acc.spend_locked(inst.base, qty)
            order.locked -= qty
            acc.credit(inst.quote, quote - fee)
            fee_asset = inst.quote
        now = self._ms()
        ids = self._trade_ids.setdefault(inst.symbol, itertools.count(1))
        fill = Fill(next(ids), px, qty, fee, fee_asset, maker, now)
        if not order.fills:
            self.on_first_fill(order)
        order.fills.append(fill)
        order.executed += qty
        order.cum_quote += quote
        order.update_ms = now
        order.status = "FILLED" if order.executed >= order.orig_qty else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order)
        self.trades.setdefault(acc.uid, []).append((order, fill))
        self._order_event(order, "TRADE", fill)
        self._balance_event(acc, inst, before)

    def _report(self, order: Order, kind: int, reason: int) -> None:
        before = self._holdings(order.account, order.inst)
        if kind == RP_CANCELED:
            order.status = "CANCELED"
        elif kind == RP_EXPIRED:
            order.status = "EXPIRED"
        elif kind == RP_REJECTED:
            order.status = "REJECTED"
            if reason == R_POST_ONLY:
                self._reject_error = wire.rejected(wire.MSG_WOULD_TAKE)
            elif reason == R_OUT_OF_RANGE:
                self._reject_error = wire.filter_failure("PERCENT_PRICE_BY_SIDE")
            else:
                self._reject_error = wire.rejected("Order rejected by the matching engine.")
        else:
            return
        order.update_ms = self._ms()
        self._release(order)
        if order.status != "REJECTED":  # Binance refuses those in the answer only
            self._order_event(order, order.status)
            self._balance_event(order.account, order.inst, before)

    # -- user-data events -----------------------------------------------------------------

    def _publish(self, acc: Account, event: dict) -> None:
        if self._held is not None:
            self._held.append((acc, event))
        else:
            self.events.publish(acc.uid, "spot", event)

    def _order_event(self, order: Order, exec_type: str, fill: Fill | None = None) -> None:
        """Publish the order's ``executionReport`` for what just happened to it."""
        book_order = order.type in ("LIMIT", "LIMIT_MAKER") and order.tif == "GTC"  # may rest
        cancel = exec_type == "CANCELED"
        x = userdata.Execution(
            exec_type, order.update_ms or self.clock_ms(), next(self._exec_ids),
            order.cancel_client_id if cancel else order.client_id,
            order.client_id if cancel else "",
            fill.qty if fill else Decimal(0), fill.price if fill else Decimal(0),
            fill.commission if fill else Decimal(0), fill.commission_asset if fill else None,
            fill.trade_id if fill else -1, fill.maker if fill else False,
            on_book=book_order and order.open, worked_on_book=book_order)
        self._publish(order.account, userdata.execution_report(order.view(), x))

    @staticmethod
    def _holdings(acc: Account, inst: Instrument) -> dict[str, tuple[Decimal, Decimal]]:
        """The account's (free, locked) of the two assets an order of ``inst`` moves."""
        return {a: (acc.free.get(a, Decimal(0)), acc.locked.get(a, Decimal(0)))
                for a in (inst.base, inst.quote)}

    def _balance_event(self, acc: Account, inst: Instrument,
                       before: dict[str, tuple[Decimal, Decimal]]) -> None:
        """Publish ``outboundAccountPosition`` with the assets that changed since ``before``."""
        now = self._holdings(acc, inst)
        changed = {a: v for a, v in now.items() if v != before[a]}
        if changed:
            self._publish(acc, userdata.account_position(self.clock_ms(), changed))

    def transfer(self, acc: Account, asset: str, delta: Decimal) -> None:
        """Credit (deposit) or debit (withdrawal) the account's free ``asset``, as the venue's
        admin does; publishes ``balanceUpdate`` and ``outboundAccountPosition``."""
        asset = asset.upper()
        free = acc.free.get(asset, Decimal(0))
        if delta == 0 or not delta.is_finite():
            raise ValueError(f"amount must be a non-zero number, got {delta}")
        if free + delta < 0:
            raise ValueError(f"{asset}: cannot withdraw {-delta}, only {free} is free")
        acc.credit(asset, delta)
        now = self.clock_ms()
        self.events.publish(acc.uid, "spot", userdata.balance_update(now, asset, delta))
        self.events.publish(acc.uid, "spot", userdata.account_position(
            now, {asset: (acc.free[asset], acc.locked.get(asset, Decimal(0)))}))

    @staticmethod
    def _release(order: Order) -> None:
        """Unlock what a finished order still holds."""
        if order.lock_asset and order.locked:
            order.account.unlock(order.lock_asset, order.locked)
            order.locked = Decimal(0)


__all__ = ["Fill", "InsufficientBalance", "Order", "Trading"]
