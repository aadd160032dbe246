"""A scripted order timeline and the fills it produced, in one form for every engine.

The event backtester (:mod:`tradelab.backtest.event.timeline`) and the local venue
(:mod:`tradelab.venue.timeline`) each run a list of :class:`Action` over the same market events
and report :class:`TimelineFill` rows, so "the same configuration gives the same fills" is one
equality between two lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
TIFS = ("GTC", "IOC", "FOK")
FEE_PLACES = Decimal("0.00000001")
EXACT = Decimal("1e-12")


@dataclass(frozen=True)
class Action:
    """Place or cancel order ``order_id`` when the clock reads ``t_ns`` (the time the action is
    *sent*: it takes effect after the entry latency). Prices and quantities are strings on the
    instrument's tick and step grid, as on the wire."""

    t_ns: int
    kind: str  # "place" | "cancel"
    order_id: int
    side: str = "BUY"
    type: str = "LIMIT"
    tif: str = "GTC"
    qty: str = "0"
    price: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("place", "cancel"):
            raise ValueError(f"action kind must be place or cancel, got {self.kind!r}")
        if self.kind == "cancel":
            return
        if self.side not in ("BUY", "SELL"):
            raise ValueError(f"order {self.order_id}: side must be BUY or SELL")
        if self.type not in ORDER_TYPES:
            raise ValueError(f"order {self.order_id}: type must be one of {ORDER_TYPES}")
        if self.tif not in TIFS:
            raise ValueError(f"order {self.order_id}: tif must be one of {TIFS}")
        if self.type != "MARKET" and self.price is None:
            raise ValueError(f"order {self.order_id}: a {self.type} order needs a price")
        if not Decimal(self.qty) > 0:
            raise ValueError(f"order {self.order_id}: quantity must be positive")


@dataclass(frozen=True)
class TimelineFill:
    """One execution: exchange time (ms, the wire's resolution), price, quantity, maker or
    taker, and the fee the way Binance spot charges it: in the asset received (the base asset
    for a buy, the quote asset for a sell), truncated to 1e-8."""

    order_id: int
    time_ms: int
    side: str
    price: Decimal
    qty: Decimal
    maker: bool
    fee: Decimal


def spot_fee(side: str, fee_quote: float, price: float) -> Decimal:
    """A fee charged in quote value (the matching core's ``rate x price x qty``) as Binance
    spot charges it: in the asset received, truncated to 1e-8. The float is first rounded to
    1e-12 so that binary noise (0.00001 stored as 0.0000099999...) does not truncate a digit."""
    amount = fee_quote / price if side == "BUY" else fee_quote
    d = Decimal(repr(float(amount))).quantize(EXACT, ROUND_HALF_EVEN)
    return d.quantize(FEE_PLACES, ROUND_DOWN)
