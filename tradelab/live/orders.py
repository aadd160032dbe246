"""The runner's order manager: every order's state, executions and what to ask the venue next.

An order moves through ``PENDING_NEW -> NEW -> PARTIALLY_FILLED -> FILLED``, or ends
``CANCELED``, ``REJECTED`` or ``EXPIRED`` (``PENDING_CANCEL`` while a cancel is in flight).
Reports from a venue arrive late, twice or out of order (a fill before the ack, a cancel ack
after the last fill), so the manager follows three rules:

- **Executions are counted once each**, keyed by the venue's trade id; the order's filled
  quantity and average price are the sum of its executions, never a status field taken on trust.
- **States never go backwards**: a stale ``NEW`` after a fill, or anything after a terminal
  state, is ignored (and counted).
- **An unknown outcome is resolved by asking**: a submit that timed out or got a 5xx leaves the
  order ``PENDING_NEW`` with ``outcome_unknown`` set, and :meth:`OrderManager.to_query` lists it
  until a status report (from the stream or a query by client id) settles it. A status report
  whose cumulative quantity exceeds the executions seen adds an *inferred* execution for the gap
  (a fill the stream dropped), so positions stay right.

Before sending, :meth:`OrderManager.prepare` puts the order on the instrument's grid (quantity
truncated, a buy price rounded down and a sell price up) and refuses it when a filter would
(below the minimum quantity or notional): a refusal is a value, not an exception.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from tradelab.adapters.binance.filters import SymbolFilters


class OrderState(StrEnum):
    """Where an order stands (Binance's statuses plus the two in-flight states)."""

    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED,
                      OrderState.EXPIRED})
_RANK = {OrderState.PENDING_NEW: 0, OrderState.NEW: 1, OrderState.PARTIALLY_FILLED: 2,
         OrderState.PENDING_CANCEL: 2}
"""Progress of the live states; a report may only move an order up (terminal states are final)."""
_VENUE_STATUS = {"NEW": OrderState.NEW, "PARTIALLY_FILLED": OrderState.PARTIALLY_FILLED,
                 "FILLED": OrderState.FILLED, "CANCELED": OrderState.CANCELED,
                 "REJECTED": OrderState.REJECTED, "EXPIRED": OrderState.EXPIRED,
                 "EXPIRED_IN_MATCH": OrderState.EXPIRED}


@dataclass(frozen=True)
class Execution:
    """One fill of an order (``inferred``: reconstructed from a status report's cumulative
    figures because the fill itself was never reported)."""

    trade_id: str
    qty: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)
    fee_asset: str = ""
    ts_ns: int = 0
    maker: bool | None = None
    inferred: bool = False


@dataclass(frozen=True)
class Refusal:
    """An order the manager would not send, and why."""

    reason: str
    detail: str


@dataclass
class ManagedOrder:
    """An order the runner sent (or is about to send) and everything known about it."""

    client_id: str
    symbol: str
    side: str  # "BUY" | "SELL"
    type: str  # "LIMIT" | "MARKET" | "LIMIT_MAKER" ...
    qty: Decimal
    price: Decimal | None
    tif: str = "GTC"
    reduce_only: bool = False
    tag: str = ""  # what the runner placed it for (entry, stop, take-profit ...)
    state: OrderState = OrderState.PENDING_NEW
    venue_id: str | None = None
    outcome_unknown: bool = False
    created_ns: int = 0
    updated_ns: int = 0
    submit_attempts: int = 0
    executions: list[Execution] = field(default_factory=list)
    history: list[tuple[int, OrderState]] = field(default_factory=list)

    @property
    def filled(self) -> Decimal:
        return sum((e.qty for e in self.executions), Decimal(0))

    @property
    def filled_quote(self) -> Decimal:
        return sum((e.qty * e.price for e in self.executions), Decimal(0))

    @property
    def avg_price(self) -> Decimal | None:
        f = self.filled
        return self.filled_quote / f if f else None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def signed_filled(self) -> Decimal:
        return self.filled if self.side == "BUY" else -self.filled


@dataclass(frozen=True)
class StatusReport:
    """What the venue says about an order: from a user-data event or a status query."""

    client_id: str
    status: str  # the venue's status string (NEW, PARTIALLY_FILLED, FILLED, CANCELED ...)
    venue_id: str | None = None
    cum_qty: Decimal | None = None
    cum_quote: Decimal | None = None
    ts_ns: int = 0


