"""Binance exchange filters: the price grid, the quantity grid and the notional floor.

One :class:`SymbolFilters` per instrument holds what exchangeInfo publishes:

- ``PRICE_FILTER``: ``min_price <= price <= max_price`` and ``(price - min_price)`` a whole
  number of ``tick_size`` (a zero bound is not checked, as on Binance);
- ``LOT_SIZE`` (and ``MARKET_LOT_SIZE`` for market orders): ``min_qty <= qty <= max_qty`` and
  ``(qty - min_qty)`` a whole number of ``step_size``;
- ``NOTIONAL`` (spot) / ``MIN_NOTIONAL`` (USD-M): ``price * qty >= min_notional`` (spot also
  ``<= max_notional``); for market orders spot applies it only if ``apply_min_to_market``,
  with the reference price given.

Binance itself never rounds an order: it refuses one off the grid with
``-1013 Filter failure: <FILTER>``. Clients round before sending, and the helpers here do it the
way that cannot make an order bigger or more aggressive than asked: quantities are truncated
down to the step grid; a buy price is rounded down and a sell price up to the tick grid
(``rounding="nearest"`` rounds half to even instead). All arithmetic is :class:`~decimal.Decimal`,
so ``0.1 + 0.2`` style float noise never decides a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal

from tradelab.adapters.binance.schema import check_market
from tradelab.errors import AdapterError

PRICE_FILTER = "PRICE_FILTER"
LOT_SIZE = "LOT_SIZE"
MARKET_LOT_SIZE = "MARKET_LOT_SIZE"
NOTIONAL = "NOTIONAL"
MIN_NOTIONAL = "MIN_NOTIONAL"

Number = Decimal | str | float | int
Rounding = Literal["down", "up", "nearest"]

# Binance's tick and step for the instruments the shared recordings hold; others get defaults.
KNOWN_SIZES = {
    ("spot", "BTCUSDT"): ("0.01", "0.00001"),
    ("spot", "ETHUSDT"): ("0.01", "0.0001"),
    ("usdm", "BTCUSDT"): ("0.10", "0.001"),
    ("usdm", "ETHUSDT"): ("0.01", "0.001"),
}
DEFAULT_SIZES = ("0.01", "0.001")
MAX_PRICE = "10000000"
MAX_QTY = "9000"
MIN_NOTIONAL_USDT = "5"
MAX_NOTIONAL_SPOT = "9000000"


def _dec(x: Number) -> Decimal:
    """A Decimal of ``x``; floats go through their shortest repr (``0.1`` is ``Decimal('0.1')``)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    return Decimal(x)


