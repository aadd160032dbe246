"""Real clients on the venue's user data: ccxt.pro (sandbox mode, 127.0.0.1) watching orders
and balances through the WebSocket API, a raw websocket client speaking the WebSocket API with
hand-signed requests, and the listenKey REST endpoints with their ``/ws/<listenKey>`` streams.

The book is hand-made (bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1, 100.03 x 4; maker fee
0.1 %, taker 0.2 %), so every fill, fee and balance below is worked out by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import ccxt
import ccxt.pro
import pytest

from tests.venue_helpers import book_source
from tradelab.venue.core import Venue
from tradelab.venue.server import RunningVenue, start_venue
from tradelab.venue.sources import VenueMessage

pytestmark = pytest.mark.slow

KEY = ("spot", "BTCUSDT")
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNTS = [{"api_key": "key-a", "secret": "secret-a", "maker_fee": "0.001", "taker_fee": "0.002",
             "balances": {"USDT": "10000", "BTC": "1"}},
            {"api_key": "key-b", "secret": "secret-b", "balances": {"USDT": "500"}}]
MARKET_SELL_2_2_AT_100 = {"e": "trade", "E": 1_000, "s": "BTCUSDT", "t": 1, "p": "100.00",
                          "q": "2.20000", "T": 1_000, "m": True}


def pro_client(rv: RunningVenue, key: str, secret: str) -> ccxt.pro.binance:
    """ccxt.pro in sandbox mode with its testnet addresses moved to the local venue: the REST
    ones as the sync client's (tests/test_venue_ccxt_trading.py), and the WebSocket API, where
    ccxt.pro subscribes to the user-data stream for watch_orders and watch_balance."""
    ex = ccxt.pro.binance({"apiKey": key, "secret": secret, "enableRateLimit": False,
                           "options": {"fetchCurrencies": False, "fetchMargins": False,
                                       "fetchMarkets": {"types": ["spot"]}}})
    ex.set_sandbox_mode(True)
    for name, url in list(ex.urls["api"].items()):
        if isinstance(url, str) and "testnet.binance.vision/api" in url:
            ex.urls["api"][name] = rv.rest_url + url.split("testnet.binance.vision", 1)[1]
    assert ex.urls["api"]["ws"]["ws-api"]["spot"] == \
        "wss://ws-api.testnet.binance.vision/ws-api/v3"  # what sandbox mode would dial
    ex.urls["api"]["ws"]["ws-api"]["spot"] = f"ws://{rv.host}:{rv.port}/ws-api/v3"
    ex.urls["api"]["ws"]["spot"] = f"ws://{rv.host}:{rv.port}/spot/ws"
    return ex


async def until(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


async def watch_until(watch: Callable[[], Awaitable[Any]], cond: Callable[[], bool],
                      timeout_s: float = 10.0) -> None:
    """Keep a ccxt.pro ``watch_*`` call pending until ``cond`` holds on what the client has
    received (its order / balance cache). A watch resolves on the next message only, so the
    cache is checked between calls and each call is given up after a while: messages that
    arrived while no call was pending are not waited for again."""
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the client never saw it")
        try:
            await asyncio.wait_for(asyncio.shield(watch()), 0.5)
        except TimeoutError:
            continue


def run_with_venue(body: Callable[[Venue, RunningVenue], Awaitable[None]]) -> None:
    async def main() -> None:
        venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=ACCOUNTS)
        rv = await start_venue(venue, tls_port=None)
        try:
            await body(venue, rv)
        finally:
            await rv.stop()

    asyncio.run(main())


def test_ccxt_pro_watch_orders_and_watch_balance():
    async def body(venue: Venue, rv: RunningVenue) -> None:
        ex = pro_client(rv, "key-a", "secret-a")
        try:
            await ex.load_markets()
            first = asyncio.create_task(ex.watch_orders("BTC/USDT"))
            await until(lambda: venue.user_events.subscribers(1) == 1)

            # a resting buy placed over REST: watch_orders sees it open
            rest = await ex.create_order("BTC/USDT", "limit", "buy", 0.5, 100.00)
            orders = await asyncio.wait_for(first, 10)
            assert [(o["id"], o["status"], o["amount"], o["filled"], o["price"])
                    for o in orders] == [(rest["id"], "open", 0.5, 0.0, 100.0)]

            def order(oid: str) -> dict:
                return next((o for o in ex.orders or [] if o["id"] == oid), {})

            def balance() -> dict:
                return ex.balance.get("spot") or {}

            # a market buy of 1.5 over the WebSocket API: 1 @ 100.02 and 0.5 @ 100.03,
            # taker fee 0.2 % in BTC
            mkt = await ex.create_order_ws("BTC/USDT", "market", "buy", 1.5)
            assert mkt["status"] == "closed" and mkt["filled"] == 1.5
            await watch_until(lambda: ex.watch_orders("BTC/USDT"),
                              lambda: order(mkt["id"]).get("status") == "closed")
            o = order(mkt["id"])
            assert (o["filled"], o["amount"], o["type"], o["side"]) == (1.5, 1.5, "market", "buy")
            assert o["cost"] == pytest.approx(150.035, abs=1e-9)
            assert o["average"] == pytest.approx(150.035 / 1.5, abs=1e-9)
            assert (o["fee"]["currency"], o["fee"]["cost"]) == ("BTC", pytest.approx(0.003))
            await watch_until(ex.watch_balance,
                              lambda: balance().get("BTC", {}).get("free") == 2.497)
            bal = balance()
            # BTC: 1 + 1.5 - 0.003; USDT: 10000 - 150.035 free, 50 locked by the resting buy
            assert bal["USDT"]["free"] == pytest.approx(9799.965, abs=1e-9)
            assert bal["USDT"]["used"] == 50.0
            assert bal["USDT"]["total"] == pytest.approx(9849.965, abs=1e-9)

            # the market sells 2.2 at 100.00: 2.0 queue ahead, 0.2 fills the resting buy
            await venue.publish(VenueMessage(0, "spot", "BTCUSDT", "trade",
                                             MARKET_SELL_2_2_AT_100))
            await watch_until(lambda: ex.watch_orders("BTC/USDT"),
                              lambda: order(rest["id"]).get("filled") == 0.2)
            o = order(rest["id"])
            assert o["status"] == "open" and o["cost"] == pytest.approx(20.0)
            assert (o["fee"]["currency"], o["fee"]["cost"]) == ("BTC", pytest.approx(0.0002))

            # cancel over the WebSocket API: the 30 USDT still locked come back
            cancelled = await ex.cancel_order_ws(rest["id"], "BTC/USDT")
            assert cancelled["status"] == "canceled" and cancelled["filled"] == 0.2
            await watch_until(lambda: ex.watch_orders("BTC/USDT"),
                              lambda: order(rest["id"]).get("status") == "canceled")
            assert order(rest["id"])["filled"] == 0.2
            await watch_until(ex.watch_balance, lambda: balance()["USDT"]["used"] == 0.0)
            bal = balance()
            assert bal["USDT"]["free"] == pytest.approx(9829.965, abs=1e-9)
            assert bal["BTC"]["free"] == pytest.approx(2.6968, abs=1e-9)  # 2.497 + 0.2 - 0.0002
            fetched = await ex.fetch_order_ws(rest["id"], "BTC/USDT")
            assert (fetched["status"], fetched["filled"]) == ("canceled", 0.2)
        finally:
            await ex.close()

        # a wrong secret: the subscription is refused with -1022, as ccxt's own class
        wrong = pro_client(rv, "key-a", "not-the-secret")
        try:
            await wrong.load_markets()
            with pytest.raises((ccxt.AuthenticationError, KeyError)) as err:
                await asyncio.wait_for(wrong.watch_orders("BTC/USDT"), 10)
            # ccxt 4.5.90 raises AuthenticationError for the -1022 answer, then its clean-up
            # deletes client.subscriptions['spot'] a second time (handle_ws_error already did)
            # and a KeyError replaces it; the AuthenticationError is its context
            auth = err.value if isinstance(err.value, ccxt.AuthenticationError) \
                else err.value.__context__
            assert isinstance(auth, ccxt.AuthenticationError) and "-1022" in str(auth)
            assert venue.user_events.subscribers() == 0
        finally:
            await wrong.close()

    run_with_venue(body)


def signed_params(params: dict[str, Any], key: str, secret: str, ts: int | None = None) -> dict:
    """Params signed as Binance's WebSocket API documents it, computed here on its own:
    sorted by name, ``k=v`` joined by ``&``, HMAC-SHA256 hex."""
    out = {**params, "apiKey": key, "timestamp": ts or int(time.time() * 1000)}
    payload = "&".join(f"{k}={out[k]}" for k in sorted(out))
    out["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return out


class Frames:
    """A raw websocket client's incoming frames, read in the background."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.items: list[dict] = []
        self.closed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.items.append(json.loads(msg.data))
        self.closed.set()

    async def reply(self, rid: Any) -> dict:
        await until(lambda: any(f.get("id") == rid and "status" in f for f in self.items))
        return next(f for f in self.items if f.get("id") == rid and "status" in f)

    def events(self) -> list[dict]:
        return [f for f in self.items if "subscriptionId" in f]


