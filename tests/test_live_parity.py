"""The paper runner core takes the event backtester's decisions: same bars, same orders, same
fills, order by order, whatever batches the events arrive in (a hand-built stream and the real
USD-M recording)."""

from __future__ import annotations

import numpy as np
import pytest

from tradelab.adapters.binance.filters import symbol_filters
from tradelab.backtest.event.bars import run_bar_strategy
from tradelab.backtest.event.replay import Latency, Replay
from tradelab.core.events import (
    EV_ASK,
    EV_BID,
    EV_BUY,
    EV_DEPTH,
    EV_LAST,
    EV_SNAPSHOT,
    EV_TRADE,
    event_dt,
)
from tradelab.live.core import BarRunnerCore, BarSetup, PaperBroker
from tradelab.live.journal import RunJournal, rehydrate
from tradelab.live.orders import OrderManager, OrderState
from tradelab.live.paper import PaperExchange
from tradelab.live.risk import RiskEngine
from tradelab.live.risk_config import RiskConfig
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.store.catalog import Catalog
from tradelab.strategies import get
from tradelab.strategies.bar_driver import BarDriver

S = 1_000_000_000
MS = 1_000_000
MOM = {"fast_bars": 1, "mid_bars": 2, "slow_bars": 3, "threshold": 0.0, "allow_short": 1}
LOOSE = RiskConfig.model_validate({
    "caps": {"per_symbol_usdt": 1e12, "total_usdt": 1e12},
    "orders": {"max_orders_per_s": 1e6, "price_band_pct": 1.0, "stale_after_s": 1e9},
    "daily": {"max_loss_usdt": 1e12, "max_drawdown_pct": 1.0, "max_consecutive_losses": 10**6},
    "oco": {"enabled": False},  # runner-managed exits are not part of the backtest
})


def _hand_stream() -> np.ndarray:
    snap = EV_DEPTH | EV_SNAPSHOT
    rows = [(snap | EV_BID, 0, 100.0, 5.0), (snap | EV_ASK, 0, 101.0, 1.0),
            (snap | EV_ASK | EV_LAST, 0, 102.0, 2.0)]
    for t, px in ((0.1, 100.0), (1.1, 100.0), (2.1, 100.0), (3.1, 101.0), (3.5, 101.0),
                  (4.2, 102.0), (5.3, 99.0), (6.1, 98.0), (7.4, 97.0), (8.2, 99.0)):
        rows.append((EV_TRADE | EV_LAST | EV_BUY, round(t * S), px, 0.1))
    ev = np.zeros(len(rows), dtype=event_dt)
    for i, (e, ts, px, q) in enumerate(rows):
        ev[i]["ev"], ev[i]["exch_ts"], ev[i]["local_ts"] = e, ts, ts + MS
        ev[i]["px"], ev[i]["qty"] = px, q
    return ev


def _paper(strategy: str, params, symbol: str, interval_ns: int, units: float, inst,
           latency, batches, journal=None, market: str = "spot", tick: str = "0.5",
           step: str = "0.001") -> BarRunnerCore:
    engine = PaperExchange(inst, latency, queue_model="risk_averse", queue_n=2.0)
    filters = {symbol: symbol_filters(market, symbol, tick, step)}
    oms = OrderManager(filters, lambda: engine.now, "tl")
    core = BarRunnerCore(BarSetup("r1", strategy, symbol, interval_ns, units),
                         BarDriver(get(strategy), params), engine, oms, RiskEngine(LOOSE),
                         PaperBroker(engine), journal=journal)
    for b in batches:
        core.on_rows(b)
    core.finish()
    return core


def _orders(core: BarRunnerCore) -> list[tuple]:
    """Orders that filled: side, filled quantity, decision time (what the backtest logs)."""
    return [(o.side, float(o.filled), o.created_ns) for o in core.oms.orders.values()
            if o.executions]


def _fills(core: BarRunnerCore) -> list[tuple]:
    out = []
    for o in core.oms.orders.values():
        for e in o.executions:
            out.append((1 if o.side == "BUY" else -1, float(e.price), float(e.qty), e.ts_ns,
                        float(e.fee)))
    return sorted(out, key=lambda x: x[3])


