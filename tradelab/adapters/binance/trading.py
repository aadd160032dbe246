"""Binance spot trading wire format: request signing, parameter parsing, error bodies and the
JSON of orders, fills, trades and the account, as ``/api/v3`` writes them.

The local venue keeps its order and balance state in its own types; everything a client sees
on the wire (names, codes, message texts ccxt maps by text) is decided here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
AHEAD_TOLERANCE_MS = 1000

ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
               "TAKE_PROFIT_LIMIT")
CONDITIONAL_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
"""Spot orders that wait for the last trade price to reach ``stopPrice``."""
LIMIT_PRICED = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
RESP_TYPES = ("ACK", "RESULT", "FULL")
WEIGHT = {"order": 1, "order/test": 1, "cancel": 1, "getOrder": 4, "openOrders": 6,
          "openOrdersAll": 80, "cancelAll": 1, "allOrders": 20, "account": 20, "myTrades": 20}

MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_WOULD_TAKE = "Order would immediately match and take."
MSG_DUPLICATE = "Duplicate order sent."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_BAD_KEY = "Invalid API-key, IP, or permissions for action."
MSG_BAD_SIGNATURE = "Signature for this request is not valid."
MSG_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_OUTSIDE_WINDOW = "Timestamp for this request is outside of the recvWindow."
MSG_BAD_SYMBOL = "Invalid symbol."
MSG_STOP_IMMEDIATE = "Stop price would trigger immediately."
MSG_INTERNAL = "Internal error; unable to process your request. Please try again."
MSG_REJECTED = "Order was rejected by the exchange."  # the venue's reject_orders fault


class BinanceError(Exception):
    """A request Binance would refuse (market data or trading): HTTP status, Binance code and
    its message text."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


def missing(name: str) -> BinanceError:
    return BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                    "or malformed.")


def filter_failure(reason: str) -> BinanceError:
    """-1013 naming the filter, as Binance words it (``Filter failure: LOT_SIZE``)."""
    return BinanceError(400, -1013, f"Filter failure: {reason}")


def rejected(msg: str) -> BinanceError:
    return BinanceError(400, -2010, msg)


def overloaded() -> BinanceError:
    """-1008: the exchange refused the request under load (the venue's latency model rejects
    an action this way: a negative entry latency)."""
    return BinanceError(503, -1008, "Server is currently overloaded with other requests. "
                                    "Please try again in a few minutes.")


def internal_error() -> BinanceError:
    """The 5xx Binance answers when the outcome of a request is unknown (it may have been
    executed): -1001 with HTTP 500."""
    return BinanceError(500, -1001, MSG_INTERNAL)


def interval_letter(seconds: int) -> str:
    """Binance's interval suffix of a limit header: 10 s -> ``10S``, a day -> ``1D``."""
    for unit, letter in ((86400, "D"), (3600, "H"), (60, "M")):
        if seconds % unit == 0:
            return f"{seconds // unit}{letter}"
    return f"{seconds}S"


def interval_name(seconds: int) -> tuple[str, int]:
    """``(interval, intervalNum)`` of exchangeInfo's ``rateLimits`` for a window in seconds."""
    for unit, name in ((86400, "DAY"), (3600, "HOUR"), (60, "MINUTE")):
        if seconds % unit == 0:
            return name, seconds // unit
    return "SECOND", seconds


def too_many_orders(limit: int, seconds: int) -> BinanceError:
    """-1015 with HTTP 429 when an account placed too many orders in a window (Binance sends
    no ``Retry-After`` with it)."""
    name, num = interval_name(seconds)
    return BinanceError(429, -1015, f"Too many new orders; current limit is {limit} orders per "
                                    f"{num} {name}.")


def too_many_requests(limit_per_min: int) -> BinanceError:
    return BinanceError(429, -1003, f"Too many requests; current limit of IP is {limit_per_min} "
                                    "request weight per 1 MINUTE.")


def banned(until_ms: int) -> BinanceError:
    """418: the IP kept sending after 429s and is banned until ``until_ms``."""
    return BinanceError(418, -1003, f"Way too many requests; IP banned until {until_ms}. Please "
                                    "use the websocket for live updates to avoid bans.")


# -- signing -------------------------------------------------------------------------------------


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` keyed with ``secret`` (Binance's ``signature``)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _without_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` (a query string or a form body, as received) without its ``signature=`` part,
    and that signature (None if absent)."""
    parts = raw.split("&") if raw else []
    keep, sig = [], None
    for part in parts:
        if part.startswith("signature="):
            sig = part[len("signature="):]
        else:
            keep.append(part)
    return "&".join(keep), sig


@dataclass(frozen=True)
class SignedRequest:
    """A request's parameters (the query wins over the body) and what was signed."""

    params: dict[str, str]
    payload: str
    signature: str | None


def parse_signed(query: str, body: str) -> SignedRequest:
    """Split a request as received into its parameters and the signed payload: the query string
    concatenated with the body, each without the ``signature`` parameter."""
    q, sig_q = _without_signature(query)
    b, sig_b = _without_signature(body)
    params = dict(parse_qsl(body, keep_blank_values=True))
    params.update(parse_qsl(query, keep_blank_values=True))
    params.pop("signature", None)
    return SignedRequest(params, q + b, sig_q if sig_q is not None else sig_b)


