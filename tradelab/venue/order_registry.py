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


class OrderRegistry(Generic[OrderT]):
    """Orders by venue id, and the queries every market answers the same way."""

    market: str
    instruments: dict[tuple[str, str], Instrument]
    orders: dict[int, OrderT]
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
        hits = [o for o in self.orders.values()
                if o.account is acc and o.inst is inst and o.client_id == client_id]
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


__all__ = ["OrderRegistry", "VenueOrder"]
