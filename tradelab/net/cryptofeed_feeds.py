"""cryptofeed plumbing shared by the collector and the live runners (no exchange knowledge).

cryptofeed reads endpoints from class attributes, so a local endpoint (the venue) means a
subclass that keeps the exchange's ``id`` and routes and swaps the addresses. Its websocket must
be ``wss://``: for the local venue's self-signed certificate the TLS check is switched off on
that feed only. Symbol lists (exchangeInfo) are fetched asynchronously and cached before a feed
is created, because cryptofeed would otherwise fetch them with a blocking request inside the
event loop.
"""

from __future__ import annotations

from typing import Any, overload

import aiohttp
from cryptofeed.connection import RestEndpoint, WebsocketEndpoint
from cryptofeed.exchanges import EXCHANGE_MAP
from cryptofeed.symbols import Symbols

from tradelab.net.tls import client_context_without_verification

US = 1_000
MS_THRESHOLD = 1e11
"""A 'seconds' value above this (year 5138) is milliseconds: cryptofeed 2.4.1's Bybit handler
passes milliseconds for book, ticker and funding times."""


@overload
def ns(seconds: float, fallback: float | None = None) -> int: ...
@overload
def ns(seconds: float | None, fallback: float) -> int: ...
@overload
def ns(seconds: float | None, fallback: float | None = None) -> int | None: ...
def ns(seconds: float | None, fallback: float | None = None) -> int | None:
    """cryptofeed's float seconds (or milliseconds, see ``MS_THRESHOLD``) to int ns at
    microsecond resolution (exact for the millisecond times exchanges send; ``fallback`` if
    None)."""
    if seconds is None:
        seconds = fallback
    if seconds is None:
        return None
    if seconds > MS_THRESHOLD:
        seconds = seconds / 1000.0
    return int(round(seconds * 1_000_000)) * US


def repointed_feed_class(exchange: str, websocket: str, rest: str,
                         verify_tls: bool = False) -> Any:
    """cryptofeed's class for ``exchange`` with its websocket and REST addresses replaced."""
    base = EXCHANGE_MAP[exchange]
    options = dict(base.websocket_endpoints[0].options or {})
    # a bounded frame queue lets TCP backpressure reach a local venue replaying at full speed
    # (cryptofeed's default queue is unbounded, so the client would fall arbitrarily behind)
    options["max_queue"] = 1024
    if not verify_tls:
        options["ssl"] = client_context_without_verification()
    ws = [WebsocketEndpoint(websocket, options=options)]
    rest_eps = [RestEndpoint(rest, routes=ep.routes) for ep in base.rest_endpoints]
    return type(f"Local{base.__name__}", (base,), {"websocket_endpoints": ws,
                                                   "rest_endpoints": rest_eps})


async def prefetch_symbols(cls: Any) -> None:
    """Fill cryptofeed's symbol cache for ``cls`` without blocking the event loop.

    Always fetched anew: the cache is global per exchange id, and a venue (or a capture) may
    have filled it with another list for the same id."""
    data = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for ep in cls.rest_endpoints:
            addr = cls._symbol_endpoint_prepare(ep)
            for url in addr if isinstance(addr, list) else [addr]:
                async with session.get(url) as resp:
                    resp.raise_for_status()
                    data.append(await resp.json(content_type=None))
    syms, info = cls._parse_symbol_data(data if len(data) > 1 else data[0])
    Symbols.set(cls.id, syms, info)


__all__ = ["MS_THRESHOLD", "ns", "prefetch_symbols", "repointed_feed_class"]
