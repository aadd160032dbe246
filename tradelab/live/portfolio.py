"""A run's book of account across its symbols: positions, cost bases, marks, PnL and fees.

One :class:`Portfolio` per run, shared by the run's per-symbol runner cores (all on one event
loop, so nothing here is touched concurrently). The risk engine reads its ``positions`` and
``marks`` for the total cap, and its :meth:`Portfolio.equity` is what the daily guard watches:
a loss on one symbol and a loss on another add up to one day's loss.
"""

from __future__ import annotations

import math

from tradelab.adapters.binance.symbols import split_raw
from tradelab.live.orders import Execution


class Portfolio:
    """Positions (signed base quantity), cost bases (signed quantity x entry price), marks
    (mid), realized PnL and fees (quote currency), per raw symbol."""

    def __init__(self) -> None:
        self.positions: dict[str, float] = {}
        self.marks: dict[str, float] = {}
        self.cost: dict[str, float] = {}
        self.realized_by: dict[str, float] = {}
        self.fees_by: dict[str, float] = {}

    def add_symbol(self, sym: str) -> None:
        """Start tracking ``sym`` flat (a symbol already tracked is left as it is)."""
        self.positions.setdefault(sym, 0.0)
        self.cost.setdefault(sym, 0.0)
        self.realized_by.setdefault(sym, 0.0)
        self.fees_by.setdefault(sym, 0.0)

    @property
    def realized(self) -> float:
        return sum(self.realized_by.values())

    @property
    def fees(self) -> float:
        return sum(self.fees_by.values())

    def entry_price(self, sym: str) -> float:
        """Average entry price of the open position (nan when flat)."""
        pos = self.positions.get(sym, 0.0)
        return self.cost.get(sym, 0.0) / pos if pos else math.nan

    def book(self, sym: str, side: str, ex: Execution) -> float | None:
        """Position, cost basis, realized PnL and fees after one fill; returns the PnL the fill
        realized (None if it only added). A fee charged in the base asset (Binance spot buys)
        leaves that much less of it: the position is what is actually held."""
        self.add_symbol(sym)
        qty, px, fee = float(ex.qty), float(ex.price), float(ex.fee)
        base = split_raw(sym)[0] if sym else ""
        fee_in_base = bool(ex.fee_asset) and ex.fee_asset == base
        signed = qty if side == "BUY" else -qty
        pos0 = self.positions[sym]
        cost = self.cost[sym]
        closed_pnl = None
        if pos0 != 0 and math.copysign(1, signed) != math.copysign(1, pos0):
            closing = min(abs(signed), abs(pos0))
            avg = cost / pos0
            closed_pnl = closing * (px - avg) * (1 if pos0 > 0 else -1)
            self.realized_by[sym] += closed_pnl
            cost -= avg * closing * (1 if pos0 > 0 else -1)
            if abs(signed) > abs(pos0):  # reversed: the rest opens at px
                cost = px * (pos0 + signed)
        else:
            cost += px * signed
        pos1 = pos0 + signed
        if fee_in_base:
            pos1 -= fee
            cost -= fee * (cost / (pos1 + fee)) if pos1 + fee else 0.0
            self.fees_by[sym] += fee * px
        else:
            self.fees_by[sym] += fee
        if abs(pos1) < 1e-12:
            pos1, cost = 0.0, 0.0
        self.positions[sym] = pos1
        self.cost[sym] = cost
        return closed_pnl

    def unrealized(self, sym: str | None = None) -> float:
        """Open PnL at the marks (of one symbol, or all). A symbol with no mark yet counts 0:
        a position is never valued at a price of zero."""
        syms = [sym] if sym is not None else list(self.positions)
        total = 0.0
        for s in syms:
            mark = self.marks.get(s)
            if mark is not None:
                total += self.positions.get(s, 0.0) * mark - self.cost.get(s, 0.0)
        return total

    def equity(self, start_cash: float) -> float:
        """Cash plus every position at its mark (fees included)."""
        return start_cash + self.realized - self.fees + self.unrealized()

    def exposure(self) -> float:
        """Gross notional at the marks (quote currency)."""
        return sum(abs(q) * self.marks.get(s, 0.0) for s, q in self.positions.items())


__all__ = ["Portfolio"]
