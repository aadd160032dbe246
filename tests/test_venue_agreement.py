"""The same configuration in the event backtester and in the venue gives the same fills.

Events: the real spot BTCUSDT recording imported into a store (two minutes from its book
snapshot). The order timeline is placed around the recorded best bid/ask of its moment: resting
orders that wait in the queue and fill from the market's trades, takers that walk the book, an
IOC, a FOK that cannot fill, a post-only order that would take, cancels that come too late and
one that cancels. Both engines run it with the power queue model (n = 3), maker 0.1 % / taker
0.2 %, and each latency model; fills (order, time, side, price, quantity, maker/taker, fee) and
final statuses must be identical.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest

from tradelab.backtest.event.replay import Latency, Replay
from tradelab.backtest.event.timeline import run_timeline as backtest_timeline
from tradelab.core.events import EV_SNAPSHOT
from tradelab.matching import MatchingCore, instrument
from tradelab.matching.timeline import Action
from tradelab.store.catalog import Catalog
from tradelab.venue.core import Venue
from tradelab.venue.event_source import EventSource
from tradelab.venue.latency import VenueLatency
from tradelab.venue.timeline import run_timeline as venue_timeline

pytestmark = pytest.mark.data

S, MS = 1_000_000_000, 1_000_000
MAKER, TAKER = 0.001, 0.002
ACCOUNT = {"api_key": "k", "secret": "s", "balances": {"USDT": "1000000", "BTC": "100"},
           "maker_fee": str(MAKER), "taker_fee": str(TAKER)}


@pytest.fixture(scope="module")
def events(spot_store) -> np.ndarray:
    """Two minutes of the recording from its book snapshot (the rows a replay starts from)."""
    store, _ = spot_store
    with Catalog(store) as cat:
        ev = cat.events("BINANCE", "BTC-USDT")
    first = int(np.flatnonzero(ev["ev"] & EV_SNAPSHOT)[0])
    ev = ev[first:]
    return ev[ev["exch_ts"] < ev["exch_ts"][0] + 120 * S]


def best(ev: np.ndarray, t: int) -> tuple[float, float]:
    """The recorded best bid and ask at exchange time ``t``."""
    core = MatchingCore(instrument(0.01, 0.00001), 50_000, 70_000)
    core.on_events(ev[ev["exch_ts"] <= t])
    return core.best_bid(), core.best_ask()


def timeline(ev: np.ndarray) -> list[Action]:
    t0 = int(ev["exch_ts"][0])
    t = t0 + 5 * S
    b, a = best(ev, t)
    acts = [
        Action(t, "place", 1, "BUY", "LIMIT", "GTC", "0.05", f"{b:.2f}"),  # joins the bid queue
        Action(t, "place", 2, "SELL", "LIMIT", "GTC", "0.05", f"{a:.2f}"),  # joins the ask queue
        Action(t + 1 * MS, "place", 3, "BUY", "MARKET", qty="0.01"),  # takes the ask
        Action(t + 2 * MS, "place", 4, "SELL", "LIMIT_MAKER", qty="0.01",
               price=f"{b:.2f}"),  # would take: rejected
    ]
    t = t0 + 30 * S
    b, a = best(ev, t)
    acts += [
        Action(t, "place", 5, "SELL", "LIMIT", "IOC", "0.3", f"{b - 1:.2f}"),  # walks the bids
        Action(t, "place", 6, "BUY", "LIMIT", "FOK", "5", f"{a + 0.5:.2f}"),  # too big: expires
        Action(t + 3 * S, "cancel", 1),  # too late: filled by then
        Action(t + 3 * S, "cancel", 2),
    ]
    t = t0 + 60 * S
    b, a = best(ev, t)
    acts += [
        Action(t, "place", 7, "BUY", "LIMIT", "GTC", "0.02", f"{b - 2:.2f}"),
        Action(t, "place", 8, "SELL", "LIMIT", "GTC", "0.02", f"{a + 2:.2f}"),
        Action(t + 30 * S, "cancel", 8),
    ]
    return acts


def latencies(ev: np.ndarray) -> dict[str, VenueLatency]:
    t0 = int(ev["exch_ts"][0])
    # a recorded table: request, exchange and response times (ns) of three measured orders
    table = np.array([[t0, t0 + 2_500_000, t0 + 4_100_000],
                      [t0 + 40 * S, t0 + 40 * S + 7_300_123, t0 + 40 * S + 9_000_000],
                      [t0 + 90 * S, t0 + 90 * S + 1_200_000, t0 + 90 * S + 3_000_000]])
    return {"zero": VenueLatency(), "constant": VenueLatency.constant(5 * MS, 3 * MS),
            "table": VenueLatency.recorded(table)}


def run_both(ev: np.ndarray, lat: VenueLatency, acts: list[Action]):
    inst = instrument(0.01, 0.00001, maker_fee=MAKER, taker_fee=TAKER)
    rp = Replay([ev], inst, Latency(lat.code, lat.params, lat.table), "power", 3.0)
    bt = backtest_timeline(rp, acts, price_places=2, qty_places=5)
    venue = Venue(EventSource(ev), wait_clients=0, speed=0, accounts=[ACCOUNT], latency=lat,
                  queue_model="power", queue_n=3.0)
    acc = venue.accounts.get("k")
    assert acc is not None
    vt = asyncio.run(venue_timeline(venue, acc, "BTCUSDT", acts))
    return bt, vt, acc


@pytest.mark.parametrize("model", ["zero", "constant", "table"])
def test_backtester_and_venue_fill_the_same_timeline_alike(events, model):
    acts = timeline(events)
    lat = latencies(events)[model]
    bt, vt, acc = run_both(events, lat, acts)

    assert vt.fills == bt.fills
    assert vt.status == bt.status
    # the timeline exercised what it is meant to: queue fills as maker, takers, an IOC that
    # walked the book, a rejection, an expiry, a late cancel and a real one
    assert vt.status == {1: "FILLED", 2: "FILLED", 3: "FILLED", 4: "REJECTED", 5: "FILLED",
                         6: "EXPIRED", 7: "FILLED", 8: "CANCELED"}
    makers = {f.order_id for f in vt.fills if f.maker}
    assert makers == {1, 2, 7} and {f.order_id for f in vt.fills if not f.maker} == {3, 5}
    assert len([f for f in vt.fills if f.order_id == 2]) > 1  # filled in parts from the queue
    # a taker fills when its action takes effect: sent + entry latency (the venue's own ticket)
    sent = {a.order_id: tk for a, tk in vt.tickets if a.kind == "place"}
    for oid in (3, 5):
        te = sent[oid].effective_ns
        assert te == sent[oid].sent_ns + lat.entry_ns(sent[oid].sent_ns, 0)
        assert {f.time_ms for f in vt.fills if f.order_id == oid} == {te // MS}
    # fees: maker 0.1 % / taker 0.2 % in the asset received, truncated to 1e-8
    for f in vt.fills:
        rate = Decimal(str(MAKER if f.maker else TAKER))
        due = f.qty * rate if f.side == "BUY" else f.qty * f.price * rate
        assert f.fee == due.quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
    # and the venue's balances add up to its fills
    base = sum((f.qty - f.fee if f.side == "BUY" else -f.qty) for f in vt.fills)
    quote = sum((-f.qty * f.price if f.side == "BUY" else f.qty * f.price - f.fee)
                for f in vt.fills)
    bal = acc.balances()
    assert bal["BTC"] == (Decimal(100) + base, Decimal(0))
    assert bal["USDT"] == (Decimal(1_000_000) + quote, Decimal(0))


def test_latency_moves_the_fills(events):
    """The same timeline without and with latency: takers fill later, at the book of then."""
    acts = timeline(events)
    zero = run_both(events, VenueLatency(), acts)[1]
    slow = run_both(events, VenueLatency.constant(5 * MS, 3 * MS), acts)[1]
    t_zero = {f.order_id: f.time_ms for f in zero.fills if not f.maker}
    t_slow = {f.order_id: f.time_ms for f in slow.fills if not f.maker}
    assert {k: t_slow[k] - t_zero[k] for k in t_zero} == {3: 5, 5: 5}
    # answers are released response latency after the action took effect
    for _a, tk in slow.tickets:
        assert tk.respond_ns == tk.effective_ns + 3 * MS


@pytest.mark.slow
def test_ccxt_orders_on_the_http_venue_fill_as_in_the_backtester(events):
    """Coarse, through the real stack: ccxt trades on the HTTP venue while it replays the
    recording 20x faster than real time, placing around the REST book of the moment; the venue
    notes when each action took effect, and the backtester, given the same actions sent at the
    same times, must fill them identically.

    Zero latency here: a paced replay's quiet-stream rule lets the wall clock carry a delayed
    action, which cannot be replayed exactly (the latency models agree in the test above)."""
    import time

    import ccxt

    from tests.test_venue_ccxt_trading import client
    from tests.venue_helpers import venue_in_thread
    from tradelab.adapters.binance import trading as wire
    from tradelab.venue.timeline import fills_of

    seen: list[tuple[int, str, object]] = []  # (effective ns, kind, what)

    def make() -> Venue:
        venue = Venue(EventSource(events), speed=20, wait_clients=0, accounts=[ACCOUNT],
                      queue_model="power", queue_n=3.0,
                      order_limits=())  # the timeline sends more than 50 orders per 10 s
        t = venue.trading
        new_order, cancel = t.new_order, t.cancel

        def noting_new(acc, req: wire.OrderRequest, test: bool = False):
            te = t._ns()
            order = None
            try:
                order = new_order(acc, req, test)
                return order
            finally:  # a refused order is part of the timeline too (under an id of its own)
                seen.append((te, "place", (req, order.order_id if order else 10_000 + len(seen))))

        def noting_cancel(acc, symbol, order_id, client_id, *rest):
            seen.append((t._ns(), "cancel", order_id))
            return cancel(acc, symbol, order_id, client_id, *rest)

        t.new_order, t.cancel = noting_new, noting_cancel  # type: ignore[method-assign]
        return venue

    with venue_in_thread(make, tls_port=None) as rv:
        venue: Venue = rv.venue
        ex = client(rv.rest_url, "k", "s")
        ex.load_markets()
        prev: list[str] = []
        for _ in range(100):  # until the replay ends
            if venue.finished.is_set():
                break
            book = ex.fetch_order_book("BTC/USDT", 5)
            bid, ask = book["bids"][0][0], book["asks"][0][0]
            ids = [ex.create_order("BTC/USDT", "limit", "buy", 0.01, bid)["id"],
                   ex.create_order("BTC/USDT", "limit", "sell", 0.01, ask)["id"]]
            ex.create_order("BTC/USDT", "market", "buy", 0.002)
            for oid in prev:
                try:
                    ex.cancel_order(oid, "BTC/USDT")
                except ccxt.OrderNotFound:
                    pass  # filled first
            prev = ids
        while not venue.finished.is_set():
            time.sleep(0.05)
        acc = venue.accounts.get("k")
        assert acc is not None
        orders = {o.order_id: o for o in venue.trading.orders.values()}
        venue_fills = fills_of(venue.trading, acc, orders)
    acts: list[Action] = []
    for te, kind, what in seen:
        if kind == "place":
            req, oid = what  # type: ignore[misc]
            acts.append(Action(te, "place", oid, req.side, req.type, req.time_in_force or "GTC",
                               str(req.quantity), None if req.price is None else str(req.price)))
        else:
            assert kind == "cancel" and isinstance(what, int)
            acts.append(Action(te, "cancel", what))
    # the client really traded: resting orders filled from the queue, takers
    assert len(acts) >= 30
    assert any(f.maker for f in venue_fills) and any(not f.maker for f in venue_fills)
    inst = instrument(0.01, 0.00001, maker_fee=MAKER, taker_fee=TAKER)
    zero = VenueLatency()
    rp = Replay([events], inst, Latency(zero.code, zero.params, zero.table), "power", 3.0)
    bt = backtest_timeline(rp, acts, price_places=2, qty_places=5)
    assert bt.fills == venue_fills
