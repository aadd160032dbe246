"""The run summary a runner prints and writes at exit (``--out-json``).

The runner's loop reports what happened as it happens (:meth:`RunRecorder.trigger`,
:meth:`~RunRecorder.entry`, :meth:`~RunRecorder.fill`, ...); :meth:`RunRecorder.summary` turns it
into one JSON-able dict: exit reason and elapsed time, state transitions, triggers, entries,
cancels by reason, fills and partial fills, time to fill p50/p95, distance to best p50/p95/p99
(bps, how far behind the touch an order was placed), adverse move 1 s and 5 s after each fill
(bps, positive = the market moved against the fill), place/cancel round trips p50/p95/p99 (µs),
and a per-minute rollup. Percentiles are numpy's linear interpolation; an empty sample is None.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NS = 1_000_000_000
MINUTE_NS = 60 * NS


def percentiles(values: list[float], qs: tuple[int, ...]) -> dict[str, float | None]:
    """``{"p50": ..., ...}`` of ``values`` (None for an empty sample)."""
    if not values:
        return {f"p{q}": None for q in qs}
    arr = np.asarray(values, dtype=np.float64)
    return {f"p{q}": float(np.percentile(arr, q)) for q in qs}


@dataclass
class _Minute:
    triggers: int = 0
    entries: int = 0
    cancels: int = 0
    fills: int = 0
    filled_qty: float = 0.0
    mids: list[float] = field(default_factory=list)
    spreads_bps: list[float] = field(default_factory=list)
    time_to_fill_ms: list[float] = field(default_factory=list)
    distance_bps: list[float] = field(default_factory=list)
    place_rtt_us: list[float] = field(default_factory=list)
    cancel_rtt_us: list[float] = field(default_factory=list)


class RunRecorder:
    """Collects a run's facts; every method takes the event's time in ns."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.transitions: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.cancels_by_reason: Counter[str] = Counter()
        self.filled_qty = 0.0
        self.time_to_fill_ms: list[float] = []
        self.distance_bps: list[float] = []
        self.place_rtt_us: list[float] = []
        self.cancel_rtt_us: list[float] = []
        self._placed_ns: dict[str, int] = {}
        self._fills: list[tuple[int, int, float]] = []  # (ts, side +-1, price)
        self._mid_t: list[int] = []
        self._mid: list[float] = []
        self._minutes: dict[int, _Minute] = defaultdict(_Minute)
        self._parts: list[RunRecorder] = []

    @classmethod
    def combine(cls, parts: list[RunRecorder]) -> RunRecorder:
        """One recorder for a run of several symbols, from each symbol's (started at the same
        time): counts add up, samples pool, and adverse moves are measured against each fill's
        own symbol's mids."""
        if len(parts) == 1:
            return parts[0]
        out = cls(min(p.start_ns for p in parts))
        out._parts = list(parts)
        for p in parts:
            out.transitions += p.transitions
            out.counts.update(p.counts)
            out.cancels_by_reason.update(p.cancels_by_reason)
            out.filled_qty += p.filled_qty
            out.time_to_fill_ms += p.time_to_fill_ms
            out.distance_bps += p.distance_bps
            out.place_rtt_us += p.place_rtt_us
            out.cancel_rtt_us += p.cancel_rtt_us
            for k, m in p._minutes.items():
                key = (p.start_ns + k * MINUTE_NS - out.start_ns) // MINUTE_NS
                o = out._minutes[key]
                for name in ("triggers", "entries", "cancels", "fills", "filled_qty"):
                    setattr(o, name, getattr(o, name) + getattr(m, name))
                for name in ("mids", "spreads_bps", "time_to_fill_ms", "distance_bps",
                             "place_rtt_us", "cancel_rtt_us"):
                    getattr(o, name).extend(getattr(m, name))
        out.transitions.sort(key=lambda t: t["ts_ns"])
        return out

    def _m(self, ts_ns: int) -> _Minute:
        return self._minutes[(ts_ns - self.start_ns) // MINUTE_NS]

    def market(self, ts_ns: int, bid: float, ask: float) -> None:
        """The touch changed."""
        mid = (bid + ask) / 2
        if self._mid_t and ts_ns < self._mid_t[-1]:
            ts_ns = self._mid_t[-1]  # keep the series sorted (clock steps back)
        self._mid_t.append(ts_ns)
        self._mid.append(mid)
        m = self._m(ts_ns)
        m.mids.append(mid)
        if mid > 0:
            m.spreads_bps.append((ask - bid) / mid * 1e4)

    def transition(self, ts_ns: int, old: str, new: str, why: str = "",
                   subject: str = "runner") -> None:
        """The runner (running -> halted ...) or a symbol's position (flat -> long ...)
        changed state; ``subject`` says which."""
        self.transitions.append({"ts_ns": ts_ns, "subject": subject, "from": old, "to": new,
                                 "why": why})

    def trigger(self, ts_ns: int) -> None:
        """The signal asked for a trade."""
        self.counts["triggers"] += 1
        self._m(ts_ns).triggers += 1

    def entry(self, ts_ns: int, client_id: str, side: int, price: float | None,
              best_bid: float | None, best_ask: float | None) -> None:
        """An order went out; ``side`` +1 buy / -1 sell. Distance to best: a buy's bps below
        the best bid (negative if it crosses), a sell's above the best ask."""
        self.counts["entries"] += 1
        m = self._m(ts_ns)
        m.entries += 1
        self._placed_ns[client_id] = ts_ns
        best = best_bid if side > 0 else best_ask
        if price is not None and best:
            d = (best - price) / best * 1e4 if side > 0 else (price - best) / best * 1e4
            self.distance_bps.append(d)
            m.distance_bps.append(d)

    def cancel(self, ts_ns: int, reason: str) -> None:
        self.cancels_by_reason[reason] += 1
        self._m(ts_ns).cancels += 1

    def fill(self, ts_ns: int, client_id: str, side: int, qty: float, price: float,
             partial: bool) -> None:
        """One execution of an order the runner placed."""
        self.counts["fills"] += 1
        if partial:
            self.counts["partial_fills"] += 1
        self.filled_qty += qty
        m = self._m(ts_ns)
        m.fills += 1
        m.filled_qty += qty
        placed = self._placed_ns.pop(client_id, None) if not partial else \
            self._placed_ns.get(client_id)
        if placed is not None:
            ms = (ts_ns - placed) / 1e6
            self.time_to_fill_ms.append(ms)
            m.time_to_fill_ms.append(ms)
        self._fills.append((ts_ns, side, price))

    def round_trip(self, ts_ns: int, kind: str, us: float) -> None:
        """A place (``kind="place"``) or cancel round trip, request to response."""
        m = self._m(ts_ns)
        if kind == "place":
            self.place_rtt_us.append(us)
            m.place_rtt_us.append(us)
        else:
            self.cancel_rtt_us.append(us)
            m.cancel_rtt_us.append(us)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def _adverse(self, after_ns: int) -> list[float]:
        if self._parts:
            return [x for p in self._parts for x in p._adverse(after_ns)]
        if not self._mid_t:
            return []
        t = np.asarray(self._mid_t, dtype=np.int64)
        mid = np.asarray(self._mid, dtype=np.float64)
        out = []
        for ts, side, px in self._fills:
            target = ts + after_ns
            if target > t[-1]:
                continue  # the run ended before we could see it
            i = int(np.searchsorted(t, target, side="right")) - 1
            out.append(side * (px - mid[i]) / px * 1e4)
        return out

    def summary(self, end_ns: int, exit_reason: str, requested_s: float | None = None
                ) -> dict[str, Any]:
        """The whole run as a JSON-able dict."""
        q3, q2 = (50, 95, 99), (50, 95)
        minutes = []
        for k in sorted(self._minutes):
            m = self._minutes[k]
            minutes.append({
                "minute": k, "triggers": m.triggers, "entries": m.entries, "cancels": m.cancels,
                "fills": m.fills, "filled_qty": m.filled_qty,
                "avg_mid": float(np.mean(m.mids)) if m.mids else None,
                "avg_spread_bps": float(np.mean(m.spreads_bps)) if m.spreads_bps else None,
                "avg_time_to_fill_ms": (float(np.mean(m.time_to_fill_ms))
                                        if m.time_to_fill_ms else None),
                "distance_to_best_bps": percentiles(m.distance_bps, q3),
                "place_rtt_us": percentiles(m.place_rtt_us, q3),
                "cancel_rtt_us": percentiles(m.cancel_rtt_us, q3),
            })
        return {
            "exit_reason": exit_reason,
            "requested_run_for_s": requested_s,
            "actual_elapsed_s": (end_ns - self.start_ns) / NS,
            "state_transitions": self.transitions,
            "counters": {"triggers": self.counts["triggers"], "entries": self.counts["entries"],
                         "fills": self.counts["fills"],
                         "partial_fills": self.counts["partial_fills"],
                         "filled_qty_total": self.filled_qty,
                         **{k: v for k, v in self.counts.items() if k not in
                            ("triggers", "entries", "fills", "partial_fills")}},
            "cancels_by_reason": dict(self.cancels_by_reason),
            "time_to_fill_ms": percentiles(self.time_to_fill_ms, q2),
            "distance_to_best_bps": percentiles(self.distance_bps, q3),
            "adverse_bps_1s": percentiles(self._adverse(NS), q3),
            "adverse_bps_5s": percentiles(self._adverse(5 * NS), q3),
            "place_rtt_us": percentiles(self.place_rtt_us, q3),
            "cancel_rtt_us": percentiles(self.cancel_rtt_us, q3),
            "minute_buckets": minutes,
        }


__all__ = ["RunRecorder", "percentiles"]
