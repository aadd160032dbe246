"""The venue's REST API in Binance's shapes: spot under ``/api/v3``, USD-M under ``/fapi/v1``.

Market data: ping, time, exchangeInfo, depth, klines, aggTrades, premiumIndex, fundingRate and
openInterest (signed spot order entry is in :mod:`tradelab.venue.signed`). Errors use
Binance's body ``{"code": -1121, "msg": "Invalid symbol."}``; a request weight is counted per
minute and a 429 with code -1003 answers requests over the limit (or while a ``rate_limit``
fault is active), a 418 an IP that ignored its 429s (:mod:`tradelab.venue.limits`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from aiohttp import web

from tradelab.adapters.binance.encode import agg_trade_row
from tradelab.adapters.binance.schema import REST_PREFIX
from tradelab.adapters.binance.trading import ORDER_TYPES, BinanceError
from tradelab.venue.core import Venue
from tradelab.venue.history import page
from tradelab.venue.limits import RateLimiter

SPOT, USDM = REST_PREFIX["spot"], REST_PREFIX["usdm"]
WEIGHT = {"exchangeInfo": 20, "depth": 10, "klines": 2, "aggTrades": 2, "fundingRate": 1,
          "premiumIndex": 1, "openInterest": 1, "time": 1, "ping": 1, "trades": 10}


def _err(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def refused(venue: Venue, limiter: RateLimiter, weight: int) -> web.Response | None:
    """The 429 / 418 answer for a request over the limits (a pending ``rate_limit`` fault
    first), or None to serve it; the used-weight header goes on ``weight_headers``."""
    if venue.faults.rate_limit > 0:
        venue.faults.rate_limit -= 1
        venue.faults.fired["rate_limit"] += 1
        body = BinanceError(429, -1003, "Too many requests.").body()
        return web.json_response(body, status=429, headers={"Retry-After": "1"})
    headers, err = limiter.admit(weight)
    if err is None:
        return None
    return web.json_response(err.body(), status=err.status, headers=headers)


def routes(venue: Venue, limiter: RateLimiter) -> list[web.RouteDef]:
    """The aiohttp routes of both markets."""

    def endpoint(market: str, name: str, fn):
        async def handler(request: web.Request) -> web.Response:
            refusal = refused(venue, limiter, WEIGHT.get(name, 1))
            if refusal is not None:
                return refusal
            headers = {"X-MBX-USED-WEIGHT-1M": str(limiter.used)}
            try:
                body = fn(market, request.query)
            except BinanceError as exc:
                return _err(exc.status, exc.code, exc.msg)
            return web.json_response(body, headers=headers)
        return handler

    Route = tuple[str, Callable[[str, Any], Any]]
    routes: tuple[Route, ...] = (
        ("ping", lambda m, q: {}),
        ("time", lambda m, q: {"serverTime": venue.now_ms}),
        ("exchangeInfo", lambda m, q: exchange_info(venue, m)),
        ("depth", lambda m, q: depth(venue, m, q)),
        ("klines", lambda m, q: klines(venue, m, q)),
        ("aggTrades", lambda m, q: agg_trades(venue, m, q)),
    )
    out = []
    for prefix, market in ((SPOT, "spot"), (USDM, "usdm")):
        for name, fn in routes:
            out.append(web.get(f"{prefix}/{name}", endpoint(market, name, fn)))
    usdm_only: tuple[tuple[str, Callable[[Venue, Any], Any]], ...] = (
        ("premiumIndex", premium_index), ("fundingRate", funding_rate),
        ("openInterest", open_interest))
    for name, handler in usdm_only:
        out.append(web.get(f"{USDM}/{name}",
                           endpoint("usdm", name, lambda m, q, f=handler: f(venue, q))))
    return out


# -- helpers -----------------------------------------------------------------------------------


def _key(venue: Venue, market: str, query) -> tuple[str, str]:
    sym = query.get("symbol")
    if not sym:
        raise BinanceError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null,"
                                       " or malformed.")
    key = (market, sym.upper())
    if key not in venue.instruments:
        raise BinanceError(400, -1121, "Invalid symbol.")
    return key


@overload
def _int(query, name: str, default: int, lo: int | None = None, hi: int | None = None) -> int: ...
@overload
def _int(query, name: str, default: None = None, lo: int | None = None,
         hi: int | None = None) -> int | None: ...
def _int(query, name: str, default: int | None = None, lo: int | None = None,
         hi: int | None = None) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                                       "range is '^[0-9]{1,20}$'.") from None
    if lo is not None and value < lo or hi is not None and value > hi:
        raise BinanceError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    return value


def _fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


# -- endpoints ---------------------------------------------------------------------------------


def exchange_info(venue: Venue, market: str) -> dict:
    symbols = []
    for (m, _sym), inst in sorted(venue.instruments.items()):
        if m != market:
            continue
        filters = inst.filters.exchange_info()
        entry = {"symbol": inst.symbol, "status": "TRADING", "baseAsset": inst.base,
                 "quoteAsset": inst.quote, "baseAssetPrecision": 8, "quotePrecision": 8,
                 "quoteAssetPrecision": 8, "orderTypes": list(ORDER_TYPES),
                 "filters": filters}
        if market == "spot":
            entry.update({"icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
                          "isMarginTradingAllowed": False, "permissions": ["SPOT"],
                          "permissionSets": [["SPOT"]],
                          "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                          "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"]})
        else:
            entry.update({"pair": inst.symbol, "contractType": "PERPETUAL",
                          "deliveryDate": 4133404800000, "onboardDate": 1569398400000,
                          "contractStatus": "TRADING", "marginAsset": inst.quote,
                          "pricePrecision": inst.price_decimals(),
                          "quantityPrecision": inst.qty_decimals(), "underlyingType": "COIN",
                          "settlePlan": 0, "triggerProtect": "0.0500",
                          "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                          "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET"]})
        symbols.append(entry)
    body = {"timezone": "UTC", "serverTime": venue.now_ms,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": 6000}]
            + (venue.order_counts.rate_limits() if market == "spot" else []),
            "exchangeFilters": [], "symbols": symbols}
    if market == "usdm":
        body["assets"] = [{"asset": "USDT", "marginAvailable": True}]
        body["futuresType"] = "U_MARGINED"
    return body


def depth(venue: Venue, market: str, query) -> dict:
    key = _key(venue, market, query)
    limit = _int(query, "limit", 100, 1, 5000)
    return venue.depth_snapshot(key, limit)


def klines(venue: Venue, market: str, query) -> list:
    key = _key(venue, market, query)
    interval = query.get("interval")
    if not interval:
        raise BinanceError(400, -1102, "Mandatory parameter 'interval' was not sent, was "
                                       "empty/null, or malformed.")
    limit = _int(query, "limit", 500, 1, 1000 if market == "spot" else 1500)
    start, end = _int(query, "startTime"), _int(query, "endTime")
    inst = venue.instruments[key]
    try:
        c = venue.history.candles(*key, interval)
    except ValueError:
        raise BinanceError(400, -1120, "Invalid interval.") from None
    if c is None:
        return []
    from tradelab.core.timeutil import interval_ns

    step_ms = interval_ns(interval) // 1_000_000
    sl = page(c.t, start, end, limit)
    pd_, qd = inst.price_decimals(), inst.qty_decimals()
    rows = []
    for i in range(sl.start, sl.stop):
        t = int(c.t[i])
        vol = float(c.v[i])
        rows.append([t, _fmt(c.o[i], pd_), _fmt(c.h[i], pd_), _fmt(c.lo[i], pd_),
                     _fmt(c.c[i], pd_), _fmt(vol, qd), t + step_ms - 1,
                     _fmt(vol * float(c.c[i]), 8), int(c.n[i]) if c.n is not None else 0,
                     _fmt(vol / 2, qd), _fmt(vol * float(c.c[i]) / 2, 8), "0"])
    return rows


def agg_trades(venue: Venue, market: str, query) -> list:
    key = _key(venue, market, query)
    limit = _int(query, "limit", 500, 1, 1000)
    trades = venue.history.get(*key).trades
    from_id = _int(query, "fromId")
    start, end = _int(query, "startTime"), _int(query, "endTime")
    if start is not None and end is not None and end - start > 3_600_000:
        raise BinanceError(400, -1127, "More than 1 hours between startTime and endTime.")
    import numpy as np

    if from_id is not None:
        lo = int(np.searchsorted(np.asarray(trades.ids, dtype=np.int64), from_id))
        sl = slice(lo, min(lo + limit, len(trades.ids)))
    else:
        sl = page(np.asarray(trades.t, dtype=np.int64), start, end, limit)
    out = []
    for i in range(sl.start, sl.stop):
        out.append(agg_trade_row(market == "spot", trades.ids[i], trades.p[i], trades.q[i],
                                 trades.ids[i], trades.ids[i], trades.t[i], trades.m[i]))
    return out


def premium_index(venue: Venue, query) -> dict | list:
    keys = [_key(venue, "usdm", query)] if query.get("symbol") else [
        k for k in venue.instruments if k[0] == "usdm"]
    out = []
    for key in keys:
        mark = venue.mark_price(key) or 0.0
        out.append({"symbol": key[1], "markPrice": f"{mark:.8f}",
                    "indexPrice": f"{mark * (1 - 2e-5):.8f}",
                    "estimatedSettlePrice": f"{mark:.8f}",
                    "lastFundingRate": f"{venue.funding_rate(key, venue.now_ms):.8f}",
                    "interestRate": "0.00010000",
                    "nextFundingTime": venue.next_funding_ms(venue.now_ms),
                    "time": venue.now_ms})
    return out[0] if query.get("symbol") else out


def funding_rate(venue: Venue, query) -> list:
    key = _key(venue, "usdm", query)
    limit = _int(query, "limit", 100, 1, 1000)
    start, end = _int(query, "startTime"), _int(query, "endTime")
    hist = venue.history.get(*key)
    sl = page(hist.funding_t, start, end, limit)
    mark = venue.history.candles(*key, "8h", kind="mark")
    out = []
    for i in range(sl.start, sl.stop):
        t = int(hist.funding_t[i])
        row = {"symbol": key[1], "fundingTime": t, "fundingRate": f"{hist.funding_r[i]:.8f}"}
        if mark is not None and len(mark):
            j = int(mark.t.searchsorted(t, side="right")) - 1
            row["markPrice"] = f"{mark.o[max(j, 0)]:.8f}"
        else:
            row["markPrice"] = ""
        out.append(row)
    return out


def open_interest(venue: Venue, query) -> dict:
    key = _key(venue, "usdm", query)
    return {"openInterest": f"{venue.open_interest(key):.3f}", "symbol": key[1],
            "time": venue.now_ms}
