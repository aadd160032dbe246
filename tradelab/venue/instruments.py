"""Instruments the local venue lists: raw Binance symbol, market, assets, tick and lot sizes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradelab.collect.symbols import split_binance

MARKETS = ("spot", "usdm")

# Binance's sizes for the instruments the shared recordings hold; others are inferred.
_KNOWN = {
    ("spot", "BTCUSDT"): ("0.01", "0.00001"),
    ("spot", "ETHUSDT"): ("0.01", "0.0001"),
    ("usdm", "BTCUSDT"): ("0.10", "0.001"),
    ("usdm", "ETHUSDT"): ("0.01", "0.001"),
}


@dataclass(frozen=True)
class Instrument:
    """One listed instrument."""

    symbol: str  # raw Binance symbol, e.g. BTCUSDT
    market: str  # spot | usdm
    base: str
    quote: str
    tick: str  # price increment as Binance writes it
    step: str  # quantity increment

    @property
    def key(self) -> tuple[str, str]:
        return self.market, self.symbol

    def price_decimals(self) -> int:
        return max(0, -Decimal(self.tick).normalize().as_tuple().exponent)

    def qty_decimals(self) -> int:
        return max(0, -Decimal(self.step).normalize().as_tuple().exponent)


def instrument(market: str, symbol: str, tick: str | None = None,
               step: str | None = None) -> Instrument:
    """An instrument with known sizes, the given ones, or Binance-like defaults."""
    if market not in MARKETS:
        raise ValueError(f"unknown market {market!r}: use spot or usdm")
    symbol = symbol.upper()
    base, quote = split_binance(symbol)
    known = _KNOWN.get((market, symbol), ("0.01", "0.001"))
    return Instrument(symbol, market, base, quote, tick or known[0], step or known[1])


def infer_tick(prices: list[str]) -> str:
    """The price increment implied by a list of price strings (smallest positive gap)."""
    vals = sorted({Decimal(p) for p in prices})
    gaps = [b - a for a, b in zip(vals, vals[1:]) if b > a]
    if not gaps:
        return "0.01"
    return format(min(gaps).normalize(), "f")
