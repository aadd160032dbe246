"""The venue's signed USD-M futures endpoints (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``).

Same security as spot (:func:`tradelab.venue.signed.authenticate`); the orders, positions and
margin live in :class:`tradelab.venue.futures.Futures`, the JSON in the adapter
(:mod:`tradelab.adapters.binance.futures`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradelab.adapters.binance import futures as fwire
from tradelab.adapters.binance import trading as wire
from tradelab.venue.accounts import Account
from tradelab.venue.core import Venue

Handler = Callable[[Venue, Account, dict[str, str]], Any]


def _int(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    try:
        return int(raw) if raw else None
    except ValueError:
        raise wire.BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.") \
            from None


def _limit(params: dict[str, str], default: int, hi: int) -> int:
    value = _int(params, "limit")
    return max(1, min(value if value is not None else default, hi))


def _symbol(params: dict[str, str]) -> str:
    sym = params.get("symbol")
    if not sym:
        raise wire.missing("symbol")
    return sym


def post_order(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    req = fwire.parse_order(params)
    order, ack = venue.futures.new_order(acc, req)
    return fwire.order(ack if req.resp_type == "ACK" else order.view(), with_time=False)


def delete_order(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    oid, cid = wire.order_ref(params)
    return fwire.order(venue.futures.cancel(acc, _symbol(params), oid, cid).view(),
                       with_time=False)


def get_order(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    oid, cid = wire.order_ref(params)
    return fwire.order(venue.futures.query(acc, _symbol(params), oid, cid).view())


def get_open_orders(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    return [fwire.order(o.view()) for o in venue.futures.open_orders(acc, params.get("symbol"))]


def delete_all_open_orders(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    venue.futures.cancel_all(acc, _symbol(params))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def get_all_orders(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    orders = venue.futures.all_orders(acc, _symbol(params), _int(params, "orderId"),
                                      _limit(params, 500, 1000))
    return [fwire.order(o.view()) for o in orders]


def get_user_trades(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    trades = venue.futures.user_trades(acc, _symbol(params), _int(params, "orderId"),
                                       _int(params, "fromId"), _limit(params, 500, 1000))
    return [fwire.user_trade(t) for t in trades]


def _account(version: int) -> Handler:
    def handler(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
        return fwire.account(venue.futures.account_view(acc), version)
    return handler


def get_balance(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    return fwire.balance(venue.futures.account_view(acc), acc.uid)


def _position_risk(version: int) -> Handler:
    def handler(venue: Venue, acc: Account, params: dict[str, str]) -> list:
        views = venue.futures.positions(acc, params.get("symbol"), active_only=version == 3)
        return [fwire.position_risk(v, version) for v in views]
    return handler


def post_leverage(venue: Venue, acc: Account, params: dict[str, str]) -> dict:
    symbol = _symbol(params).upper()
    lev = venue.futures.set_leverage(acc, symbol, fwire.parse_leverage(params))
    return fwire.leverage_response(symbol, lev)


def get_leverage_bracket(venue: Venue, acc: Account, params: dict[str, str]) -> list | dict:
    sym = params.get("symbol")
    symbols = ([venue.futures.positions(acc, sym)[0].symbol] if sym else
               sorted(s for m, s in venue.instruments if m == "usdm"))
    out = fwire.leverage_brackets(symbols)
    return out[0] if sym else out


def get_income(venue: Venue, acc: Account, params: dict[str, str]) -> list:
    rows = venue.futures.incomes(acc, params.get("symbol"), params.get("incomeType") or None,
                                 _int(params, "startTime"), _int(params, "endTime"),
                                 _limit(params, 100, 1000))
    return [fwire.income(i) for i in rows]


ENDPOINTS: tuple[tuple[str, str, str, Handler], ...] = (
    ("POST", "v1/order", "usdm:order", post_order),
    ("DELETE", "v1/order", "usdm:cancel", delete_order),
    ("GET", "v1/order", "usdm:getOrder", get_order),
    ("GET", "v1/openOrders", "usdm:openOrders", get_open_orders),
    ("DELETE", "v1/allOpenOrders", "usdm:cancelAll", delete_all_open_orders),
    ("GET", "v1/allOrders", "usdm:allOrders", get_all_orders),
    ("GET", "v1/userTrades", "usdm:userTrades", get_user_trades),
    ("GET", "v2/account", "usdm:account", _account(2)),
    ("GET", "v3/account", "usdm:account", _account(3)),
    ("GET", "v2/balance", "usdm:balance", get_balance),
    ("GET", "v2/positionRisk", "usdm:positionRisk", _position_risk(2)),
    ("GET", "v3/positionRisk", "usdm:positionRisk", _position_risk(3)),
    ("POST", "v1/leverage", "usdm:leverage", post_leverage),
    ("GET", "v1/leverageBracket", "usdm:leverageBracket", get_leverage_bracket),
    ("GET", "v1/income", "usdm:income", get_income),
)
"""(method, path under ``/fapi/``, weight name, handler)."""
