"""USD-M accounting by hand: positions, realized and unrealized PnL, margin, funding.

Every expected value is worked out in the comments next to it."""

from __future__ import annotations

from decimal import Decimal

from tradelab.venue.margin import (
    MarginSummary,
    apply_fill,
    funding_payment,
    open_order_margin,
    position_margin,
    unrealized_pnl,
)

D = Decimal


def test_position_through_open_add_reduce_flip_and_close():
    # buy 0.5 @ 100 from flat: long 0.5 at 100, nothing realized
    c = apply_fill(D(0), D(0), D("0.5"), D("100"))
    assert (c.amount, c.entry, c.realized) == (D("0.5"), D("100"), D(0))
    # buy 0.3 @ 110: entry (0.5 * 100 + 0.3 * 110) / 0.8 = 83 / 0.8 = 103.75
    c = apply_fill(c.amount, c.entry, D("0.3"), D("110"))
    assert (c.amount, c.entry, c.realized) == (D("0.8"), D("103.75"), D(0))
    # sell 0.2 @ 120: closes 0.2 of the long, realizes 0.2 * (120 - 103.75) = 3.25; entry stays
    c = apply_fill(c.amount, c.entry, D("-0.2"), D("120"))
    assert (c.amount, c.entry, c.realized) == (D("0.6"), D("103.75"), D("3.25"))
    # sell 1.0 @ 90: closes the 0.6 long (0.6 * (90 - 103.75) = -8.25), opens a 0.4 short at 90
    c = apply_fill(c.amount, c.entry, D("-1.0"), D("90"))
    assert (c.amount, c.entry, c.realized) == (D("-0.4"), D("90"), D("-8.25"))
    # the short marked at 92 has lost -0.4 * (92 - 90) = -0.8
    assert unrealized_pnl(c.amount, c.entry, D("92")) == D("-0.8")
    # sell 0.1 more @ 80: entry (0.4 * 90 + 0.1 * 80) / 0.5 = 44 / 0.5 = 88
    c = apply_fill(c.amount, c.entry, D("-0.1"), D("80"))
    assert (c.amount, c.entry, c.realized) == (D("-0.5"), D("88"), D(0))
    # buy 0.5 @ 95 closes the short: a short gains when the price falls, here it lost
    # 0.5 * (88 - 95) = -3.5; flat positions have no entry price
    c = apply_fill(c.amount, c.entry, D("0.5"), D("95"))
    assert (c.amount, c.entry, c.realized) == (D(0), D(0), D("-3.5"))


def test_initial_margin_of_positions_and_open_orders():
    # a 0.6 long marked at 105 with leverage 20: 0.6 * 105 / 20 = 3.15
    assert position_margin(D("0.6"), D("105"), 20) == D("3.15")
    assert position_margin(D("-0.6"), D("105"), 20) == D("3.15")
    # long 0.5, leverage 10. Sells 0.5 @ 110 and 0.5 @ 130: 1.0 on the sell side, of which the
    # first 0.5 only closes the long; the other half opens a short: notional (55 + 65) = 120,
    # half of it opening -> 60 / 10 = 6. The buy 0.2 @ 90 adds to the long: 18 / 10 = 1.8.
    orders = [(-1, D("0.5"), D("110")), (-1, D("0.5"), D("130")), (1, D("0.2"), D("90"))]
    assert open_order_margin(D("0.5"), orders, 10) == D("7.8")
    # flat: every order opens: (55 + 65 + 18) / 10 = 13.8
    assert open_order_margin(D(0), orders, 10) == D("13.8")
    # a sell side smaller than the long holds nothing
    assert open_order_margin(D("2"), [(-1, D("1"), D("100"))], 5) == D(0)


def test_funding_payments_follow_the_sign_of_rate_and_position():
    # long 2 marked at 100, rate +0.01 %: the long pays 2 * 100 * 0.0001 = 0.02
    assert funding_payment(D("2"), D("100"), D("0.0001")) == D("-0.02")
    # the short side of it receives the same
    assert funding_payment(D("-2"), D("100"), D("0.0001")) == D("0.02")
    # rate -0.03 %: a 1.5 long at 200 receives 1.5 * 200 * 0.0003 = 0.09
    assert funding_payment(D("1.5"), D("200"), D("-0.0003")) == D("0.09")


def test_margin_summary():
    s = MarginSummary(wallet=D("1000"), unrealized=D("-50"), position_margin=D("100"),
                      order_margin=D("20"))
    # margin balance 1000 - 50 = 950; initial margin 120; available 950 - 120 = 830
    assert (s.margin_balance, s.initial_margin, s.available) == (D("950"), D("120"), D("830"))
