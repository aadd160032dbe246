"""Binance's trigger rules for conditional spot orders (STOP_LOSS, TAKE_PROFIT and their LIMIT
forms): which way the market's last trade price must move to set one off.

A stop-loss buys once the price has risen to the stop (``last >= stopPrice``) and sells once it
has fallen to it (``last <= stopPrice``); a take-profit is the mirror image (buy at or below,
sell at or above). An order whose condition already holds at placement is refused by Binance
with -2010 "Stop price would trigger immediately."
"""

from __future__ import annotations

from decimal import Decimal


def is_stop_loss(order_type: str) -> bool:
    return order_type.startswith("STOP_LOSS")


def triggers(order_type: str, side: str, stop: Decimal, last: Decimal) -> bool:
    """True when a trade at ``last`` sets off a conditional order of this type and side."""
    rises = (side == "BUY") == is_stop_loss(order_type)  # waits for the price to rise to stop
    return last >= stop if rises else last <= stop


def works_as(order_type: str) -> str:
    """The order type a triggered conditional order becomes on the book."""
    return "LIMIT" if order_type.endswith("_LIMIT") else "MARKET"
