"""USD-M futures order entry on the venue: one-way positions, cross margin in USDT, leverage,
funding, on the shared matching core.

Each account has a futures wallet in USDT apart from its spot balances (``usdm_wallet`` in the
account config, else its configured USDT). Orders match like spot orders
(:class:`~tradelab.venue.bookcores.BookCores`, fed with the USD-M book). A fill moves the
position (:mod:`tradelab.venue.margin`): the closing part realizes PnL into the wallet, the
commission (maker/taker rate of the notional) leaves it. An order is refused (-2019) when the
initial margin it adds exceeds the available balance; a reduce-only order must shrink the
position (-2022 otherwise), is capped at the position's size, and is expired when the position
it would reduce is gone or smaller than what is left of it. At each settlement of the venue's
funding clock every position pays ``amount * mark * rate`` (longs pay when the rate is positive).
Every change is published on the user-data bus as Binance's ``ORDER_TRADE_UPDATE`` and
``ACCOUNT_UPDATE``. There is no liquidation engine: a losing cross account can go negative.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradelab.adapters.binance import futures as fwire
from tradelab.adapters.binance import trading as wire
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
from tradelab.venue.accounts import Account, Accounts
from tradelab.venue.book import VenueBook
from tradelab.venue.bookcores import BookCores
from tradelab.venue.instruments import Instrument
from tradelab.venue.margin import (
    MarginSummary,
    apply_fill,
    funding_payment,
    open_order_margin,
    position_margin,
    unrealized_pnl,
)
from tradelab.venue.order_registry import OrderRegistry, OrdersById
from tradelab.venue.userstream import UserEvents

EIGHT = Decimal("0.00000001")
TIF = {"GTC": GTC, "IOC": IOC, "FOK": FOK, "GTX": GTX}
ZERO = Decimal(0)


@dataclass
class FuturesFill:
    """One execution of a futures order."""

    trade_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal  # USDT
    realized: Decimal
    maker: bool
    time_ms: int


@dataclass
class FuturesOrder:
    """A venue futures order and where it stands."""

    account: Account
    inst: Instrument
    order_id: int
    client_id: str
    side: str
    type: str
    tif: str
    price: Decimal  # limit price (0 for market orders)
    orig_qty: Decimal
    reduce_only: bool
    time_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_ms: int = 0
    fills: list[FuturesFill] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed if self.open else ZERO

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    def view(self) -> fwire.FuturesOrderView:
        avg = self.cum_quote / self.executed if self.executed else ZERO
        return fwire.FuturesOrderView(self.inst.symbol, self.order_id, self.client_id,
                                      self.price, avg, self.orig_qty, self.executed,
                                      self.cum_quote, self.status, self.tif, self.type,
                                      self.side, self.reduce_only, self.time_ms,
                                      self.update_ms or self.time_ms)


@dataclass
class Position:
    """One symbol's one-way position."""

    amount: Decimal = ZERO
    entry: Decimal = ZERO
    update_ms: int = 0
    realized: Decimal = ZERO  # accumulated realized PnL of the symbol (before fees)


@dataclass
class Wallet:
    """An account's futures wallet: USDT balance, positions, leverage per symbol, incomes."""

    balance: Decimal
    update_ms: int
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    incomes: list[fwire.IncomeView] = field(default_factory=list)


def _dec_price(x: float, places: int) -> Decimal:
    return Decimal(f"{x:.{places}f}")


