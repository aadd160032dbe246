"""cryptofeed feeds built from the collector config, optionally pointed at another endpoint
(the re-pointing and the symbol prefetch are :mod:`tradelab.net.cryptofeed_feeds`, shared with
the live runners)."""

from __future__ import annotations

from cryptofeed.defines import FUNDING, L2_BOOK, OPEN_INTEREST, TICKER, TRADES
from cryptofeed.exchanges import EXCHANGE_MAP
from cryptofeed.symbols import Symbols

from tradelab.adapters.binance.symbols import MARKET_OF_EXCHANGE
from tradelab.collect.config import Endpoint, FeedConfig
from tradelab.net.cryptofeed_feeds import repointed_feed_class

CHANNEL_MAP = {"l2_book": L2_BOOK, "trades": TRADES, "bbo": TICKER, "funding": FUNDING,
               "open_interest": OPEN_INTEREST}
TABLE_OF = {L2_BOOK: "book", TRADES: "trades", TICKER: "bbo", FUNDING: "funding",
            OPEN_INTEREST: "open_interest"}


def feed_class(exchange: str, endpoint: Endpoint | None):
    """The cryptofeed class for ``exchange``, re-pointed at ``endpoint`` when given."""
    if endpoint is None:
        return EXCHANGE_MAP[exchange]
    return repointed_feed_class(exchange, endpoint.websocket, endpoint.rest, endpoint.verify_tls)


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