def check_signature(req: SignedRequest, secret: str) -> None:
    """-1022 unless the request carries the right signature for ``secret``."""
    if req.signature is None:
        raise missing("signature")
    good = sign(secret, req.payload)
    if not hmac.compare_digest(good, req.signature.lower()):
        raise BinanceError(400, -1022, MSG_BAD_SIGNATURE)


def check_timestamp(params: Mapping[str, str], server_ms: int) -> None:
    """Binance's timing rule: reject a timestamp more than 1 s ahead of the server or older
    than ``recvWindow`` (default 5000 ms, at most 60000; µs timestamps are accepted)."""
    raw = params.get("timestamp")
    if not raw:
        raise missing("timestamp")
    try:
        ts = int(raw)
        window = float(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except ValueError:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'timestamp' or "
                                       "'recvWindow'.") from None
    if ts > 10**14:  # microseconds
        ts //= 1000
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise BinanceError(400, -1131, "recvWindow must be less than 60000")
    if ts >= server_ms + AHEAD_TOLERANCE_MS:
        raise BinanceError(400, -1021, MSG_AHEAD)
    if server_ms - ts > window:
        raise BinanceError(400, -1021, MSG_OUTSIDE_WINDOW)


# -- order requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRequest:
    """A parsed ``POST /api/v3/order``."""

    symbol: str
    side: str  # BUY | SELL
    type: str  # LIMIT | LIMIT_MAKER | MARKET
    time_in_force: str  # GTC | IOC | FOK ("GTC" for LIMIT_MAKER and MARKET: unused)
    quantity: Decimal | None
    quote_qty: Decimal | None
    price: Decimal | None
    client_id: str | None
    resp_type: str
    stop_price: Decimal | None = None  # conditional types only


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                                       "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None
    if value == 0:
        raise BinanceError(400, -1013, f"Invalid {name}.")
    if not value.is_finite() or value < 0:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return value


def parse_order(params: Mapping[str, str]) -> OrderRequest:
    """The order a ``POST /api/v3/order`` asks for; -1102 / -1106 / -1116 / -1117 for bad ones."""
    for name in ("symbol", "side", "type"):
        if not params.get(name):
            raise missing(name)
    side, otype = params["side"].upper(), params["type"].upper()
    if side not in ("BUY", "SELL"):
        raise BinanceError(400, -1117, "Invalid side.")
    if otype not in ORDER_TYPES:
        raise BinanceError(400, -1116, "Invalid orderType.")
    if params.get("trailingDelta"):
        raise BinanceError(400, -1106, "Parameter 'trailingDelta' is not supported by this "
                                       "venue (trailing stops are not simulated).")
    qty, quote = _decimal(params, "quantity"), _decimal(params, "quoteOrderQty")
    price, stop = _decimal(params, "price"), _decimal(params, "stopPrice")
    if otype in CONDITIONAL_TYPES:
        if stop is None:
            raise missing("stopPrice")
    elif stop is not None:
        raise BinanceError(400, -1106, "Parameter 'stopPrice' sent when not required.")
    tif = params.get("timeInForce", "").upper()
    if otype in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        if not tif:
            raise missing("timeInForce")
        if tif not in TIME_IN_FORCE:
            raise BinanceError(400, -1115, "Invalid timeInForce.")
    elif tif:
        raise BinanceError(400, -1106, "Parameter 'timeInForce' sent when not required.")
    if otype in LIMIT_PRICED:
        if price is None:
            raise missing("price")
        if qty is None:
            raise missing("quantity")
        if quote is not None:
            raise BinanceError(400, -1106, "Parameter 'quoteOrderQty' sent when not required.")
    else:
        if price is not None:
            raise BinanceError(400, -1106, "Parameter 'price' sent when not required.")
        if otype != "MARKET":
            if quote is not None:
                raise BinanceError(400, -1106, "Parameter 'quoteOrderQty' sent when not "
                                               "required.")
            if qty is None:
                raise missing("quantity")
        if (qty is None) == (quote is None):
            raise BinanceError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, "
                                           "but both were empty/null!")
    default_resp = "FULL" if otype in ("LIMIT", "MARKET") else "ACK"  # Binance's defaults
    resp = params.get("newOrderRespType", default_resp).upper()
    if resp not in RESP_TYPES:
        raise BinanceError(400, -1177, "Invalid newOrderRespType.")
    cid = params.get("newClientOrderId") or None
    if cid is not None and len(cid) > 36:
        raise BinanceError(400, -1100, "Illegal characters found in parameter "
                                       "'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]"
                                       "{1,36}$'.")
    return OrderRequest(params["symbol"].upper(), side, otype, tif or "GTC", qty, quote, price,
                        cid, resp, stop)