def _journaled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An action that changes the futures state: the venue's journal commits after it (before
    the answer goes out)."""

    @functools.wraps(fn)
    def wrapper(self: Futures, *args: Any, **kwargs: Any) -> Any:
        out = fn(self, *args, **kwargs)
        self.dirty = True
        self.on_change()
        return out

    return wrapper


class Futures(BookCores, OrderRegistry[FuturesOrder]):
    """Orders, positions and margin of every account on the venue's USD-M instruments."""

    market = "usdm"

    def __init__(self, accounts: Accounts, instruments: dict[tuple[str, str], Instrument],
                 books: dict[tuple[str, str], VenueBook], clock_ms: Callable[[], int],
                 events: UserEvents, mark_price: Callable[[tuple[str, str]], float | None],
                 funding_rate: Callable[[tuple[str, str], int], float],
                 next_funding_ms: Callable[[int], int]) -> None:
        self.accounts = accounts
        self.instruments = instruments
        self.books = books
        self.clock_ms = clock_ms
        self.events = events
        self.mark_price = mark_price
        self.funding_rate = funding_rate
        self.next_funding_ms = next_funding_ms
        self.cores: dict[str, MatchingCore] = {}
        self.orders: OrdersById[FuturesOrder] = OrdersById()
        self.trades: dict[int, list[tuple[FuturesOrder, FuturesFill]]] = {}
        now = clock_ms()
        self.wallets: dict[int, Wallet] = {
            acc.uid: Wallet(acc.usdm_wallet if acc.usdm_wallet is not None
                            else acc.free.get("USDT", ZERO), now)
            for acc in accounts.by_key.values()}
        self.funding_due: int | None = None
        self._next_order_id = 1
        self._next_trade_id: dict[str, int] = {}
        self._next_tran_id = 1
        self._next_client_id = 1
        self._reject_error: wire.BinanceError | None = None
        self._revive: dict[str, list[int]] = {}  # restored resting orders without a core yet
        self._expiring: set[int] = set()  # reduce-only orders being expired
        self._held: list[tuple[str, dict]] | None = None  # events while an order is placed
        self.dirty = False  # state changed since the journal last looked
        self.on_change: Callable[[], None] = lambda: None  # the venue's journal commit

    # -- orders ---------------------------------------------------------------------------

    @_journaled
    def new_order(self, acc: Account, req: fwire.FuturesOrderRequest) -> tuple[
            FuturesOrder, fwire.FuturesOrderView]:
        """Validate, margin-check and match a new order; returns it and its view as accepted
        (the ACK). Raises :class:`wire.BinanceError` when Binance would refuse it."""
        inst = self._instrument(req.symbol)
        if not acc.can_trade:
            raise wire.BinanceError(401, -2015, wire.MSG_BAD_KEY)
        cid = req.client_id or f"venue-f-{self._next_client_id}"
        if self.orders.open_client_id(acc, cid):
            raise wire.BinanceError(400, -4116, "ClientOrderId is duplicated.")
        core = self._core(inst)
        pos = self._position(acc, inst.symbol)
        sign = 1 if req.side == "BUY" else -1
        qty = req.quantity
        if req.reduce_only:
            if pos.amount == 0 or (pos.amount > 0) == (sign > 0):
                raise fwire.reduce_only_rejected()
            qty = min(qty, abs(pos.amount))
        market = req.type == "MARKET"
        ref = None
        if market:
            cost = self._walk_cost(inst, sign * qty)
            ref = self._avg_price(inst, sign, qty, cost)
        fwire.check_filters(inst.filters, req.price, qty, market, ref, req.reduce_only)
        if not req.reduce_only:
            self._check_margin(acc, inst, sign, qty, req.price if not market else ref)
        now = self.clock_ms()
        self._next_client_id += req.client_id is None
        order = FuturesOrder(acc, inst, self._next_order_id, cid, req.side, req.type,
                             req.time_in_force if not market else "GTC",
                             req.price or ZERO, qty, req.reduce_only, now, update_ms=now)
        self._next_order_id += 1
        self.orders[order.order_id] = order
        ack = order.view()
        self._reject_error = None
        kind = MARKET if market else LIMIT
        px = float(req.price) if not market and req.price is not None else None
        self._held = []  # events wait until the order is known to be accepted
        try:
            ex = core.place(self._ns(), order.order_id, BUY if sign > 0 else SELL, float(qty),
                            px, kind=kind, tif=TIF[req.time_in_force] if not market else GTC)
            self._apply(inst.symbol, ex)
        finally:
            held, self._held = self._held, None
        fok_missed = not market and req.time_in_force == "FOK" and not order.fills
        if order.status == "REJECTED" or fok_missed:
            # Binance refuses (and does not record) a post-only order that would take and a
            # FOK order that cannot fill whole at once
            del self.orders[order.order_id]
            raise (fwire.fok_rejected() if order.status != "REJECTED" else
                   self._reject_error or wire.rejected("Order rejected by the matching engine."))
        self._emit_order(fwire.ExecutionView(ack, "NEW"), acc)
        for uid, event in held:
            self.events.publish(uid, "usdm", event)
        return order, ack

    @_journaled
    def cancel(self, acc: Account, symbol: str, order_id: int | None,
               client_id: str | None) -> FuturesOrder:
        """Cancel one open order (-2011 if unknown or finished)."""
        inst = self._instrument(symbol)
        order = self._find(acc, inst, order_id, client_id)
        if order is None or not order.open:
            raise wire.BinanceError(400, -2011, fwire.MSG_UNKNOWN_ORDER)
        self._apply(inst.symbol, self.cores[inst.symbol].cancel(self._ns(), order.order_id))
        return order

    @_journaled
    def cancel_all(self, acc: Account, symbol: str) -> list[FuturesOrder]:
        """Cancel every open order of ``symbol`` (none is fine, as on Binance)."""
        inst = self._instrument(symbol)
        mine = [o for o in self.orders.values() if o.account is acc and o.inst is inst and o.open]
        return [self.cancel(acc, symbol, o.order_id, None) for o in mine]

    def query(self, acc: Account, symbol: str, order_id: int | None,
              client_id: str | None) -> FuturesOrder:
        """One of the account's orders (-2013 if unknown)."""
        order = self._find(acc, self._instrument(symbol), order_id, client_id)
        if order is None:
            raise wire.BinanceError(400, -2013, fwire.MSG_NO_SUCH_ORDER)
        return order

    def user_trades(self, acc: Account, symbol: str, order_id: int | None = None,
                    from_id: int | None = None, limit: int = 500) -> list[fwire.UserTradeView]:
        inst = self._instrument(symbol)
        out = []
        for order, f in self.trades.get(acc.uid, []):
            if order.inst is not inst or (order_id is not None and order.order_id != order_id):
                continue
            if from_id is not None and f.trade_id < from_id:
                continue
            out.append(fwire.UserTradeView(inst.symbol, f.trade_id, order.order_id, order.side,
                                           f.price, f.qty, f.commission, f.realized, f.maker,
                                           f.time_ms))
        return out[:limit]

    # -- account --------------------------------------------------------------------------

    @_journaled
    def set_leverage(self, acc: Account, symbol: str, leverage: int) -> int:
        """Change a symbol's leverage (-2028 if the margin balance cannot carry it)."""
        inst = self._instrument(symbol)
        wallet = self.wallets[acc.uid]
        old = wallet.leverage.get(inst.symbol, fwire.DEFAULT_LEVERAGE)
        wallet.leverage[inst.symbol] = leverage
        if leverage < old and self.summary(acc).available < 0:
            wallet.leverage[inst.symbol] = old
            raise wire.BinanceError(400, -2028, "Leverage is smaller than permitted: "
                                                "insufficient margin balance")
        return leverage

    def position_view(self, acc: Account, symbol: str) -> fwire.PositionView:
        """A symbol's position with its margin figures at the current mark."""
        inst = self.instruments[("usdm", symbol)]
        wallet = self.wallets[acc.uid]
        pos = wallet.positions.get(symbol, Position())
        mark = self._mark(inst) or pos.entry
        lev = wallet.leverage.get(symbol, fwire.DEFAULT_LEVERAGE)
        orders = [(o.sign, o.remaining, o.price) for o in self.open_orders(acc, symbol)
                  if o.type == "LIMIT"]
        bid = sum((q * p for s, q, p in orders if s > 0), ZERO)
        ask = sum((q * p for s, q, p in orders if s < 0), ZERO)
        return fwire.PositionView(symbol, pos.amount, pos.entry, mark,
                                  unrealized_pnl(pos.amount, pos.entry, mark), lev,
                                  position_margin(pos.amount, mark, lev),
                                  open_order_margin(pos.amount, orders, lev), bid, ask,
                                  pos.update_ms, pos.realized)

    def positions(self, acc: Account, symbol: str | None = None,
                  active_only: bool = False) -> list[fwire.PositionView]:
        """Position views of one symbol or of every USD-M symbol (``active_only``: those with
        a position or open orders)."""
        symbols = ([self._instrument(symbol).symbol] if symbol else
                   sorted(s for m, s in self.instruments if m == "usdm"))
        views = [self.position_view(acc, s) for s in symbols]
        if active_only:
            views = [v for v in views if v.amount != 0 or v.bid_notional or v.ask_notional]
        return views

    def summary(self, acc: Account) -> MarginSummary:
        views = self.positions(acc)
        return MarginSummary(self.wallets[acc.uid].balance,
                             sum((v.unrealized for v in views), ZERO),
                             sum((v.position_margin for v in views), ZERO),
                             sum((v.order_margin for v in views), ZERO))

    def account_view(self, acc: Account) -> fwire.AccountView:
        s = self.summary(acc)
        return fwire.AccountView(s.wallet, s.unrealized, s.position_margin, s.order_margin,
                                 s.available, self.positions(acc, active_only=True),
                                 acc.can_trade, self.wallets[acc.uid].update_ms)

    def incomes(self, acc: Account, symbol: str | None = None, kind: str | None = None,
                start_ms: int | None = None, end_ms: int | None = None,
                limit: int = 100) -> list[fwire.IncomeView]:
        """The account's income records, oldest first."""
        sym = self._instrument(symbol).symbol if symbol else None
        out = [i for i in self.wallets[acc.uid].incomes
               if (sym is None or i.symbol == sym) and (kind is None or i.kind == kind)
               and (start_ms is None or i.time_ms >= start_ms)
               and (end_ms is None or i.time_ms <= end_ms)]
        return out[:limit]

    # -- funding --------------------------------------------------------------------------

    def on_time(self, now_ms: int) -> None:
        """The venue's clock moved to ``now_ms``: settle every funding time passed since."""
        if self.funding_due is None:
            self.funding_due = self.next_funding_ms(now_ms)
            return
        settled = False
        while now_ms >= self.funding_due:
            self.settle_funding(self.funding_due)
            self.funding_due = self.next_funding_ms(self.funding_due)
            settled = True
        if settled:
            self.dirty = True
            self.on_change()

    def settle_funding(self, t_ms: int) -> None:
        """Every open position pays or receives ``amount * mark * rate`` at ``t_ms``, with the
        rate of the period that ends then."""
        for acc in self.accounts.by_key.values():
            wallet = self.wallets[acc.uid]
            for sym, pos in sorted(wallet.positions.items()):
                if pos.amount == 0:
                    continue
                inst = self.instruments[("usdm", sym)]
                mark = self._mark(inst) or pos.entry
                rate = Decimal(repr(self.funding_rate(inst.key, t_ms - 1)))
                pay = funding_payment(pos.amount, mark, rate).quantize(EIGHT)
                if pay == 0:
                    continue  # a zero rate moves nothing and records nothing
                wallet.balance += pay
                wallet.update_ms = t_ms
                self.dirty = True
                self._income(wallet, sym, "FUNDING_FEE", pay, t_ms, None)
                self.events.publish(str(acc.uid), "usdm", fwire.account_update(
                    "FUNDING_FEE", wallet.balance, pay, [self.position_view(acc, sym)],
                    self.clock_ms(), t_ms))

    # -- state ----------------------------------------------------------------------------

    def state(self) -> dict:
        """Everything needed to rebuild the futures side after a venue restart (JSON-able)."""
        return {
            "orders": [{
                "uid": o.account.uid, "symbol": o.inst.symbol, "order_id": o.order_id,
                "client_id": o.client_id, "side": o.side, "type": o.type, "tif": o.tif,
                "price": str(o.price), "orig_qty": str(o.orig_qty),
                "reduce_only": o.reduce_only, "time_ms": o.time_ms, "status": o.status,
                "executed": str(o.executed), "cum_quote": str(o.cum_quote),
                "update_ms": o.update_ms,
                "fills": [[f.trade_id, str(f.price), str(f.qty), str(f.commission),
                           str(f.realized), f.maker, f.time_ms] for f in o.fills]}
                for o in sorted(self.orders.values(), key=lambda o: o.order_id)],
            "wallets": {str(uid): {
                "balance": str(w.balance), "update_ms": w.update_ms,
                "positions": {s: [str(p.amount), str(p.entry), p.update_ms, str(p.realized)]
                              for s, p in w.positions.items()},
                "leverage": dict(w.leverage),
                "incomes": [[i.tran_id, i.symbol, i.kind, str(i.amount), i.time_ms, i.trade_id]
                            for i in w.incomes]} for uid, w in self.wallets.items()},
            "trades": {str(uid): [[o.order_id, f.trade_id] for o, f in rows]
                       for uid, rows in self.trades.items()},
            "counters": {"order_id": self._next_order_id, "trade_id": dict(self._next_trade_id),
                         "tran_id": self._next_tran_id, "client_id": self._next_client_id,
                         "funding_due": self.funding_due},
        }

    def restore(self, state: dict) -> None:
        """Rebuild from :meth:`state`. Resting orders go back on the book (at the back of
        their level's queue) once the symbol's book is live."""
        by_uid = {acc.uid: acc for acc in self.accounts.by_key.values()}
        unknown = ({row["uid"] for row in state["orders"]} |
                   {int(u) for u in state["wallets"]}) - set(by_uid)
        if unknown:
            raise ValueError(f"futures state names accounts the venue does not have: "
                             f"uid {sorted(unknown)}")
        self.orders.clear()
        self.trades.clear()
        self.cores.clear()
        self._revive.clear()
        for row in state["orders"]:
            acc = by_uid[row["uid"]]
            inst = self._instrument(row["symbol"])
            o = FuturesOrder(acc, inst, row["order_id"], row["client_id"], row["side"],
                             row["type"], row["tif"], Decimal(row["price"]),
                             Decimal(row["orig_qty"]), row["reduce_only"], row["time_ms"],
                             row["status"], Decimal(row["executed"]), Decimal(row["cum_quote"]),
                             row["update_ms"],
                             [FuturesFill(t, Decimal(p), Decimal(q), Decimal(c), Decimal(r), m,
                                          ms) for t, p, q, c, r, m, ms in row["fills"]])
            self.orders[o.order_id] = o
            if o.open:
                self._revive.setdefault(inst.symbol, []).append(o.order_id)
        for uid, w in state["wallets"].items():
            self.wallets[int(uid)] = Wallet(
                Decimal(w["balance"]), w["update_ms"],
                {s: Position(Decimal(a), Decimal(e), ms, Decimal(r)) for s, (a, e, ms, r)
                 in w["positions"].items()},
                {s: int(v) for s, v in w["leverage"].items()},
                [fwire.IncomeView(t, s, k, Decimal(a), ms, tid) for t, s, k, a, ms, tid
                 in w["incomes"]])
        for uid, rows in state["trades"].items():
            fills = {(o.order_id, f.trade_id): (o, f) for o in self.orders.values()
                     for f in o.fills}
            self.trades[int(uid)] = [fills[(oid, tid)] for oid, tid in rows]
        c = state["counters"]
        self._next_order_id, self._next_tran_id = c["order_id"], c["tran_id"]
        self._next_trade_id = {s: int(v) for s, v in c["trade_id"].items()}
        self._next_client_id, self.funding_due = c["client_id"], c["funding_due"]
        for symbol in list(self._revive):
            self._revive_orders(symbol)

    # -- market data (restored orders join the core once the book is live) ----------------

    def on_depth(self, symbol: str, diff: dict) -> None:
        self._revive_orders(symbol)
        super().on_depth(symbol, diff)

    def on_trade(self, symbol: str, data: dict) -> None:
        self._revive_orders(symbol)
        super().on_trade(symbol, data)

    def _revive_orders(self, symbol: str) -> None:
        ids = self._revive.get(symbol)
        if not ids:
            return
        try:
            core = self._core(self.instruments[("usdm", symbol)])
        except wire.BinanceError:
            return  # the book is not live yet
        del self._revive[symbol]
        for oid in ids:
            o = self.orders[oid]
            self._apply(symbol, core.place(self._ns(), oid, BUY if o.sign > 0 else SELL,
                                           float(o.orig_qty - o.executed), float(o.price),
                                           kind=LIMIT, tif=TIF[o.tif]))

    # -- internals ------------------------------------------------------------------------

    def _position(self, acc: Account, symbol: str) -> Position:
        return self.wallets[acc.uid].positions.setdefault(symbol, Position())

    def _mark(self, inst: Instrument) -> Decimal | None:
        m = self.mark_price(inst.key)
        return None if m is None else _dec_price(m, 8)

    def _avg_price(self, inst: Instrument, sign: int, qty: Decimal,
                   cost: Decimal) -> Decimal | None:
        """Average price of a market order walking the book (None if that side is empty)."""
        levels = self._levels(inst, "BUY" if sign > 0 else "SELL")
        if not levels:
            return None
        filled = min(qty, sum((q for _, q in levels), ZERO))
        return cost / filled if filled else None

    def _check_margin(self, acc: Account, inst: Instrument, sign: int, qty: Decimal,
                      price: Decimal | None) -> None:
        """-2019 when the initial margin the order adds exceeds the available balance."""
        if price is None:
            return  # nothing to take: the market order will expire unfilled
        view = self.position_view(acc, inst.symbol)
        orders = [(o.sign, o.remaining, o.price) for o in self.open_orders(acc, inst.symbol)
                  if o.type == "LIMIT"]
        before = open_order_margin(view.amount, orders, view.leverage)
        after = open_order_margin(view.amount, [*orders, (sign, qty, price)], view.leverage)
        if after - before > self.summary(acc).available:
            raise fwire.margin_insufficient()

    def _apply(self, symbol: str, ex: Executions) -> None:
        """Book the core's fills and reports in the order they happened, then expire
        reduce-only orders the fills made invalid."""
        if len(ex.fills) or len(ex.reports):
            self.dirty = True
        events = [(int(r["rec"]), 0, r) for r in ex.fills] + [
            (int(r["rec"]), 1, r) for r in ex.reports]
        touched: dict[int, Account] = {}
        for _rec, is_report, r in sorted(events, key=lambda e: e[0]):
            order = self.orders.get(int(r["order_id"]))
            if order is None:
                continue
            if is_report:
                self._report(order, int(r["kind"]), int(r["reason"]))
            else:
                self._fill(order, r)
                touched[order.account.uid] = order.account
        for acc in touched.values():
            self._expire_reduce_only(acc, symbol)

    def _fill(self, order: FuturesOrder, r) -> None:
        inst, acc = order.inst, order.account
        wallet = self.wallets[acc.uid]
        px = _dec_price(float(r["px"]), inst.price_decimals())
        qty = _dec_price(float(r["qty"]), inst.qty_decimals())
        maker = bool(r["maker"])
        notional = px * qty
        fee = (notional * (acc.maker_fee if maker else acc.taker_fee)).quantize(EIGHT)
        pos = self._position(acc, inst.symbol)
        ch = apply_fill(pos.amount, pos.entry, order.sign * qty, px)
        realized = ch.realized.quantize(EIGHT)  # the wallet counts USDT to 8 decimals
        now = self.clock_ms()
        pos.amount, pos.entry, pos.update_ms = ch.amount, ch.entry, now
        pos.realized += realized
        wallet.balance += realized - fee
        wallet.update_ms = now
        trade_id = self._next_trade_id.get(inst.symbol, 1)
        self._next_trade_id[inst.symbol] = trade_id + 1
        if realized:
            self._income(wallet, inst.symbol, "REALIZED_PNL", realized, now, trade_id)
        if fee:
            self._income(wallet, inst.symbol, "COMMISSION", -fee, now, trade_id)
        fill = FuturesFill(trade_id, px, qty, fee, realized, maker, now)
        order.fills.append(fill)
        order.executed += qty
        order.cum_quote += notional
        order.update_ms = now
        order.status = "FILLED" if order.executed >= order.orig_qty else "PARTIALLY_FILLED"
        self.trades.setdefault(acc.uid, []).append((order, fill))
        view = self.position_view(acc, inst.symbol)
        self._emit_order(fwire.ExecutionView(order.view(), "TRADE", qty, px, fee, trade_id,
                                             maker, realized, view.bid_notional,
                                             view.ask_notional), acc)
        self._publish(acc, fwire.account_update("ORDER", wallet.balance, ZERO, [view], now, now))

    def _report(self, order: FuturesOrder, kind: int, reason: int) -> None:
        if kind == RP_CANCELED:
            order.status = "EXPIRED" if order.order_id in self._expiring else "CANCELED"
        elif kind == RP_EXPIRED:
            order.status = "EXPIRED"
        elif kind == RP_REJECTED:
            order.status = "REJECTED"
            if reason == R_POST_ONLY:
                self._reject_error = fwire.post_only_rejected()
            elif reason == R_OUT_OF_RANGE:
                self._reject_error = wire.filter_failure("PERCENT_PRICE")
            return
        else:
            return
        order.update_ms = self.clock_ms()
        self._emit_order(fwire.ExecutionView(order.view(), order.status), order.account)

    def _expire_reduce_only(self, acc: Account, symbol: str) -> None:
        """Reduce-only orders that would no longer only reduce the position expire."""
        pos = self._position(acc, symbol)
        for o in self.open_orders(acc, symbol):
            if not o.reduce_only:
                continue
            shrinks = pos.amount != 0 and (pos.amount > 0) != (o.sign > 0)
            if shrinks and o.remaining <= abs(pos.amount):
                continue
            self._expiring.add(o.order_id)
            self._apply(symbol, self.cores[symbol].cancel(self._ns(), o.order_id))
            self._expiring.discard(o.order_id)

    def _income(self, wallet: Wallet, symbol: str, kind: str, amount: Decimal, t_ms: int,
                trade_id: int | None) -> None:
        wallet.incomes.append(fwire.IncomeView(self._next_tran_id, symbol, kind, amount, t_ms,
                                               trade_id))
        self._next_tran_id += 1

    def _emit_order(self, x: fwire.ExecutionView, acc: Account) -> None:
        self._publish(acc, fwire.order_trade_update(x, self.clock_ms()))

    def _publish(self, acc: Account, event: dict) -> None:
        """Publish on the bus (the bus keys accounts by ``str(uid)``), or hold the event while
        an order is being placed."""
        if self._held is not None:
            self._held.append((str(acc.uid), event))
        else:
            self.events.publish(str(acc.uid), "usdm", event)


__all__ = ["Futures", "FuturesFill", "FuturesOrder", "Position", "Wallet"]