class FilterFailure(AdapterError):
    """An order a filter refuses; ``reason`` names the filter (``PRICE_FILTER``, ``LOT_SIZE``,
    ``MARKET_LOT_SIZE``, ``NOTIONAL`` or ``MIN_NOTIONAL``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"Filter failure: {reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SymbolFilters:
    """The filters of one instrument, as exchangeInfo publishes them (decimal values)."""

    symbol: str
    market: str
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal
    max_price: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    market_step_size: Decimal
    min_notional: Decimal
    max_notional: Decimal | None = None
    apply_min_to_market: bool = True

    # -- rounding ----------------------------------------------------------------------------

    def round_price(self, price: Number, rounding: Rounding = "nearest") -> Decimal:
        """``price`` on the tick grid: ``down`` (a buy), ``up`` (a sell) or ``nearest``."""
        mode = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}[rounding]
        base = self.min_price if self.min_price > 0 else Decimal(0)
        ticks = ((_dec(price) - base) / self.tick_size).to_integral_value(mode)
        return base + ticks * self.tick_size

    def round_qty(self, qty: Number, market_order: bool = False) -> Decimal:
        """``qty`` truncated down to the step grid (never more than asked)."""
        step = self.market_step_size if market_order else self.step_size
        base = self.market_min_qty if market_order else self.min_qty
        if step == 0:
            return _dec(qty)
        q = _dec(qty)
        if q < base:
            return (q / step).to_integral_value(ROUND_FLOOR) * step
        steps = ((q - base) / step).to_integral_value(ROUND_FLOOR)
        return base + steps * step

    # -- checks ------------------------------------------------------------------------------

    def reject_reason(
        self, price: Number | None, qty: Number, market_order: bool = False
    ) -> FilterFailure | None:
        """The first filter an order fails, or None if it passes them all. ``price`` is the
        limit price, or for a market order the reference (average) price or None."""
        q = _dec(qty)
        p = None if price is None else _dec(price)
        if not market_order:
            if p is None:
                return FilterFailure(PRICE_FILTER, "a limit order needs a price")
            if self.min_price > 0 and p < self.min_price:
                return FilterFailure(PRICE_FILTER, f"price {p} below minPrice {self.min_price}")
            if self.max_price > 0 and p > self.max_price:
                return FilterFailure(PRICE_FILTER, f"price {p} above maxPrice {self.max_price}")
            if self.tick_size > 0 and (p - self.min_price) % self.tick_size != 0:
                return FilterFailure(PRICE_FILTER,
                                     f"price {p} is not a multiple of tickSize {self.tick_size}")
        name = MARKET_LOT_SIZE if market_order else LOT_SIZE
        lo, hi, step = ((self.market_min_qty, self.market_max_qty, self.market_step_size)
                        if market_order else (self.min_qty, self.max_qty, self.step_size))
        if q < lo:
            return FilterFailure(name, f"quantity {q} below minQty {lo}")
        if hi > 0 and q > hi:
            return FilterFailure(name, f"quantity {q} above maxQty {hi}")
        if step > 0 and (q - lo) % step != 0:
            return FilterFailure(name, f"quantity {q} is not a multiple of stepSize {step}")
        if p is None or (market_order and not self.apply_min_to_market):
            return None
        notional = p * q
        name = NOTIONAL if self.market == "spot" else MIN_NOTIONAL
        if notional < self.min_notional:
            return FilterFailure(name, f"notional {notional} below {self.min_notional}")
        if self.max_notional is not None and not market_order and notional > self.max_notional:
            return FilterFailure(name, f"notional {notional} above {self.max_notional}")
        return None

    def check(self, price: Number | None, qty: Number, market_order: bool = False) -> None:
        """Raise :class:`FilterFailure` for the first filter the order fails."""
        failure = self.reject_reason(price, qty, market_order)
        if failure is not None:
            raise failure

    # -- exchangeInfo --------------------------------------------------------------------------

    def exchange_info(self) -> list[dict]:
        """The ``filters`` list of this symbol in exchangeInfo."""
        out: list[dict] = [
            {"filterType": PRICE_FILTER, "minPrice": str(self.min_price),
             "maxPrice": str(self.max_price), "tickSize": str(self.tick_size)},
            {"filterType": LOT_SIZE, "minQty": str(self.min_qty), "maxQty": str(self.max_qty),
             "stepSize": str(self.step_size)},
            {"filterType": MARKET_LOT_SIZE, "minQty": str(self.market_min_qty),
             "maxQty": str(self.market_max_qty), "stepSize": str(self.market_step_size)},
        ]
        if self.market == "spot":
            out.append({"filterType": NOTIONAL, "minNotional": str(self.min_notional),
                        "applyMinToMarket": self.apply_min_to_market,
                        "maxNotional": str(self.max_notional), "applyMaxToMarket": False,
                        "avgPriceMins": 5})
        else:
            out.append({"filterType": MIN_NOTIONAL, "notional": str(self.min_notional)})
        return out

    @classmethod
    def from_exchange_info(cls, market: str, entry: dict) -> SymbolFilters:
        """The filters of one ``symbols`` entry of an exchangeInfo answer."""
        by_type = {f["filterType"]: f for f in entry.get("filters", [])}
        try:
            pf, lot = by_type[PRICE_FILTER], by_type[LOT_SIZE]
        except KeyError as exc:
            raise AdapterError(f"{entry.get('symbol')}: exchangeInfo lacks filter {exc}") from None
        mlot = by_type.get(MARKET_LOT_SIZE, lot)
        if market == "spot":
            nf = by_type.get(NOTIONAL, {})
            min_n, max_n = nf.get("minNotional", "0"), nf.get("maxNotional")
            apply_min = bool(nf.get("applyMinToMarket", True))
        else:
            min_n, max_n, apply_min = by_type.get(MIN_NOTIONAL, {}).get("notional", "0"), None, True
        return cls(
            symbol=entry["symbol"], market=check_market(market),
            tick_size=Decimal(pf["tickSize"]), step_size=Decimal(lot["stepSize"]),
            min_price=Decimal(pf["minPrice"]), max_price=Decimal(pf["maxPrice"]),
            min_qty=Decimal(lot["minQty"]), max_qty=Decimal(lot["maxQty"]),
            market_min_qty=Decimal(mlot["minQty"]), market_max_qty=Decimal(mlot["maxQty"]),
            market_step_size=Decimal(mlot["stepSize"]), min_notional=Decimal(min_n),
            max_notional=None if max_n is None else Decimal(max_n),
            apply_min_to_market=apply_min,
        )


def symbol_filters(market: str, symbol: str, tick: str | None = None,
                   step: str | None = None) -> SymbolFilters:
    """The filters tradelab's venue lists for ``symbol``: Binance's tick and step where known
    (or the ones given), minimum price one tick, minimum quantity one step, notional floor 5."""
    check_market(market)
    symbol = symbol.upper()
    known = KNOWN_SIZES.get((market, symbol), DEFAULT_SIZES)
    t, s = Decimal(tick or known[0]), Decimal(step or known[1])
    return SymbolFilters(
        symbol=symbol, market=market, tick_size=t, step_size=s, min_price=t,
        max_price=Decimal(MAX_PRICE), min_qty=s, max_qty=Decimal(MAX_QTY), market_min_qty=s,
        market_max_qty=Decimal(MAX_QTY), market_step_size=s,
        min_notional=Decimal(MIN_NOTIONAL_USDT),
        max_notional=Decimal(MAX_NOTIONAL_SPOT) if market == "spot" else None,
    )


def infer_tick(prices: list[str]) -> str:
    """The price increment implied by a list of price strings (smallest positive gap)."""
    vals = sorted({Decimal(p) for p in prices})
    gaps = [b - a for a, b in zip(vals, vals[1:]) if b > a]
    if not gaps:
        return "0.01"
    return format(min(gaps).normalize(), "f")


def format_size(x: float) -> str:
    """A size as Binance writes it in exchangeInfo (no float noise, no trailing zeros)."""
    return format(Decimal(repr(x)).normalize(), "f")
