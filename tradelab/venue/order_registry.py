"""The accounts' orders of one market, looked up the Binance way (shared by spot and USD-M)."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from tradelab.adapters.binance import trading as wire
from tradelab.venue.accounts import Account
from tradelab.venue.instruments import Instrument


class VenueOrder(Protocol):
    """What the lookups read of an order (spot ``Order`` and ``FuturesOrder`` both have it)."""

    account: Account
    inst: Instrument
    order_id: int
    client_id: str

    @property
    def open(self) -> bool: ...


OrderT = TypeVar("OrderT", bound=VenueOrder)


class OrdersById(dict[int, OrderT]):
    """Orders by venue id, also indexed by (account, client id): a new order's duplicate check
    and a lookup by client id stay as fast on the millionth order as on the first."""

    def __init__(self) -> None:
        super().__init__()
        self._by_client: dict[tuple[int, str], list[int]] = {}

    def __setitem__(self, order_id: int, order: OrderT) -> None:
        if order_id in self:
            self._unindex(order_id)
        super().__setitem__(order_id, order)
        self._by_client.setdefault((id(order.account), order.client_id), []).append(order_id)

    def __delitem__(self, order_id: int) -> None:
        self._unindex(order_id)
        super().__delitem__(order_id)

    def _unindex(self, order_id: int) -> None:
        o = self[order_id]
        key = (id(o.account), o.client_id)
        ids = self._by_client.get(key, [])
        if order_id in ids:
            ids.remove(order_id)
        if not ids:
            self._by_client.pop(key, None)

    def with_client_id(self, acc: Account, client_id: str) -> list[OrderT]:
        """The account's orders with this client id, oldest first."""
        return [self[i] for i in self._by_client.get((id(acc), client_id), ())]

    def open_client_id(self, acc: Account, client_id: str) -> bool:
        """Whether the account has an open order with this client id (Binance refuses a
        duplicate)."""
        return any(o.open for o in self.with_client_id(acc, client_id))


class OrderRegistry(Generic[OrderT]):
    """Orders by venue id, and the queries every market answers the same way."""

    market: str
    instruments: dict[tuple[str, str], Instrument]
    orders: OrdersById[OrderT]
    bad_symbol_msg: str = wire.MSG_BAD_SYMBOL

    def _instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get((self.market, symbol.upper()))
        if inst is None:
            raise wire.BinanceError(400, -1121, self.bad_symbol_msg)
        return inst

    def _find(self, acc: Account, inst: Instrument, order_id: int | None,
              client_id: str | None) -> OrderT | None:
        """The account's order by venue id, else its latest order with this client id."""
        if order_id is not None:
            o = self.orders.get(order_id)
            return o if o is not None and o.account is acc and o.inst is inst else None
        if client_id is None:
            return None
        hits = [o for o in self.orders.with_client_id(acc, client_id) if o.inst is inst]
        return hits[-1] if hits else None

    def open_orders(self, acc: Account, symbol: str | None) -> list[OrderT]:
        """The account's open orders (of ``symbol``, or all)."""
        inst = self._instrument(symbol) if symbol else None
        return [o for o in self.orders.values() if o.account is acc and o.open
                and (inst is None or o.inst is inst)]

    def all_orders(self, acc: Account, symbol: str, from_id: int | None = None,
                   limit: int = 500) -> list[OrderT]:
        """The account's orders of ``symbol``, open or finished, oldest first."""
        inst = self._instrument(symbol)
        mine = [o for o in self.orders.values() if o.account is acc and o.inst is inst
                and (from_id is None or o.order_id >= from_id)]
        return sorted(mine, key=lambda o: o.order_id)[:limit]


__all__ = ["OrderRegistry", "OrdersById", "VenueOrder"]
