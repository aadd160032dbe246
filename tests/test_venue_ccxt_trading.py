"""The real ccxt sync client trades spot on the local venue (sandbox mode, 127.0.0.1).

The book is hand-made (bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1, 100.03 x 4), so every fill
and balance below is worked out by hand; each error arrives as ccxt's own exception class.
"""

from __future__ import annotations

import time

import ccxt
import pytest

from tests.venue_helpers import book_source, venue_in_thread
from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.venue.core import Venue

pytestmark = pytest.mark.slow

BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNTS = [{"api_key": "key-a", "secret": "secret-a", "maker_fee": "0.001", "taker_fee": "0.002",
             "balances": {"USDT": "10000", "BTC": "1"}},
            {"api_key": "key-ro", "secret": "secret-ro", "can_trade": False,
             "balances": {"USDT": "10"}}]


def client(rest_url: str, key: str, secret: str) -> ccxt.binance:
    return make_client("spot", key, secret, rest_url, asynchronous=False, rate_limit=False)


@pytest.fixture(scope="module")
def venue_url():
    def make() -> Venue:
        return Venue(book_source({("spot", "BTCUSDT"): BOOK}), wait_clients=0,
                     accounts=ACCOUNTS)

    with venue_in_thread(make, tls_port=None) as rv:
        yield rv.rest_url


