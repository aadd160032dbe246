"""USD-M futures accounting, pure and in Decimal: one-way positions, realized and unrealized PnL,
initial margin of positions and open orders, funding payments.

Conventions (Binance USD-M, one-way mode, cross margin, USDT-margined linear contracts):

- a position is a signed amount (long > 0, short < 0) and an entry price, the volume-weighted
  average price of the fills that opened it; closing part of it keeps the entry price, and a fill
  that flips the side opens the new side at the fill price;
- a fill that closes ``q`` of a position realizes ``q * (price - entry)`` for a long and
  ``q * (entry - price)`` for a short;
- unrealized PnL is ``amount * (mark - entry)``;
- initial margin is ``notional / leverage``: a position's notional at the mark price, an open
  order's at its limit price, and only for the part of the orders on one side that would open
  (not reduce) the position;
- funding: at each settlement every position pays ``amount * mark * rate`` (longs pay when the
  rate is positive, shorts receive it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class PositionChange:
    """A position after a fill, and the PnL the fill realized."""

    amount: Decimal
    entry: Decimal  # 0 when flat
    realized: Decimal


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def apply_fill(amount: Decimal, entry: Decimal, qty: Decimal, price: Decimal) -> PositionChange:
    """The position ``(amount, entry)`` after a fill of signed ``qty`` (buy > 0) at ``price``."""
    if qty == 0:
        return PositionChange(amount, entry, ZERO)
    new = amount + qty
    if amount == 0 or _sign(amount) == _sign(qty):  # opening or adding: weighted average
        avg = (abs(amount) * entry + abs(qty) * price) / abs(new)
        return PositionChange(new, avg, ZERO)
    closed = min(abs(qty), abs(amount))
    realized = closed * (price - entry) * _sign(amount)
    if new == 0:
        return PositionChange(new, ZERO, realized)
    if _sign(new) == _sign(amount):  # partly closed: the entry stays
        return PositionChange(new, entry, realized)
    return PositionChange(new, price, realized)  # flipped: the rest opens at the fill price


def unrealized_pnl(amount: Decimal, entry: Decimal, mark: Decimal) -> Decimal:
    """PnL of the position if it were closed at ``mark``."""
    return amount * (mark - entry)


def position_margin(amount: Decimal, mark: Decimal, leverage: int) -> Decimal:
    """Initial margin a position holds: its notional at the mark over the leverage."""
    return abs(amount) * mark / leverage


def open_order_margin(amount: Decimal, orders: list[tuple[int, Decimal, Decimal]],
                      leverage: int) -> Decimal:
    """Initial margin the open orders of one symbol hold, given the position ``amount``.

    ``orders`` are ``(side, remaining quantity, limit price)`` with side +1 buy / -1 sell. On
    each side, the first ``|amount|`` of quantity opposite the position only reduces it and holds
    no margin; the rest holds its notional (at the side's average order price) over the leverage.
    Both sides are summed (a conservative reading of Binance's rule)."""
    total = ZERO
    for side in (1, -1):
        mine = [(q, p) for s, q, p in orders if s == side and q > 0]
        qty = sum((q for q, _ in mine), ZERO)
        if qty == 0:
            continue
        notional = sum((q * p for q, p in mine), ZERO)
        reducible = abs(amount) if _sign(amount) == -side else ZERO
        opening = max(ZERO, qty - reducible)
        total += notional * opening / qty / leverage
    return total


def funding_payment(amount: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """What a position receives (> 0) or pays (< 0) at a funding settlement."""
    return -amount * mark * rate


@dataclass(frozen=True)
class MarginSummary:
    """An account's USDT margin figures (cross margin)."""

    wallet: Decimal  # deposits + realized PnL - commissions + funding
    unrealized: Decimal
    position_margin: Decimal
    order_margin: Decimal

    @property
    def margin_balance(self) -> Decimal:
        return self.wallet + self.unrealized

    @property
    def initial_margin(self) -> Decimal:
        return self.position_margin + self.order_margin

    @property
    def available(self) -> Decimal:
        """What new orders may still commit."""
        return self.margin_balance - self.initial_margin


__all__ = ["MarginSummary", "PositionChange", "apply_fill", "funding_payment",
           "open_order_margin", "position_margin", "unrealized_pnl"]
