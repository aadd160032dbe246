"""The runner core's own duties beyond the backtest: runner-managed exits (OCO brackets), the
daily guard's close-all, the kill switch, and a restart from the journal (hand-made streams)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_live_parity import LOOSE, MOM, MS, S
from tradelab.adapters.binance.filters import symbol_filters
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
from tradelab.live.journal import RunJournal
from tradelab.live.orders import OrderManager
from tradelab.live.paper import PaperExchange
from tradelab.live.risk import RiskEngine
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.strategies import get
from tradelab.strategies.bar_driver import BarDriver

INST = instrument(0.5, 0.001, taker_fee=0.0005, maker_fee=0.0002)
LAT = L.constant(5 * MS, 5 * MS)


def _stream(trades) -> np.ndarray:
    """A deep book (bid 100 x 50 down to 95, ask 100.5 x 50 up to 106) and these trades."""
    snap = EV_DEPTH | EV_SNAPSHOT
    rows = [(snap | EV_BID, 0, 100.0 - k, 50.0) for k in range(6)]
    rows += [(snap | EV_ASK, 0, 100.5 + k, 50.0) for k in range(6)]
    rows[-1] = (rows[-1][0] | EV_LAST,) + rows[-1][1:]
    for t, px in trades:
        rows.append((EV_TRADE | EV_LAST | EV_BUY, round(t * S), px, 0.1))
    ev = np.zeros(len(rows), dtype=event_dt)
    for i, (e, ts, px, q) in enumerate(rows):
        ev[i]["ev"], ev[i]["exch_ts"], ev[i]["local_ts"] = e, ts, ts + MS
        ev[i]["px"], ev[i]["qty"] = px, q
    return ev


RISING_THEN_FALLING = [(0.1, 100.0), (1.1, 100.0), (2.1, 100.0), (3.1, 101.0), (4.2, 102.0),
                       (4.5, 101.5), (4.8, 100.9), (5.1, 99.0), (6.2, 98.0)]


def _core(risk_cfg, tmp_path=None, journal=None) -> BarRunnerCore:
    engine = PaperExchange(INST, LAT, queue_model="risk_averse", queue_n=2.0)
    oms = OrderManager({"BTCUSDT": symbol_filters("spot", "BTCUSDT", "0.5", "0.001")},
                       lambda: engine.now, "tl")
    return BarRunnerCore(BarSetup("r", "momentum", "BTCUSDT", S, 2.0),
                         BarDriver(get("momentum"), MOM), engine, oms, RiskEngine(risk_cfg),
                         PaperBroker(engine), journal=journal)


def test_a_stop_loss_bracket_exits_the_position_between_bars(tmp_path):
    # long 2 from bar 3's close (bought at the asks, 100.5 then ...): a 1 % stop below the
    # entry fires on the trade at 99.0 (5.1 s), before any bar closes there
    cfg = LOOSE.model_copy(update={"oco": LOOSE.oco.model_copy(
        update={"enabled": True, "sl_pct": 0.01, "tp_pct": None})})
    journal = RunJournal(tmp_path / "j.log")
    core = _core(cfg, journal=journal)
    core.on_rows(_stream(RISING_THEN_FALLING))
    core.finish()
    orders = list(core.oms.orders.values())
    entry = orders[0]
    assert entry.side == "BUY" and float(entry.filled) == 2.0
    assert float(entry.avg_price) == 100.5  # 2 at the best ask (50 there)
    exits = [o for o in orders if o.tag == "stop_loss"]
    assert len(exits) == 1 and exits[0].side == "SELL" and exits[0].reduce_only
    assert float(exits[0].filled) == 2.0 and float(exits[0].avg_price) == 100.0  # the bid
    # stop = 100.5 x 0.99 = 99.495: the trade at 99.0 (5.1 s) triggers it; the exit order is
    # decided then (not at a bar close)
    assert exits[0].created_ns == 5_100 * MS + MS
    # flat after the stop; bar 5's target (-1) then opens a short of 2 from flat (not 4), and
    # that position has its own bracket
    later = [o for o in orders if o.created_ns > exits[0].created_ns]
    assert [(o.side, float(o.qty), o.tag) for o in later] == [("SELL", 2.0, "target -1")]
    assert core.positions["BTCUSDT"] == -2.0 and core.brackets["BTCUSDT"].side == -1
    journal.close()
    kinds = [r["kind"] for r in RunJournal(tmp_path / "j.log").records if r["type"] == "risk"]
    assert "exit" in kinds


def test_the_kill_switch_denies_new_risk_and_a_restart_keeps_it(tmp_path):
    journal = RunJournal(tmp_path / "j.log")
    core = _core(LOOSE, journal=journal)
    core.risk.kill(0, "test")
    core.save_state(0)
    core.on_rows(_stream(RISING_THEN_FALLING))
    assert not core.oms.orders  # the long entry was denied
    journal.close()
    again = _core(LOOSE, journal=RunJournal(tmp_path / "j.log"))
    again.restore(again.journal.records)
    assert again.risk.halted == "kill switch (test)" and again.risk.killed


def test_a_restart_rebuilds_position_pnl_and_the_strategy_state(tmp_path):
    stream = _stream(RISING_THEN_FALLING)
    journal = RunJournal(tmp_path / "j.log")
    whole = _core(LOOSE)
    whole.on_rows(stream)
    first = _core(LOOSE, journal=journal)
    cut = 14  # after the entry bar: the first core dies here
    first.on_rows(stream[:cut + 3])
    journal.close()
    second = _core(LOOSE, journal=RunJournal(tmp_path / "j.log"))
    second.restore(second.journal.records)
    assert second.positions == first.positions and second.realized == first.realized
    assert second.driver.held == first.driver.held
    np.testing.assert_array_equal(second.driver.state, first.driver.state)
    assert [o.client_id for o in second.oms.orders.values()] == \
        [o.client_id for o in first.oms.orders.values()]
    assert second.oms.next_client_id() == f"tl-{len(first.oms.orders) + 1}"
    assert first.positions["BTCUSDT"] == pytest.approx(2.0)


def test_the_daily_guard_halts_within_one_event_and_close_all_flattens():
    # long 2 bought at the ask 100.5 (fee 0.0005 x 201 = 0.1005) and marked at the mid
    # 100.25: equity 1000 - 0.1005 - 2 x 0.25 = 999.3995, a loss of 0.6005 > 0.55: the guard
    # trips on the event that brings the fill, not at the next bar or PnL snapshot
    cfg = LOOSE.model_copy(update={"daily": LOOSE.daily.model_copy(
        update={"max_loss_usdt": 0.55, "action": "close_all"})})
    engine = PaperExchange(INST, LAT, queue_model="risk_averse", queue_n=2.0)
    oms = OrderManager({"BTCUSDT": symbol_filters("spot", "BTCUSDT", "0.5", "0.001")},
                       lambda: engine.now, "tl")
    events = []
    core = BarRunnerCore(BarSetup("r", "momentum", "BTCUSDT", S, 2.0, start_cash=1000.0),
                         BarDriver(get("momentum"), MOM), engine, oms, RiskEngine(cfg),
                         PaperBroker(engine), on_risk=events.append)
    core.on_risk = lambda ev: (events.append(ev), ev.kind == "close_all"
                               and core.flatten(core.engine.now, "daily guard"))
    stream = _stream(RISING_THEN_FALLING)
    for i in range(len(stream)):  # one message at a time, as a feed delivers them
        core.on_rows(stream[i:i + 1])
    trips = [e for e in events if e.kind == "close_all"]
    assert len(trips) == 1 and "daily loss 0.60 > 0.55" in trips[0].reason
    entry = oms.orders["tl-1"]
    # the fill (response at 4.010 s) is received with the next message (the trade at 4.2 s):
    # the guard trips on that message, long before the next bar (5 s)
    assert entry.executions[-1].ts_ns == 4_010 * MS and trips[0].ts_ns == 4_200 * MS
    assert core.risk.halted and core.risk.halted.startswith("daily guard")
    flat = [o for o in oms.orders.values() if o.tag == "flatten: daily guard"]
    assert len(flat) == 1 and flat[0].reduce_only and flat[0].side == "SELL"
    # no new risk after the halt: bar 5's short signal is denied
    assert all(o.tag != "target -1" for o in oms.orders.values())
    assert any(e.kind == "deny" and "halted" in e.reason for e in events)


def test_volatility_target_sizing_from_the_bars_seen():
    import math

    cfg = LOOSE.model_copy(update={"sizing": LOOSE.sizing.model_copy(
        update={"equity_usdt": 1000.0, "target_vol": 0.2, "vol_lookback": 3,
                "max_leverage": 10.0})})
    engine = PaperExchange(INST, LAT, queue_model="risk_averse", queue_n=2.0)
    oms = OrderManager({"BTCUSDT": symbol_filters("spot", "BTCUSDT", "0.5", "0.001")},
                       lambda: engine.now, "tl")
    core = BarRunnerCore(BarSetup("r", "momentum", "BTCUSDT", S, 0.0, sizing="vol_target"),
                         BarDriver(get("momentum"), MOM), engine, oms, RiskEngine(cfg),
                         PaperBroker(engine))
    core.on_rows(_stream(RISING_THEN_FALLING))
    entry = oms.orders["tl-1"]
    # bar 3 (closes 100, 100, 100, 101): log returns 0, 0, ln 1.01; sample std x sqrt(1 s bars
    # in a year); notional = 1000 x 0.2 / vol (under 10x leverage); / 101, down to the step
    r = [0.0, 0.0, math.log(1.01)]
    m = sum(r) / 3
    vol = math.sqrt(sum((x - m) ** 2 for x in r) / 2) * math.sqrt(365 * 86_400)
    want = math.floor(min(1000 * 0.2 / vol, 10_000) / 101 / 0.001 + 1e-9) * 0.001
    assert float(entry.qty) == pytest.approx(want) and want > 0


def test_past_the_grace_period_over_its_cap_the_runner_trades_back_under_it():
    # cap 150 with a 50 % soft band (225) for 2 s: the long 2 decided at 4.2 s (close 101:
    # 202 <= 225) is allowed with a soft_allow; filled at the ask 100.5 and marked at the mid
    # 100.25 it is 200.5 over the cap. The first event past 4.2 s + 2 s (the trade at 6.5 s)
    # sends one reduce-only sell of the excess (200.5 - 150) / 100.25 = 0.50374, rounded up
    # to the 0.001 step: 0.504; filled at the bid 100, the position is 1.496 (149.97 at the
    # mark) and nothing more is sent
    cfg = LOOSE.model_copy(update={"caps": LOOSE.caps.model_copy(update={
        "per_symbol_usdt": 150.0, "soft_cap_pct": 0.5, "soft_cap_grace_s": 2.0,
        "auto_close": True})})
    core = _core(cfg)
    rising = [(0.1, 100.0), (1.1, 100.0), (2.1, 100.0), (3.1, 101.0), (4.2, 102.0),
              (4.5, 102.5), (5.5, 103.0), (6.5, 103.5), (7.5, 104.0), (8.5, 104.5)]
    stream = _stream(rising)
    for i in range(len(stream)):  # one message at a time, as live
        core.on_rows(stream[i:i + 1])
    orders = list(core.oms.orders.values())
    assert [(o.side, float(o.qty), o.tag, o.reduce_only) for o in orders] == [
        ("BUY", 2.0, "target +1", False), ("SELL", 0.504, "soft cap", True)]
    assert 6_500 * MS <= orders[1].created_ns < 7_500 * MS  # on the 6.5 s message
    assert core.positions["BTCUSDT"] == pytest.approx(1.496)
    assert float(orders[1].avg_price) == 100.0
