"""The venue's user data: the event bus, the events an order's life produces, listenKeys and
the WebSocket API's signing.

Truth: Binance's published WebSocket API signing example, and the hand-made book of the
trading tests (bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1, 100.03 x 4; maker fee 0.1 %, taker
0.2 %), whose fills, fees and balances are worked out by hand below.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.venue_helpers import book_source
from tradelab.adapters.binance import trading as wire
from tradelab.adapters.binance import userdata
from tradelab.venue.core import Venue
from tradelab.venue.listenkeys import ListenKeys
from tradelab.venue.sources import VenueMessage
from tradelab.venue.userstream import UserEvents

KEY = ("spot", "BTCUSDT")
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNT = {"api_key": "k1", "secret": "s1", "balances": {"USDT": "10000", "BTC": "1"},
           "maker_fee": "0.001", "taker_fee": "0.002"}
ORDER_FIELDS = "e E s c S o f q p P F g C x X r i l z L n N T t I w m M O Z Y Q V".split()


def test_ws_api_signing_example_reproduces():
    # Binance spot WebSocket API docs, "SIGNED request example (HMAC)"
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
              "quantity": "0.01000000", "price": "52000.00", "newOrderRespType": "ACK",
              "recvWindow": 100, "timestamp": 1645423376532,
              "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
              "signature": "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"}
    assert userdata.ws_payload(params) == (
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
        "&newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
        "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT")
    userdata.check_ws_signature(params, secret)
    userdata.check_ws_signature({**params, "signature": params["signature"].upper()}, secret)
    for bad in ({**params, "price": "52000.01"}, {**params, "signature": "00" * 32}):
        with pytest.raises(wire.BinanceError) as err:
            userdata.check_ws_signature(bad, secret)
        assert (err.value.code, err.value.msg) == (-1022, wire.MSG_BAD_SIGNATURE)
    with pytest.raises(wire.BinanceError) as err:
        userdata.check_ws_signature({k: v for k, v in params.items() if k != "signature"},
                                    secret)
    assert err.value.code == -1102
    # ccxt signs booleans as true/false (its returnRateLimits param)
    assert userdata.ws_payload({"b": False, "a": True}) == "a=true&b=false"


def _order(**kw: str) -> wire.OrderRequest:
    return wire.parse_order({"symbol": "BTCUSDT", **kw})


def _fields(ev: dict, *names: str) -> tuple:
    return tuple(ev[n] for n in names)


def test_order_life_publishes_execution_reports_and_balances():
    """Every state change of an order, by hand: NEW, TRADE (partial, maker), CANCELED, a market
    order's two taker TRADEs, a FOK's EXPIRED; a refused post-only order publishes nothing."""

    async def session() -> None:
        venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])
        t, acc = venue.trading, venue.accounts.get("k1")
        assert acc is not None and t.events.bus is venue.user_events  # behind the fault wrapper
        seen: list[dict] = []
        venue.user_events.subscribe(acc.uid, "spot", seen.append)
        others: list[dict] = []
        venue.user_events.subscribe(acc.uid + 1, "spot", others.append)
        usdm: list[dict] = []
        venue.user_events.subscribe(acc.uid, "usdm", usdm.append)

        def take() -> list[dict]:
            out = list(seen)
            seen.clear()
            return out

        def positions(ev: dict) -> list[tuple[str, str, str]]:
            assert ev["e"] == "outboundAccountPosition" and ev["u"] == ev["E"]
            return [(b["a"], b["f"], b["l"]) for b in ev["B"]]

        # 1. buy 0.5 @ 100.00 rests: NEW, then 50 USDT locked
        o1 = t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="GTC",
                                     quantity="0.5", price="100.00", newClientOrderId="b1"))
        assert o1 is not None
        new, pos = take()
        assert set(ORDER_FIELDS) | {"W"} == set(new)
        assert _fields(new, "e", "s", "c", "S", "o", "f", "q", "p", "x", "X", "i", "l", "z",
                       "L", "n", "N", "t", "w", "m", "Z", "Y", "Q", "C", "g", "r") == (
            "executionReport", "BTCUSDT", "b1", "BUY", "LIMIT", "GTC", "0.50000000",
            "100.00000000", "NEW", "NEW", o1.order_id, "0.00000000", "0.00000000",
            "0.00000000", "0", None, -1, True, False, "0.00000000", "0.00000000",
            "0.00000000", "", -1, "NONE")
        assert new["O"] == new["W"] == o1.time_ms and new["T"] == new["E"]
        assert positions(pos) == [("USDT", "9950.00000000", "50.00000000")]

        # 2. the market sells 2.2 at 100.00: 2.0 queue ahead, 0.2 fills us as maker
        await venue.publish(VenueMessage(0, "spot", "BTCUSDT", "trade", {
            "e": "trade", "E": 1_000, "s": "BTCUSDT", "t": 1, "p": "100.00", "q": "2.20000",
            "T": 1_000, "m": True}))
        fill, pos = take()
        assert _fields(fill, "x", "X", "l", "L", "z", "n", "N", "m", "t", "Z", "Y", "w", "M",
                       "E", "T") == (
            "TRADE", "PARTIALLY_FILLED", "0.20000000", "100.00000000", "0.20000000",
            "0.00020000", "BTC", True, 1, "20.00000000", "20.00000000", True, True, 1000, 1000)
        assert positions(pos) == [("BTC", "1.19980000", "0.00000000"),
                                  ("USDT", "9950.00000000", "30.00000000")]

        # 3. cancel the rest under the cancel request's own client id
        t.cancel(acc, "BTCUSDT", o1.order_id, None, "x1")
        cancel, pos = take()
        assert _fields(cancel, "x", "X", "c", "C", "z", "w", "l") == (
            "CANCELED", "CANCELED", "x1", "b1", "0.20000000", False, "0.00000000")
        assert positions(pos) == [("USDT", "9980.00000000", "0.00000000")]

        # 4. market buy 1.5: NEW (nothing locked: no balance event), then two taker fills,
        #    1 @ 100.02 (fee 0.002 BTC) and 0.5 @ 100.03 (fee 0.001 BTC)
        o2 = t.new_order(acc, _order(side="BUY", type="MARKET", quantity="1.5"))
        assert o2 is not None
        new, f1, p1, f2, p2 = take()
        assert _fields(new, "x", "X", "o", "q", "p", "w") == (
            "NEW", "NEW", "MARKET", "1.50000000", "0.00000000", False)
        assert "W" not in new  # a market order never works on the book
        assert _fields(f1, "x", "X", "l", "L", "z", "n", "m", "t", "Z") == (
            "TRADE", "PARTIALLY_FILLED", "1.00000000", "100.02000000", "1.00000000",
            "0.00200000", False, 2, "100.02000000")
        assert positions(p1) == [("BTC", "2.19780000", "0.00000000"),
                                 ("USDT", "9879.98000000", "0.00000000")]
        assert _fields(f2, "x", "X", "l", "L", "z", "n", "t", "Z", "Y") == (
            "TRADE", "FILLED", "0.50000000", "100.03000000", "1.50000000", "0.00100000", 3,
            "150.03500000", "50.01500000")
        assert positions(p2) == [("BTC", "2.69680000", "0.00000000"),
                                 ("USDT", "9829.96500000", "0.00000000")]

        # 5. a post-only sell at the bid would take: refused in the answer, no event at all
        with pytest.raises(wire.BinanceError):
            t.new_order(acc, _order(side="SELL", type="LIMIT_MAKER", quantity="1",
                                    price="100.00"))
        assert take() == []

        # 6. FOK buy 4 @ 100.03 sees 3.5 left there (the market order took 0.5): NEW locks
        #    400.12 USDT, EXPIRED gives it back
        fok = t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="FOK",
                                      quantity="4", price="100.03"))
        assert fok is not None and fok.status == "EXPIRED"
        new, p1, expired, p2 = take()
        assert _fields(new, "x", "f", "w") == ("NEW", "FOK", False)
        assert "W" not in new  # a FOK never rests on the book
        assert positions(p1) == [("USDT", "9429.84500000", "400.12000000")]
        assert _fields(expired, "x", "X", "z", "w") == ("EXPIRED", "EXPIRED", "0.00000000",
                                                        False)
        assert positions(p2) == [("USDT", "9829.96500000", "0.00000000")]

        # nothing reached another account or market
        assert others == [] and usdm == []

        # 7. a deposit and a withdrawal (the admin's transfer)
        t.transfer(acc, "eth", wire.Decimal("2"))
        dep, pos = take()
        assert _fields(dep, "e", "a", "d") == ("balanceUpdate", "ETH", "2.00000000")
        assert dep["T"] == dep["E"]
        assert positions(pos) == [("ETH", "2.00000000", "0.00000000")]
        t.transfer(acc, "ETH", wire.Decimal("-0.5"))
        wd, pos = take()
        assert wd["d"] == "-0.50000000" and positions(pos) == [("ETH", "1.50000000",
                                                                "0.00000000")]
        with pytest.raises(ValueError, match="cannot withdraw 2, only 1.5"):
            t.transfer(acc, "ETH", wire.Decimal("-2"))
        assert take() == [] and acc.free["ETH"] == wire.Decimal("1.5")

    asyncio.run(session())


def test_execution_ids_increase_across_orders():
    venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])
    acc = venue.accounts.get("k1")
    assert acc is not None
    seen: list[dict] = []
    venue.user_events.subscribe(acc.uid, "spot", seen.append)
    for px in ("99.00", "98.00"):
        venue.trading.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="GTC",
                                            quantity="0.1", price=px))
    venue.trading.cancel_all(acc, "BTCUSDT")
    ids = [e["I"] for e in seen if e["e"] == "executionReport"]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [e["c"] for e in seen if e.get("x") == "CANCELED"] == ["cancel-1", "cancel-2"]


def test_user_events_bus_fans_out_and_disconnects():
    bus = UserEvents()
    got: dict[str, list] = {"a": [], "b": [], "c": []}
    dropped: list[str] = []
    ta = bus.subscribe(1, "spot", got["a"].append, lambda: dropped.append("a"))
    bus.subscribe("1", "spot", got["b"].append, lambda: dropped.append("b"))
    bus.subscribe(2, "spot", got["c"].append, lambda: dropped.append("c"))
    bus.publish(1, "spot", {"e": "x"})
    bus.publish(1, "usdm", {"e": "y"})
    assert got == {"a": [{"e": "x"}], "b": [{"e": "x"}], "c": []}
    bus.unsubscribe(ta)
    bus.unsubscribe(ta)  # twice: ignored
    bus.publish(1, "spot", {"e": "z"})
    assert len(got["a"]) == 1 and len(got["b"]) == 2

    def broken(event: dict) -> None:
        raise RuntimeError("client gone")

    bus.subscribe(2, "spot", broken)
    bus.publish(2, "spot", {"e": "w"})  # the broken subscriber does not stop the others
    assert got["c"] == [{"e": "w"}]
    assert bus.disconnect(1) == 1 and dropped == ["b"]
    assert bus.subscribers(1) == 0 and bus.subscribers() == 2
    assert bus.disconnect() == 2 and sorted(dropped) == ["b", "c"]
    with pytest.raises(ValueError, match="unknown market 'coinm'"):
        bus.subscribe(1, "coinm", print)


def test_listen_keys_live_sixty_minutes_after_the_last_keepalive():
    now = [1_000_000]
    keys = ListenKeys(clock_ms=lambda: now[0])
    k = keys.create(1, "spot")
    assert len(k) == 64 and keys.create(1, "spot") == k  # one live key per account and market
    assert keys.create(1, "usdm") != k and keys.create(2, "spot") != k
    now[0] += 59 * 60_000
    assert keys.keepalive(k, 1, "spot")
    assert not keys.keepalive(k, 2, "spot")  # another account's key
    now[0] += 59 * 60_000
    lk = keys.get(k)
    assert lk is not None and lk.uid == 1 and keys.get(k, "usdm") is None
    now[0] += 60_000  # 60 min after the keepalive
    assert keys.get(k) is None and not keys.keepalive(k, 1, "spot")
    k2 = keys.create(1, "spot")
    assert k2 != k and keys.close(k2, 1, "spot") and keys.get(k2) is None
    assert not keys.close(k2, 1, "spot")