def test_ws_api_orders_and_subscription_with_hand_signed_requests():
    async def body(venue: Venue, rv: RunningVenue) -> None:
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(f"{rv.rest_url}/ws-api/v3") as ws:
            frames = Frames(ws)

            async def call(rid: Any, method: str, params: dict | None = None) -> dict:
                await ws.send_str(json.dumps({"id": rid, "method": method,
                                              **({"params": params} if params is not None
                                                 else {})}))
                return await frames.reply(rid)

            sub = await call("s1", "userDataStream.subscribe.signature",
                             signed_params({}, "key-a", "secret-a"))
            assert (sub["status"], sub["result"]) == (200, {"subscriptionId": 0})
            assert sub["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"

            place = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "0.5", "price": "99.99", "newClientOrderId": "ws-1"}
            r = await call(7, "order.place", signed_params(place, "key-a", "secret-a"))
            assert r["status"] == 200 and r["id"] == 7
            res = r["result"]
            assert (res["status"], res["clientOrderId"], res["origQty"], res["fills"]) == (
                "NEW", "ws-1", "0.50000000", [])
            oid = res["orderId"]
            await until(lambda: len(frames.events()) >= 2)
            new, pos = [f["event"] for f in frames.events()[:2]]
            assert {f["subscriptionId"] for f in frames.events()} == {0}
            assert (new["e"], new["x"], new["i"], new["c"]) == ("executionReport", "NEW", oid,
                                                                "ws-1")
            assert pos == {"e": "outboundAccountPosition", "E": pos["E"], "u": pos["E"],
                           "B": [{"a": "USDT", "f": "9950.00500000", "l": "49.99500000"}]}

            status = await call(8, "order.status", signed_params(
                {"symbol": "BTCUSDT", "orderId": oid}, "key-a", "secret-a"))
            assert (status["result"]["status"], status["result"]["price"]) == (
                "NEW", "99.99000000")
            cancel = await call(9, "order.cancel", signed_params(
                {"symbol": "BTCUSDT", "origClientOrderId": "ws-1", "newClientOrderId": "kill-1"},
                "key-a", "secret-a"))
            assert cancel["result"]["status"] == "CANCELED"
            assert (cancel["result"]["origClientOrderId"], cancel["result"]["clientOrderId"]) \
                == ("ws-1", "kill-1")
            await until(lambda: len(frames.events()) >= 4)
            ev = frames.events()[2]["event"]
            assert (ev["x"], ev["c"], ev["C"]) == ("CANCELED", "kill-1", "ws-1")

            # refusals, the Binance way, each as a WebSocket API error
            bad = signed_params(place, "key-a", "secret-a")
            bad["price"] = "99.98"  # changed after signing
            r = await call(10, "order.place", bad)
            assert (r["status"], r["error"]) == (400, {
                "code": -1022, "msg": "Signature for this request is not valid."})
            r = await call(11, "order.place", signed_params(place, "key-a", "secret-a",
                                                            ts=int(time.time() * 1000) - 6000))
            assert r["error"]["code"] == -1021
            r = await call(12, "order.place", signed_params(place, "no-such-key", "x"))
            assert (r["status"], r["error"]["code"]) == (401, -2015)
            r = await call(13, "order.status", {"symbol": "BTCUSDT", "orderId": oid})
            assert r["error"]["code"] == -1102 and "'apiKey'" in r["error"]["msg"]
            r = await call(14, "order.status", signed_params({"symbol": "BTCUSDT"},
                                                             "key-a", "secret-a"))
            assert r["error"]["code"] == -1102
            r = await call(15, "session.logon", {})
            assert r["error"]["code"] == -1020
            r = await call(16, "order.status", signed_params(
                {"symbol": "BTCUSDT", "orderId": 999, "returnRateLimits": "false"},
                "key-a", "secret-a"))
            assert r["error"]["code"] == -2013 and "rateLimits" not in r
            await ws.send_str("{not json")
            await until(lambda: any(f.get("id") is None and "error" in f for f in frames.items))

            # unsubscribe: later orders answer, but no event follows any more
            r = await call(17, "userDataStream.unsubscribe", {"subscriptionId": 0})
            assert (r["status"], r["result"]) == (200, {})
            n_events = len(frames.events())
            await call(18, "order.place", signed_params({**place, "newClientOrderId": "ws-2"},
                                                        "key-a", "secret-a"))
            await call(19, "order.status", signed_params(
                {"symbol": "BTCUSDT", "origClientOrderId": "ws-2"}, "key-a", "secret-a"))
            assert len(frames.events()) == n_events
            r = await call(20, "userDataStream.unsubscribe", {"subscriptionId": 0})
            assert r["status"] == 400

            # the disconnect fault closes a subscribed connection
            await call(21, "userDataStream.subscribe.signature",
                       signed_params({}, "key-a", "secret-a"))
            assert venue.user_events.disconnect(1) == 1
            await asyncio.wait_for(frames.closed.wait(), 10)
            assert venue.user_events.subscribers() == 0

    run_with_venue(body)