class OrderManager:
    """The runner's orders, keyed by client order id. ``clock_ns`` stamps state changes."""

    def __init__(self, filters: dict[str, SymbolFilters], clock_ns: Callable[[], int],
                 id_prefix: str = "tl") -> None:
        if not id_prefix.replace("-", "").replace("_", "").isalnum() or len(id_prefix) > 12:
            raise ValueError(f"client id prefix {id_prefix!r}: use up to 12 letters, digits, "
                             "'-' or '_' (Binance allows 36 characters in all)")
        self.filters = filters
        self.clock_ns = clock_ns
        self.id_prefix = id_prefix
        self.orders: dict[str, ManagedOrder] = {}
        self.ignored: Counter[str] = Counter()
        self._seq = itertools.count(1)

    # -- building orders ---------------------------------------------------------------------

    def next_client_id(self) -> str:
        """A fresh client order id (unique per manager; a restart continues via :meth:`adopt`)."""
        while True:
            cid = f"{self.id_prefix}-{next(self._seq)}"
            if cid not in self.orders:
                return cid

    def prepare(self, symbol: str, side: str, qty: Decimal | float, price: Decimal | float | None,
                type: str = "LIMIT", tif: str = "GTC", reduce_only: bool = False,
                tag: str = "", reference_price: Decimal | float | None = None
                ) -> ManagedOrder | Refusal:
        """An order on the instrument's grid, registered ``PENDING_NEW``, or why it cannot be
        sent. ``reference_price`` is what a market order's notional is checked at."""
        if side not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, got {side!r}")
        f = self.filters.get(symbol)
        if f is None:
            return Refusal("UNKNOWN_SYMBOL", f"no filters for {symbol!r}")
        market = type == "MARKET"
        q = f.round_qty(Decimal(str(qty)), market_order=market)
        p: Decimal | None = None
        if not market:
            if price is None:
                return Refusal("PRICE_FILTER", f"a {type} order needs a price")
            p = f.round_price(Decimal(str(price)), "down" if side == "BUY" else "up")
        if q <= 0:
            return Refusal("LOT_SIZE", f"quantity {qty} rounds to zero on step {f.step_size}")
        ref = p if p is not None else (None if reference_price is None
                                       else Decimal(str(reference_price)))
        failure = f.reject_reason(ref, q, market_order=market)
        if failure is not None:
            return Refusal(failure.reason, failure.detail)
        now = self.clock_ns()
        order = ManagedOrder(self.next_client_id(), symbol, side, type, q, p, tif, reduce_only,
                             tag, created_ns=now, updated_ns=now)
        order.history.append((now, order.state))
        self.orders[order.client_id] = order
        return order

    def adopt(self, order: ManagedOrder) -> None:
        """Take over an order known from the journal or the venue (after a restart)."""
        self.orders[order.client_id] = order
        prefix = f"{self.id_prefix}-"
        if order.client_id.startswith(prefix) and order.client_id[len(prefix):].isdigit():
            n = int(order.client_id[len(prefix):])
            current = next(self._seq)
            self._seq = itertools.count(max(current, n + 1))

    # -- what happened -----------------------------------------------------------------------

    def on_submitted(self, client_id: str) -> None:
        """A submit is about to go out (counts attempts; a retry reuses the client id)."""
        self._get(client_id).submit_attempts += 1

    def on_ack(self, client_id: str, venue_id: str | None, status: str = "NEW") -> None:
        """The venue accepted the order (its response to the submit)."""
        order = self._get(client_id)
        order.outcome_unknown = False
        if venue_id is not None:
            order.venue_id = venue_id
        self._move(order, _VENUE_STATUS.get(status, OrderState.NEW))

    def on_submit_failed(self, client_id: str, unknown: bool, reason: str = "") -> None:
        """The submit failed: rejected for sure (``unknown=False``), or with an outcome the
        client cannot know (timeout, 5xx, dropped connection): then the order stays
        ``PENDING_NEW`` and must be queried."""
        order = self._get(client_id)
        if unknown:
            order.outcome_unknown = True
            return
        self._move(order, OrderState.REJECTED)

    def on_cancel_sent(self, client_id: str) -> bool:
        """A cancel is going out; False (and nothing changes) if the order is already done."""
        order = self._get(client_id)
        if order.done:
            return False
        self._move(order, OrderState.PENDING_CANCEL)
        return True

    def on_cancel_failed(self, client_id: str) -> None:
        """The venue did not know the order as open (-2011): it may have filled meanwhile; the
        order goes back to its live state and is queried."""
        order = self._get(client_id)
        if order.state is OrderState.PENDING_CANCEL:
            live = OrderState.PARTIALLY_FILLED if order.filled else OrderState.NEW
            self._set(order, live)
            order.outcome_unknown = True

    def on_execution(self, client_id: str, execution: Execution) -> bool:
        """A fill; False if this trade id was already counted (a duplicate report)."""
        order = self._get(client_id)
        if any(e.trade_id == execution.trade_id for e in order.executions):
            self.ignored["duplicate_execution"] += 1
            return False
        if not execution.inferred:
            inferred = [e for e in order.executions if e.inferred]
            if sum((e.qty for e in inferred), Decimal(0)) >= execution.qty > 0:
                # the fill an inferred execution stood for, now reported for real: it takes
                # the inferred one's place (its quantity was already counted)
                left = execution.qty
                for e in inferred:
                    take = min(left, e.qty)
                    i = order.executions.index(e)
                    rest = e.qty - take
                    if rest > 0:
                        order.executions[i] = Execution(e.trade_id, rest, e.price, e.fee,
                                                        e.fee_asset, e.ts_ns, e.maker, True)
                    else:
                        order.executions.pop(i)
                    left -= take
                    if left <= 0:
                        break
                order.executions.append(execution)
                self.ignored["replaced_inferred"] += 1
                return False
        if order.done and order.state is not OrderState.CANCELED:
            # a fill after FILLED/REJECTED/EXPIRED cannot be ours to add: the venue said done
            if order.filled + execution.qty > order.qty:
                self.ignored["execution_beyond_quantity"] += 1
                return False
        order.executions.append(execution)
        order.updated_ns = self.clock_ns()
        if order.filled >= order.qty:
            self._set(order, OrderState.FILLED)
        elif not order.done and order.state is not OrderState.PENDING_CANCEL:
            self._move(order, OrderState.PARTIALLY_FILLED)
        return True

    def on_status(self, report: StatusReport) -> list[Execution]:
        """A status from the stream or a query; returns executions inferred from its
        cumulative figures (fills that were never reported one by one)."""
        order = self._get(report.client_id)
        state = _VENUE_STATUS.get(report.status)
        if state is None:
            raise ValueError(f"order {report.client_id}: unknown venue status {report.status!r}")
        order.outcome_unknown = False
        if report.venue_id is not None:
            order.venue_id = report.venue_id
        inferred: list[Execution] = []
        if report.cum_qty is not None and report.cum_qty > order.filled:
            gap = report.cum_qty - order.filled
            quote = (report.cum_quote - order.filled_quote
                     if report.cum_quote is not None else None)
            price = quote / gap if quote is not None and quote > 0 else (
                order.price if order.price is not None else Decimal(0))
            ex = Execution(f"inferred-{order.client_id}-{len(order.executions)}", gap, price,
                           ts_ns=report.ts_ns or self.clock_ns(), inferred=True)
            order.executions.append(ex)
            inferred.append(ex)
        self._move(order, state)
        return inferred

    def on_not_found(self, client_id: str) -> None:
        """A status query says the venue never had this order: a submit with an unknown outcome
        did not arrive, so it is rejected (it may be sent again under a new client id)."""
        order = self._get(client_id)
        if order.state is OrderState.PENDING_NEW:
            order.outcome_unknown = False
            self._set(order, OrderState.REJECTED)

    # -- views -------------------------------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> list[ManagedOrder]:
        return [o for o in self.orders.values()
                if not o.done and (symbol is None or o.symbol == symbol)]

    def to_query(self) -> list[ManagedOrder]:
        """Orders whose venue-side state is unknown and must be asked for."""
        return [o for o in self.orders.values() if o.outcome_unknown]

    def position(self, symbol: str) -> Decimal:
        """Net filled quantity of this manager's orders in ``symbol`` (buys minus sells)."""
        return sum((o.signed_filled for o in self.orders.values() if o.symbol == symbol),
                   Decimal(0))

    # -- internals ---------------------------------------------------------------------------

    def _get(self, client_id: str) -> ManagedOrder:
        order = self.orders.get(client_id)
        if order is None:
            raise KeyError(f"unknown client order id {client_id!r}")
        return order

    def _move(self, order: ManagedOrder, state: OrderState) -> None:
        """Move forward only: terminal states are final and live states never regress."""
        if order.done:
            if state is not order.state:
                self.ignored[f"after_{order.state.value.lower()}"] += 1
            return
        if state in TERMINAL:
            self._set(order, state)
            return
        if order.state is OrderState.PENDING_CANCEL and state is not OrderState.PENDING_CANCEL:
            return  # a late NEW/PARTIALLY_FILLED does not undo a cancel in flight
        if _RANK[state] < _RANK[order.state]:
            self.ignored["stale_state"] += 1
            return
        self._set(order, state)

    def _set(self, order: ManagedOrder, state: OrderState) -> None:
        if state is order.state:
            return
        now = self.clock_ns()
        order.state = state
        order.updated_ns = now
        order.history.append((now, state))


__all__ = ["TERMINAL", "Execution", "ManagedOrder", "OrderManager", "OrderState", "Refusal",
           "StatusReport"]
