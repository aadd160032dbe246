"""Binance spot user-data wire format: the events of the user-data stream, the WebSocket API's
request signing and framing, and the listenKey bodies.

Events (``executionReport``, ``outboundAccountPosition``, ``balanceUpdate``) are the dicts the
stream carries; over the WebSocket API each one is wrapped as ``{"subscriptionId", "event"}``,
on a listenKey stream it is sent as is. WebSocket API requests are ``{"id", "method",
"params"}``; a signed request's ``signature`` is the hex HMAC-SHA256 of its other params sorted
by name and joined as ``name=value&...`` (values as written, booleans as ``true``/``false``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradelab.adapters.binance.trading import (
    MSG_BAD_SIGNATURE,
    BinanceError,
    OrderView,
    fmt,
    missing,
    sign,
)

STP_MODE = "EXPIRE_MAKER"
"""Self-trade prevention mode the venue reports on every order (as the REST answers do)."""
WS_WEIGHT = {"order.place": 1, "order.cancel": 1, "order.status": 4,
             "userDataStream.subscribe.signature": 2, "userDataStream.unsubscribe": 2}
MSG_NO_LISTEN_KEY = "This listenKey does not exist."


# -- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """One execution report's own part (the order's part is its :class:`OrderView`)."""

    exec_type: str  # NEW | TRADE | CANCELED | EXPIRED | REJECTED
    event_ms: int
    exec_id: int
    client_id: str  # ``c``: the order's id, or the cancel request's id on a cancel
    orig_client_id: str = ""  # ``C``: the order's own id on a cancel, else ""
    last_qty: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    commission_asset: str | None = None
    trade_id: int = -1
    maker: bool = False
    on_book: bool = False
    worked_on_book: bool = False  # the order has been on the book (``W`` is sent)


def execution_report(o: OrderView, x: Execution) -> dict:
    """The spot ``executionReport`` of order ``o`` for execution ``x``."""
    out: dict[str, Any] = {
        "e": "executionReport", "E": x.event_ms, "s": o.symbol, "c": x.client_id,
        "S": o.side, "o": o.type, "f": o.time_in_force, "q": fmt(o.orig_qty),
        "p": fmt(o.price), "P": fmt(Decimal(0)), "F": fmt(Decimal(0)), "g": -1,
        "C": x.orig_client_id, "x": x.exec_type, "X": o.status, "r": "NONE", "i": o.order_id,
        "l": fmt(x.last_qty), "z": fmt(o.executed_qty), "L": fmt(x.last_price),
        "n": fmt(x.commission) if x.commission_asset else "0", "N": x.commission_asset,
        "T": x.event_ms, "t": x.trade_id, "I": x.exec_id, "w": x.on_book, "m": x.maker,
        "M": x.exec_type == "TRADE", "O": o.time_ms, "Z": fmt(o.cum_quote),
        "Y": fmt(x.last_qty * x.last_price), "Q": fmt(o.orig_quote_qty), "V": STP_MODE}
    if x.worked_on_book:
        out["W"] = o.time_ms
    return out


def account_position(event_ms: int, balances: Mapping[str, tuple[Decimal, Decimal]]) -> dict:
    """``outboundAccountPosition``: the assets that changed, as ``{asset: (free, locked)}``."""
    return {"e": "outboundAccountPosition", "E": event_ms, "u": event_ms,
            "B": [{"a": a, "f": fmt(f), "l": fmt(lk)} for a, (f, lk) in sorted(balances.items())]}


def balance_update(event_ms: int, asset: str, delta: Decimal) -> dict:
    """``balanceUpdate``: a deposit (positive ``delta``) or withdrawal (negative)."""
    return {"e": "balanceUpdate", "E": event_ms, "a": asset, "d": fmt(delta), "T": event_ms}


def listen_key_expired(event_ms: int, listen_key: str) -> dict:
    return {"e": "listenKeyExpired", "E": event_ms, "listenKey": listen_key}


# -- WebSocket API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WsRequest:
    """A WebSocket API request: its id (echoed back as sent), method and params."""

    id: Any
    method: str
    params: dict[str, Any]


def parse_ws_request(req: object) -> WsRequest:
    """The request a decoded frame holds; a :class:`BinanceError` (-1102 / -1100) naming what is
    wrong otherwise (its ``id`` is lost then: the answer carries ``"id": null``)."""
    if not isinstance(req, dict):
        raise BinanceError(400, -1100, "Illegal request: expected a JSON object with id, method "
                                       "and params.")
    method, params = req.get("method"), req.get("params", {})
    if not isinstance(method, str) or not method:
        raise missing("method")
    if not isinstance(params, dict):
        raise BinanceError(400, -1100, "Illegal parameter 'params': expected an object.")
    return WsRequest(req.get("id"), method, params)


def ws_value(v: object) -> str:
    """A WebSocket API param as it is signed and read: strings as sent, booleans lower case."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def ws_payload(params: Mapping[str, object]) -> str:
    """What a signed WebSocket API request signs: every param but ``signature``, sorted by
    name, as ``name=value`` joined by ``&``."""
    return "&".join(f"{k}={ws_value(params[k])}" for k in sorted(params) if k != "signature")


def check_ws_signature(params: Mapping[str, object], secret: str) -> None:
    """-1022 unless ``params`` carry the HMAC-SHA256 signature of :func:`ws_payload`
    (Binance also accepts Ed25519 and RSA keys; the venue's accounts are HMAC only)."""
    sig = params.get("signature")
    if not isinstance(sig, str) or not sig:
        raise missing("signature")
    if not hmac.compare_digest(sign(secret, ws_payload(params)), sig.lower()):
        raise BinanceError(400, -1022, MSG_BAD_SIGNATURE)


def ws_params(params: Mapping[str, object]) -> dict[str, str]:
    """A request's params as the REST handlers read them (strings; booleans lower case)."""
    return {k: ws_value(v) for k, v in params.items()
            if k not in ("apiKey", "signature", "returnRateLimits") and v is not None}


def rate_limits(used: int, limit: int) -> list[dict]:
    return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": limit, "count": used}]


def ws_result(rid: Any, result: object, limits: list[dict] | None) -> dict:
    """A successful WebSocket API answer (``rateLimits`` unless the request asked not)."""
    out: dict[str, Any] = {"id": rid, "status": 200, "result": result}
    if limits is not None:
        out["rateLimits"] = limits
    return out


def ws_error(rid: Any, err: BinanceError, limits: list[dict] | None) -> dict:
    """A refused WebSocket API request: the HTTP-like status and Binance's code and text."""
    out: dict[str, Any] = {"id": rid, "status": err.status, "error": err.body()}
    if limits is not None:
        out["rateLimits"] = limits
    return out


def ws_event(subscription_id: int, event: dict) -> dict:
    """A user-data event as a WebSocket API subscription delivers it."""
    return {"subscriptionId": subscription_id, "event": event}


def unknown_listen_key() -> BinanceError:
    return BinanceError(400, -1125, MSG_NO_LISTEN_KEY)
