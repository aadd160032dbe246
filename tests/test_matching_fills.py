"""Fill rules and order types of the matching core, one hand-built event sequence per rule.

Book used throughout (tick 0.1, lot 0.001): bids 100.0 x 10, 99.9 x 5; asks 100.1 x 3,
100.2 x 4. Expected executions are written out (price, quantity, maker flag).
"""

from __future__ import annotations

import numpy as np
import pytest

from tradelab.matching import (
    BUY,
    FOK,
    GTX,
    IOC,
    MARKET,
    R_FOK_DEPTH,
    R_IOC_REST,
    R_OCO,
    R_POST_ONLY,
    R_REDUCE_ONLY,
    R_UNKNOWN_ORDER,
    RP_AMENDED,
    RP_CANCELED,
    RP_EXPIRED,
    RP_FILLED,
    RP_REJECTED,
    RP_TRIGGERED,
    SELL,
    ST_FILLED,
    ST_PARTIAL,
    MatchingCore,
    instrument,
)


def book(maker_fee: float = 0.0, taker_fee: float = 0.0, model: str = "risk_averse",
         tick: float = 0.1) -> MatchingCore:
    c = MatchingCore(instrument(tick, 0.001, maker_fee=maker_fee, taker_fee=taker_fee),
                     50.0, 150.0, model, 2.0)
    c.on_book(0, [(100.0, 10.0), (99.9, 5.0)], [(100.1, 3.0), (100.2, 4.0)])
    return c


def fills(ex) -> list[tuple[int, float, float, int]]:
    return [(int(f["order_id"]), round(float(f["px"]), 6), round(float(f["qty"]), 6),
             int(f["maker"])) for f in ex.fills]


# ----------------------------------------------------------------------------- three triggers


def test_trade_through_fills_fully_at_own_price() -> None:
    c = book()
    c.place(1, 1, BUY, 1.0, px=100.0)  # queue ahead: 10
    ex = c.on_trade(2, SELL, 99.9, 0.5)  # a sell below our bid: everything at 100.0 went first
    assert fills(ex) == [(1, 100.0, 1.0, 1)]
    assert ex.reports["kind"].tolist() == [RP_FILLED]


def test_trade_at_price_fills_once_queue_ahead_is_gone_partial_then_complete() -> None:
    c = book()
    c.on_depth(1, BUY, 100.0, 2.0)
    c.place(2, 1, BUY, 1.0, px=100.0)  # queue ahead: 2
    assert fills(c.on_trade(3, SELL, 100.0, 1.5)) == []  # front 0.5
    ex = c.on_trade(4, SELL, 100.0, 1.0)  # 0.5 left after the queue: a partial fill
    assert fills(ex) == [(1, 100.0, 0.5, 1)]
    assert ex.fills["leaves"].tolist() == [0.5]
    assert c.order(1)["status"] == ST_PARTIAL
    ex = c.on_trade(5, SELL, 100.0, 2.0)  # at the front: the rest, capped at leaves
    assert fills(ex) == [(1, 100.0, 0.5, 1)]
    assert ex.reports["kind"].tolist() == [RP_FILLED]
    assert c.position == pytest.approx(1.0)
    # finished: never touched again
    assert fills(c.on_trade(6, SELL, 99.0, 5.0)) == []


def test_book_crossing_without_trade_fills_from_crossing_liquidity() -> None:
    c = book()
    c.place(1, 1, BUY, 1.0, px=100.0)
    ex = c.on_depth(2, SELL, 99.9, 0.4)  # an ask appears below our bid, no trade
    assert fills(ex) == [(1, 100.0, 0.4, 1)]
    # more crossing liquidity at 100.0: the 0.4 at 99.9 is already ours, not reused
    ex = c.on_depth(3, SELL, 100.0, 2.0)
    assert fills(ex) == [(1, 100.0, 0.6, 1)]
    assert c.order(1)["status"] == ST_FILLED


# ----------------------------------------------------------------------------- consumption


def test_level_liquidity_shared_by_two_of_our_orders_until_next_update() -> None:
    c = book()
    c.place(1, 1, BUY, 0.5, px=100.0)
    c.place(2, 2, BUY, 0.5, px=100.0)
    ex = c.on_depth(3, SELL, 99.9, 0.7)
    assert fills(ex) == [(1, 100.0, 0.5, 1), (2, 100.0, 0.2, 1)]
    assert fills(c.on_depth(4, BUY, 99.0, 1.0)) == []  # other level: nothing new at 99.9
    ex = c.place(5, 3, BUY, 0.1, px=99.9, tif=IOC)  # a taker cannot reuse it either
    assert fills(ex) == [] and ex.reports["reason"].tolist() == [R_IOC_REST]
    ex = c.on_depth(6, SELL, 99.9, 0.7)  # the level updates: its liquidity is fresh
    assert fills(ex) == [(2, 100.0, 0.3, 1)]