def test_listen_key_streams_spot_and_usdm():
    async def body(venue: Venue, rv: RunningVenue) -> None:
        base = rv.rest_url
        async with aiohttp.ClientSession() as http:

            async def rest(method: str, path: str, key: str | None = "key-a",
                           data: dict | None = None) -> tuple[int, dict]:
                headers = {"X-MBX-APIKEY": key} if key else {}
                async with http.request(method, base + path, headers=headers,
                                        data=data) as resp:
                    return resp.status, await resp.json()

            status, body_ = await rest("POST", "/api/v3/userDataStream")
            assert status == 200 and len(body_["listenKey"]) == 64
            lk = body_["listenKey"]
            assert await rest("POST", "/api/v3/userDataStream") == (200, {"listenKey": lk})
            assert (await rest("POST", "/api/v3/userDataStream", key=None))[1]["code"] == -2014
            assert await rest("POST", "/api/v3/userDataStream", key="nope") == (
                401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})

            async with http.ws_connect(f"{base}/ws/{lk}") as ws:
                frames = Frames(ws)
                # an order over signed REST; the stream carries the raw events
                qs = (f"symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.25"
                      f"&price=101.00&timestamp={int(time.time() * 1000)}")
                sig = hmac.new(b"secret-a", qs.encode(), hashlib.sha256).hexdigest()
                async with http.post(f"{base}/api/v3/order", data=f"{qs}&signature={sig}",
                                     headers={"X-MBX-APIKEY": "key-a", "Content-Type":
                                              "application/x-www-form-urlencoded"}) as resp:
                    assert resp.status == 200
                await until(lambda: len(frames.items) >= 2)
                new, pos = frames.items[:2]
                assert (new["e"], new["x"], new["S"], new["q"]) == (
                    "executionReport", "NEW", "SELL", "0.25000000")
                assert pos["B"] == [{"a": "BTC", "f": "0.75000000", "l": "0.25000000"}]
                # an admin deposit: balanceUpdate, then the new position
                async with http.post(f"{base}/venue/deposit", json={
                        "uid": 1, "asset": "USDT", "amount": "125.5"}) as resp:
                    assert (resp.status, await resp.json()) == (
                        200, {"uid": 1, "asset": "USDT", "free": "10125.5"})
                await until(lambda: len(frames.items) >= 4)
                dep, pos = frames.items[2:4]
                assert (dep["e"], dep["a"], dep["d"]) == ("balanceUpdate", "USDT",
                                                          "125.50000000")
                assert pos["B"] == [{"a": "USDT", "f": "10125.50000000", "l": "0.00000000"}]
                async with http.post(f"{base}/venue/deposit", json={
                        "uid": 9, "asset": "USDT", "amount": "1"}) as resp:
                    assert resp.status == 400 and "no account with uid 9" in (
                        await resp.json())["error"]
                # another account's events stay off this stream
                venue.user_events.publish(2, "spot", {"e": "executionReport"})
                assert await rest("PUT", "/api/v3/userDataStream", data={"listenKey": lk}) == (
                    200, {})
                assert (await rest("PUT", "/api/v3/userDataStream", data={
                    "listenKey": "x" * 64}))[1] == {"code": -1125,
                                                    "msg": "This listenKey does not exist."}
                assert (await rest("PUT", "/api/v3/userDataStream"))[1]["code"] == -1102
                assert len(frames.items) == 4
                # closing the key closes its stream
                assert await rest("DELETE", f"/api/v3/userDataStream?listenKey={lk}") == (
                    200, {})
                await asyncio.wait_for(frames.closed.wait(), 10)

            # an unknown (or closed) listenKey is refused before the websocket opens
            for path in (f"/ws/{lk}", "/ws/nosuchkey", "/spot/ws/nosuchkey"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await http.ws_connect(base + path)
                assert err.value.status == 400

            # USD-M: the account's one key; its stream carries the "usdm" events only
            status, body_ = await rest("POST", "/fapi/v1/listenKey")
            fk = body_["listenKey"]
            assert status == 200 and fk != lk
            assert await rest("PUT", "/fapi/v1/listenKey") == (200, {"listenKey": fk})
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(f"{base}/spot/ws/{fk}")  # a usdm key on spot
            async with http.ws_connect(f"{base}/usdm/ws/{fk}") as a, \
                    http.ws_connect(f"{base}/usdm/private/ws?listenKey={fk}") as b:
                fa, fb = Frames(a), Frames(b)
                await until(lambda: venue.user_events.subscribers(1) == 2)
                venue.user_events.publish(1, "spot", {"e": "executionReport"})
                venue.user_events.publish(1, "usdm", {"e": "ACCOUNT_UPDATE", "E": 5})
                await until(lambda: len(fa.items) == 1 and len(fb.items) == 1)
                assert fa.items == fb.items == [{"e": "ACCOUNT_UPDATE", "E": 5}]
            assert await rest("DELETE", "/fapi/v1/listenKey") == (200, {})
            assert (await rest("DELETE", "/fapi/v1/listenKey"))[1]["code"] == -1102

            # a key not kept alive expires: listenKeyExpired, then the stream closes
            venue.listen_keys.ttl_ms = 300
            _, body_ = await rest("POST", "/api/v3/userDataStream", key="key-b")
            short = body_["listenKey"]
            async with http.ws_connect(f"{base}/ws/{short}") as ws:
                frames = Frames(ws)
                await asyncio.wait_for(frames.closed.wait(), 10)
                assert [(f["e"], f["listenKey"]) for f in frames.items] == [
                    ("listenKeyExpired", short)]
            assert (await rest("PUT", "/api/v3/userDataStream", key="key-b",
                               data={"listenKey": short}))[1]["code"] == -1125

    run_with_venue(body)


def test_ccxt_pro_usdm_balance_over_a_listen_key():
    """ccxt.pro on USD-M takes the listenKey road: POST /fapi/v1/listenKey, then the private
    stream. What the venue publishes on market "usdm" (USD-M trading does) reaches it."""

    async def main() -> None:
        usdm_book = {"lastUpdateId": 100, "bids": [["100.00", "2.000"]],
                     "asks": [["100.10", "1.000"]]}
        venue = Venue(book_source({("usdm", "BTCUSDT"): usdm_book}), wait_clients=0,
                      accounts=ACCOUNTS)
        rv = await start_venue(venue, tls_port=None)
        ex = ccxt.pro.binance({"apiKey": "key-a", "secret": "secret-a",
                               "enableRateLimit": False,
                               "options": {"fetchCurrencies": False, "fetchMargins": False,
                                           "fetchMarkets": {"types": ["linear"]},
                                           "defaultType": "future"}})
        ex.set_sandbox_mode(True)
        for name, url in list(ex.urls["api"].items()):
            if isinstance(url, str) and "testnet.binancefuture.com" in url:
                ex.urls["api"][name] = rv.rest_url + url.split("testnet.binancefuture.com", 1)[1]
        # ccxt.pro turns ".../ws" into ".../private/ws?listenKey=<key>" for USD-M user data
        ex.urls["api"]["ws"]["linear"] = f"ws://{rv.host}:{rv.port}/usdm/ws"
        try:
            await ex.load_markets()
            first = asyncio.create_task(ex.watch_balance())
            await until(lambda: venue.user_events.subscribers(1) == 1)
            venue.user_events.publish(1, "spot", {"e": "outboundAccountPosition", "E": 4,
                                                  "u": 4, "B": []})  # not this stream's
            venue.user_events.publish(1, "usdm", {
                "e": "ACCOUNT_UPDATE", "E": 5, "T": 5, "a": {"m": "DEPOSIT", "P": [], "B": [
                    {"a": "USDT", "wb": "123.5", "cw": "123.5", "bc": "0"}]}})
            bal = await asyncio.wait_for(first, 10)
            assert bal["USDT"]["total"] == 123.5 and bal["info"]["E"] == 5
        finally:
            await ex.close()
            await rv.stop()

    asyncio.run(main())