def _bt_fills(run) -> list[tuple]:
    f = run.fills
    rows = zip(f["side"], f["price"], f["qty"], f["local_ts"], f["fee"], strict=True)
    return sorted(((int(a), float(b), float(c), int(d), float(e)) for a, b, c, d, e in rows),
                  key=lambda x: x[3])


def _bt_orders(run) -> list[tuple]:
    f = run.fills
    by_order = f.groupby("order_id").agg(side=("side", "first"), qty=("qty", "sum"),
                                         decided=("decision_ts", "first"))
    return [("BUY" if r.side > 0 else "SELL", r.qty, int(r.decided))
            for r in by_order.itertuples()]


@pytest.mark.parametrize("split", ["whole", "one_by_one", "uneven"])
def test_hand_stream_paper_equals_backtest_in_any_batching(split, tmp_path) -> None:
    ev = _hand_stream()
    inst = instrument(0.5, 0.001, taker_fee=0.0005, maker_fee=0.0002)
    lat = L.constant(5 * MS, 5 * MS)
    bt = run_bar_strategy(Replay([ev], inst, Latency(*lat), feed_offset=0), "momentum", MOM,
                          "1s", fill="book", sizing=2.0)
    if split == "whole":
        batches = [ev]
    elif split == "one_by_one":
        batches = [ev[i:i + 1] for i in range(len(ev))]
    else:
        batches = [ev[:2], ev[2:7], ev[7:8], ev[8:]]
    journal = RunJournal(tmp_path / "j.log")
    core = _paper("momentum", MOM, "BTCUSDT", S, 2.0, inst, lat, batches, journal)
    journal.close()
    assert core.bars and [b["target"] for b in core.bars] == bt.bars["target"].tolist()
    assert [b["close"] for b in core.bars] == bt.bars["close"].tolist()
    assert [b["ordered"] for b in core.bars] == bt.bars["ordered"].tolist()
    assert _orders(core) == _bt_orders(bt)
    assert _fills(core) == _bt_fills(bt)  # bit for bit
    assert len(_bt_fills(bt)) >= 3  # long, then reversed short: a real sequence, not one order
    assert core.positions["BTCUSDT"] == pytest.approx(float(bt.fills["position"].iloc[-1]))
    # the journal holds every order and fill, and rebuilds the order manager
    oms = OrderManager({"BTCUSDT": core.oms.filters["BTCUSDT"]}, lambda: 0, "tl")
    rehydrate(RunJournal(tmp_path / "j.log").records, oms)
    assert [(o.client_id, o.state, o.filled) for o in oms.orders.values()] == [
        (o.client_id, o.state, o.filled) for o in core.oms.orders.values()]
    # the last order met only 1 of the 2 it asked for (the asks were spent): it expired
    assert [o.state for o in oms.orders.values()] == [OrderState.FILLED, OrderState.FILLED,
                                                      OrderState.EXPIRED]


