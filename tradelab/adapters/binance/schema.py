"""Binance's markets, stream names and REST hosts."""

from __future__ import annotations

import re

from tradelab.errors import AdapterError

MARKETS = ("spot", "usdm")
"""``spot`` (api.binance.com) and ``usdm`` (USD-M futures, fapi.binance.com)."""

STREAM_KINDS = ("depth", "trade", "aggTrade", "bookTicker", "markPrice")
"""Market-data stream kinds tradelab reads (``depth`` covers ``depth@100ms`` and the like)."""

REST_PREFIX = {"spot": "/api/v3", "usdm": "/fapi/v1"}
REST_HOST_RE = re.compile(r"^https://[a-z]+\.binance\.com")
"""The base of every Binance REST URL (what a client re-points at a local venue)."""


def check_market(market: str) -> str:
    """``market`` itself if it is ``spot`` or ``usdm``; an :class:`AdapterError` otherwise."""
    if market not in MARKETS:
        raise AdapterError(f"unknown Binance market {market!r}: use spot or usdm")
    return market


def split_stream(stream: str) -> tuple[str, str]:
    """``(lower-case symbol, exact kind)`` of a stream name: ``btcusdt@depth@100ms`` ->
    ``("btcusdt", "depth")``, ``btcusdt@depth20@100ms`` -> ``("btcusdt", "depth20")``."""
    name, _, rest = stream.partition("@")
    return name, rest.split("@", 1)[0]


def stream_kind(stream: str) -> str:
    """The kind of a stream name: ``btcusdt@depth@100ms`` -> ``depth``, ``btcusdt@trade`` ->
    ``trade``; ``''`` when the name has no ``@``."""
    _name, _, rest = stream.partition("@")
    kind = rest.split("@", 1)[0]
    return "depth" if kind.startswith("depth") else kind


def stream_symbol(stream: str, data: dict | None = None) -> str:
    """The raw symbol of a stream message: the payload's ``s``, else the stream's name."""
    if data:
        sym = data.get("s")
        if sym:
            return sym
    return stream.partition("@")[0].upper()


def stream_name(symbol: str, kind: str, cadence: str | None = None) -> str:
    """The stream a client subscribes to: ``btcusdt@trade``, ``btcusdt@depth@100ms``."""
    low = symbol.lower()
    if kind == "depth" and cadence:
        return f"{low}@depth@{cadence}"
    return f"{low}@{kind}"


def market_of_payload(data: dict) -> str | None:
    """``spot`` or ``usdm`` from the fields of one stream payload, or None if it cannot tell
    (USD-M depth diffs carry ``pu``, USD-M trades ``X``, spot trades ``M``; a spot bookTicker
    has no ``e``)."""
    ev = data.get("e")
    if ev == "depthUpdate":
        return "usdm" if "pu" in data else "spot"
    if ev == "markPriceUpdate":
        return "usdm"
    if ev == "trade":
        if "X" in data:
            return "usdm"
        if "M" in data:
            return "spot"
    if "u" in data and "b" in data and "a" in data and "U" not in data:
        return "usdm" if ev == "bookTicker" else "spot"
    return None
