"""Spot order entry on the local venue: signing, accounts, matching on the shared core.

Truth: Binance's published signing example, and a hand-made book and order timeline whose
fills, fees and balances are worked out by hand below.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.venue_helpers import book_source
from tradelab.adapters.binance import trading as wire
from tradelab.venue.accounts import Accounts
from tradelab.venue.core import Venue
from tradelab.venue.sources import VenueMessage

D = Decimal
KEY = ("spot", "BTCUSDT")
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNT = {"api_key": "k1", "secret": "s1", "balances": {"USDT": "10000", "BTC": "1"},
           "maker_fee": "0.001", "taker_fee": "0.002"}


def test_binance_signing_example_reproduces():
    # Binance spot API docs, "SIGNED endpoint examples for POST /api/v3/order"
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    query = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
             "&recvWindow=5000&timestamp=1499827319559")
    sig = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert wire.sign(secret, query) == sig
    # the same request as a query string, as a body, and split between them: then the query
    # and the body are concatenated without a separator (the docs' third example)
    split_sig = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    for q, b, s in ((f"{query}&signature={sig}", "", sig), ("", f"{query}&signature={sig}", sig),
                    ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
                     "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
                     f"&signature={split_sig}", split_sig)):
        req = wire.parse_signed(q, b)
        assert req.signature == s
        wire.check_signature(req, secret)
        assert req.params["price"] == "0.1" and req.params["timestamp"] == "1499827319559"
        with pytest.raises(wire.BinanceError) as err:
            wire.check_signature(req, secret + "x")
        assert err.value.code == -1022
    wire.check_timestamp({"timestamp": "1499827319559", "recvWindow": "5000"}, 1499827320000)


@pytest.mark.parametrize(("ts", "window", "server", "code"), [
    (10_000, None, 15_001, -1021),  # older than the default 5000 ms window
    (10_000, "6000", 15_001, None),
    (16_000, None, 15_000, -1021),  # 1 s ahead
    (15_999, None, 15_000, None),
    (10_000, "60001", 10_000, -1131),
])
def test_timestamp_and_recv_window_rules(ts, window, server, code):
    params = {"timestamp": str(ts)} | ({"recvWindow": window} if window else {})
    if code is None:
        wire.check_timestamp(params, server)
        return
    with pytest.raises(wire.BinanceError) as err:
        wire.check_timestamp(params, server)
    assert err.value.code == code


def test_accounts_config_and_secrets_stay_hidden():
    accs = Accounts([ACCOUNT])
    acc = accs.get("k1")
    assert acc is not None and acc.balances()["USDT"] == (D(10000), D(0))
    assert "s1" not in repr(acc) and "k1" not in repr(acc)
    assert accs.get("nope") is None
    with pytest.raises(ValueError, match="negative"):
        Accounts([{**ACCOUNT, "balances": {"USDT": "-1"}}])
    with pytest.raises(ValueError, match="unknown fields"):
        Accounts([{**ACCOUNT, "fee": "0.1"}])
    with pytest.raises(ValueError, match="duplicate api_key"):
        Accounts([ACCOUNT, ACCOUNT])
    assert Accounts().get("tradelab-demo-api-key") is not None  # built-in demo pair


def _order(**kw: str) -> wire.OrderRequest:
    return wire.parse_order({"symbol": "BTCUSDT", **kw})


def test_hand_made_book_and_order_timeline():
    """Fills, fees and balances of a short session, worked out by hand.

    Book: bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1, 100.03 x 4. Maker fee 0.1 %, taker 0.2 %.
    """

    async def session() -> None:
        venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])
        t = venue.trading
        acc = venue.accounts.get("k1")
        assert acc is not None

        def bal(asset: str) -> tuple[Decimal, Decimal]:
            return acc.balances()[asset]

        # 1. buy 0.5 @ 100.00 rests behind the 2.0 visible there; 50 USDT locked
        o1 = t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="GTC",
                                     quantity="0.5", price="100.00"))
        assert o1 is not None and o1.status == "NEW" and not o1.fills
        assert bal("USDT") == (D("9950"), D("50"))

        # 2. the market sells 2.2 at 100.00: 2.0 ahead of us, so 0.2 reaches us (maker)
        await venue.publish(VenueMessage(0, "spot", "BTCUSDT", "trade", {
            "e": "trade", "E": 1_000, "s": "BTCUSDT", "t": 1, "p": "100.00", "q": "2.20000",
            "T": 1_000, "m": True}))
        assert o1.status == "PARTIALLY_FILLED" and o1.executed == D("0.2")
        f = o1.fills[0]
        assert (f.price, f.qty, f.commission, f.commission_asset, f.maker) == (
            D("100.00"), D("0.20000"), D("0.0002"), "BTC", True)
        assert bal("USDT") == (D("9950"), D("30"))  # 20 of the lock spent
        assert bal("BTC") == (D("1.1998"), D(0))  # + 0.2 - 0.0002 fee

        # 3. market buy 1.5 walks the asks: 1 @ 100.02 and 0.5 @ 100.03, taker fee in BTC
        o2 = t.new_order(acc, _order(side="BUY", type="MARKET", quantity="1.5"))
        assert o2 is not None and o2.status == "FILLED"
        assert [(x.price, x.qty, x.commission) for x in o2.fills] == [
            (D("100.02"), D("1.00000"), D("0.002")), (D("100.03"), D("0.50000"), D("0.001"))]
        assert o2.cum_quote == D("150.035")
        assert bal("USDT") == (D("9799.965"), D("30"))
        assert bal("BTC") == (D("2.6968"), D(0))  # 1.1998 + 1.5 - 0.003

        # 4. a post-only sell at the best bid would take: refused, nothing moves
        with pytest.raises(wire.BinanceError) as err:
            t.new_order(acc, _order(side="SELL", type="LIMIT_MAKER", quantity="1",
                                    price="100.00"))
        assert (err.value.code, err.value.msg) == (-2010, "Order would immediately match and take.")
        assert bal("BTC") == (D("2.6968"), D(0))

        # 5. sell 1 @ 100.05 rests and locks 1 BTC
        o3 = t.new_order(acc, _order(side="SELL", type="LIMIT", timeInForce="GTC",
                                     quantity="1", price="100.05"))
        assert o3 is not None and o3.status == "NEW"
        assert bal("BTC") == (D("1.6968"), D("1"))

        # 6. the market's bid jumps to 100.06 (a depth diff): the book crosses our ask, which
        #    fills whole at its price as maker; the fee is in USDT
        await venue.publish(VenueMessage(0, "spot", "BTCUSDT", "depth", {
            "e": "depthUpdate", "E": 2_000, "s": "BTCUSDT", "U": 101, "u": 101,
            "b": [["100.06", "3.00000"]], "a": []}))
        assert o3.status == "FILLED"
        assert [(x.price, x.qty, x.commission, x.commission_asset) for x in o3.fills] == [
            (D("100.05"), D("1.00000"), D("0.10005"), "USDT")]
        assert bal("BTC") == (D("1.6968"), D(0))
        assert bal("USDT") == (D("9899.91495"), D("30"))  # + 100.05 - 0.10005

        # 7. cancel the rest of the buy: its 30 USDT come back
        assert t.cancel(acc, "BTCUSDT", o1.order_id, None).status == "CANCELED"
        assert bal("USDT") == (D("9929.91495"), D(0))
        with pytest.raises(wire.BinanceError) as err:
            t.cancel(acc, "BTCUSDT", o1.order_id, None)
        assert err.value.code == -2011

        trades = t.my_trades(acc, "BTCUSDT")
        assert [(x.order_id, x.qty, x.is_buyer, x.is_maker) for x in trades] == [
            (o1.order_id, D("0.20000"), True, True), (o2.order_id, D("1.00000"), True, False),
            (o2.order_id, D("0.50000"), True, False), (o3.order_id, D("1.00000"), False, True)]
        assert [x.trade_id for x in trades] == [1, 2, 3, 4]

    asyncio.run(session())


def test_order_checks_name_the_problem():
    venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])
    t, acc = venue.trading, venue.accounts.get("k1")
    assert acc is not None

    def code(**kw: str) -> tuple[int, str]:
        with pytest.raises(wire.BinanceError) as err:
            t.new_order(acc, _order(**kw))
        return err.value.code, err.value.msg

    assert code(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5",
                price="100.001") == (-1013, "Filter failure: PRICE_FILTER")
    assert code(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.000015",
                price="100") == (-1013, "Filter failure: LOT_SIZE")
    assert code(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                price="100") == (-1013, "Filter failure: NOTIONAL")
    assert code(side="BUY", type="LIMIT", timeInForce="GTC", quantity="102",
                price="99") == (-2010, wire.MSG_INSUFFICIENT)
    assert code(side="SELL", type="MARKET", quantity="2") == (-2010, wire.MSG_INSUFFICIENT)
    assert code(side="BUY", type="MARKET", quoteOrderQty="10000.01") == (
        -2010, wire.MSG_INSUFFICIENT)
    with pytest.raises(wire.BinanceError) as err:
        t.new_order(acc, wire.parse_order({"symbol": "DOGEUSDT", "side": "BUY",
                                           "type": "MARKET", "quantity": "1"}))
    assert err.value.code == -1121
    with pytest.raises(wire.BinanceError) as err:
        wire.parse_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                          "quantity": "1", "price": "1"})
    assert (err.value.code, err.value.msg) == (
        -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
    # a duplicate client id of an open order is refused; nothing was locked by the refusals
    t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1",
                            price="99.00", newClientOrderId="mine-1"))
    assert code(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="99.00",
                newClientOrderId="mine-1") == (-2010, "Duplicate order sent.")
    assert acc.balances()["USDT"] == (D("9990.1"), D("9.9"))
    # once that order is cancelled the client id is free again (Binance checks open orders
    # only); a lookup by client id finds the newest order carrying it
    first = t.cancel(acc, "BTCUSDT", None, "mine-1")
    again = t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="GTC",
                                    quantity="0.1", price="98.00", newClientOrderId="mine-1"))
    assert again is not None and again.order_id != first.order_id
    assert t.query(acc, "BTCUSDT", None, "mine-1") is again
    assert [o.order_id for o in t.orders.with_client_id(acc, "mine-1")] == [first.order_id,
                                                                           again.order_id]


def test_ioc_fok_and_quote_quantity_market():
    venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])
    t, acc = venue.trading, venue.accounts.get("k1")
    assert acc is not None
    # FOK for 2 at 100.02 sees only 1 there: expires whole, nothing fills, nothing stays locked
    fok = t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="FOK", quantity="2",
                                  price="100.02"))
    assert fok is not None and fok.status == "EXPIRED" and not fok.fills
    # IOC for 2 at 100.02 takes the 1 there and expires the rest
    ioc = t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="IOC", quantity="2",
                                  price="100.02"))
    assert ioc is not None and ioc.status == "EXPIRED" and ioc.executed == D("1")
    # the IOC took the 1 at 100.02 (until the market's next update the venue does not offer it
    # again), so 10.0 USDT of quote buys 10 / 100.03 = 0.09997 (step 0.00001, truncated)
    mkt = t.new_order(acc, _order(side="BUY", type="MARKET", quoteOrderQty="10"))
    assert mkt is not None and mkt.status == "FILLED" and mkt.executed == D("0.09997")
    assert mkt.cum_quote == D("9.9999991")
    assert mkt.orig_quote_qty == D("10")
    usdt = D(10000) - D("100.02") - D("9.9999991")
    assert acc.balances()["USDT"] == (usdt, D(0))
    # an executed MARKET or IOC order worked from its transaction time (workingTime -1 is only
    # for a conditional order not set off yet): ccxt takes it as the order's timestamp
    for o in (mkt, ioc):
        full = wire.new_order_response(o.view(), o.fill_views(), "FULL")
        assert full["workingTime"] == full["transactTime"] == o.time_ms > 0


def test_accounts_file_loads_and_bad_files_are_named(tmp_path):
    from pathlib import Path

    from tradelab.errors import ConfigError
    from tradelab.venue.accounts import load_accounts

    shipped = Path(__file__).resolve().parents[1] / "configs" / "venue_accounts.yaml"
    accs = Accounts(load_accounts(shipped))
    trader = accs.get("local-trader-key")
    assert trader is not None and trader.balances()["BTC"] == (D("0.5"), D(0))
    assert trader.usdm_wallet == D("20000")
    ro = accs.get("local-readonly-key")
    assert ro is not None and not ro.can_trade
    bad = tmp_path / "a.yaml"
    bad.write_text("accounts:\n  - api_key: k\n    secret: s\n    balances: {USDT: lots}\n")
    with pytest.raises(ConfigError, match="a.yaml: account #1 balance of USDT: 'lots' is not"):
        load_accounts(bad)
    bad.write_text("accounts: []\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        load_accounts(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_accounts(tmp_path / "missing.yaml")


@pytest.mark.data
@pytest.mark.slow
def test_orders_on_the_replayed_spot_recording(binance_ws):
    """A resting bid 3.00 under the market and a market sell, on the real recording.

    Truth from the recorded messages themselves: the bid cannot fill before the market trades
    (or offers) at its price, must be filled whole once a trade prints below it, and fills at
    its own price as maker; the market sell fills at the recorded best bid of that moment."""
    from tradelab.venue.accounts import DEMO_API_KEY
    from tradelab.venue.sources import RecordingSource

    async def run() -> None:
        venue = Venue(RecordingSource([binance_ws / "spot_btcusdt_20240808.gz"]), speed=0,
                      wait_clients=0)
        acc = venue.accounts.get(DEMO_API_KEY)
        assert acc is not None
        book = venue.books[KEY]
        src = venue.source
        n, order, price = 0, None, D(0)
        reachable_at = through_at = filled_at = None
        while batch := src.take(None):
            for msg in batch:
                await venue.publish(msg)
                n += 1
                if order is None and n > 3000 and book.synced:
                    bid, ask = book.best()
                    assert bid is not None and ask is not None
                    sell = venue.trading.new_order(acc, _order(side="SELL", type="MARKET",
                                                               quantity="0.01"))
                    assert sell is not None and sell.status == "FILLED"
                    best_bid_qty = D(book.bids[max(book.bids, key=D)])
                    assert best_bid_qty >= D("0.01")  # so one fill at the best bid
                    assert [(f.price, f.maker) for f in sell.fills] == [
                        (D(f"{bid:.2f}"), False)]
                    price = D(f"{bid:.2f}") - 3
                    order = venue.trading.new_order(acc, _order(
                        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                        price=str(price)))
                    assert order is not None and order.status == "NEW"
                    continue
                if order is None:
                    continue
                if reachable_at is None:
                    best_ask = book.best()[1]
                    if (msg.kind == "trade" and D(msg.data["p"]) <= price) or (
                            best_ask is not None and D(f"{best_ask:.2f}") <= price):
                        reachable_at = n
                if through_at is None and msg.kind == "trade" and D(msg.data["p"]) < price:
                    through_at = n
                if filled_at is None and order.fills:
                    filled_at = n
        assert order is not None and reachable_at is not None and through_at is not None
        assert filled_at is not None and reachable_at <= filled_at <= through_at
        assert order.status == "FILLED"
        assert [(f.price, f.qty, f.maker, f.commission) for f in order.fills] == [
            (price, D("0.01000"), True, D("0.00001"))]
        sell_quote = venue.trading.my_trades(acc, "BTCUSDT")[0].quote_qty
        fee = (sell_quote * D("0.001")).quantize(D("0.00000001"), rounding="ROUND_DOWN")
        assert acc.balances()["USDT"] == (D(100000) + sell_quote - fee - price * D("0.01"), 0)
        assert acc.balances()["BTC"] == (D(1) - D("0.01") + D("0.01") - D("0.00001"), 0)

    asyncio.run(run())


def test_market_order_bigger_than_the_book_fills_what_is_there_and_expires():
    venue = Venue(book_source({KEY: BOOK}), wait_clients=0,
                  accounts=[{**ACCOUNT, "balances": {"USDT": "1000"}},
                            {**ACCOUNT, "api_key": "k2", "balances": {"USDT": "150"}}])
    t, acc, poor = venue.trading, venue.accounts.get("k1"), venue.accounts.get("k2")
    assert acc is not None and poor is not None
    # 1.5 would cost 100.02 + 0.5 * 100.03 = 150.035 > 150
    with pytest.raises(wire.BinanceError) as err:
        t.new_order(poor, _order(side="BUY", type="MARKET", quantity="1.5"))
    assert (err.value.code, err.value.msg) == (-2010, wire.MSG_INSUFFICIENT)
    assert poor.balances()["USDT"] == (D(150), D(0))
    # the asks hold 5 (1 @ 100.02, 4 @ 100.03): costs 500.14, the rest of 6 expires
    o = t.new_order(acc, _order(side="BUY", type="MARKET", quantity="6"))
    assert o is not None and o.status == "EXPIRED" and o.executed == D("5")
    assert o.cum_quote == D("500.14")
    assert acc.balances()["USDT"] == (D("499.86"), D(0))
    assert acc.balances()["BTC"] == (D("4.99"), D(0))  # 5 less the 0.2 % taker fee