def order_ref(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """``orderId`` / ``origClientOrderId`` of a query or cancel (-1102 if neither)."""
    oid, cid = params.get("orderId"), params.get("origClientOrderId")
    if not oid and not cid:
        raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                       "both were empty/null!")
    try:
        return (int(oid) if oid else None), cid or None
    except ValueError:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'orderId'.") from None


# -- responses -----------------------------------------------------------------------------------


def fmt(x: Decimal, places: int = 8) -> str:
    """A decimal as Binance writes amounts: fixed point with ``places`` decimals."""
    return f"{x:.{places}f}"


@dataclass(frozen=True)
class FillView:
    """One execution of an order as the order response lists it."""

    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int


@dataclass(frozen=True)
class OrderView:
    """What the wire shows of an order (the venue fills it from its own record)."""

    symbol: str
    order_id: int
    client_id: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    orig_quote_qty: Decimal
    status: str
    time_in_force: str
    type: str
    side: str
    time_ms: int
    update_ms: int
    working: bool
    stop_price: Decimal = Decimal(0)
    working_ms: int | None = None  # when a conditional order triggered (default: time_ms)


def _working_time(o: OrderView) -> int:
    """When the order started working: -1 only for a conditional order not set off yet (a
    MARKET or LIMIT order works from its transaction time, filled or not)."""
    if o.type in CONDITIONAL_TYPES and o.working_ms is None:
        return -1
    return o.time_ms if o.working_ms is None else o.working_ms


def order_ack(o: OrderView) -> dict:
    return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_id, "transactTime": o.time_ms}


def order_result(o: OrderView) -> dict:
    return {**order_ack(o), "price": fmt(o.price), "origQty": fmt(o.orig_qty),
            "executedQty": fmt(o.executed_qty), "origQuoteOrderQty": fmt(o.orig_quote_qty),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status,
            "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
            "workingTime": _working_time(o),
            "selfTradePreventionMode": "EXPIRE_MAKER",
            **({"stopPrice": fmt(o.stop_price)} if o.type in CONDITIONAL_TYPES else {})}


def order_full(o: OrderView, fills: list[FillView]) -> dict:
    return {**order_result(o), "fills": [
        {"price": fmt(f.price), "qty": fmt(f.qty), "commission": fmt(f.commission),
         "commissionAsset": f.commission_asset, "tradeId": f.trade_id} for f in fills]}


def new_order_response(o: OrderView, fills: list[FillView], resp_type: str) -> dict:
    """The ``POST /api/v3/order`` answer in the asked response type."""
    if resp_type == "ACK":
        return order_ack(o)
    if resp_type == "RESULT":
        return order_result(o)
    return order_full(o, fills)


def order_status(o: OrderView) -> dict:
    """``GET /api/v3/order`` (and each ``openOrders`` entry)."""
    return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_id, "price": fmt(o.price), "origQty": fmt(o.orig_qty),
            "executedQty": fmt(o.executed_qty), "cummulativeQuoteQty": fmt(o.cum_quote),
            "status": o.status, "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
            "stopPrice": fmt(o.stop_price), "icebergQty": fmt(Decimal(0)), "time": o.time_ms,
            "updateTime": o.update_ms, "isWorking": o.working,
            "workingTime": _working_time(o),
            "origQuoteOrderQty": fmt(o.orig_quote_qty), "selfTradePreventionMode": "EXPIRE_MAKER"}


def cancel_response(o: OrderView, cancel_client_id: str) -> dict:
    """``DELETE /api/v3/order``: the order as cancelled, with its original client id."""
    out = order_result(o)
    del out["transactTime"], out["workingTime"]
    return {**out, "origClientOrderId": o.client_id, "clientOrderId": cancel_client_id,
            "transactTime": o.update_ms}


@dataclass(frozen=True)
class TradeView:
    """One of the account's trades (``myTrades``)."""

    symbol: str
    trade_id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool


def my_trade(t: TradeView) -> dict:
    return {"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id, "orderListId": -1,
            "price": fmt(t.price), "qty": fmt(t.qty), "quoteQty": fmt(t.quote_qty),
            "commission": fmt(t.commission), "commissionAsset": t.commission_asset,
            "time": t.time_ms, "isBuyer": t.is_buyer, "isMaker": t.is_maker,
            "isBestMatch": True}


def account(balances: Mapping[str, tuple[Decimal, Decimal]], maker: Decimal, taker: Decimal,
            can_trade: bool, uid: int, now_ms: int) -> dict:
    """``GET /api/v3/account``: fee rates (Binance's integer bps fields and the rates) and
    ``balances`` as ``{asset: (free, locked)}``."""
    return {"makerCommission": int(maker * 10000), "takerCommission": int(taker * 10000),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": fmt(maker), "taker": fmt(taker),
                                "buyer": fmt(Decimal(0)), "seller": fmt(Decimal(0))},
            "canTrade": can_trade, "canWithdraw": False, "canDeposit": False, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ms,
            "accountType": "SPOT", "uid": uid,
            "balances": [{"asset": a, "free": fmt(f), "locked": fmt(lk)}
                         for a, (f, lk) in sorted(balances.items())],
            "permissions": ["SPOT"] if can_trade else []}
