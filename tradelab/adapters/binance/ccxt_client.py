"""ccxt clients for Binance spot and USD-M, optionally re-pointed at another endpoint.

ccxt keeps its base URLs per instance (``urls['api']``); in sandbox mode they are Binance's
testnets. A local venue (``tradelab venue``) speaks the same protocol on 127.0.0.1, so a client
for it is a sandbox client whose testnet hosts are replaced by the venue's address. Only the
markets of the client's own kind are loaded, and the calls a local venue does not serve
(currencies, margin pairs) are switched off.
"""

from __future__ import annotations

from typing import Any

from tradelab.adapters.binance.schema import check_market
from tradelab.adapters.binance.symbols import CCXT_EXCHANGE, CCXT_MARKET_TYPE

TESTNET_HOSTS = ("https://testnet.binance.vision", "https://testnet.binancefuture.com")


def client_options(market: str) -> dict[str, Any]:
    """ccxt options for one market (only its markets, no currency or margin calls)."""
    return {"fetchCurrencies": False, "fetchMargins": False,
            "fetchMarkets": {"types": [CCXT_MARKET_TYPE[check_market(market)]]},
            "warnOnFetchOpenOrdersWithoutSymbol": False}


def repoint(client: Any, rest_base: str) -> None:
    """Replace the testnet hosts in ``client.urls['api']`` by ``rest_base``
    (e.g. ``http://127.0.0.1:9080``); websocket URLs are left alone."""
    base = rest_base.rstrip("/")
    api = client.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str):
            for host in TESTNET_HOSTS:
                if url.startswith(host):
                    api[name] = base + url[len(host):]


def repoint_ws(client: Any, rest_base: str) -> None:
    """Point a ccxt.pro client's websockets at a local venue: the spot WebSocket API
    (``/ws-api/v3``, what ``watch_orders``/``watch_balance`` subscribe through), the spot
    stream base and the USD-M private stream base (listenKey streams)."""
    host = rest_base.rstrip("/").split("://", 1)[1]
    ws = client.urls["api"]["ws"]
    if isinstance(ws.get("ws-api"), dict):
        ws["ws-api"]["spot"] = f"ws://{host}/ws-api/v3"
    ws["spot"] = f"ws://{host}/spot/ws"
    ws["linear"] = f"ws://{host}/usdm/ws"


def make_client(market: str, api_key: str, secret: str, rest_base: str | None = None, *,
                asynchronous: bool = True, timeout_ms: int = 10_000, pro: bool = False,
                rate_limit: bool = True) -> Any:
    """A ccxt client for ``market`` in sandbox mode (Binance's testnet), or pointed at
    ``rest_base`` (a local venue) when given. ``pro``: a ccxt.pro client (websockets).
    ``rate_limit=False`` turns ccxt's own request spacing off (a latency measurement must not
    time ccxt's throttle; the venue's 429s still arrive)."""
    if pro:
        import ccxt.pro as ccxt_mod
    elif asynchronous:
        import ccxt.async_support as ccxt_mod
    else:
        import ccxt as ccxt_mod
    cls = getattr(ccxt_mod, CCXT_EXCHANGE[check_market(market)])
    client = cls({"apiKey": api_key, "secret": secret, "enableRateLimit": rate_limit,
                  "timeout": timeout_ms, "options": client_options(market)})
    client.set_sandbox_mode(True)
    if rest_base:
        repoint(client, rest_base)
        if pro:
            repoint_ws(client, rest_base)
    return client


__all__ = ["TESTNET_HOSTS", "client_options", "make_client", "repoint", "repoint_ws"]
