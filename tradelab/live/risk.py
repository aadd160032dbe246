"""The risk engine in front of every order: sizing, caps, guards and the kill switch.

Pure and deterministic: the runner's loop hands it the time, the marks and the positions, and it
answers with a :class:`Decision` and the :class:`RiskEvent`s behind it. A denied or shrunk order
is an event with its reason, never an exception. Checks run in this order, the first that denies
wins:

1. **halted** (kill switch, daily guard): only orders that reduce a position pass;
2. **stale data**: no market event for ``stale_after_s``;
3. **order rate**: more than ``max_orders_per_s`` orders in the last second;
4. **price band**: a limit price further than ``price_band_pct`` from the mid;
5. **caps**: an order that adds exposure is shrunk to fit the hard caps (per symbol, then total),
   or denied if nothing fits; the soft band above a cap is allowed for a grace period.

Orders that reduce a position are never shrunk by the caps (getting smaller is always allowed).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradelab.live.risk_config import RiskConfig

NS = 1_000_000_000
DAY_NS = 86_400 * NS


@dataclass(frozen=True)
class RiskEvent:
    """A decision of the risk engine worth recording (deny, shrink, soft allow, halt ...)."""

    ts_ns: int
    kind: str  # deny | shrink | soft_allow | halt | close_all | kill | resume | stale | auto_close
    reason: str
    symbol: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What may be sent: ``qty`` (0 = nothing) and the events explaining any change."""

    qty: float
    events: tuple[RiskEvent, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.qty > 0


def realized_vol(closes: np.ndarray, periods_per_year: float) -> float:
    """Annualised standard deviation of log returns (sample, ddof=1); nan with < 2 returns."""
    c = np.asarray(closes, dtype=np.float64)
    if c.size < 3 or np.any(c <= 0):
        return math.nan
    r = np.diff(np.log(c))
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def vol_target_qty(cfg: RiskConfig, price: float, ann_vol: float) -> float:
    """Quantity whose notional is ``equity * target_vol / ann_vol``, at most ``max_leverage``
    times equity; 0 when the volatility is unknown or the price is not positive."""
    s = cfg.sizing
    if not (price > 0) or not (ann_vol > 0) or math.isnan(ann_vol):
        return 0.0
    notional = min(s.equity_usdt * s.target_vol / ann_vol, s.equity_usdt * s.max_leverage)
    return notional / price


class RiskEngine:
    """Limits of one runner. ``positions`` and ``marks`` are read, never owned."""

    def __init__(self, cfg: RiskConfig) -> None:
        self.cfg = cfg
        self.halted: str | None = None  # why no new risk may be taken (None: trading)
        self.killed = False
        self.last_market_ns: int | None = None
        self.stale = False
        self._sent: deque[int] = deque()
        self._soft_since: dict[str, int] = {}
        self.day: int | None = None
        self.day_start_equity = 0.0
        self.day_peak_equity = 0.0
        self.consecutive_losses = 0
        self.trips: dict[str, int] = {}

    # -- inputs ------------------------------------------------------------------------------

    def on_market(self, ts_ns: int) -> list[RiskEvent]:
        """A market event arrived: data is fresh again."""
        self.last_market_ns = ts_ns
        if self.stale:
            self.stale = False
            return [RiskEvent(ts_ns, "resume", "market data is flowing again")]
        return []

    def check_stale(self, now_ns: int) -> list[RiskEvent]:
        """A ``stale`` event (once) when no market data came for ``stale_after_s``: the runner
        cancels its orders on it."""
        limit = self.cfg.orders.stale_after_s * NS
        if self.last_market_ns is None or self.stale or now_ns - self.last_market_ns <= limit:
            return []
        self.stale = True
        self._trip("stale_data")
        age = (now_ns - self.last_market_ns) / NS
        return [RiskEvent(now_ns, "stale", f"no market data for {age:.1f} s "
                          f"(limit {self.cfg.orders.stale_after_s:g} s)")]

    def kill(self, now_ns: int, source: str) -> RiskEvent:
        """The kill switch: halt for good (until a restart) and cancel everything."""
        self.killed = True
        self.halted = f"kill switch ({source})"
        self._trip("kill_switch")
        return RiskEvent(now_ns, "kill", f"kill switch pulled by {source}")

    def on_equity(self, now_ns: int, equity: float) -> list[RiskEvent]:
        """Mark-to-market equity (realized + unrealized): checks the daily loss and drawdown.
        A new UTC day resets the day's reference and lifts a daily halt."""
        out: list[RiskEvent] = []
        day = now_ns // DAY_NS
        if day != self.day:
            if self.day is not None and self.halted and self.halted.startswith("daily"):
                self.halted = None
                out.append(RiskEvent(now_ns, "resume", "new UTC day: daily guard reset"))
            self.day = day
            self.day_start_equity = self.day_peak_equity = equity
            self.consecutive_losses = 0
        self.day_peak_equity = max(self.day_peak_equity, equity)
        g = self.cfg.daily
        loss = self.day_start_equity - equity
        dd = 1 - equity / self.day_peak_equity if self.day_peak_equity > 0 else 0.0
        if loss > g.max_loss_usdt:
            out += self._daily_trip(now_ns, "daily_loss",
                                    f"daily loss {loss:.2f} > {g.max_loss_usdt:g} USDT")
        elif dd > g.max_drawdown_pct:
            out += self._daily_trip(now_ns, "daily_drawdown",
                                    f"drawdown {dd:.2%} from the day's peak > "
                                    f"{g.max_drawdown_pct:.2%}")
        return out

    def on_trade_closed(self, now_ns: int, pnl: float) -> list[RiskEvent]:
        """A round trip closed with ``pnl``: counts the losing streak."""
        self.consecutive_losses = self.consecutive_losses + 1 if pnl < 0 else 0
        g = self.cfg.daily
        if self.consecutive_losses >= g.max_consecutive_losses:
            return self._daily_trip(now_ns, "consecutive_losses",
                                    f"{self.consecutive_losses} losing trades in a row "
                                    f"(limit {g.max_consecutive_losses})")
        return []

    # -- the check ---------------------------------------------------------------------------

    def check(self, now_ns: int, symbol: str, side: str, qty: float, price: float,
              mid: float | None, positions: dict[str, float], marks: dict[str, float]
              ) -> Decision:
        """May this order go out, and how big? ``qty`` > 0; ``side`` BUY or SELL; ``price`` the
        limit price (or the reference price of a market order)."""
        pos = positions.get(symbol, 0.0)
        signed = qty if side == "BUY" else -qty
        reducing = pos != 0 and np.sign(signed) == -np.sign(pos) and qty <= abs(pos) + 1e-12

        def deny(reason: str, **detail: Any) -> Decision:
            return Decision(0.0, (RiskEvent(now_ns, "deny", reason, symbol, detail),))

        if self.halted and not reducing:
            return deny(f"halted: {self.halted}")
        if self.stale or (self.last_market_ns is not None and now_ns - self.last_market_ns
                          > self.cfg.orders.stale_after_s * NS):
            return deny("stale market data")
        while self._sent and self._sent[0] <= now_ns - NS:
            self._sent.popleft()
        if len(self._sent) + 1 > self.cfg.orders.max_orders_per_s:
            return deny(f"order rate above {self.cfg.orders.max_orders_per_s:g}/s")
        if mid is not None and mid > 0:
            off = abs(price / mid - 1)
            if off > self.cfg.orders.price_band_pct:
                return deny(f"price {price} is {off:.2%} from the mid {mid} (band "
                            f"{self.cfg.orders.price_band_pct:.2%})", price=price, mid=mid)
        events: list[RiskEvent] = []
        if not reducing:
            qty, events = self._caps(now_ns, symbol, signed, price, positions, marks)
            if qty <= 0:
                return Decision(0.0, tuple(events))
        self._sent.append(now_ns)
        return Decision(qty, tuple(events))

    def soft_cap_breaches(self, now_ns: int, positions: dict[str, float],
                          marks: dict[str, float]) -> list[RiskEvent]:
        """Symbols over their hard cap past the grace period (``auto_close`` events when the
        config asks the runner to trade back under the cap)."""
        c = self.cfg.caps
        out = []
        for sym, pos in positions.items():
            exposure = abs(pos) * marks.get(sym, 0.0)
            if exposure <= c.per_symbol_usdt:
                self._soft_since.pop(sym, None)
                continue
            since = self._soft_since.setdefault(sym, now_ns)
            if now_ns - since > c.soft_cap_grace_s * NS and c.auto_close:
                excess = (exposure - c.per_symbol_usdt) / marks[sym]
                out.append(RiskEvent(now_ns, "auto_close", f"{sym} over its cap for more than "
                                     f"{c.soft_cap_grace_s:g} s", sym, {"qty": excess}))
        return out

    # -- internals ---------------------------------------------------------------------------

    def _caps(self, now_ns: int, symbol: str, signed: float, price: float,
              positions: dict[str, float], marks: dict[str, float]
              ) -> tuple[float, list[RiskEvent]]:
        c = self.cfg.caps
        pos = positions.get(symbol, 0.0)
        px = price if price > 0 else marks.get(symbol, 0.0)
        if px <= 0:
            return 0.0, [RiskEvent(now_ns, "deny", "no price to value the order", symbol)]
        others = sum(abs(q) * marks.get(s, 0.0) for s, q in positions.items() if s != symbol)
        qty = abs(signed)
        soft = 1 + c.soft_cap_pct
        since = self._soft_since.get(symbol)
        in_grace = c.soft_cap_pct > 0 and (since is None or now_ns - since
                                           <= c.soft_cap_grace_s * NS)
        sym_cap = c.per_symbol_usdt * (soft if in_grace else 1)
        # the largest quantity whose resulting exposure |pos + signed q| fits under a cap:
        # an order against the position first unwinds it, then opens the other way
        unwind = abs(pos) if pos != 0 and np.sign(signed) == -np.sign(pos) else -abs(pos)
        room_sym = sym_cap / px + unwind
        room_total = (c.total_usdt - others) / px + unwind
        room = max(0.0, min(room_sym, room_total))
        events: list[RiskEvent] = []
        if room <= 1e-12:
            which = "per-symbol" if room_sym <= room_total else "total"
            return 0.0, [RiskEvent(now_ns, "deny", f"{which} cap reached", symbol,
                                   {"exposure": abs(pos) * px, "cap": sym_cap if which ==
                                    "per-symbol" else c.total_usdt})]
        if qty > room:
            events.append(RiskEvent(now_ns, "shrink", f"order shrunk from {qty:g} to {room:g} "
                                    "to fit the caps", symbol, {"asked": qty, "allowed": room}))
            qty = room
        if abs(pos + np.sign(signed) * qty) * px > c.per_symbol_usdt:
            self._soft_since.setdefault(symbol, now_ns)
            events.append(RiskEvent(now_ns, "soft_allow", f"{symbol} above its cap within the "
                                    f"soft band for up to {c.soft_cap_grace_s:g} s", symbol))
        return qty, events

    def _daily_trip(self, now_ns: int, name: str, reason: str) -> list[RiskEvent]:
        if self.halted:
            return []
        self.halted = f"daily guard: {reason}"
        self._trip(name)
        kind = "close_all" if self.cfg.daily.action == "close_all" else "halt"
        return [RiskEvent(now_ns, kind, reason)]

    def _trip(self, name: str) -> None:
        self.trips[name] = self.trips.get(name, 0) + 1

    # -- persistence -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The guards' counters, for the journal (a restarted runner keeps its daily state)."""
        return {"halted": self.halted, "killed": self.killed, "day": self.day,
                "day_start_equity": self.day_start_equity,
                "day_peak_equity": self.day_peak_equity,
                "consecutive_losses": self.consecutive_losses, "trips": dict(self.trips),
                "soft_since": dict(self._soft_since)}

    def restore(self, state: dict[str, Any]) -> None:
        self.halted = state["halted"]
        self.killed = bool(state["killed"])
        self.day = state["day"]
        self.day_start_equity = float(state["day_start_equity"])
        self.day_peak_equity = float(state["day_peak_equity"])
        self.consecutive_losses = int(state["consecutive_losses"])
        self.trips = {str(k): int(v) for k, v in state["trips"].items()}
        self._soft_since = {str(k): int(v) for k, v in state["soft_since"].items()}


__all__ = ["Decision", "RiskEngine", "RiskEvent", "realized_vol", "vol_target_qty"]
