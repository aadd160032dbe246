"""Order faults on ``POST /venue/fault``: each one's symptom as the real ccxt client sees it,
and the venue's true state behind it.

The book is hand-made (bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1, 100.03 x 4).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import ccxt
import pytest

from tests.venue_helpers import book_source, venue_in_thread
from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.venue.core import FaultyUserEvents, Venue

BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNTS = [{"api_key": "key-a", "secret": "secret-a", "balances": {"USDT": "10000", "BTC": "1"}}]


def client(rest_url: str) -> ccxt.binance:
    return make_client("spot", "key-a", "secret-a", rest_url, asynchronous=False, rate_limit=False)


def fault(rest_url: str, body: object) -> tuple[int, dict]:
    req = urllib.request.Request(f"{rest_url}/venue/fault", method="POST",
                                 data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def rv():
    def make() -> Venue:
        return Venue(book_source({("spot", "BTCUSDT"): BOOK}), wait_clients=0,
                     accounts=ACCOUNTS)

    with venue_in_thread(make, tls_port=None) as running:
        yield running


@pytest.fixture
def ex(rv):
    ex = client(rv.rest_url)
    ex.load_markets()
    yield ex
    if ex.fetch_open_orders("BTC/USDT"):
        ex.cancel_all_orders("BTC/USDT")


pytestmark = pytest.mark.slow


def test_reject_orders_refuses_the_next_n(rv, ex):
    assert fault(rv.rest_url, {"kind": "reject_orders", "count": 2})[0] == 200
    for _ in range(2):
        with pytest.raises(ccxt.InvalidOrder, match="-2010"):
            ex.create_order("BTC/USDT", "limit", "buy", 0.1, 99.0)
    assert ex.fetch_open_orders("BTC/USDT") == []  # nothing was placed
    assert ex.fetch_balance()["USDT"]["used"] == 0.0
    third = ex.create_order("BTC/USDT", "limit", "buy", 0.1, 99.0)
    assert third["status"] == "open"
    assert rv.venue.faults.fired["reject_orders"] == 2


def test_order_5xx_places_the_order_but_the_client_cannot_know(rv, ex):
    assert fault(rv.rest_url, {"kind": "order_5xx"})[0] == 200
    # HTTP 500 with Binance's -1001 body: ccxt raises OperationFailed (a network-class
    # error, so a client's retry logic sees it as "outcome unknown")
    with pytest.raises(ccxt.OperationFailed, match="-1001") as err:
        ex.create_order("BTC/USDT", "limit", "buy", 0.2, 98.0, {"clientOrderId": "unknown-1"})
    assert type(err.value) is ccxt.OperationFailed  # ccxt's map for -1001, not an order error
    found = ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "unknown-1"})
    assert (found["status"], found["price"], found["amount"]) == ("open", 98.0, 0.2)
    assert ex.fetch_balance()["USDT"]["used"] == pytest.approx(19.6)
    # the next order is answered normally
    assert ex.create_order("BTC/USDT", "limit", "buy", 0.1, 97.0)["status"] == "open"


def test_delay_ack_places_at_once_and_answers_late(rv, ex):
    assert fault(rv.rest_url, {"kind": "delay_ack", "seconds": 3})[0] == 200
    ex.timeout = 500  # ms: the client gives up before the ack comes
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order("BTC/USDT", "limit", "sell", 0.3, 101.0, {"clientOrderId": "late-1"})
    ex.timeout = 10_000
    # the order is on the book while the ack is still on its way
    found = ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "late-1"})
    assert (found["status"], found["side"], found["amount"]) == ("open", "sell", 0.3)
    assert ex.fetch_balance()["BTC"]["used"] == pytest.approx(0.3)


def test_user_stream_faults_drop_order_events_and_disconnect(rv):
    venue = rv.venue
    got: list[dict] = []
    dropped: list[str] = []
    venue.user_events.subscribe("1", "spot", got.append, lambda: dropped.append("spot"))
    bus = venue.trading.events
    assert isinstance(bus, FaultyUserEvents)
    status, body = fault(rv.rest_url, {"kind": "drop_exec_report", "count": 2})
    assert status == 200 and body["count"] == 2
    events = [{"e": "executionReport", "i": 1, "x": "NEW"},
              {"e": "outboundAccountPosition", "u": 1},  # not an order event: delivered
              {"e": "executionReport", "i": 1, "x": "TRADE"},
              {"e": "executionReport", "i": 1, "x": "CANCELED"}]
    for e in events:
        bus.publish("1", "spot", e)
    assert got == [events[1], events[3]]  # the next two order events were withheld
    assert venue.faults.fired["drop_exec_report"] == 2
    status, body = fault(rv.rest_url, {"kind": "disconnect_user_stream"})
    assert (status, body["disconnected"]) == (200, 1)
    assert dropped == ["spot"]
    bus.publish("1", "spot", events[0])
    assert len(got) == 2  # the subscriber is gone


@pytest.mark.parametrize("body", [
    {"kind": "reject_orders", "count": 0}, {"kind": "reject_orders", "count": "2"},
    {"kind": "order_5xx", "count": True}, {"kind": "delay_ack"},
    {"kind": "delay_ack", "seconds": -1}, {"kind": "drop_exec_report", "count": 1.5},
    {"kind": "explode_orders"},
])
def test_bad_order_fault_requests_are_400_naming_the_problem(rv, body):
    status, out = fault(rv.rest_url, body)
    assert status == 400 and out["error"]
    assert rv.venue.faults.reject_orders == 0 and rv.venue.faults.order_5xx == 0
