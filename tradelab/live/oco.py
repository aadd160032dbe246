"""Exits the runner manages for a position: stop-loss, take-profit, trailing stop, R tiers.

One :class:`Bracket` per position, opened at the entry fill. On each price it returns the exits
due, at most once each, and it is *one-cancels-other*: when the stop or the final take-profit
fires, the whole remaining quantity goes and the bracket is done. The trailing stop follows the
best price since entry and never loosens. Tiers close a fraction of the entry quantity at
``entry +- multiple * R`` where ``R = |entry - initial stop|``.

A bracket is plain data (:meth:`Bracket.to_dict`), so a restarted runner rehydrates it from its
journal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tradelab.live.risk_config import OcoCfg


@dataclass(frozen=True)
class Exit:
    """Close ``qty`` of the position (a positive quantity) because of ``reason``."""

    reason: str  # stop_loss | trailing_stop | take_profit | tier_<k>
    qty: float
    trigger: float


@dataclass
class Bracket:
    """The exits of one position (``side`` +1 long, -1 short)."""

    symbol: str
    side: int
    entry: float
    qty: float
    stop: float
    take_profit: float | None
    trail_pct: float | None
    r: float
    tiers: list[tuple[float, float]] = field(default_factory=list)
    tiers_done: int = 0
    best: float = 0.0
    open_qty: float = 0.0
    initial_stop: float = 0.0
    done: bool = False

    @classmethod
    def open(cls, cfg: OcoCfg, symbol: str, side: int, entry: float, qty: float) -> Bracket:
        """The bracket of a new position filled at ``entry``."""
        if side not in (1, -1) or entry <= 0 or qty <= 0:
            raise ValueError(f"bracket for {symbol}: need side +-1, entry > 0 and qty > 0; got "
                             f"side={side} entry={entry} qty={qty}")
        stop = entry * (1 - side * cfg.sl_pct)
        tp = entry * (1 + side * cfg.tp_pct) if cfg.tp_pct else None
        return cls(symbol, side, entry, qty, stop, tp, cfg.trail_pct, abs(entry - stop),
                   list(cfg.tp_tiers), best=entry, open_qty=qty, initial_stop=stop)

    def on_price(self, price: float) -> list[Exit]:
        """Exits due at this price (empty if none); updates the trailing stop first."""
        if self.done:
            return []
        s = self.side
        if s * (price - self.best) > 0:
            self.best = price
            if self.trail_pct:
                trailed = self.best * (1 - s * self.trail_pct)
                if s * (trailed - self.stop) > 0:  # only tighten
                    self.stop = trailed
        if s * (self.stop - price) >= 0:
            reason = "trailing_stop" if s * (self.stop - self.initial_stop) > 0 else "stop_loss"
            return self._close_all(reason, self.stop)
        if self.take_profit is not None and s * (price - self.take_profit) >= 0:
            return self._close_all("take_profit", self.take_profit)
        out: list[Exit] = []
        while self.tiers_done < len(self.tiers):
            multiple, frac = self.tiers[self.tiers_done]
            level = self.entry + s * multiple * self.r
            if s * (price - level) < 0:
                break
            self.tiers_done += 1
            q = min(self.qty * frac, self.open_qty)
            if q > 0:
                self.open_qty -= q
                out.append(Exit(f"tier_{self.tiers_done}", q, level))
        if self.open_qty <= 1e-12:
            self.done = True
        return out

    def on_reduced(self, qty: float) -> None:
        """The position shrank by ``qty`` for another reason (a manual or strategy exit)."""
        self.open_qty = max(0.0, self.open_qty - qty)
        if self.open_qty <= 1e-12:
            self.done = True

    def _close_all(self, reason: str, trigger: float) -> list[Exit]:
        q, self.open_qty, self.done = self.open_qty, 0.0, True
        return [Exit(reason, q, trigger)] if q > 0 else []

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bracket:
        d = dict(d)
        d["tiers"] = [tuple(t) for t in d.get("tiers", [])]
        return cls(**d)


__all__ = ["Bracket", "Exit"]
