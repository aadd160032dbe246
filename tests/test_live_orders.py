"""The runner's order manager: grid, refusals, state machine, duplicate and late reports,
unknown outcomes and inferred fills (hand-made cases)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tradelab.adapters.binance.filters import symbol_filters
from tradelab.live.orders import (
    Execution,
    ManagedOrder,
    OrderManager,
    OrderState,
    Refusal,
    StatusReport,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000

    def __call__(self) -> int:
        self.t += 1
        return self.t


@pytest.fixture
def om() -> OrderManager:
    # spot BTCUSDT: tick 0.01, step 0.00001, min notional 5
    return OrderManager({"BTCUSDT": symbol_filters("spot", "BTCUSDT")}, Clock(), "t")


def _order(om: OrderManager, **kw) -> ManagedOrder:
    args = dict(symbol="BTCUSDT", side="BUY", qty=D("0.001"), price=D("60000"))
    args.update(kw)
    out = om.prepare(**args)
    assert isinstance(out, ManagedOrder), out
    return out


def test_prepare_puts_orders_on_the_grid_without_making_them_bigger_or_more_aggressive(om):
    buy = _order(om, qty=D("0.0012345"), price=D("60000.019"))
    assert (buy.qty, buy.price) == (D("0.00123"), D("60000.01"))  # qty truncated, buy price down
    sell = _order(om, side="SELL", qty=0.0012345, price=60000.011)
    assert (sell.qty, sell.price) == (D("0.00123"), D("60000.02"))  # sell price up
    assert buy.client_id == "t-1" and sell.client_id == "t-2"
    assert buy.state is OrderState.PENDING_NEW


def test_prepare_refuses_below_minimum_notional_and_zero_quantity(om):
    # 0.00008 BTC * 60,000 = 4.8 USDT < 5
    small = om.prepare("BTCUSDT", "BUY", D("0.00008"), D("60000"))
    assert isinstance(small, Refusal) and small.reason == "NOTIONAL"
    zero = om.prepare("BTCUSDT", "BUY", D("0.000009"), D("60000"))
    assert isinstance(zero, Refusal) and zero.reason == "LOT_SIZE"
    market = om.prepare("BTCUSDT", "SELL", D("0.00008"), None, type="MARKET",
                        reference_price=D("60000"))
    assert isinstance(market, Refusal) and market.reason == "NOTIONAL"
    assert isinstance(om.prepare("ETHUSDT", "BUY", 1, 3000), Refusal)
    assert om.orders.keys() == set()  # refusals are not registered


def test_a_fill_before_the_ack_and_a_duplicate_fill_are_each_counted_once(om):
    o = _order(om, qty=D("0.003"))
    om.on_submitted(o.client_id)
    assert om.on_execution(o.client_id, Execution("17", D("0.001"), D("59999.5")))
    assert o.state is OrderState.PARTIALLY_FILLED
    om.on_ack(o.client_id, "900", "NEW")  # late ack does not move it back
    assert o.state is OrderState.PARTIALLY_FILLED and o.venue_id == "900"
    assert not om.on_execution(o.client_id, Execution("17", D("0.001"), D("59999.5")))
    assert om.on_execution(o.client_id, Execution("18", D("0.002"), D("60000")))
    assert o.state is OrderState.FILLED
    assert o.filled == D("0.003")
    # average price: (0.001*59999.5 + 0.002*60000) / 0.003 = 179999.5/3 ... = 59999.8333...
    assert o.avg_price == (D("59.9995") + D("120")) / D("0.003")
    assert om.ignored["duplicate_execution"] == 1
    assert [s for _, s in o.history] == [OrderState.PENDING_NEW, OrderState.PARTIALLY_FILLED,
                                         OrderState.FILLED]


def test_terminal_states_are_final_and_a_late_fill_of_a_cancelled_order_still_counts(om):
    o = _order(om, qty=D("0.002"))
    om.on_ack(o.client_id, "1")
    assert om.on_cancel_sent(o.client_id)
    assert o.state is OrderState.PENDING_CANCEL
    om.on_status(StatusReport(o.client_id, "PARTIALLY_FILLED"))  # stale: cancel in flight
    assert o.state is OrderState.PENDING_CANCEL
    om.on_status(StatusReport(o.client_id, "CANCELED", cum_qty=D("0")))
    assert o.state is OrderState.CANCELED
    # the fill that happened just before the cancel arrives after it
    assert om.on_execution(o.client_id, Execution("5", D("0.0005"), D("60000")))
    assert o.state is OrderState.CANCELED and o.filled == D("0.0005")
    om.on_status(StatusReport(o.client_id, "NEW"))
    assert o.state is OrderState.CANCELED and om.ignored["after_canceled"] == 1
    assert not om.on_cancel_sent(o.client_id)


def test_an_unknown_submit_outcome_is_listed_for_a_query_and_settled_by_it(om):
    a = _order(om)
    b = _order(om)
    om.on_submit_failed(a.client_id, unknown=True)
    om.on_submit_failed(b.client_id, unknown=True)
    assert [o.client_id for o in om.to_query()] == [a.client_id, b.client_id]
    assert a.state is OrderState.PENDING_NEW
    # a was placed and filled meanwhile: the query says so with cumulative figures only
    inferred = om.on_status(StatusReport(a.client_id, "FILLED", "77", cum_qty=D("0.001"),
                                         cum_quote=D("59.9")))
    assert len(inferred) == 1 and inferred[0].inferred
    assert inferred[0].qty == D("0.001") and inferred[0].price == D("59900")
    assert a.state is OrderState.FILLED and a.venue_id == "77"
    # b never reached the venue
    om.on_not_found(b.client_id)
    assert b.state is OrderState.REJECTED
    assert om.to_query() == []


def test_a_definite_rejection_and_a_failed_cancel(om):
    a = _order(om)
    om.on_submit_failed(a.client_id, unknown=False, reason="-2010")
    assert a.state is OrderState.REJECTED
    b = _order(om)
    om.on_ack(b.client_id, "2")
    om.on_cancel_sent(b.client_id)
    om.on_cancel_failed(b.client_id)  # -2011: maybe filled meanwhile
    assert b.state is OrderState.NEW and b.outcome_unknown
    assert om.to_query() == [b]


def test_positions_and_open_orders_follow_executions(om):
    buy = _order(om, qty=D("0.003"))
    sell = _order(om, side="SELL", qty=D("0.001"), price=D("61000"))
    om.on_execution(buy.client_id, Execution("1", D("0.003"), D("60000")))
    om.on_execution(sell.client_id, Execution("2", D("0.0004"), D("61000")))
    assert om.position("BTCUSDT") == D("0.0026")
    assert om.open_orders() == [sell]


def test_adopted_orders_keep_client_ids_unique_after_a_restart(om):
    old = ManagedOrder("t-41", "BTCUSDT", "BUY", "LIMIT", D("0.001"), D("60000"),
                       state=OrderState.NEW)
    om.adopt(old)
    assert _order(om).client_id == "t-42"


def test_bad_input_is_named(om):
    with pytest.raises(ValueError, match="side must be BUY or SELL"):
        om.prepare("BTCUSDT", "buy", 1, 1)
    with pytest.raises(KeyError, match="unknown client order id"):
        om.on_ack("nope", "1")
    o = _order(om)
    with pytest.raises(ValueError, match="unknown venue status 'WEIRD'"):
        om.on_status(StatusReport(o.client_id, "WEIRD"))
    with pytest.raises(ValueError, match="client id prefix"):
        OrderManager({}, Clock(), "bad prefix!")


def test_a_real_fill_reported_after_an_inferred_one_takes_its_place(om):
    o = _order(om, qty=D("0.002"))
    om.on_ack(o.client_id, "5")
    # a status query says 0.002 filled for 120 USDT before the stream reported any fill
    inferred = om.on_status(StatusReport(o.client_id, "FILLED", cum_qty=D("0.002"),
                                         cum_quote=D("120")))
    assert [e.qty for e in inferred] == [D("0.002")] and o.filled == D("0.002")
    # then the stream's real fill arrives: it replaces the inferred one, nothing is doubled
    assert not om.on_execution(o.client_id, Execution("900", D("0.002"), D("60000")))
    assert o.filled == D("0.002") and [e.trade_id for e in o.executions] == ["900"]
    assert om.ignored["replaced_inferred"] == 1
