"""Conditional spot orders (STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT).

Truth: Binance's trigger rules (a stop-loss buys when the last price rises to the stop and
sells when it falls to it; a take-profit the other way round) and a hand-made book and trade
timeline whose fills and balances are worked out below.

Book: bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1, 100.03 x 4. Maker fee 0.1 %, taker 0.2 %.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest

from tests.venue_helpers import book_source, venue_in_thread
from tradelab.adapters.binance import trading as wire
from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.venue.conditional import triggers
from tradelab.venue.core import Venue
from tradelab.venue.sources import VenueMessage

D = Decimal
KEY = ("spot", "BTCUSDT")
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNT = {"api_key": "k1", "secret": "s1", "balances": {"USDT": "10000", "BTC": "1"},
           "maker_fee": "0.001", "taker_fee": "0.002"}


def _order(**kw: str) -> wire.OrderRequest:
    return wire.parse_order({"symbol": "BTCUSDT", **kw})


def _trade(t_ms: int, px: str, buyer_maker: bool, qty: str = "0.10000") -> VenueMessage:
    return VenueMessage(0, "spot", "BTCUSDT", "trade", {
        "e": "trade", "E": t_ms, "s": "BTCUSDT", "t": t_ms, "p": px, "q": qty, "T": t_ms,
        "m": buyer_maker})


@pytest.mark.parametrize(("otype", "side", "last", "fires"), [
    ("STOP_LOSS", "SELL", "99.99", True), ("STOP_LOSS", "SELL", "100.00", True),
    ("STOP_LOSS", "SELL", "100.01", False), ("STOP_LOSS_LIMIT", "BUY", "100.00", True),
    ("STOP_LOSS_LIMIT", "BUY", "99.99", False), ("TAKE_PROFIT", "SELL", "100.00", True),
    ("TAKE_PROFIT", "SELL", "99.99", False), ("TAKE_PROFIT_LIMIT", "BUY", "100.00", True),
    ("TAKE_PROFIT_LIMIT", "BUY", "100.01", False),
])
def test_binance_direction_rules_at_stop_100(otype, side, last, fires):
    assert triggers(otype, side, D("100.00"), D(last)) is fires


def test_parameters_of_conditional_orders_are_checked():
    def code(**kw: str) -> tuple[int, str]:
        with pytest.raises(wire.BinanceError) as err:
            _order(**kw)
        return err.value.code, err.value.msg

    assert code(side="SELL", type="STOP_LOSS", quantity="1") == (
        -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.")
    assert code(side="SELL", type="STOP_LOSS_LIMIT", quantity="1", price="99",
                stopPrice="99")[0] == -1102  # timeInForce
    assert code(side="SELL", type="TAKE_PROFIT", quantity="1", price="99",
                stopPrice="99") == (-1106, "Parameter 'price' sent when not required.")
    assert code(side="BUY", type="TAKE_PROFIT", quoteOrderQty="10", stopPrice="99") == (
        -1106, "Parameter 'quoteOrderQty' sent when not required.")
    assert code(side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="99",
                stopPrice="98") == (-1106, "Parameter 'stopPrice' sent when not required.")
    err = code(side="SELL", type="STOP_LOSS", quantity="1", trailingDelta="100")
    assert err[0] == -1106 and "trailingDelta" in err[1] and "not supported" in err[1]


def test_hand_made_conditional_timeline():
    async def session() -> None:
        venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])
        t, acc = venue.trading, venue.accounts.get("k1")
        assert acc is not None

        def bal(asset: str) -> tuple[Decimal, Decimal]:
            return acc.balances()[asset]

        await venue.publish(_trade(1_000, "100.01", True))  # last price 100.01
        # b: stop-loss sell 0.5 at 100.00 waits (100.01 > 100.00); 0.5 BTC locked
        b = t.new_order(acc, _order(side="SELL", type="STOP_LOSS", quantity="0.5",
                                    stopPrice="100.00"))
        assert b is not None and b.status == "NEW" and not b.view().working
        st = wire.order_status(b.view())
        assert (st["type"], st["stopPrice"], st["isWorking"], st["workingTime"]) == (
            "STOP_LOSS", "100.00000000", False, -1)
        # a stop-loss sell at 100.01 would fire at once: refused, nothing locked
        with pytest.raises(wire.BinanceError) as err:
            t.new_order(acc, _order(side="SELL", type="STOP_LOSS", quantity="0.5",
                                    stopPrice="100.01"))
        assert (err.value.code, err.value.msg) == (-2010, "Stop price would trigger immediately.")
        # d: take-profit-limit sell 0.3 @ 100.04, stop 100.03; 0.3 BTC locked
        d = t.new_order(acc, _order(side="SELL", type="TAKE_PROFIT_LIMIT", timeInForce="GTC",
                                    quantity="0.3", price="100.04", stopPrice="100.03"))
        # e: stop-loss-limit buy 1 @ 100.03, stop 100.02: 100.03 USDT locked
        e = t.new_order(acc, _order(side="BUY", type="STOP_LOSS_LIMIT", timeInForce="GTC",
                                    quantity="1", price="100.03", stopPrice="100.02"))
        # f: take-profit buy 0.2, stop 99.98: locks 0.2 x 99.98 = 19.996 USDT
        f = t.new_order(acc, _order(side="BUY", type="TAKE_PROFIT", quantity="0.2",
                                    stopPrice="99.98"))
        with pytest.raises(wire.BinanceError) as err:  # 100.01 <= 100.05: would fire now
            t.new_order(acc, _order(side="BUY", type="TAKE_PROFIT", quantity="0.2",
                                    stopPrice="100.05"))
        assert err.value.msg == wire.MSG_STOP_IMMEDIATE
        # h: waits, then is cancelled before anything fires: its 0.1 BTC comes back
        h = t.new_order(acc, _order(side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC",
                                    quantity="0.1", price="99.00", stopPrice="99.50"))
        assert h is not None and bal("BTC") == (D("0.1"), D("0.9"))
        assert t.cancel(acc, "BTCUSDT", h.order_id, None).status == "CANCELED"
        assert b is not None and d is not None and e is not None and f is not None
        assert bal("BTC") == (D("0.2"), D("0.8"))
        assert bal("USDT") == (D("9879.974"), D("120.026"))
        assert [o.order_id for o in t.open_orders(acc, "BTCUSDT")] == [
            b.order_id, d.order_id, e.order_id, f.order_id]

        # a buy at 100.02 sets off e: its limit buy 1 @ 100.03 takes the 1 at 100.02 (taker,
        # 0.002 BTC fee); 100.03 of the lock is spent and 0.01 of it comes back
        await venue.publish(_trade(2_000, "100.02", False))
        assert e.status == "FILLED" and e.triggered_ms == 2_000
        assert [(x.price, x.qty, x.commission, x.maker) for x in e.fills] == [
            (D("100.02"), D("1.00000"), D("0.002"), False)]
        assert b.status == d.status == f.status == "NEW" and b.waiting and d.waiting
        assert bal("USDT") == (D("9879.984"), D("19.996"))
        assert bal("BTC") == (D("1.198"), D("0.8"))

        # a buy at 100.03 sets off d: its sell 0.3 @ 100.04 rests (best bid 100.00)
        await venue.publish(_trade(3_000, "100.03", False))
        assert d.status == "NEW" and not d.waiting and not d.fills
        st = wire.order_status(d.view())
        assert (st["isWorking"], st["workingTime"], st["stopPrice"]) == (
            True, 3_000, "100.03000000")

        # a sell at 99.98 sets off b (sell 0.5 at market: 0.5 @ 100.00, fee 0.1 USDT) and f
        # (buy 0.2 at market: the 1 at 100.02 was taken by e until the market's next update,
        # so 0.2 @ 100.03 = 20.006 USDT, fee 0.0004 BTC), in order of their ids
        await venue.publish(_trade(4_000, "99.98", True))
        assert b.status == f.status == "FILLED"
        assert [(x.price, x.qty, x.commission) for x in b.fills] == [
            (D("100.00"), D("0.50000"), D("0.1"))]
        assert [(x.price, x.qty, x.commission) for x in f.fills] == [
            (D("100.03"), D("0.20000"), D("0.0004"))]
        # USDT: 9879.984 + 50 - 0.1 + 19.996 (f's lock back) - 20.006
        assert bal("USDT") == (D("9929.874"), D(0))
        assert bal("BTC") == (D("1.3976"), D("0.3"))  # 1.198 + 0.2 - 0.0004; d holds 0.3
        assert t.cancel(acc, "BTCUSDT", d.order_id, None).status == "CANCELED"
        assert bal("BTC") == (D("1.6976"), D(0))

    asyncio.run(session())


def test_untriggered_stop_survives_a_restart_and_fires_after(tmp_path):
    path = tmp_path / "j"

    async def before() -> int:
        venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT],
                      journal=path)
        acc = venue.accounts.get("k1")
        await venue.publish(_trade(1_000, "100.01", True))
        o = venue.trading.new_order(acc, _order(side="SELL", type="STOP_LOSS_LIMIT",
                                                timeInForce="GTC", quantity="0.5",
                                                price="99.99", stopPrice="100.00"))
        assert o is not None
        return o.order_id

    oid = asyncio.run(before())

    async def after() -> None:
        venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT],
                      journal=path)
        acc = venue.accounts.get("k1")
        o = venue.trading.orders[oid]
        assert o.waiting and acc.balances()["BTC"] == (D("0.5"), D("0.5"))
        with pytest.raises(wire.BinanceError):  # the last price came back too
            venue.trading.new_order(acc, _order(side="SELL", type="STOP_LOSS", quantity="0.1",
                                                stopPrice="100.01"))
        await venue.publish(_trade(2_000, "100.00", True))  # fires: sells 0.5 into 100.00
        assert o.status == "FILLED" and [(x.price, x.maker) for x in o.fills] == [
            (D("100.00"), False)]

    asyncio.run(after())


def _client(rest_url: str) -> ccxt.binance:
    return make_client("spot", "k1", "s1", rest_url, asynchronous=False, rate_limit=False)


@pytest.mark.slow
def test_ccxt_places_all_four_conditional_types():
    def make() -> Venue:
        return Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])

    with venue_in_thread(make, tls_port=None) as rv:
        loop = rv.replay.get_loop()
        asyncio.run_coroutine_threadsafe(rv.venue.publish(_trade(1_000, "100.01", True)),
                                         loop).result(10)
        ex = _client(rv.rest_url)
        ex.load_markets()
        placed = [
            ex.create_order("BTC/USDT", "STOP_LOSS", "sell", 0.1, None, {"stopPrice": 99.5}),
            ex.create_order("BTC/USDT", "STOP_LOSS_LIMIT", "buy", 0.1, 101.1,
                            {"stopPrice": 101.0, "timeInForce": "GTC"}),
            ex.create_order("BTC/USDT", "TAKE_PROFIT", "sell", 0.1, None, {"stopPrice": 101.5}),
            ex.create_order("BTC/USDT", "TAKE_PROFIT_LIMIT", "buy", 0.1, 99.0,
                            {"stopPrice": 99.2, "timeInForce": "GTC"}),
        ]
        got = {o["id"]: o for o in ex.fetch_open_orders("BTC/USDT")}
        assert [(got[p["id"]]["info"]["type"], got[p["id"]]["triggerPrice"],
                 got[p["id"]]["info"]["isWorking"]) for p in placed] == [
            ("STOP_LOSS", 99.5, False), ("STOP_LOSS_LIMIT", 101.0, False),
            ("TAKE_PROFIT", 101.5, False), ("TAKE_PROFIT_LIMIT", 99.2, False)]
        # locked: BTC 0.1 + 0.1 (sells); USDT 0.1 x 101.1 + 0.1 x 99.0 (limit buys)
        bal = ex.fetch_balance()
        assert bal["BTC"]["used"] == pytest.approx(0.2)
        assert bal["USDT"]["used"] == pytest.approx(20.01)
        with pytest.raises(ccxt.OrderImmediatelyFillable, match="would trigger immediately"):
            ex.create_order("BTC/USDT", "STOP_LOSS", "sell", 0.1, None, {"stopPrice": 100.5})
        # a trade at 99.5 sets off the stop-loss sell: 0.1 at market into the 100.00 bid
        asyncio.run_coroutine_threadsafe(rv.venue.publish(_trade(2_000, "99.50", True)),
                                         loop).result(10)
        done = ex.fetch_order(placed[0]["id"], "BTC/USDT")
        assert (done["status"], done["filled"], done["average"]) == ("closed", 0.1, 100.0)
        assert ex.cancel_order(placed[1]["id"], "BTC/USDT")["status"] == "canceled"