def test_one_trade_is_shared_in_queue_order_among_our_orders() -> None:
    c = book()
    c.on_depth(1, BUY, 100.0, 1.0)
    c.place(2, 1, BUY, 0.5, px=100.0)
    c.place(3, 2, BUY, 0.5, px=100.0)
    ex = c.on_trade(4, SELL, 100.0, 1.8)  # 1.0 ahead, then 0.8 for us: 0.5 + 0.3
    assert fills(ex) == [(1, 100.0, 0.5, 1), (2, 100.0, 0.3, 1)]


# ----------------------------------------------------------------------------- order types


def test_post_only_rejected_when_it_would_take() -> None:
    c = book()
    ex = c.place(1, 1, BUY, 1.0, px=100.1, tif=GTX)
    assert ex.reports["kind"].tolist() == [RP_REJECTED]
    assert ex.reports["reason"].tolist() == [R_POST_ONLY]
    assert len(ex.fills) == 0
    ex = c.place(2, 2, BUY, 1.0, px=100.0, tif=GTX)
    assert ex.reports["kind"].tolist() == [1]


def test_ioc_walks_to_limit_and_expires_rest() -> None:
    c = book()
    ex = c.place(1, 1, BUY, 5.0, px=100.2, tif=IOC)
    assert fills(ex) == [(1, 100.1, 3.0, 0), (1, 100.2, 2.0, 0)]
    ex = book().place(1, 1, BUY, 10.0, px=100.2, tif=IOC)
    assert fills(ex) == [(1, 100.1, 3.0, 0), (1, 100.2, 4.0, 0)]
    assert ex.reports["kind"].tolist()[-1] == RP_EXPIRED
    assert ex.reports["reason"].tolist()[-1] == R_IOC_REST
    ex = book().place(1, 1, BUY, 1.0, px=100.0, tif=IOC)  # nothing to take
    assert fills(ex) == [] and ex.reports["kind"].tolist() == [RP_EXPIRED]


def test_fok_prechecks_depth() -> None:
    ex = book().place(1, 1, BUY, 7.5, px=100.2, tif=FOK)  # 7.0 within the limit
    assert fills(ex) == []
    assert ex.reports["reason"].tolist() == [R_FOK_DEPTH]
    ex = book().place(1, 1, BUY, 7.0, px=100.2, tif=FOK)
    assert fills(ex) == [(1, 100.1, 3.0, 0), (1, 100.2, 4.0, 0)]


def test_market_order_walks_the_book_vwap_and_taker_fee() -> None:
    c = book(maker_fee=-0.0001, taker_fee=0.0004)
    ex = c.place(1, 1, BUY, 5.0, kind=MARKET)
    assert fills(ex) == [(1, 100.1, 3.0, 0), (1, 100.2, 2.0, 0)]
    vwap = (ex.fills["px"] * ex.fills["qty"]).sum() / ex.fills["qty"].sum()
    assert vwap == pytest.approx((100.1 * 3 + 100.2 * 2) / 5)  # 100.14
    assert ex.fills["fee"].tolist() == pytest.approx([0.0004 * 300.3, 0.0004 * 200.4])
    assert c.cash == pytest.approx(-(300.3 + 200.4) - 0.0004 * 500.7)
    # a maker fill earns the rebate
    c.place(2, 2, SELL, 1.0, px=100.3)
    ex = c.on_trade(3, BUY, 100.4, 1.0)
    assert ex.fills["fee"].tolist() == pytest.approx([-0.0001 * 100.3])


def test_crossing_gtc_takes_then_rests_remainder() -> None:
    c = book()
    ex = c.place(1, 1, BUY, 4.0, px=100.1)
    assert fills(ex) == [(1, 100.1, 3.0, 0)]
    o = c.order(1)
    assert o["leaves"] == pytest.approx(1.0) and o["status"] == ST_PARTIAL


def test_modify_priority() -> None:
    c = book()
    c.place(1, 1, BUY, 2.0, px=100.0)  # front 10
    c.on_depth(2, BUY, 100.0, 16.0)  # others join behind: front stays 10
    c.modify(3, 1, 100.0, 1.0)  # smaller at the same price: keeps its place
    assert c.order(1)["front"] == 10.0
    c.modify(4, 1, 100.0, 1.5)  # larger: back of the queue
    assert c.order(1)["front"] == 16.0
    c.modify(5, 1, 99.9, 1.5)  # new price: back of that level
    assert c.order(1)["front"] == 5.0
    ex = c.modify(6, 99, 99.9, 1.0)
    assert ex.reports["reason"].tolist() == [R_UNKNOWN_ORDER]
    ex = c.modify(7, 1, 100.2, 1.5)  # a price that crosses: takes as a taker
    assert fills(ex) == [(1, 100.1, 1.5, 0)]


def test_cancel_and_unknown_cancel() -> None:
    c = book()
    c.place(1, 1, BUY, 1.0, px=100.0)
    assert c.cancel(2, 1).reports["kind"].tolist() == [RP_CANCELED]
    ex = c.cancel(3, 1)
    assert ex.reports["kind"].tolist() == [RP_REJECTED]
    assert ex.reports["reason"].tolist() == [R_UNKNOWN_ORDER]
    assert fills(c.on_trade(4, SELL, 99.0, 5.0)) == []


