"""Instruments the local venue lists: raw Binance symbol, market, assets, tick and lot sizes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradelab.adapters.binance.filters import (
    DEFAULT_SIZES,
    KNOWN_SIZES,
    SymbolFilters,
    symbol_filters,
)
from tradelab.adapters.binance.schema import MARKETS
from tradelab.adapters.binance.symbols import split_raw


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

    @property
    def filters(self) -> SymbolFilters:
        """The exchange filters the venue publishes (and validates orders with)."""
        return symbol_filters(self.market, self.symbol, self.tick, self.step)

    def price_decimals(self) -> int:
        return _decimals(self.tick)

    def qty_decimals(self) -> int:
        return _decimals(self.step)


def _decimals(size: str) -> int:
    """Decimal places of a size such as ``"0.010"`` (2)."""
    exponent = Decimal(size).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def instrument(market: str, symbol: str, tick: str | None = None,
               step: str | None = None) -> Instrument:
    """An instrument with known sizes, the given ones, or Binance-like defaults."""
    if market not in MARKETS:
        raise ValueError(f"unknown market {market!r}: use spot or usdm")
    symbol = symbol.upper()
    base, quote = split_raw(symbol)
    known = KNOWN_SIZES.get((market, symbol), DEFAULT_SIZES)
    return Instrument(symbol, market, base, quote, tick or known[0], step or known[1])