def test_ccxt_orders_fills_balances_and_trades(venue_url):
    ex = client(venue_url, "key-a", "secret-a")
    markets = ex.load_markets()
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["precision"]["price"] == 0.01

    bal = ex.fetch_balance()
    assert (bal["USDT"]["free"], bal["BTC"]["free"]) == (10000.0, 1.0)

    rest = ex.create_order("BTC/USDT", "limit", "buy", 0.5, 99.99)
    assert rest["status"] == "open" and rest["filled"] == 0.0
    assert ex.fetch_balance()["USDT"] == {"free": 9950.005, "used": 49.995, "total": 10000.0}
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [rest["id"]]

    # market buy 1.5 walks 1 @ 100.02 and 0.5 @ 100.03; taker fee 0.2 % in BTC
    mkt = ex.create_order("BTC/USDT", "market", "buy", 1.5)
    assert mkt["status"] == "closed" and mkt["filled"] == 1.5
    assert mkt["cost"] == pytest.approx(150.035, abs=1e-9)
    assert [(t["price"], t["amount"], t["fee"]["cost"], t["fee"]["currency"])
            for t in mkt["trades"]] == [(100.02, 1.0, 0.002, "BTC"), (100.03, 0.5, 0.001, "BTC")]

    maker = ex.create_order("BTC/USDT", "limit", "sell", 1, 100.10, {"postOnly": True})
    assert maker["status"] == "open"
    assert ex.fetch_order(maker["id"], "BTC/USDT")["price"] == 100.10

    cancelled = ex.cancel_order(rest["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert ex.fetch_order(rest["id"], "BTC/USDT")["status"] == "canceled"

    bal = ex.fetch_balance()
    # USDT: 10000 - 150.035; BTC: 1 + 1.5 - 0.003 fee, 1 of it locked by the resting sell
    assert bal["USDT"]["free"] == pytest.approx(9849.965, abs=1e-9)
    assert bal["USDT"]["used"] == 0.0
    assert bal["BTC"]["free"] == pytest.approx(1.497, abs=1e-9)
    assert bal["BTC"]["used"] == 1.0

    trades = ex.fetch_my_trades("BTC/USDT")
    assert [(t["order"], t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        (mkt["id"], 100.02, 1.0, "taker"), (mkt["id"], 100.03, 0.5, "taker")]
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [maker["id"]]
    assert [(o["id"], o["status"]) for o in ex.fetch_orders("BTC/USDT")] == [
        (rest["id"], "canceled"), (mkt["id"], "closed"), (maker["id"], "open")]


def test_ccxt_errors_arrive_as_ccxt_classes(venue_url):
    ex = client(venue_url, "key-a", "secret-a")
    ex.load_markets()
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        ex.create_order("BTC/USDT", "limit", "buy", 0.1, 100.03, {"postOnly": True})
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 200, 99.0)
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):  # ccxt maps LOT_SIZE by text
        ex.create_order("BTC/USDT", "limit", "buy", 9001, 99.0)
    # -1013 naming NOTIONAL: ccxt's code map makes it a BadRequest (not an InvalidOrder)
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, 99.0)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order("987654", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("987654", "BTC/USDT")

    wrong = client(venue_url, "key-a", "not-the-secret")
    wrong.markets, wrong.markets_by_id = ex.markets, ex.markets_by_id
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        wrong.fetch_balance()
    unknown = client(venue_url, "no-such-key", "x")
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        unknown.fetch_balance()
    read_only = client(venue_url, "key-ro", "secret-ro")
    read_only.load_markets()
    assert read_only.fetch_balance()["USDT"]["free"] == 10.0
    # ccxt reads -2015 after a successful signed call as an IP ban, not a bad key
    with pytest.raises(ccxt.DDoSProtection, match="-2015"):
        read_only.create_order("BTC/USDT", "limit", "buy", 0.06, 99.0)

    # a rate_limit fault refuses the next signed request with a 429
    import json
    import urllib.request

    fault = urllib.request.Request(f"{venue_url}/venue/fault", method="POST",
                                   data=json.dumps({"kind": "rate_limit"}).encode())
    with urllib.request.urlopen(fault) as resp:
        assert resp.status == 200
    with pytest.raises(ccxt.DDoSProtection):
        ex.fetch_open_orders("BTC/USDT")
    assert isinstance(ex.fetch_open_orders("BTC/USDT"), list)

    # a client clock 10 s behind the server: outside ccxt's 10 s recvWindow -> -1021
    late = client(venue_url, "key-a", "secret-a")
    late.markets, late.markets_by_id = ex.markets, ex.markets_by_id
    late.options["timeDifference"] = 10_500
    with pytest.raises(ccxt.InvalidNonce):
        late.fetch_balance()


def test_raw_signed_request_rules(venue_url):
    """Wire details ccxt does not show: ACK/RESULT/FULL, order/test, cancel-all, -1102; and
    neither key nor secret in the venue's log."""
    import hashlib
    import hmac
    import json
    import logging
    import urllib.error
    import urllib.request

    def call(method: str, path: str, params: dict[str, str], in_body: bool = False):
        qs = "&".join(f"{k}={v}" for k, v in
                      {**params, "timestamp": str(int(time.time() * 1000))}.items())
        sig = hmac.new(b"secret-a", qs.encode(), hashlib.sha256).hexdigest()
        payload = f"{qs}&signature={sig}"
        url = f"{venue_url}/api/v3/{path}" + ("" if in_body else f"?{payload}")
        req = urllib.request.Request(url, data=payload.encode() if in_body else None,
                                     method=method, headers={"X-MBX-APIKEY": "key-a"})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read()), resp.headers
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), exc.headers

    # the venue's logger itself (other tests may have configured logging: do not rely on
    # propagation to the root logger)
    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    venue_log = logging.getLogger("tradelab.venue")
    venue_log.addHandler(handler)
    old_level = venue_log.level
    venue_log.setLevel(logging.DEBUG)
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.1", "price": "90.00"}
    status, body, headers = call("POST", "order", {**base, "newOrderRespType": "ACK"}, True)
    assert status == 200 and set(body) == {"symbol", "orderId", "orderListId", "clientOrderId",
                                           "transactTime"}
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) >= 1
    status, body, _ = call("POST", "order", {**base, "newOrderRespType": "RESULT"}, True)
    assert status == 200 and body["status"] == "NEW" and "fills" not in body
    status, body, _ = call("POST", "order", {**base, "newClientOrderId": "c-1"}, True)
    assert status == 200 and body["fills"] == [] and body["clientOrderId"] == "c-1"
    assert call("POST", "order/test", base, True)[:2] == (200, {})
    maker = {**base, "type": "LIMIT_MAKER"}
    del maker["timeInForce"]
    status, body, _ = call("POST", "order", maker, True)  # ACK is LIMIT_MAKER's default
    assert status == 200 and "status" not in body and body["orderId"] > 0
    status, body, _ = call("GET", "order", {"symbol": "BTCUSDT"})
    assert (status, body["code"]) == (400, -1102)
    status, body, _ = call("GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "c-1"})
    assert status == 200 and body["status"] == "NEW" and body["price"] == "90.00000000"
    status, body, _ = call("GET", "account", {})
    assert status == 200 and body["commissionRates"]["taker"] == "0.00200000"
    assert "key-a" not in json.dumps(body) and "secret-a" not in json.dumps(body)
    status, body, _ = call("DELETE", "openOrders", {"symbol": "BTCUSDT"})
    assert status == 200 and {o["status"] for o in body} == {"CANCELED"} and len(body) >= 3
    status, body, _ = call("DELETE", "openOrders", {"symbol": "BTCUSDT"})
    assert (status, body["code"]) == (400, -2011)
    status, body, _ = call("GET", "openOrders", {"symbol": "NOPEUSDT"})
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    venue_log.removeHandler(handler)
    venue_log.setLevel(old_level)
    text = "\n".join(lines)
    assert "signed GET openOrders refused: -1121" in text  # the venue did log
    assert "key-a" not in text and "secret-a" not in text
