"""The venue's order latency: actions take effect and are answered on the venue clock.

Truth: a hand-made book and timeline whose fills, fees and balances are worked out by hand in the
comments; the latency configs are checked against the matching core's own latency functions.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tests.venue_helpers import book_source
from tradelab.adapters.binance import trading as wire
from tradelab.errors import ConfigError
from tradelab.matching.types import A_CANCEL, A_PLACE
from tradelab.venue.core import Venue
from tradelab.venue.latency import OrderGate, VenueLatency, latency_from_config, parse_latency
from tradelab.venue.sources import VenueMessage

D = Decimal
MS = 1_000_000
KEY = ("spot", "BTCUSDT")
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNT = {"api_key": "k1", "secret": "s1", "balances": {"USDT": "10000", "BTC": "1"},
           "maker_fee": "0.001", "taker_fee": "0.002"}


def _order(**kw: str) -> wire.OrderRequest:
    return wire.parse_order({"symbol": "BTCUSDT", **kw})


def test_hand_made_timeline_with_latency():
    """Place 10 ms in, cancel 8 ms in, every answer 5 ms back; the clock is the stream's.

    Book: bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1, 100.03 x 4. Maker 0.1 %, taker 0.2 %
    (in the asset received). Queue model: risk-averse (only trades move us forward).
    """

    async def session() -> None:
        lat = VenueLatency.per_action((10 * MS, 5 * MS), (8 * MS, 5 * MS), (0, 0))
        venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT], latency=lat)
        t, gate = venue.trading, venue.gate
        acc = venue.accounts.get("k1")
        assert acc is not None
        uid = iter(range(101, 200))

        def bal(asset: str) -> tuple[Decimal, Decimal]:
            return acc.balances()[asset]

        async def depth(e_ms: int, bids=(), asks=()) -> None:
            u = next(uid)
            await venue.publish(VenueMessage(0, "spot", "BTCUSDT", "depth", {
                "e": "depthUpdate", "E": e_ms, "s": "BTCUSDT", "U": u, "u": u,
                "b": [list(x) for x in bids], "a": [list(x) for x in asks]}))

        async def sell_trade(e_ms: int, px: str, qty: str) -> None:
            await venue.publish(VenueMessage(0, "spot", "BTCUSDT", "trade", {
                "e": "trade", "E": e_ms, "s": "BTCUSDT", "t": e_ms, "p": px, "q": qty,
                "T": e_ms, "m": True}))

        gate.set_streaming(True)  # as the replay does once it runs
        await depth(1000, bids=[("99.98", "1.00000")])  # the venue clock reads 1000 ms

        # 1. buy 0.5 @ 100.00 sent at 1000: takes effect at 1010, answered at 1015
        buy = gate.submit(A_PLACE, lambda: t.new_order(acc, _order(
            side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5", price="100.00")))
        assert (buy.sent_ns, buy.effective_ns) == (1000 * MS, 1010 * MS)
        assert not buy.applied and bal("USDT") == (D(10000), D(0))  # nothing locked yet
        await sell_trade(1005, "100.00", "1.00000")  # before us: no queue position yet
        await depth(1008, bids=[("100.00", "1.00000")])  # the level after that trade
        # stamped 1010, the very time the order takes effect: the market goes first, so this
        # 1.2 sold into the 1.0 visible (hidden size) does not reach the order (it would fill
        # 0.2 of it were the order first)
        await sell_trade(1010, "100.00", "1.20000")
        assert not buy.applied
        # the next message (1012) releases the order first: it joins behind the 1.0 visible;
        # then the level reads 0.7 and the risk-averse queue puts us min(1.0, 0.7) = 0.7 back
        await depth(1012, bids=[("100.00", "0.70000")])
        assert buy.applied and not buy.answered and not buy.result.fills
        order = buy.result
        assert order.status == "NEW" and order.time_ms == 1010
        assert bal("USDT") == (D("9950"), D("50"))  # 0.5 x 100.00 locked
        await depth(1015, bids=[("99.97", "1.00000")])  # stamped 1015: the answer is not out
        assert not buy.answered
        # 2. the market sells 1.0 @ 100.00 at 1020: 0.7 ahead of us, 0.3 reaches us (maker);
        #    the answer (due 1015) goes out before this message is applied
        await sell_trade(1020, "100.00", "1.00000")
        assert buy.answered and buy.outcome() is order
        assert [(f.price, f.qty, f.commission, f.maker, f.time_ms) for f in order.fills] == [
            (D("100.00"), D("0.30000"), D("0.0003"), True, 1020)]
        assert bal("USDT") == (D("9950"), D("20"))  # 30 of the lock spent
        assert bal("BTC") == (D("1.2997"), D(0))  # 1 + 0.3 - 0.0003

        # 3. a cancel sent at 1020 takes effect at 1028: too late, a sell of 0.4 at 1025
        #    fills the remaining 0.2 first (fee 0.0002 BTC)
        cancel = gate.submit(A_CANCEL, lambda: t.cancel(acc, "BTCUSDT", order.order_id, None))
        assert cancel.effective_ns == 1028 * MS
        await sell_trade(1025, "100.00", "0.40000")
        assert order.status == "FILLED" and order.executed == D("0.5")
        assert bal("USDT") == (D("9950"), D(0))
        assert bal("BTC") == (D("1.4995"), D(0))  # 1.2997 + 0.2 - 0.0002
        await depth(1031, asks=[("100.02", "0.50000")])  # cancel applied before this: -2011
        assert cancel.applied and not cancel.answered  # its answer is due at 1033
        # 4. market buy 1.2 sent at 1031 takes effect at 1041, after the ask at 100.02 fell
        #    to 0.5 (at 1031) and nothing else: 0.5 @ 100.02 + 0.7 @ 100.03 = 50.01 + 70.021
        mkt = gate.submit(A_PLACE, lambda: t.new_order(acc, _order(
            side="BUY", type="MARKET", quantity="1.2")))
        await depth(1045, bids=[("99.96", "1.00000")])
        with pytest.raises(wire.BinanceError) as err:
            cancel.outcome()
        assert err.value.code == -2011
        m = mkt.result
        assert m.status == "FILLED" and m.time_ms == 1041
        assert [(f.price, f.qty, f.commission, f.maker) for f in m.fills] == [
            (D("100.02"), D("0.50000"), D("0.0010"), False),
            (D("100.03"), D("0.70000"), D("0.0014"), False)]  # 0.2 % of each quantity
        assert m.cum_quote == D("120.031")
        assert bal("USDT") == (D("9829.969"), D(0))  # 9950 - 120.031
        assert bal("BTC") == (D("2.6971"), D(0))  # 1.4995 + 1.2 - 0.0024

        # 5. first in, first out: a place sent at 1045 (effect 1055) and a cancel of it sent at
        #    1046 (8 ms: 1054) cannot overtake it; the cancel takes effect right after it
        rest = gate.submit(A_PLACE, lambda: t.new_order(acc, _order(
            side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="99.50",
            newClientOrderId="fifo")))
        await depth(1046, bids=[("99.95", "1.00000")])
        undo = gate.submit(A_CANCEL, lambda: t.cancel(acc, "BTCUSDT", None, "fifo"))
        assert (rest.effective_ns, undo.effective_ns) == (1055 * MS, 1055 * MS)
        await depth(1070, bids=[("99.94", "1.00000")])
        assert rest.outcome().status == "CANCELED" and undo.outcome() is rest.result
        assert bal("USDT") == (D("9829.969"), D(0))  # 9.95 locked, then unlocked

        # the replay ends: nothing pending is left behind
        late = gate.submit(A_PLACE, lambda: t.new_order(acc, _order(
            side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="101.00")))
        gate.set_streaming(False)
        assert late.answered and late.outcome().time_ms == 1080
        assert bal("BTC") == (D("1.6971"), D(1))

    asyncio.run(session())


def test_zero_latency_and_idle_clock_take_effect_at_once():
    venue = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT])
    acc = venue.accounts.get("k1")
    assert acc is not None and venue.gate.latency.zero
    venue.gate.set_streaming(True)
    tk = venue.gate.submit(A_PLACE, lambda: venue.trading.new_order(acc, _order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5", price="99.00")))
    assert tk.answered and tk.outcome().status == "NEW"
    # not streaming (before the replay starts, paused, ended): the clock stands still
    slow = Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT],
                 latency=VenueLatency.constant(50 * MS, 50 * MS))
    acc2 = slow.accounts.get("k1")
    assert acc2 is not None
    tk = slow.gate.submit(A_PLACE, lambda: slow.trading.new_order(acc2, _order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5", price="99.00")))
    assert tk.answered and tk.effective_ns == tk.sent_ns + 50 * MS


def test_paced_replay_does_not_hold_orders_on_a_quiet_stream():
    """speed > 0: with no message coming, the wall clock carries the action through."""

    async def run() -> None:
        done: list[int] = []
        gate = OrderGate(VenueLatency.constant(20 * MS, 10 * MS), lambda: 5_000 * MS,
                         lambda t: done.append(t) if t is not None else None, speed=10.0)
        gate.set_streaming(True)
        tk = gate.submit(A_PLACE, lambda: "placed")
        assert not tk.applied
        assert await asyncio.wait_for(tk.wait(), 30) == "placed"
        assert done == [5_020 * MS] and tk.respond_ns == 5_030 * MS

    asyncio.run(run())


def test_negative_entry_latency_is_refused_with_1008():
    # a recorded table whose second row is a rejection (exchange time 0), as hftbacktest's
    table = np.array([[1_000 * MS, 1_004 * MS, 1_008 * MS], [2_000 * MS, 0, 2_006 * MS],
                      [3_000 * MS, 3_002 * MS, 3_003 * MS]])
    lat = VenueLatency.recorded(table)
    assert lat.entry_ns(1_000 * MS, A_PLACE) == 4 * MS
    assert lat.entry_ns(1_500 * MS, A_PLACE) < 0  # bracketed by the rejection row
    gate = OrderGate(lat, lambda: 1_500 * MS, lambda t: None)
    ran: list[int] = []
    tk = gate.submit(A_PLACE, lambda: ran.append(1))
    assert tk.effective_ns is None and not ran
    with pytest.raises(wire.BinanceError) as err:
        tk.outcome()
    assert (err.value.status, err.value.code) == (503, -1008)
    tk = OrderGate(lat, lambda: 3_000 * MS, lambda t: None).submit(A_PLACE, lambda: "ok")
    assert tk.effective_ns == 3_002 * MS and tk.respond_ns == 3_003 * MS


def test_latency_configs_name_their_problems(tmp_path: Path):
    c = parse_latency("5")
    assert (c.entry_ns(0, A_PLACE), c.response_ns(0, A_PLACE)) == (5 * MS, 5 * MS)
    c = parse_latency("2.5/7")
    assert (c.entry_ns(0, A_CANCEL), c.response_ns(0, A_CANCEL)) == (2_500_000, 7 * MS)
    per = latency_from_config({"kind": "per_action", "entry_ms": 10, "response_ms": 4,
                               "cancel_entry_ms": 3})
    assert [per.entry_ns(0, a) for a in (A_PLACE, A_CANCEL)] == [10 * MS, 3 * MS]
    # the backtest config's latency block (feed_base_ms is the feed's, ignored here)
    f = tmp_path / "lat.yaml"
    f.write_text("latency:\n  kind: table\n  table: t.csv\n  feed_base_ms: 1\n")
    (tmp_path / "t.csv").write_text("req_ts,exch_ts,resp_ts\n0,3000000,5000000\n")
    t = parse_latency(str(f))
    assert (t.entry_ns(10, A_PLACE), t.response_ns(3_000_000, A_PLACE)) == (3 * MS, 2 * MS)
    with pytest.raises(ConfigError, match="unknown kind 'fast'"):
        latency_from_config({"kind": "fast"})
    with pytest.raises(ConfigError, match="entry_ms must be >= 0"):
        parse_latency("-1")
    with pytest.raises(ConfigError, match="entry_ms must be a number of ms, got 'soon'"):
        parse_latency("soon")
    with pytest.raises(ConfigError, match="unknown keys"):
        latency_from_config({"entry": 1})
    with pytest.raises(ConfigError, match="does not exist"):
        latency_from_config({"kind": "table", "table": str(tmp_path / "none.csv")})
    (tmp_path / "bad.csv").write_text("3,2,1\n1,2,3\n")
    with pytest.raises(ConfigError, match="request times must be sorted"):
        latency_from_config({"kind": "table", "table": str(tmp_path / "bad.csv")})


def test_cli_refuses_bad_latency_and_queue_model():
    from typer.testing import CliRunner

    from tradelab.cli import app

    out = CliRunner().invoke(app, ["venue", "--synthetic", "--latency", "soon", "--port", "0"])
    assert out.exit_code == 1 and "entry_ms must be a number of ms, got 'soon'" in out.output
    out = CliRunner().invoke(app, ["venue", "--synthetic", "--queue-model", "fifo"])
    assert out.exit_code == 2 and "unknown queue model 'fifo'" in out.output


@pytest.mark.slow
def test_ccxt_orders_take_effect_after_the_latency_on_a_paced_replay():
    """The real ccxt client against a real-time synthetic market with 40 ms entry latency:
    each order takes effect (``transactTime``) at least 40 ms of venue clock after the clock
    read before it was sent, and the gate holds nothing once the answers are back."""
    import time

    import ccxt
    import requests

    from tests.test_venue_ccxt_trading import client
    from tests.venue_helpers import venue_in_thread
    from tradelab.venue.run import synthetic_source

    def make() -> Venue:
        return Venue(synthetic_source(["BTCUSDT"], ["spot"], 7), speed=1.0, wait_clients=0,
                     accounts=[ACCOUNT | {"balances": {"USDT": "1000000", "BTC": "10"}}],
                     latency=VenueLatency.constant(40 * MS, 20 * MS))

    with venue_in_thread(make, tls_port=None) as rv:
        ex = client(rv.rest_url, "k1", "s1")
        ex.load_markets()
        status = f"{rv.rest_url}/venue/status"
        while not requests.get(status, timeout=10).json()["published"]:
            time.sleep(0.05)  # the venue clock is the stream's once it publishes
        for _ in range(3):
            before = requests.get(status, timeout=10).json()["now_ms"]
            o = ex.create_order("BTC/USDT", "market", "buy", 0.01)
            assert o["status"] == "closed" and o["filled"] == 0.01
            # (the stream may lag it: on a quiet stretch the wall clock carries the action)
            assert int(o["info"]["transactTime"]) >= before + 40
        book = ex.fetch_order_book("BTC/USDT", 5)
        o = ex.create_order("BTC/USDT", "limit", "buy", 0.01, book["bids"][-1][0])
        before = requests.get(status, timeout=10).json()["now_ms"]
        c = ex.cancel_order(o["id"], "BTC/USDT")
        assert c["status"] == "canceled"
        assert rv.venue.gate.applied == 5 and rv.venue.gate.pending == 0
        with pytest.raises(ccxt.OrderNotFound):
            ex.cancel_order(o["id"], "BTC/USDT")
        assert before <= requests.get(status, timeout=10).json()["now_ms"]
