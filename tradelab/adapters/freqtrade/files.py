"""freqtrade's data files: what a file holds, from its name.

Spot candles ``BTC_USDT-1m.feather``; futures candles ``BTC_USDT_USDT-1m-futures.feather``;
``-8h-funding_rate`` (the rate is in ``open``), ``-8h-mark`` and ``-8h-index`` files; trades
``BTC_USDT-trades.feather``. Pairs become store symbols (``BTC_USDT`` -> ``BTC-USDT``,
``BTC_USDT_USDT`` -> ``BTC-USDT-PERP``); futures rows belong to the exchange's futures venue
the cryptofeed way (``BINANCE`` -> ``BINANCE_FUTURES``, inverse ``BTC_USD_BTC`` ->
``BINANCE_DELIVERY``).
"""

from __future__ import annotations

import re
from pathlib import Path

FILE_RE = re.compile(
    r"^(?P<pair>[A-Z0-9]+_[A-Z0-9]+(?:_[A-Z0-9]+)?)-"
    r"(?:(?P<tf>\d+[smhdwM])(?:-(?P<ctype>futures|spot|mark|index|funding_rate|premiumIndex))?"
    r"|(?P<trades>trades))\.feather$"
)
OHLCV_COLUMNS = ("date", "open", "high", "low", "close", "volume")
TRADES_COLUMNS = ("timestamp", "id", "type", "side", "price", "amount", "cost")
FUTURES_VENUE = {"BINANCE": ("BINANCE_FUTURES", "BINANCE_DELIVERY")}
CANDLE_KIND = {None: "trade", "spot": "trade", "futures": "trade", "mark": "mark", "index": "index"}


def classify(path: Path) -> dict | None:
    """What a freqtrade file holds, from its name; None if the name is not freqtrade's."""
    m = FILE_RE.match(path.name)
    if not m:
        return None
    parts = m.group("pair").split("_")
    futures = len(parts) == 3 or m.group("ctype") in (
        "futures",
        "mark",
        "index",
        "funding_rate",
        "premiumIndex",
    )
    base, quote = parts[0], parts[1]
    settle = parts[2] if len(parts) == 3 else quote
    symbol = f"{base}-{quote}-PERP" if futures else f"{base}-{quote}"
    if m.group("trades"):
        return {"table": "trades", "symbol": symbol, "futures": futures, "inverse": settle != quote}
    ctype = m.group("ctype")
    if ctype == "premiumIndex":
        return {"table": None, "symbol": symbol, "reason": "premium index candles are not stored"}
    table = "funding" if ctype == "funding_rate" else "ohlcv"
    return {
        "table": table,
        "symbol": symbol,
        "interval": m.group("tf"),
        "futures": futures,
        "kind": CANDLE_KIND.get(ctype, "trade"),
        "inverse": settle != quote,
    }


def venue(exchange: str, futures: bool, inverse: bool) -> str:
    """The cryptofeed exchange name a file's rows belong to."""
    if not futures:
        return exchange
    linear, inv = FUTURES_VENUE.get(exchange, (exchange, exchange))
    return inv if inverse else linear
