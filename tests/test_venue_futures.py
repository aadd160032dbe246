"""USD-M futures on the local venue: a hand-made book and order timeline whose fills, fees,
positions, margin and funding are worked out by hand below, the events on the user-data bus, the
futures error codes, and a state round trip.

Book (BTCUSDT USD-M, tick 0.10, step 0.001): bids 100.00 x 2, 99.90 x 3; asks 100.10 x 1,
100.20 x 4. The account's futures wallet holds 1000 USDT; maker fee 0.02 %, taker 0.05 %.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from tests.venue_helpers import book_source
from tradelab.adapters.binance import futures as fwire
from tradelab.adapters.binance import trading as wire
from tradelab.venue.core import Venue
from tradelab.venue.sources import VenueMessage

D = Decimal
KEY = ("usdm", "BTCUSDT")
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.000"], ["99.90", "3.000"]],
        "asks": [["100.10", "1.000"], ["100.20", "4.000"]]}
ACCOUNT = {"api_key": "k1", "secret": "s1", "balances": {"USDT": "50"}, "usdm_wallet": "1000",
           "maker_fee": "0.0002", "taker_fee": "0.0005"}
FUNDING_MS = 8 * 3600 * 1000


def _req(**kw: str) -> fwire.FuturesOrderRequest:
    return fwire.parse_order({"symbol": "BTCUSDT", **kw})


def _venue() -> Venue:
    return Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])


def _code(fn, *args) -> tuple[int, str]:
    with pytest.raises(wire.BinanceError) as err:
        fn(*args)
    return err.value.code, err.value.msg


def test_hand_made_futures_timeline():
    async def session() -> None:
        venue = _venue()
        f = venue.futures
        acc = venue.accounts.get("k1")
        assert acc is not None
        events: list[dict] = []
        venue.user_events.subscribe("1", "usdm", events.append)
        spot_events: list[dict] = []
        venue.user_events.subscribe("1", "spot", spot_events.append)
        assert f.set_leverage(acc, "BTCUSDT", 10) == 10

        # 1. market buy 1 takes the 1 @ 100.10; taker fee 100.10 * 0.0005 = 0.05005
        o1, ack = f.new_order(acc, _req(side="BUY", type="MARKET", quantity="1"))
        assert (ack.status, o1.status) == ("NEW", "FILLED")
        assert [(x.price, x.qty, x.commission, x.maker) for x in o1.fills] == [
            (D("100.10"), D("1.000"), D("0.05005"), False)]
        pos = f.position_view(acc, "BTCUSDT")
        # mark = the book's mid (100.00 + 100.10) / 2 = 100.05; uPnL 1 * (100.05 - 100.10)
        assert (pos.amount, pos.entry, pos.mark) == (D(1), D("100.10"), D("100.05"))
        assert pos.unrealized == D("-0.05")
        assert pos.position_margin == D("10.005")  # 100.05 / leverage 10
        assert f.wallets[1].balance == D("999.94995")  # 1000 - 0.05005
        assert [e["e"] for e in events] == ["ORDER_TRADE_UPDATE", "ORDER_TRADE_UPDATE",
                                            "ACCOUNT_UPDATE"]
        new, trade, upd = (e for e in events)
        assert (new["o"]["x"], new["o"]["X"], new["o"]["i"]) == ("NEW", "NEW", o1.order_id)
        t = trade["o"]
        assert (t["x"], t["X"], t["S"], t["o"], t["l"], t["L"], t["z"], t["n"], t["N"], t["m"],
                t["rp"], t["ps"], t["R"]) == (
            "TRADE", "FILLED", "BUY", "MARKET", "1.000", "100.10000000", "1.000", "0.05005000",
            "USDT", False, "0.00000000", "BOTH", False)
        assert upd["a"]["m"] == "ORDER"
        assert upd["a"]["B"] == [{"a": "USDT", "wb": "999.94995000", "cw": "999.94995000",
                                  "bc": "0.00000000"}]
        assert (upd["a"]["P"][0]["pa"], upd["a"]["P"][0]["ep"]) == ("1.000", "100.10000000")
        assert spot_events == []  # futures events go to the usdm side of the bus only

        # 2. buy 0.5 @ 99.90 rests behind the 3 there; its margin 0.5 * 99.90 / 10 = 4.995
        o2, _ = f.new_order(acc, _req(side="BUY", type="LIMIT", timeInForce="GTC",
                                      quantity="0.5", price="99.90"))
        assert o2.status == "NEW"
        s = f.summary(acc)
        assert (s.order_margin, s.position_margin) == (D("4.995"), D("10.005"))
        # available: 999.94995 - 0.05 - 10.005 - 4.995
        assert s.available == D("984.89995")

        # 3. the market sells 3.2 at 99.90: 3 ahead of us, 0.2 fills us as maker; fee
        #    0.2 * 99.90 * 0.0002 = 0.003996; entry (100.10 + 0.2 * 99.90) / 1.2 = 120.08 / 1.2
        await venue.publish(VenueMessage(0, "usdm", "BTCUSDT", "trade", {
            "e": "trade", "E": 1_000, "T": 1_000, "s": "BTCUSDT", "t": 1, "p": "99.90",
            "q": "3.200", "m": True}))
        assert o2.status == "PARTIALLY_FILLED" and o2.executed == D("0.2")
        assert (o2.fills[0].commission, o2.fills[0].maker) == (D("0.003996"), True)
        pos = f.position_view(acc, "BTCUSDT")
        assert (pos.amount, pos.entry) == (D("1.2"), D("120.08") / D("1.2"))

        # 4. a reduce-only market sell of 2 is capped at the 1.2 held and sells it at 100.00:
        #    realizes 1.2 * 100.00 - 120.08 = -0.08; taker fee 120.00 * 0.0005 = 0.06
        o3, _ = f.new_order(acc, _req(side="SELL", type="MARKET", quantity="2",
                                      reduceOnly="true"))
        assert (o3.orig_qty, o3.status) == (D("1.2"), "FILLED")
        assert [(x.price, x.qty, x.realized, x.commission) for x in o3.fills] == [
            (D("100.00"), D("1.200"), D("-0.08"), D("0.06"))]
        assert f.position_view(acc, "BTCUSDT").amount == 0
        # wallet: 1000 - 0.05005 - 0.003996 - 0.08 - 0.06
        assert f.wallets[1].balance == D("999.805954")
        assert [(i.kind, i.amount) for i in f.incomes(acc)] == [
            ("COMMISSION", D("-0.05005")), ("COMMISSION", D("-0.003996")),
            ("REALIZED_PNL", D("-0.08")), ("COMMISSION", D("-0.06"))]

        # 5. refusals, each with Binance's futures code; none of them changes the account or
        #    sends an event
        n = len(events)
        assert _code(f.new_order, acc, _req(side="SELL", type="MARKET", quantity="1",
                                            reduceOnly="true")) == (-2022, fwire.MSG_REDUCE_ONLY)
        assert _code(f.new_order, acc, _req(side="SELL", type="LIMIT", timeInForce="GTX",
                                            quantity="0.1", price="100.00")) == (
            -5022, fwire.MSG_POST_ONLY)
        # the 1 @ 100.10 was taken by order 1 (until the market's next update): a FOK for 2
        # at 100.10 finds nothing it can take
        assert _code(f.new_order, acc, _req(side="BUY", type="LIMIT", timeInForce="FOK",
                                            quantity="2", price="100.10"))[0] == -5021
        # 110 @ 99.00 needs 10890 / 10 = 1089 of margin; about 997 is available
        assert _code(f.new_order, acc, _req(side="BUY", type="LIMIT", timeInForce="GTC",
                                            quantity="110", price="99.00")) == (
            -2019, "Margin is insufficient.")
        assert _code(f.new_order, acc, _req(side="BUY", type="LIMIT", timeInForce="GTC",
                                            quantity="0.01", price="99.00")) == (
            -4164, "Order's notional must be no smaller than 5 (unless you choose reduce only).")
        assert _code(f.new_order, acc, _req(side="BUY", type="LIMIT", timeInForce="GTC",
                                            quantity="0.1", price="99.05"))[0] == -4014
        assert _code(f.new_order, acc, _req(side="BUY", type="LIMIT", timeInForce="GTC",
                                            quantity="0.1005", price="99.00"))[0] == -4023
        assert _code(f.cancel, acc, "BTCUSDT", 999, None)[0] == -2011
        assert _code(f.query, acc, "BTCUSDT", 999, None)[0] == -2013
        assert f.wallets[1].balance == D("999.805954")
        assert len(events) == n and f.open_orders(acc, "BTCUSDT") == [o2]

        # 6. a short: market sell 0.5 at 100.00 (0.8 left there after order 3), fee 0.025
        o4, _ = f.new_order(acc, _req(side="SELL", type="MARKET", quantity="0.5"))
        assert [(x.price, x.qty) for x in o4.fills] == [(D("100.00"), D("0.500"))]
        pos = f.position_view(acc, "BTCUSDT")
        assert (pos.amount, pos.entry) == (D("-0.5"), D("100.00"))
        assert f.wallets[1].balance == D("999.780954")  # - 0.025

        # 7. a reduce-only buy 0.5 @ 99.00 rests; the resting buy 0.3 @ 99.90 (order 2) fills
        #    on the next trade there and leaves only 0.2 of the short: the reduce-only order is
        #    bigger than what it could still reduce and expires
        o5, _ = f.new_order(acc, _req(side="BUY", type="LIMIT", timeInForce="GTC",
                                      quantity="0.5", price="99.00", reduceOnly="true"))
        assert o5.status == "NEW"
        await venue.publish(VenueMessage(0, "usdm", "BTCUSDT", "trade", {
            "e": "trade", "E": 2_000, "T": 2_000, "s": "BTCUSDT", "t": 2, "p": "99.80",
            "q": "0.300", "m": True}))
        assert o2.status == "FILLED"
        # closing 0.3 of the short at 99.90 realizes 0.3 * (100.00 - 99.90) = 0.03; maker fee
        # 0.3 * 99.90 * 0.0002 = 0.005994
        assert [(x.price, x.qty, x.realized, x.commission) for x in o2.fills[1:]] == [
            (D("99.90"), D("0.300"), D("0.03"), D("0.005994"))]
        assert f.position_view(acc, "BTCUSDT").amount == D("-0.2")
        # the ACCOUNT_UPDATE of that fill: accumulated realized -0.08 + 0.03 = -0.05
        assert [e["a"]["P"][0]["cr"] for e in events if e["e"] == "ACCOUNT_UPDATE"][-1] == \
            "-0.05000000"
        assert o5.status == "EXPIRED"
        assert events[-1]["o"]["x"] == "EXPIRED" and events[-1]["o"]["i"] == o5.order_id
        wallet = D("999.780954") + D("0.03") - D("0.005994")
        assert f.wallets[1].balance == wallet

        # 8. funding: the first message (E=1000) set the next settlement at 8h; a message after
        #    it settles at the mark of that moment, 100.05, with the default rate 0.01 %: the
        #    0.2 short receives 0.2 * 100.05 * 0.0001 = 0.002001
        n = len(events)
        await venue.publish(VenueMessage(0, "usdm", "BTCUSDT", "depth", {
            "e": "depthUpdate", "E": FUNDING_MS + 5, "T": FUNDING_MS + 5, "s": "BTCUSDT",
            "U": 101, "u": 101, "pu": 100, "b": [], "a": [["100.30", "1.000"]]}))
        assert f.wallets[1].balance == wallet + D("0.002001")
        fee = f.incomes(acc, kind="FUNDING_FEE")
        assert [(i.amount, i.time_ms, i.symbol) for i in fee] == [
            (D("0.002001"), FUNDING_MS, "BTCUSDT")]
        funding = events[n:]
        assert [e["e"] for e in funding] == ["ACCOUNT_UPDATE"]
        assert funding[0]["a"]["m"] == "FUNDING_FEE"
        assert funding[0]["a"]["B"][0]["bc"] == "0.00200100"
        assert funding[0]["a"]["P"][0]["pa"] == "-0.200"
        assert f.funding_due == 2 * FUNDING_MS
        # nothing more is due until the next settlement
        await venue.publish(VenueMessage(0, "usdm", "BTCUSDT", "trade", {
            "e": "trade", "E": FUNDING_MS + 9, "T": FUNDING_MS + 9, "s": "BTCUSDT", "t": 3,
            "p": "100.00", "q": "0.001", "m": True}))
        assert len(f.incomes(acc, kind="FUNDING_FEE")) == 1

        trades = f.user_trades(acc, "BTCUSDT")
        assert [(x.order_id, x.side, x.qty, x.maker) for x in trades] == [
            (o1.order_id, "BUY", D("1.000"), False), (o2.order_id, "BUY", D("0.200"), True),
            (o3.order_id, "SELL", D("1.200"), False), (o4.order_id, "SELL", D("0.500"), False),
            (o2.order_id, "BUY", D("0.300"), True)]
        assert [x.trade_id for x in trades] == [1, 2, 3, 4, 5]

    asyncio.run(session())


def test_leverage_and_min_notional_rules():
    venue = _venue()
    f, acc = venue.futures, venue.accounts.get("k1")
    assert acc is not None
    assert _code(fwire.parse_leverage, {"leverage": "126"})[0] == -4028
    # leverage 1: 9.5 @ 100.00 needs 950 of the 1000; a second one does not fit
    f.set_leverage(acc, "BTCUSDT", 1)
    f.new_order(acc, _req(side="BUY", type="LIMIT", timeInForce="GTC", quantity="9.5",
                          price="99.00"))
    assert f.summary(acc).order_margin == D("940.5")  # 9.5 * 99.00 / 1
    assert _code(f.new_order, acc, _req(side="BUY", type="LIMIT", timeInForce="GTC",
                                        quantity="1", price="99.00"))[0] == -2019
    # at leverage 20 the same order needs 99.00 / 20 = 4.95 and fits
    f.set_leverage(acc, "BTCUSDT", 20)
    order, _ = f.new_order(acc, _req(side="BUY", type="LIMIT", timeInForce="GTC", quantity="1",
                                     price="99.00"))
    assert order.status == "NEW"
    # back to 1 would need 10.5 * 99 = 1039.5 > 1000
    assert _code(f.set_leverage, acc, "BTCUSDT", 1)[0] == -2028
    assert f.wallets[1].leverage["BTCUSDT"] == 20
    assert len(f.cancel_all(acc, "BTCUSDT")) == 2 and f.summary(acc).order_margin == 0


def test_state_round_trip_keeps_orders_positions_wallet_and_counters():
    async def session() -> None:
        venue = _venue()
        f, acc = venue.futures, venue.accounts.get("k1")
        assert acc is not None
        f.set_leverage(acc, "BTCUSDT", 5)
        f.new_order(acc, _req(side="BUY", type="MARKET", quantity="1"))
        resting, _ = f.new_order(acc, _req(side="SELL", type="LIMIT", timeInForce="GTC",
                                           quantity="0.4", price="100.50",
                                           newClientOrderId="keep-me"))
        state = json.loads(json.dumps(f.state()))  # JSON-able

        again = _venue()
        g, acc2 = again.futures, again.accounts.get("k1")
        assert acc2 is not None
        g.restore(state)
        assert g.wallets[1].balance == f.wallets[1].balance == D("999.94995")
        assert g.position_view(acc2, "BTCUSDT") == f.position_view(acc, "BTCUSDT")
        assert g.wallets[1].leverage == {"BTCUSDT": 5}
        [o] = g.open_orders(acc2, "BTCUSDT")
        assert (o.order_id, o.client_id, o.price, o.orig_qty) == (
            resting.order_id, "keep-me", D("100.50"), D("0.4"))
        assert [t.trade_id for t in g.user_trades(acc2, "BTCUSDT")] == [1]
        assert g.state() == state
        # the restored order is back on the book: a buy trade through 100.50 fills it (a
        # reduce of the 1.0 long: realizes 0.4 * (100.50 - 100.10) = 0.16)
        await again.publish(VenueMessage(0, "usdm", "BTCUSDT", "trade", {
            "e": "trade", "E": 5_000, "T": 5_000, "s": "BTCUSDT", "t": 9, "p": "100.60",
            "q": "1.000", "m": False}))
        assert o.status == "FILLED" and o.fills[0].realized == D("0.16")
        assert o.fills[0].trade_id == 2  # the trade id counter continued
        nxt, _ = g.new_order(acc2, _req(side="SELL", type="MARKET", quantity="0.1"))
        assert nxt.order_id == resting.order_id + 1
        # a state naming an account this venue does not have is refused by name
        other = Venue(book_source({KEY: BOOK}), wait_clients=0,
                      accounts=[{**ACCOUNT, "api_key": "k9"}, {**ACCOUNT, "api_key": "k8"}])
        state["wallets"]["7"] = state["wallets"]["1"]
        with pytest.raises(ValueError, match=r"uid \[7\]"):
            other.futures.restore(state)

    asyncio.run(session())


@pytest.mark.data
@pytest.mark.slow
def test_futures_on_the_replayed_usdm_recording(binance_ws):
    """A long opened on the real USD-M recording (2024-08-08 23:54 to 00:05 UTC) pays the real
    midnight funding settlement.

    Truth from the recording itself: the market buy fills at the recorded best ask of that
    moment; at the first message stamped after 2024-08-09 00:00:00 UTC the long pays
    0.01 x (the book's mid just before it) x the venue's default rate 0.01 %, once."""
    from tradelab.venue.accounts import DEMO_API_KEY
    from tradelab.venue.sources import RecordingSource

    midnight = 1723161600000

    async def run() -> None:
        venue = Venue(RecordingSource([binance_ws / "usdm_btcusdt_20240808.gz"]), speed=0,
                      wait_clients=0)
        acc = venue.accounts.get(DEMO_API_KEY)
        assert acc is not None
        f, book, src = venue.futures, venue.books[KEY], venue.source
        n, order, mid_at_settlement = 0, None, None
        while batch := src.take(None):
            for msg in batch:
                e_ms = msg.data.get("E") or msg.data.get("T")
                if mid_at_settlement is None and e_ms and int(e_ms) >= midnight:
                    bid, ask = book.best()
                    assert bid is not None and ask is not None
                    mid_at_settlement = D(f"{(bid + ask) / 2:.8f}")
                await venue.publish(msg)
                n += 1
                if order is None and n > 3000 and book.synced:
                    bid, ask = book.best()
                    assert ask is not None
                    assert D(book.asks[min(book.asks, key=D)]) >= D("0.01")  # one level fills it
                    order, _ = f.new_order(acc, _req(side="BUY", type="MARKET", quantity="0.01"))
                    assert [(x.price, x.qty, x.maker) for x in order.fills] == [
                        (D(f"{ask:.1f}"), D("0.010"), False)]
        assert order is not None and mid_at_settlement is not None
        entry = order.fills[0].price
        fee = (entry * D("0.01") * D("0.001")).quantize(D("0.00000001"))
        pay = (-D("0.01") * mid_at_settlement * D("0.0001")).quantize(D("0.00000001"))
        assert [(i.kind, i.amount, i.time_ms) for i in f.incomes(acc)] == [
            ("COMMISSION", -fee, order.fills[0].time_ms), ("FUNDING_FEE", pay, midnight)]
        assert f.wallets[1].balance == D(100000) - fee + pay
        pos = f.position_view(acc, "BTCUSDT")
        bid, ask = book.best()
        assert bid is not None and ask is not None
        assert (pos.amount, pos.entry) == (D("0.01"), entry)
        assert pos.unrealized == D("0.01") * (D(f"{(bid + ask) / 2:.8f}") - entry)

    asyncio.run(run())


def test_futures_wallet_config():
    from tradelab.venue.accounts import Accounts

    # without usdm_wallet the futures wallet starts with the USDT balance; the spot balance
    # itself is not touched by futures trading
    venue = Venue(book_source({KEY: BOOK}), wait_clients=0,
                  accounts=[{"api_key": "a", "secret": "b", "balances": {"USDT": "700"}}])
    acc = venue.accounts.get("a")
    assert acc is not None and venue.futures.wallets[1].balance == D(700)
    venue.futures.new_order(acc, _req(side="BUY", type="MARKET", quantity="1"))
    assert acc.balances()["USDT"] == (D(700), D(0))
    assert venue.futures.wallets[1].balance == D("699.8999")  # taker 0.1 % of 100.10
    with pytest.raises(ValueError, match="usdm_wallet is negative"):
        Accounts([{**ACCOUNT, "usdm_wallet": "-1"}])
    with pytest.raises(ValueError, match="usdm_wallet: 'lots' is not a number"):
        Accounts([{**ACCOUNT, "usdm_wallet": "lots"}])
