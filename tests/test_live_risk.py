"""Risk engine and OCO brackets on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradelab.errors import ConfigError
from tradelab.live.oco import Bracket
from tradelab.live.risk import NS, RiskEngine, realized_vol, vol_target_qty
from tradelab.live.risk_config import OcoCfg, RiskConfig, load_risk

T0 = 1_700_000_000 * NS  # 2023-11-14 22:13:20 UTC


def cfg(**sections) -> RiskConfig:
    return RiskConfig.model_validate(sections)


def engine(**sections) -> RiskEngine:
    e = RiskEngine(cfg(**sections))
    e.on_market(T0)
    return e


def test_vol_target_size_matches_the_formula():
    c = cfg(sizing={"equity_usdt": 10_000, "target_vol": 0.2, "max_leverage": 2})
    # 10,000 * 0.2 / 0.8 = 2,500 USDT at 50,000 -> 0.05
    assert vol_target_qty(c, 50_000, 0.8) == pytest.approx(0.05)
    # low vol: 10,000 * 0.2 / 0.05 = 40,000 > 2x leverage cap 20,000 -> 0.4
    assert vol_target_qty(c, 50_000, 0.05) == pytest.approx(0.4)
    assert vol_target_qty(c, 50_000, math.nan) == 0.0


def test_realized_vol_is_the_annualised_sample_std_of_log_returns():
    closes = np.array([100.0, 101.0, 99.0, 100.0])
    r = [math.log(101 / 100), math.log(99 / 101), math.log(100 / 99)]
    m = sum(r) / 3
    sd = math.sqrt(sum((x - m) ** 2 for x in r) / 2)
    assert realized_vol(closes, 365) == pytest.approx(sd * math.sqrt(365))


def test_caps_shrink_then_deny_and_reducing_orders_always_pass():
    e = engine(caps={"per_symbol_usdt": 500, "total_usdt": 800}, orders={"max_orders_per_s": 100})
    marks = {"BTCUSDT": 50_000.0, "ETHUSDT": 2_000.0}
    # 0.02 BTC = 1,000 USDT > 500: shrunk to 0.01
    d = e.check(T0, "BTCUSDT", "BUY", 0.02, 50_000, 50_000, {}, marks)
    assert d.qty == pytest.approx(0.01)
    assert [ev.kind for ev in d.events] == ["shrink"]
    # holding 0.01 BTC (500): no room left on BTC
    d = e.check(T0, "BTCUSDT", "BUY", 0.001, 50_000, 50_000, {"BTCUSDT": 0.01}, marks)
    assert d.qty == 0 and d.events[0].kind == "deny" and "per-symbol" in d.events[0].reason
    # total: 500 of BTC held, ETH room is 800 - 500 = 300 -> 0.15 ETH of the 0.2 asked
    d = e.check(T0, "ETHUSDT", "BUY", 0.2, 2_000, 2_000, {"BTCUSDT": 0.01}, marks)
    assert d.qty == pytest.approx(0.15)
    # selling BTC reduces: passes whole
    d = e.check(T0, "BTCUSDT", "SELL", 0.01, 50_000, 50_000, {"BTCUSDT": 0.01}, marks)
    assert d.qty == 0.01 and d.events == ()


def test_soft_band_is_allowed_for_the_grace_period_only():
    e = engine(caps={"per_symbol_usdt": 500, "total_usdt": 1000, "soft_cap_pct": 0.2,
                     "soft_cap_grace_s": 60, "auto_close": True},
               orders={"max_orders_per_s": 100, "stale_after_s": 1e6})
    marks = {"BTCUSDT": 50_000.0}
    # soft cap 600 USDT: 0.012 BTC allowed, with a soft_allow event
    d = e.check(T0, "BTCUSDT", "BUY", 0.012, 50_000, 50_000, {}, marks)
    assert d.qty == pytest.approx(0.012) and [ev.kind for ev in d.events] == ["soft_allow"]
    pos = {"BTCUSDT": 0.012}
    assert e.soft_cap_breaches(T0 + 30 * NS, pos, marks) == []
    late = e.soft_cap_breaches(T0 + 61 * NS, pos, marks)
    assert late[0].kind == "auto_close" and late[0].detail["qty"] == pytest.approx(0.002)
    # after the grace period nothing more may be added
    d = e.check(T0 + 61 * NS, "BTCUSDT", "BUY", 0.0001, 50_000, 50_000, pos, marks)
    assert d.qty == 0 and "cap reached" in d.events[0].reason


def test_rate_band_and_stale_guards_deny_with_reasons():
    e = engine(orders={"max_orders_per_s": 2, "price_band_pct": 0.01, "stale_after_s": 5})
    args = ("BTCUSDT", "BUY", 0.001, 50_000, 50_000, {}, {"BTCUSDT": 50_000.0})
    assert e.check(T0, *args).allowed and e.check(T0 + 1, *args).allowed
    d = e.check(T0 + 2, *args)
    assert not d.allowed and "order rate" in d.events[0].reason
    assert e.check(T0 + NS + 1, *args).allowed  # the window moved on
    far = e.check(T0 + 2 * NS, "BTCUSDT", "BUY", 0.001, 50_600, 50_000, {}, {})
    assert not far.allowed and "from the mid" in far.events[0].reason  # 1.2% > 1%
    assert e.check_stale(T0 + 5 * NS) == []
    ev = e.check_stale(T0 + 6 * NS)
    assert ev[0].kind == "stale" and e.check_stale(T0 + 7 * NS) == []  # reported once
    assert "stale" in e.check(T0 + 7 * NS, *args).events[0].reason
    assert e.on_market(T0 + 8 * NS)[0].kind == "resume"
    assert e.trips == {"stale_data": 1}


def test_daily_guard_trips_on_loss_drawdown_and_streak_and_resets_next_day():
    e = engine(daily={"max_loss_usdt": 100, "max_drawdown_pct": 0.05,
                      "max_consecutive_losses": 3})
    assert e.on_equity(T0, 1_000) == []
    assert e.on_equity(T0 + 1, 1_040) == []  # new peak
    # 1,040 -> 985: drawdown 5.29% > 5%, loss only 15
    ev = e.on_equity(T0 + 2, 985)
    assert ev[0].kind == "halt" and "drawdown" in ev[0].reason
    args = ("BTCUSDT", "BUY", 0.001, 50_000, 50_000, {}, {"BTCUSDT": 50_000.0})
    assert not e.check(T0 + 3, *args).allowed
    # next UTC day: lifted
    tomorrow = (T0 // (86_400 * NS) + 1) * 86_400 * NS
    assert e.on_equity(tomorrow, 985)[0].kind == "resume"
    assert e.check(tomorrow, *args).allowed is False  # market data stale by then
    e.on_market(tomorrow)
    assert e.check(tomorrow, *args).allowed
    assert e.on_trade_closed(tomorrow, -1) == [] and e.on_trade_closed(tomorrow, -2) == []
    ev = e.on_trade_closed(tomorrow, -3)
    assert ev[0].kind == "halt" and "3 losing trades" in ev[0].reason
    s = e.state()
    e2 = RiskEngine(e.cfg)
    e2.restore(s)
    assert e2.halted == e.halted and e2.trips == {"daily_drawdown": 1, "consecutive_losses": 1}


def test_close_all_action_and_kill_switch():
    e = engine(daily={"max_loss_usdt": 10, "action": "close_all"})
    e.on_equity(T0, 1_000)
    assert e.on_equity(T0 + 1, 989)[0].kind == "close_all"
    e2 = engine()
    ev = e2.kill(T0, "file")
    assert ev.kind == "kill" and e2.halted == "kill switch (file)"
    d = e2.check(T0, "BTCUSDT", "BUY", 0.001, 50_000, 50_000, {}, {})
    assert not d.allowed and "kill switch" in d.events[0].reason
    # flattening is still allowed
    assert e2.check(T0, "BTCUSDT", "SELL", 0.001, 50_000, 50_000, {"BTCUSDT": 0.001}, {}).allowed


def test_bracket_stop_take_profit_and_one_cancels_other():
    c = OcoCfg(sl_pct=0.01, tp_pct=0.02)
    b = Bracket.open(c, "BTCUSDT", 1, 100.0, 2.0)
    assert (b.stop, b.take_profit, b.r) == pytest.approx((99.0, 102.0, 1.0))
    assert b.on_price(101.0) == []
    ex = b.on_price(102.5)
    assert [(x.reason, x.qty, x.trigger) for x in ex] == [("take_profit", 2.0, 102.0)]
    assert b.done and b.on_price(90.0) == []  # the stop went with it
    short = Bracket.open(c, "BTCUSDT", -1, 100.0, 1.0)
    assert short.stop == pytest.approx(101.0)
    assert [x.reason for x in short.on_price(101.0)] == ["stop_loss"]


def test_trailing_stop_only_tightens_and_tiers_close_fractions_at_r_multiples():
    c = OcoCfg(sl_pct=0.02, tp_pct=None, trail_pct=0.03, tp_tiers=[(1.0, 0.5), (2.0, 0.25)])
    b = Bracket.open(c, "ETHUSDT", 1, 100.0, 4.0)  # stop 98, R = 2
    assert b.on_price(101.0) == []  # trail 101*0.97 = 97.97 < 98: stop stays
    assert b.stop == pytest.approx(98.0)
    ex = b.on_price(102.0)  # tier 1 at 102 (1R): half of 4; trail 98.94
    assert [(x.reason, x.qty) for x in ex] == [("tier_1", 2.0)]
    assert b.stop == pytest.approx(98.94)
    ex = b.on_price(105.0)  # tier 2 at 104 (2R): a quarter of 4; trail 101.85
    assert [(x.reason, x.qty) for x in ex] == [("tier_2", 1.0)]
    b.on_price(103.0)
    assert b.stop == pytest.approx(101.85)  # a lower price never loosens it
    ex = b.on_price(101.8)
    assert [(x.reason, x.qty) for x in ex] == [("trailing_stop", 1.0)]
    again = Bracket.from_dict(b.to_dict())
    assert again == b


def test_bad_risk_configs_are_named(tmp_path):
    p = tmp_path / "risk.yaml"
    p.write_text("caps:\n  per_symbol_usdt: 500\n  total_usdt: 100\norders:\n  max_qps: 3\n")
    with pytest.raises(ConfigError) as err:
        load_risk(p)
    msg = str(err.value)
    assert "total_usdt (100.0) is below per_symbol_usdt" in msg and "orders.max_qps" in msg
    with pytest.raises(ValueError, match="increasing"):
        OcoCfg(tp_tiers=[(2.0, 0.5), (1.0, 0.5)])
    with pytest.raises(ValueError, match="more than the position"):
        OcoCfg(tp_tiers=[(1.0, 0.6), (2.0, 0.6)])


def test_the_shipped_risk_config_loads():
    from pathlib import Path

    c = load_risk(Path(__file__).parents[1] / "configs" / "risk.yaml")
    assert c.caps.total_usdt >= c.caps.per_symbol_usdt


def test_a_reversal_is_sized_by_the_exposure_it_leaves():
    e = engine(caps={"per_symbol_usdt": 500, "total_usdt": 1000},
               orders={"max_orders_per_s": 100})
    marks = {"BTCUSDT": 50_000.0}
    # long 0.01 (500): selling 0.02 leaves short 0.01 (500): within the cap, not shrunk
    d = e.check(T0, "BTCUSDT", "SELL", 0.02, 50_000, 50_000, {"BTCUSDT": 0.01}, marks)
    assert d.qty == pytest.approx(0.02) and d.events == ()
    # selling 0.03 would leave short 0.02 (1,000): shrunk to 0.02
    d = e.check(T0, "BTCUSDT", "SELL", 0.03, 50_000, 50_000, {"BTCUSDT": 0.01}, marks)
    assert d.qty == pytest.approx(0.02) and d.events[0].kind == "shrink"
