"""Exchange symbol names to the normalised cryptofeed form (``BTC-USDT``, ``BTC-USDT-PERP``)."""

from __future__ import annotations

import re

from tradelab.store.errors import StoreError

# Quote assets Binance lists, longest first so that e.g. FDUSD wins over USD.
BINANCE_QUOTES = tuple(
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


def split_binance(raw: str) -> tuple[str, str]:
    """Split a concatenated Binance symbol (``BTCUSDT``) into base and quote."""
    sym = raw.upper()
    for quote in BINANCE_QUOTES:
        if sym.endswith(quote) and len(sym) > len(quote):
            return sym[: -len(quote)], quote
    raise StoreError(
        f"cannot split Binance symbol {raw!r} into base and quote: unknown quote asset"
    )


def binance_symbol(raw: str, market: str) -> str:
    """Normalise a Binance symbol for ``market`` (``spot`` or ``usdm``).

    ``BTCUSDT`` is ``BTC-USDT`` on spot and ``BTC-USDT-PERP`` on USD-M; a USD-M delivery contract
    ``BTCUSDT_240927`` becomes ``BTC-USDT-24U27`` (cryptofeed's year, month code, day).
    """
    if market == "spot":
        base, quote = split_binance(raw)
        return f"{base}-{quote}"
    if market == "usdm":
        m = _DELIVERY_RE.match(raw.upper())
        if m:
            base, quote = split_binance(m.group(1))
            yymmdd = m.group(2)
            return (
                f"{base}-{quote}-{yymmdd[:2]}{_MONTH_CODES[int(yymmdd[2:4]) - 1]}{int(yymmdd[4:])}"
            )
        base, quote = split_binance(raw)
        return f"{base}-{quote}-PERP"
    raise StoreError(f"unknown Binance market {market!r}: use spot or usdm")


BINANCE_EXCHANGE = {"spot": "BINANCE", "usdm": "BINANCE_FUTURES"}
