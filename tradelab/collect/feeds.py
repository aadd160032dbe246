"""cryptofeed feeds built from the collector config, optionally pointed at another endpoint.

cryptofeed reads endpoints from class attributes, so a local endpoint means a subclass that keeps
the exchange's ``id`` and routes and swaps the addresses. Its websocket must be ``wss://``: for
the local venue's self-signed certificate the TLS check is switched off on that feed only.
Symbol lists (exchangeInfo) are fetched asynchronously and cached before the feed is created,
because cryptofeed would otherwise fetch them with a blocking request inside the event loop.
"""

from __future__ import annotations

import aiohttp
from cryptofeed.connection import RestEndpoint, WebsocketEndpoint
from cryptofeed.defines import FUNDING, L2_BOOK, OPEN_INTEREST, TICKER, TRADES
from cryptofeed.exchanges import EXCHANGE_MAP
from cryptofeed.symbols import Symbols

from tradelab.adapters.binance.symbols import MARKET_OF_EXCHANGE
from tradelab.collect.config import Endpoint, FeedConfig
from tradelab.net.tls import client_context_without_verification

CHANNEL_MAP = {"l2_book": L2_BOOK, "trades": TRADES, "bbo": TICKER, "funding": FUNDING,
               "open_interest": OPEN_INTEREST}
TABLE_OF = {L2_BOOK: "book", TRADES: "trades", TICKER: "bbo", FUNDING: "funding",
            OPEN_INTEREST: "open_interest"}


def feed_class(exchange: str, endpoint: Endpoint | None):
    """The cryptofeed class for ``exchange``, re-pointed at ``endpoint`` when given."""
    base = EXCHANGE_MAP[exchange]
    if endpoint is None:
        return base
    options = dict(base.websocket_endpoints[0].options or {})
    # a bounded frame queue lets TCP backpressure reach a local venue replaying at full speed
    # (cryptofeed's default queue is unbounded, so the client would fall arbitrarily behind)
    options["max_queue"] = 1024
    if not endpoint.verify_tls:
        options["ssl"] = client_context_without_verification()
    ws = [WebsocketEndpoint(endpoint.websocket, options=options)]
    rest = [RestEndpoint(endpoint.rest, routes=ep.routes) for ep in base.rest_endpoints]
    return type(f"Local{base.__name__}", (base,), {"websocket_endpoints": ws,
                                                   "rest_endpoints": rest})


async def prefetch_symbols(cls) -> None:
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


def build_feed(cfg: FeedConfig, callbacks: dict, cls=None):
    """A cryptofeed feed object for one config entry with our callbacks attached."""
    cls = cls or feed_class(cfg.exchange, cfg.endpoint)
    channels = [CHANNEL_MAP[c] for c in cfg.channels]
    known = set(cls.symbols()) if Symbols.populated(cls.id) else None
    if known is not None:
        missing = [s for s in cfg.symbols if s not in known]
        if missing:
            raise ValueError(f"{cfg.exchange}: unknown symbols {missing}; the exchange lists "
                             f"e.g. {sorted(known)[:8]}")
    kwargs = {"symbols": cfg.symbols, "channels": channels,
              "callbacks": {ch: callbacks[ch] for ch in channels}, "max_depth": cfg.depth,
              "config": {"uvloop": False, "log": {"disabled": True}}}
    if cfg.exchange in MARKET_OF_EXCHANGE:  # Binance spot or USD-M
        kwargs["depth_interval"] = "100ms"
    return cls(**kwargs)