@pytest.mark.slow
def test_recording_paper_equals_backtest_order_by_order(usdm_store) -> None:
    store, _ = usdm_store
    with Catalog(store) as cat:
        chunks = [c.copy() for c in cat.iter_events("BINANCE_FUTURES", "BTC-USDT-PERP",
                                                     chunk="1m")]
    ev = np.concatenate(chunks)
    inst = instrument(0.1, 0.001, taker_fee=0.0004, maker_fee=0.0002)
    lat = L.constant(20 * MS, 15 * MS)
    params = {"fast": 3, "slow": 10}
    bt = run_bar_strategy(Replay([ev], inst, Latency(*lat), feed_offset=0), "ma_crossover",
                          params, "1s", fill="book", sizing=0.01)
    # the runner receives the same rows in feed-sized batches
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(np.arange(1, len(ev)), size=len(ev) // 40, replace=False))
    batches = np.split(ev, cuts)
    core = _paper("ma_crossover", params, "BTCUSDT", S, 0.01, inst, lat, batches,
                  market="usdm", tick="0.1", step="0.001")
    assert len(core.bars) == len(bt.bars) and len(core.bars) > 100
    assert [b["target"] for b in core.bars] == bt.bars["target"].tolist()
    assert [b["ordered"] for b in core.bars] == bt.bars["ordered"].tolist()
    got, want = _orders(core), _bt_orders(bt)
    assert len(want) > 10
    assert got == want
    assert _fills(core) == _bt_fills(bt)


def test_the_journal_lands_in_the_store_once_and_is_queryable(tmp_path) -> None:
    from tradelab.live.persist import persist_journal

    ev = _hand_stream()
    inst = instrument(0.5, 0.001, taker_fee=0.0005, maker_fee=0.0002)
    journal = RunJournal(tmp_path / "j.log")
    core = _paper("momentum", MOM, "BTCUSDT", S, 2.0, inst, L.constant(5 * MS, 5 * MS), [ev],
                  journal)
    journal.pnl(core.engine.now, "BTCUSDT", core.positions["BTCUSDT"], 99.0, core.realized,
                core.unrealized(), core.fees, core.equity(1000.0))
    journal.close()
    store = tmp_path / "store"
    first = persist_journal(tmp_path / "j.log", store, "r1", "spot", "BTCUSDT")
    assert first == {"orders": 3, "fills": 4, "positions": 4, "pnl": 1, "risk_events": 0}
    persist_journal(tmp_path / "j.log", store, "r1", "spot", "BTCUSDT")  # again: no doubles
    with Catalog(store) as cat:
        orders = list(cat.sql("SELECT client_id, side, qty, filled_qty, state FROM orders "
                              "WHERE run_id = 'r1' ORDER BY ts").itertuples(index=False,
                                                                              name=None))
        fills = cat.sql("SELECT count(*) n, sum(qty) q, sum(fee) f FROM fills").iloc[0]
        last_pos = cat.sql("SELECT position FROM positions ORDER BY ts DESC, trade_id DESC "
                           "LIMIT 1").iloc[0, 0]
    assert orders == [("tl-1", "BUY", 2.0, 2.0, "FILLED"), ("tl-2", "SELL", 4.0, 4.0, "FILLED"),
                      ("tl-3", "BUY", 2.0, 1.0, "EXPIRED")]
    # fees: 0.0005 x (101 + 102 + 400 + 102) = 0.3525
    assert fills["n"] == 4 and fills["q"] == pytest.approx(7.0)
    assert fills["f"] == pytest.approx(0.3525)
    assert last_pos == pytest.approx(core.positions["BTCUSDT"]) == pytest.approx(-1.0)


@pytest.mark.slow
def test_quote_runner_on_the_recording_equals_the_backtesters_quote_loop(usdm_store) -> None:
    """market_making live (paper) against the backtester's quote loop: the same quotes (ids,
    sides, prices, times), cancels and fills, order by order."""
    from tradelab.backtest.event import loops_nb as lp
    from tradelab.live.quote import QuoteRunnerCore
    from tradelab.matching import sim_nb as sn
    from tradelab.strategies import market_making as mm

    store, _ = usdm_store
    with Catalog(store) as cat:
        ev = np.concatenate([c.copy() for c in cat.iter_events(
            "BINANCE_FUTURES", "BTC-USDT-PERP", chunk="1m")])
    ev = ev[: len(ev) // 3]  # two minutes of market are plenty
    inst = instrument(0.1, 0.001, taker_fee=0.0004, maker_fee=0.0002)
    lat = L.constant(10 * MS, 10 * MS)
    p = mm.Params(half_spread_bps=0.2, skew_bps=1.0, max_position=0.02, qty=0.002,
                  requote_ms=250.0).to_array()
    rp = Replay([ev], inst, Latency(*lat), "power", 3.0, feed_offset=0)
    st = lp.new_quote_state(int(ev["local_ts"][0]), p[mm.REQUOTE_MS])
    bt = rp.run(lambda sim, e: lp.quote_loop_nb(sim, e, p, st))
    engine = PaperExchange(inst, lat, queue_model="power", queue_n=3.0)
    oms = OrderManager({"BTCUSDT": symbol_filters("usdm", "BTCUSDT", "0.1", "0.001")},
                       lambda: engine.now, "tl")
    core = QuoteRunnerCore(BarSetup("q", "market_making", "BTCUSDT", int(p[mm.REQUOTE_MS] * 1e6),
                                    0.002), None, engine, oms, RiskEngine(LOOSE),
                           PaperBroker(engine), params=p)
    rng = np.random.default_rng(5)
    cuts = np.sort(rng.choice(np.arange(1, len(ev)), size=len(ev) // 30, replace=False))
    for b in np.split(ev, cuts):
        core.on_rows(b)
    core.finish()
    assert core.decisions == int(st[lp.Q_DECISIONS]) > 300
    fills = bt.fills
    want = [(int(f["order_id"]), int(f["side"]), float(f["px"]), float(f["qty"]), int(f["ts"]))
            for f in fills]
    got = sorted(((int(o.client_id[3:]), 1 if o.side == "BUY" else -1, float(e.price),
                   float(e.qty), e.ts_ns) for o in oms.orders.values() for e in o.executions),
                 key=lambda x: (x[4], x[0]))
    assert len(want) > 10 and got == sorted(want, key=lambda x: (x[4], x[0]))
    # every quote the backtester placed, the runner placed (same id, side and price)
    reports = bt.reports
    placed_bt = {int(r["order_id"]) for r in reports if r["kind"] in (1, 2, 3)}
    assert placed_bt <= {int(c[3:]) for c in oms.orders}
    canceled_bt = {int(r["order_id"]) for r in reports if r["status"] == sn.ST_CANCELED}
    canceled = {int(o.client_id[3:]) for o in oms.orders.values()
                if o.state is OrderState.CANCELED}
    assert canceled == canceled_bt and len(canceled) > 100


@pytest.mark.slow
def test_book_runner_on_the_recording_equals_the_backtesters_book_loop(usdm_store) -> None:
    """imbalance_microprice live (paper) against the backtester's book loop: the same intents,
    entries, cancels, flattening orders and fills, order by order."""
    from tradelab.backtest.event import loops_nb as lp
    from tradelab.live.book import BookRunnerCore
    from tradelab.matching import sim_nb as sn
    from tradelab.strategies import imbalance_microprice as im

    store, _ = usdm_store
    with Catalog(store) as cat:
        ev = np.concatenate([c.copy() for c in cat.iter_events(
            "BINANCE_FUTURES", "BTC-USDT-PERP", chunk="1m")])
    inst = instrument(0.1, 0.001, maker_fee=0.0002, taker_fee=0.0005)
    lat = L.constant(10 * MS, 10 * MS)
    p = im.Params(tilt_entry_bps=0.05, tilt_rearm_bps=0.02).to_array()
    ss = im.init_state_nb(p)
    st = lp.new_intent_state()
    frame = np.full((1, 4 * int(p[im.LEVELS])), np.nan)
    rp = Replay([ev], inst, Latency(*lat), "power", 3.0, feed_offset=0)
    bt = rp.run(lambda s, e: lp.imbalance_loop_nb(s, e, p, ss, st, frame, 0.002))
    engine = PaperExchange(inst, lat, queue_model="power", queue_n=3.0)
    oms = OrderManager({"BTCUSDT": symbol_filters("usdm", "BTCUSDT", "0.1", "0.001")},
                       lambda: engine.now, "tl")
    core = BookRunnerCore(BarSetup("b", "imbalance_microprice", "BTCUSDT", S, 0.002), None,
                          engine, oms, RiskEngine(LOOSE), PaperBroker(engine), params=p)
    rng = np.random.default_rng(9)
    cuts = np.sort(rng.choice(np.arange(1, len(ev)), size=len(ev) // 50, replace=False))
    for b in np.split(ev, cuts):
        core.on_rows(b)
    core.finish()
    assert core.updates == int(st[lp.B_UPDATES]) > 5000
    assert core.intents == int(st[lp.B_INTENTS]) > 10
    want = sorted(((int(f["order_id"]), int(f["side"]), float(f["px"]), float(f["qty"]),
                    int(f["ts"]), int(f["maker"])) for f in bt.fills), key=lambda x: (x[4], x[0]))
    got = sorted(((int(o.client_id[3:]), 1 if o.side == "BUY" else -1, float(e.price),
                   float(e.qty), e.ts_ns, int(bool(e.maker)))
                  for o in oms.orders.values() for e in o.executions),
                 key=lambda x: (x[4], x[0]))
    assert len(want) > 5 and got == want
    canceled_bt = {int(r["order_id"]) for r in bt.reports if r["status"] == sn.ST_CANCELED}
    canceled = {int(o.client_id[3:]) for o in oms.orders.values()
                if o.state is OrderState.CANCELED}
    assert canceled == canceled_bt
