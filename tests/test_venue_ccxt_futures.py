"""The real ccxt ``binanceusdm`` sync client trades USD-M futures on the local venue (sandbox
mode, 127.0.0.1).

The book is hand-made (bids 100.00 x 2, 99.90 x 3; asks 100.10 x 1, 100.20 x 4); the account's
futures wallet holds 1000 USDT, maker fee 0.02 %, taker 0.05 %; every figure below is worked out
by hand. Errors arrive as ccxt's own exception classes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import ccxt
import ccxt.pro
import pytest

from tests.venue_helpers import book_source, venue_in_thread
from tradelab.venue.core import Venue
from tradelab.venue.sources import VenueMessage

pytestmark = pytest.mark.slow

SYM = "BTC/USDT:USDT"
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.000"], ["99.90", "3.000"]],
        "asks": [["100.10", "1.000"], ["100.20", "4.000"]]}
ACCOUNTS = [{"api_key": "key-f", "secret": "secret-f", "maker_fee": "0.0002",
             "taker_fee": "0.0005", "balances": {"USDT": "10"}, "usdm_wallet": "1000"},
            {"api_key": "key-r", "secret": "secret-r", "balances": {"USDT": "1000"}}]


def client(rest_url: str) -> ccxt.binanceusdm:
    ex = ccxt.binanceusdm({"apiKey": "key-f", "secret": "secret-f", "enableRateLimit": False,
                           "options": {"fetchCurrencies": False, "fetchMargins": False}})
    ex.set_sandbox_mode(True)
    for name, url in list(ex.urls["api"].items()):
        if isinstance(url, str) and "testnet.binancefuture.com" in url:
            ex.urls["api"][name] = rest_url + url.split("testnet.binancefuture.com", 1)[1]
    # ccxt chooses its USD-M error table by the URL's host (fapi.binance.com and its testnet);
    # at 127.0.0.1 it would apply only its generic table, so select ccxt's own USD-M table
    ex.exceptions["exact"] = {**ex.exceptions["exact"], **ex.exceptions["linear"]["exact"]}
    return ex


@pytest.fixture(scope="module")
def running():
    def make() -> Venue:
        return Venue(book_source({("usdm", "BTCUSDT"): BOOK}), wait_clients=0,
                     accounts=ACCOUNTS)

    with venue_in_thread(make, tls_port=None) as rv:
        yield rv


def _publish(rv, e_ms: int, trade_id: int) -> None:
    """A market trade at 100.00 stamped ``e_ms`` (moves the venue clock; touches no order)."""
    msg = VenueMessage(0, "usdm", "BTCUSDT", "trade", {
        "e": "trade", "E": e_ms, "T": e_ms, "s": "BTCUSDT", "t": trade_id, "p": "100.00",
        "q": "0.001", "m": True})
    asyncio.run_coroutine_threadsafe(rv.venue.publish(msg), rv.replay.get_loop()).result(10)


def test_ccxt_usdm_orders_positions_balance_and_funding(running):
    events: list[dict] = []
    token = running.venue.user_events.subscribe("1", "usdm", events.append)
    ex = client(running.rest_url)
    markets = ex.load_markets()
    m = markets[SYM]
    assert (m["linear"], m["swap"], m["precision"]["price"], m["precision"]["amount"]) == (
        True, True, 0.1, 0.001)
    assert ex.set_leverage(10, SYM)["leverage"] == 10

    bal = ex.fetch_balance()
    assert (bal["USDT"]["free"], bal["USDT"]["used"], bal["USDT"]["total"]) == (1000, 0, 1000)

    # a resting buy 0.5 @ 99.90 holds 0.5 * 99.90 / 10 = 4.995 of margin
    rest = ex.create_order(SYM, "limit", "buy", 0.5, 99.90)
    assert rest["status"] == "open" and rest["filled"] == 0
    bal = ex.fetch_balance()
    assert bal["USDT"]["used"] == pytest.approx(4.995, abs=1e-9)
    assert bal["USDT"]["free"] == pytest.approx(995.005, abs=1e-9)

    # market buy 1 takes the 1 @ 100.10 (taker fee 0.05005)
    mkt = ex.create_order(SYM, "market", "buy", 1)
    assert (mkt["status"], mkt["filled"], mkt["average"]) == ("closed", 1, 100.10)
    [pos] = ex.fetch_positions([SYM])
    # mark = mid 100.05: uPnL 1 * (100.05 - 100.10) = -0.05
    assert (pos["side"], pos["contracts"], pos["entryPrice"], pos["markPrice"]) == (
        "long", 1, 100.10, 100.05)
    assert pos["unrealizedPnl"] == pytest.approx(-0.05, abs=1e-9)
    bal = ex.fetch_balance()
    # total = margin balance 1000 - 0.05005 - 0.05; used = 100.05 / 10 + 4.995 = 15
    assert bal["USDT"]["total"] == pytest.approx(999.89995, abs=1e-9)
    assert bal["USDT"]["used"] == pytest.approx(15.0, abs=1e-9)
    assert bal["USDT"]["free"] == pytest.approx(984.89995, abs=1e-9)

    # reduce-only close at 100.00: realizes -0.10, taker fee 0.05
    close = ex.create_order(SYM, "market", "sell", 1, None, {"reduceOnly": True})
    assert (close["status"], close["filled"], close["reduceOnly"]) == ("closed", 1, True)
    assert ex.fetch_positions([SYM]) == []
    trades = ex.fetch_my_trades(SYM)
    assert [(t["order"], t["side"], t["price"], t["amount"], t["takerOrMaker"],
             t["fee"]["cost"], t["fee"]["currency"], t["info"]["realizedPnl"])
            for t in trades] == [
        (mkt["id"], "buy", 100.10, 1, "taker", 0.05005, "USDT", "0.00000000"),
        (close["id"], "sell", 100.00, 1, "taker", 0.05, "USDT", "-0.10000000")]

    assert ex.cancel_order(rest["id"], SYM)["status"] == "canceled"
    assert ex.fetch_order(rest["id"], SYM)["status"] == "canceled"
    assert ex.fetch_open_orders(SYM) == []
    assert [(o["id"], o["status"]) for o in ex.fetch_orders(SYM)] == [
        (rest["id"], "canceled"), (mkt["id"], "closed"), (close["id"], "closed")]

    # a 0.5 short at 100.00 (fee 0.025), then the venue clock passes a funding settlement:
    # the short receives 0.5 * mark 100.05 * 0.0001 = 0.0050025
    short = ex.create_order(SYM, "market", "sell", 0.5)
    assert short["average"] == 100.00
    now = int(time.time() * 1000)
    settle = (now // (8 * 3600_000) + 1) * 8 * 3600_000
    _publish(running, now, 1)
    _publish(running, settle + 1, 2)
    funding = ex.fetch_funding_history(SYM)
    assert [(f["amount"], f["timestamp"], f["code"]) for f in funding] == [
        (0.0050025, settle, "USDT")]
    # wallet 1000 - 0.05005 - 0.10 - 0.05 - 0.025 + 0.0050025 = 999.7799525;
    # uPnL of the short -0.5 * (100.05 - 100.00) = -0.025
    bal = ex.fetch_balance()
    assert bal["USDT"]["total"] == pytest.approx(999.7549525, abs=1e-9)
    assert bal["info"]["totalWalletBalance"] == "999.77995250"
    [pos] = ex.fetch_positions([SYM])
    assert (pos["side"], pos["contracts"], pos["entryPrice"]) == ("short", 0.5, 100.0)

    # the bus carried the same story; ccxt pro's own parsers read the events
    running.venue.user_events.unsubscribe(token)
    pro = ccxt.pro.binanceusdm()
    pro.set_markets(list(ex.markets.values()))
    orders = [pro.parse_ws_order(e["o"]) for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
    assert [(o["id"], o["status"], o["filled"]) for o in orders] == [
        (rest["id"], "open", 0), (mkt["id"], "open", 0), (mkt["id"], "closed", 1),
        (close["id"], "open", 0), (close["id"], "closed", 1), (rest["id"], "canceled", 0),
        (short["id"], "open", 0), (short["id"], "closed", 0.5)]
    assert [o["fee"]["cost"] for o in orders if o["fee"]] == ["0.05005000", "0.05000000",
                                                              "0.02500000"]
    updates = [e["a"] for e in events if e["e"] == "ACCOUNT_UPDATE"]
    assert [(u["m"], u["B"][0]["wb"]) for u in updates] == [
        ("ORDER", "999.94995000"), ("ORDER", "999.79995000"), ("ORDER", "999.77495000"),
        ("FUNDING_FEE", "999.77995250")]
    last = pro.parse_ws_position(updates[-1]["P"][0])
    assert (last["side"], last["contracts"], last["entryPrice"]) == ("short", 0.5, 100.0)


def test_ccxt_usdm_errors_arrive_as_ccxt_classes(running):
    ex = client(running.rest_url)
    ex.load_markets()
    ex.set_leverage(10, SYM)
    # 200 @ 99.00 needs 19800 / 10 = 1980 of margin: more than the wallet
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYM, "limit", "buy", 200, 99.00)
    # reduce-only in the direction of the position (or with none) is refused (-2022)
    side = "sell" if not ex.fetch_positions([SYM]) or \
        ex.fetch_positions([SYM])[0]["side"] == "short" else "buy"
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        ex.create_order(SYM, "market", side, 0.1, None, {"reduceOnly": True})
    # post-only that would take: -5022, which ccxt's USD-M table maps to OrderNotFillable
    with pytest.raises(ccxt.OrderNotFillable, match="-5022"):
        ex.create_order(SYM, "limit", "sell", 0.1, 99.90, {"postOnly": True})
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        ex.create_order(SYM, "limit", "buy", 0.01, 99.00)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order("987654", SYM)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("987654", SYM)


def test_raw_fapi_responses(running):
    """Wire details ccxt does not show: ACK vs RESULT, the v2 account / balance / positionRisk,
    leverage brackets, cancel-all; and no key or secret in any answer. A second account (no
    ``usdm_wallet``: its futures wallet starts with its 1000 USDT; default leverage 20)."""

    def call(method: str, path: str, params: dict[str, str]):
        qs = "&".join(f"{k}={v}" for k, v in
                      {**params, "timestamp": str(int(time.time() * 1000))}.items())
        sig = hmac.new(b"secret-r", qs.encode(), hashlib.sha256).hexdigest()
        url = f"{running.rest_url}/fapi/{path}?{qs}&signature={sig}"
        req = urllib.request.Request(url, method=method, headers={"X-MBX-APIKEY": "key-r"})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.1", "price": "95.00"}
    status, ack = call("POST", "v1/order", base)  # ACK is the futures default
    assert status == 200 and ack["status"] == "NEW" and ack["executedQty"] == "0.000"
    status, body = call("POST", "v1/order", {**base, "newOrderRespType": "RESULT",
                                             "newClientOrderId": "raw-1"})
    assert status == 200 and body["clientOrderId"] == "raw-1" and "time" not in body
    status, body = call("GET", "v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "raw-1"})
    assert status == 200 and body["price"] == "95.00000000" and body["positionSide"] == "BOTH"
    status, body = call("GET", "v2/account", {})
    assert status == 200 and body["assets"][0]["asset"] == "USDT" and body["canTrade"] is True
    # two resting buys of 0.1 @ 95.00 at leverage 20 hold 2 * 9.5 / 20 = 0.95 of margin
    assert body["totalOpenOrderInitialMargin"] == "0.95000000"
    assert body["totalWalletBalance"] == "1000.00000000"
    assert body["availableBalance"] == "999.05000000"
    status, body = call("GET", "v2/balance", {})
    assert status == 200 and body[0]["asset"] == "USDT"
    status, body = call("GET", "v2/positionRisk", {"symbol": "BTCUSDT"})
    assert status == 200 and body[0]["marginType"] == "cross" and body[0]["leverage"] == "20"
    status, body = call("GET", "v1/leverageBracket", {"symbol": "BTCUSDT"})
    assert status == 200 and body["brackets"][0]["initialLeverage"] == 125
    status, body = call("POST", "v1/order", {**base, "positionSide": "LONG"})
    assert (status, body["code"]) == (400, -4061)
    status, body = call("DELETE", "v1/allOpenOrders", {"symbol": "BTCUSDT"})
    assert (status, body["code"]) == (200, 200)
    status, body = call("GET", "v1/openOrders", {"symbol": "BTCUSDT"})
    assert (status, body) == (200, [])
    status, body = call("GET", "v1/openOrders", {"symbol": "NOPEUSDT"})
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    # a taker buy pays 0.1 % of its notional as a COMMISSION income (and no REALIZED_PNL)
    status, fill = call("POST", "v1/order", {"symbol": "BTCUSDT", "side": "BUY",
                                             "type": "MARKET", "quantity": "0.1",
                                             "newOrderRespType": "RESULT"})
    assert status == 200 and fill["status"] == "FILLED"
    status, body = call("GET", "v1/income", {})
    assert status == 200
    assert [(i["incomeType"], Decimal(i["income"])) for i in body] == [
        ("COMMISSION", -Decimal(fill["cumQuote"]) * Decimal("0.001"))]
    status, body = call("GET", "v1/income", {"incomeType": "FUNDING_FEE"})
    assert (status, body) == (200, [])
    assert "key-r" not in json.dumps(body) and "secret-r" not in json.dumps(body)
