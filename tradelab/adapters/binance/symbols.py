"""Binance symbol and market names, and how they map to the store's.

Three spellings of one instrument: raw Binance (``BTCUSDT``, a USD-M delivery contract
``BTCUSDT_240927``), ccxt (``BTC/USDT`` spot, ``BTC/USDT:USDT`` the linear perpetual) and the
store's, the cryptofeed way (``BTC-USDT``, ``BTC-USDT-PERP``, ``BTC-USDT-24U27``). Spot rows are
stored under exchange ``BINANCE``, USD-M rows under ``BINANCE_FUTURES``.
"""

from __future__ import annotations

import re

from tradelab.errors import AdapterError

EXCHANGE = {"spot": "BINANCE", "usdm": "BINANCE_FUTURES"}
"""Store (cryptofeed) exchange name of each market."""
MARKET_OF_EXCHANGE = {v: k for k, v in EXCHANGE.items()}
"""Market of each store exchange name."""
CCXT_EXCHANGE = {"spot": "binance", "usdm": "binanceusdm"}
"""ccxt exchange id of each market."""
CCXT_MARKET_TYPE = {"spot": "spot", "usdm": "linear"}
"""ccxt's market type of each market (``fetchMarkets`` types)."""
PERP_SUFFIX = "-PERP"

# Quote assets Binance lists, longest first so that e.g. FDUSD wins over USD.
QUOTES = tuple(
    sorted(
        [
            "USDT",
            "USDC",
            "FDUSD",
            "BUSD",
            "TUSD",
            "USDP",
            "DAI",
            "BTC",
            "ETH",
            "BNB",
            "EUR",
            "TRY",
            "BRL",
            "JPY",
            "GBP",
            "AUD",
            "RUB",
            "UAH",
            "BIDR",
            "IDRT",
            "ZAR",
            "PLN",
            "RON",
            "ARS",
            "MXN",
            "COP",
            "CZK",
            "USD",
            "XRP",
            "DOGE",
            "DOT",
            "TRX",
            "AEUR",
            "EURI",
        ],
        key=len,
        reverse=True,
    )
)

_MONTH_CODES = "FGHJKMNQUVXZ"
_DELIVERY_RE = re.compile(r"^([A-Z0-9]+)_(\d{6})$")


def split_raw(raw: str) -> tuple[str, str]:
    """Split a concatenated Binance symbol (``BTCUSDT``) into base and quote."""
    sym = raw.upper()
    for quote in QUOTES:
        if sym.endswith(quote) and len(sym) > len(quote):
            return sym[: -len(quote)], quote
    raise AdapterError(
        f"cannot split Binance symbol {raw!r} into base and quote: unknown quote asset"
    )


def store_symbol_of_raw(raw: str, market: str) -> str:
    """The store symbol of a raw Binance symbol on ``market`` (``spot`` or ``usdm``).

    ``BTCUSDT`` is ``BTC-USDT`` on spot and ``BTC-USDT-PERP`` on USD-M; a USD-M delivery contract
    ``BTCUSDT_240927`` becomes ``BTC-USDT-24U27`` (cryptofeed's year, month code, day).
    """
    if market == "spot":
        base, quote = split_raw(raw)
        return f"{base}-{quote}"
    if market == "usdm":
        m = _DELIVERY_RE.match(raw.upper())
        if m:
            base, quote = split_raw(m.group(1))
            yymmdd = m.group(2)
            return (
                f"{base}-{quote}-{yymmdd[:2]}{_MONTH_CODES[int(yymmdd[2:4]) - 1]}{int(yymmdd[4:])}"
            )
        base, quote = split_raw(raw)
        return f"{base}-{quote}{PERP_SUFFIX}"
    raise AdapterError(f"unknown Binance market {market!r}: use spot or usdm")


def raw_of_store_symbol(symbol: str) -> str:
    """The raw Binance symbol of a store spot or perpetual symbol: ``BTC-USDT-PERP`` ->
    ``BTCUSDT``."""
    return "".join(symbol.removesuffix(PERP_SUFFIX).split("-")[:2])


def market_of_store_symbol(symbol: str) -> str:
    """``usdm`` for a store perpetual (``BTC-USDT-PERP``), ``spot`` otherwise."""
    return "usdm" if symbol.endswith(PERP_SUFFIX) else "spot"


def market_of_ccxt(symbol: str) -> str:
    """``spot`` for ``BTC/USDT``, ``usdm`` for ``BTC/USDT:USDT``."""
    if "/" not in symbol:
        raise ValueError(f"use ccxt symbols like BTC/USDT (spot) or BTC/USDT:USDT (USD-M), "
                         f"not {symbol!r}")
    if ":" in symbol:
        base_quote, settle = symbol.split(":", 1)
        if settle != base_quote.split("/")[1]:
            raise ValueError(f"{symbol}: only linear (USD-M) perpetuals are supported")
        return "usdm"
    return "spot"


def ccxt_symbol_of_raw(raw: str, market: str) -> str:
    """``BTCUSDT`` -> ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (USD-M)."""
    if market not in EXCHANGE:
        raise AdapterError(f"unknown Binance market {market!r}: use spot or usdm")
    base, quote = split_raw(raw)
    return f"{base}/{quote}" + (f":{quote}" if market == "usdm" else "")


def store_symbol_of_ccxt(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTC-USDT``; ``BTC/USDT:USDT`` -> ``BTC-USDT-PERP``."""
    base_quote = symbol.split(":", 1)[0].replace("/", "-")
    return f"{base_quote}{PERP_SUFFIX}" if ":" in symbol else base_quote