def test_reduce_only() -> None:
    c = book()
    ex = c.place(1, 1, SELL, 1.0, kind=MARKET, reduce_only=True)  # flat: would open
    assert ex.reports["reason"].tolist() == [R_REDUCE_ONLY]
    c.place(2, 2, BUY, 1.0, kind=MARKET)
    assert c.position == pytest.approx(1.0)
    ex = c.place(3, 3, SELL, 2.0, kind=MARKET, reduce_only=True)  # capped at the position
    assert fills(ex) == [(3, 100.0, 1.0, 0)]
    assert ex.reports["reason"].tolist()[-1] == R_REDUCE_ONLY
    assert c.position == pytest.approx(0.0)


def test_tick_and_lot_are_enforced() -> None:
    c = book()
    with pytest.raises(ValueError, match="not a multiple of the tick size"):
        c.place(1, 1, BUY, 1.0, px=100.05)
    ex = c.place(1, 1, BUY, 1.0005, px=100.0)
    assert ex.reports["kind"].tolist() == [RP_REJECTED]
    c2 = MatchingCore(instrument(0.1, 0.001, min_notional=100.0), 50, 150)
    c2.on_book(0, [(100.0, 1.0)], [(100.1, 1.0)])
    assert c2.place(1, 1, BUY, 0.5, px=100.0).reports["kind"].tolist() == [RP_REJECTED]
    assert c.round_price(100.05, BUY) == 100.0 and c.round_price(100.05, SELL) == 100.1


# ----------------------------------------------------------------------------- contingent


def test_bracket_take_profit_tiers_then_stop_cancels_the_rest() -> None:
    # seed 001 section 12: sl_pct 0.006, tp_tiers [[1.0, 0.5], [2.0, 0.5]]
    c = MatchingCore(instrument(0.1, 0.001), 50, 150)
    c.on_book(0, [(99.9, 10.0)], [(100.0, 10.0)])
    c.place(1, 1, BUY, 1.0, kind=MARKET)  # long 1.0 at 100.0
    ex = c.bracket(2, 10, BUY, 100.0, 1.0, sl_pct=0.01, tp_tiers=[(1.0, 0.5), (2.0, 0.5)])
    # stop at 99.0, R = 1.0: targets 101.0 (0.5) and 102.0 (0.5)
    assert ex.reports["px"].tolist() == pytest.approx([99.0, 101.0, 102.0])
    c.on_book(3, [(100.9, 10.0)], [(101.0, 10.0)])
    ex = c.on_trade(4, BUY, 101.0, 0.1)  # first target reached
    assert fills(ex) == [(11, 100.9, 0.5, 0)]
    kinds = dict(zip(ex.reports["order_id"].tolist(), ex.reports["kind"].tolist()))
    assert kinds[11] == RP_FILLED and kinds[10] == RP_AMENDED  # stop now covers 0.5
    assert c.order(10)["leaves"] == pytest.approx(0.5)
    c.on_book(5, [(98.9, 10.0)], [(99.1, 10.0)])
    ex = c.on_trade(6, SELL, 99.0, 0.1)  # stop reached
    assert fills(ex) == [(10, 98.9, 0.5, 0)]
    cancelled = ex.reports[ex.reports["kind"] == RP_CANCELED]
    assert cancelled["order_id"].tolist() == [12] and cancelled["reason"].tolist() == [R_OCO]
    assert c.position == pytest.approx(0.0)


def test_trailing_stop_follows_up_never_down() -> None:
    c = MatchingCore(instrument(0.01, 0.001), 50, 150)
    c.on_book(0, [(99.99, 10.0)], [(100.0, 10.0)])
    c.place(1, 1, BUY, 1.0, kind=MARKET)
    c.bracket(2, 10, BUY, 100.0, 1.0, sl_pct=0.01, trail_pct=0.01)  # stop 99.00
    c.on_trade(3, BUY, 105.0, 0.1)  # stop -> 103.95
    assert c.order(10)["trigger"] == 10395
    c.on_trade(4, SELL, 104.0, 0.1)  # lower trade: stop not relaxed, not reached
    assert c.order(10)["trigger"] == 10395
    c.on_book(5, [(103.9, 10.0)], [(104.0, 10.0)])
    ex = c.on_trade(6, SELL, 103.95, 0.1)
    assert RP_TRIGGERED in ex.reports["kind"].tolist()
    assert fills(ex) == [(10, 103.9, 1.0, 0)]


def test_sum_of_fills_is_position_on_real_like_sequence() -> None:
    c = book(maker_fee=0.0002, taker_fee=0.0005, model="power")
    all_fills = []
    all_fills.append(c.place(1, 1, BUY, 1.0, px=100.0).fills)
    all_fills.append(c.place(2, 2, SELL, 2.0, kind=MARKET).fills)
    all_fills.append(c.on_trade(3, SELL, 99.8, 3.0).fills)
    f = np.concatenate(all_fills)
    assert (f["side"] * f["qty"]).sum() == pytest.approx(c.position)
    assert f["fee"].sum() == pytest.approx(c.fees)
