"""The venue's signed spot endpoints (``/api/v3``): order entry, queries and the account (the
USD-M ones under ``/fapi`` are in :mod:`tradelab.venue.signed_usdm`, served by the same routes).

Every request is checked the Binance way before it reaches the orders: the ``X-MBX-APIKEY``
header names an account (-2015 otherwise), the ``signature`` is the HMAC-SHA256 of the query
string plus the body exactly as received (-1022), and the ``timestamp`` lies within
``recvWindow`` of the server clock and at most 1 s ahead (-1021). The server clock for these
checks is the wall clock (a replay's exchange time may be years old, and clients sign with
their own clock). Each endpoint charges its Binance request weight through the shared limiter
(a 429 with ``Retry-After`` beyond it, or while a ``rate_limit`` fault is pending; a 418 ban
for a client that keeps going), and new orders count against the account's order limits. Order
actions (new order, cancel, cancel all) pass the venue's latency gate
(:mod:`tradelab.venue.latency`): they take effect, and are answered, on the venue clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tradelab.adapters.binance import futures as fwire
from tradelab.adapters.binance import trading as wire
from tradelab.adapters.binance.schema import REST_PREFIX
from tradelab.matching.types import A_CANCEL, A_PLACE
from tradelab.venue import signed_usdm
from tradelab.venue.accounts import Account
from tradelab.venue.core import Venue
from tradelab.venue.limits import RateLimiter
from tradelab.venue.rest import refused

log = logging.getLogger("tradelab.venue")
SPOT = REST_PREFIX["spot"]
WEIGHTS = {**wire.WEIGHT, **fwire.WEIGHT}

Handler = Callable[[Venue, Account, dict[str, str]], Any]


def wall_ms() -> int:
    return int(time.time() * 1000)


def _limit(params: dict[str, str], default: int, hi: int) -> int:
    raw = params.get("limit")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise wire.BinanceError(400, -1100, "Illegal characters found in parameter 'limit'.") \
            from None
    return max(1, min(value, hi))


def _symbol(params: dict[str, str]) -> str:
    sym = params.get("symbol")
    if not sym:
        raise wire.missing("symbol")
    return sym


def post_order(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    req = wire.parse_order(params)
    order = venue.trading.new_order(acc, req)
    assert order is not None
    return wire.new_order_response(order.view(), order.fill_views(), req.resp_type)


def post_order_test(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    venue.trading.new_order(acc, wire.parse_order(params), test=True)
    return {}


def delete_order(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    oid, cid = wire.order_ref(params)
    order = venue.trading.cancel(acc, _symbol(params), oid, cid, params.get("newClientOrderId"))
    return wire.cancel_response(order.view(), order.cancel_client_id)


def get_order(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    oid, cid = wire.order_ref(params)
    return wire.order_status(venue.trading.query(acc, _symbol(params), oid, cid).view())


def get_open_orders(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    return [wire.order_status(o.view())
            for o in venue.trading.open_orders(acc, params.get("symbol"))]


def delete_open_orders(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    return [wire.cancel_response(o.view(), o.cancel_client_id)
            for o in venue.trading.cancel_all(acc, _symbol(params))]


def get_all_orders(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    raw = params.get("orderId")
    try:
        from_id = int(raw) if raw else None
    except ValueError:
        raise wire.BinanceError(400, -1100, "Illegal characters found in parameter 'orderId'.") \
            from None
    orders = venue.trading.all_orders(acc, _symbol(params), from_id, _limit(params, 500, 1000))
    return [wire.order_status(o.view()) for o in orders]


def get_account(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    return wire.account(acc.balances(), acc.maker_fee, acc.taker_fee, acc.can_trade, acc.uid,
                        venue.now_ms)


def get_my_trades(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    oid = params.get("orderId")
    from_id = params.get("fromId")
    try:
        trades = venue.trading.my_trades(acc, _symbol(params), int(oid) if oid else None,
                                         int(from_id) if from_id else None,
                                         _limit(params, 500, 1000))
    except ValueError:
        raise wire.BinanceError(400, -1100, "Illegal characters found in parameter 'orderId' or "
                                            "'fromId'.") from None
    return [wire.my_trade(t) for t in trades]


ENDPOINTS: tuple[tuple[str, str, str, Handler], ...] = (
    ("POST", "order", "order", post_order),
    ("POST", "order/test", "order/test", post_order_test),
    ("DELETE", "order", "cancel", delete_order),
    ("GET", "order", "getOrder", get_order),
    ("GET", "openOrders", "openOrders", get_open_orders),
    ("DELETE", "openOrders", "cancelAll", delete_open_orders),
    ("GET", "allOrders", "allOrders", get_all_orders),
    ("GET", "account", "account", get_account),
    ("GET", "myTrades", "myTrades", get_my_trades),
)


GATED = {"order": A_PLACE, "cancel": A_CANCEL, "cancelAll": A_CANCEL}
"""Order actions, which take effect and are answered after the venue's latency
(:mod:`tradelab.venue.latency`); queries answer at once."""


def authenticate(venue: Venue, api_key: str | None, query: str, body: str,
                 server_ms: int) -> tuple[Account, dict[str, str]]:
    """The account a signed request speaks for and its parameters, or the Binance error."""
    if not api_key:
        raise wire.BinanceError(401, -2014, "API-key format invalid.")
    acc = venue.accounts.get(api_key)
    if acc is None:
        raise wire.BinanceError(401, -2015, wire.MSG_BAD_KEY)
    req = wire.parse_signed(query, body)
    wire.check_signature(req, acc.secret)
    wire.check_timestamp(req.params, server_ms)
    return acc, req.params


ORDER_FAULTS = "reject_orders, order_5xx and delay_ack"


def signed_routes(venue: Venue, limiter: RateLimiter,
                  clock_ms: Callable[[], int] = wall_ms) -> list[web.RouteDef]:
    """aiohttp routes of the signed spot endpoints, charged to ``limiter``.

    ``POST order`` also passes the account's order-count limits and the order faults: a
    ``reject_orders`` fault refuses the order (-2010), ``order_5xx`` places it and answers 500
    (-1001, the outcome unknown to the client), ``delay_ack`` places it and answers late. A
    change of state is in the journal (when the venue keeps one) before the answer goes out:
    trading calls ``venue.persist`` after each order placed or cancelled.
    """

    def endpoint(name: str, fn: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            query = request.raw_path.partition("?")[2]
            weight = WEIGHTS[name]
            if name == "openOrders" and "symbol=" not in query:
                weight = wire.WEIGHT["openOrdersAll"]
            refusal = refused(venue, limiter, weight)
            if refusal is not None:
                return refusal
            headers = {"X-MBX-USED-WEIGHT-1M": str(limiter.used)}
            body = await request.text() if request.can_read_body else ""
            faults = venue.faults
            try:
                acc, params = authenticate(venue, request.headers.get("X-MBX-APIKEY"), query,
                                           body, clock_ms())
                if name == "order":
                    venue.order_counts.check(acc.uid)
                    if faults.take("reject_orders"):
                        raise wire.rejected(wire.MSG_REJECTED)
                out = await venue.gate.call(GATED.get(name),
                                            lambda: fn(venue, acc, params))
                if name == "order":
                    order = venue.trading.orders.get(int(out["orderId"]))
                    headers.update(venue.order_counts.add(
                        acc.uid, int(out["orderId"]), order is not None and bool(order.fills)))
            except wire.BinanceError as exc:
                log.info("signed %s %s refused: %d", request.method, name, exc.code)
                return web.json_response(exc.body(), status=exc.status, headers=headers)
            if name == "order":
                if faults.take("order_5xx"):
                    err = wire.internal_error()
                    return web.json_response(err.body(), status=err.status, headers=headers)
                if faults.take("delay_ack"):
                    await asyncio.sleep(faults.delay_ack_s)
            return web.json_response(out, headers=headers)
        return handler

    routes = []
    for method, path, name, fn in ENDPOINTS:
        routes.append(web.route(method, f"{SPOT}/{path}", endpoint(name, fn)))
    for method, path, name, fn in signed_usdm.ENDPOINTS:
        routes.append(web.route(method, f"/fapi/{path}", endpoint(name, fn)))
    return routes
