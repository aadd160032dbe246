"""Python face of the matching core: hold one instrument's :class:`~.core_nb.Core` and step it.

The venue (per order action and per market event, from asyncio), the paper broker (per live
event) and tests use :class:`MatchingCore`; numba loops (the event backtester) call the
``*_nb`` kernels of :mod:`.core_nb` directly on ``MatchingCore.core``. Each call returns the
executions and order reports it produced as numpy records (``fill_dt``, ``report_dt``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tradelab.matching import core_nb as nb
from tradelab.matching.types import (
    BUY,
    D_CASH,
    D_FEES,
    D_POSITION,
    F_REDUCE_ONLY,
    GTC,
    I_BASE,
    I_BEST_ASK,
    I_BEST_BID,
    I_N,
    I_N_FILLS,
    I_N_REPORTS,
    LIMIT,
    MARKET,
    QUEUE_MODELS,
    SELL,
    ST_FREE,
    STOP_MARKET,
    TAKE_PROFIT_MARKET,
    TRAILING_STOP_MARKET,
    instrument_dt,
)


def instrument(
    tick: float,
    lot: float,
    min_qty: float = 0.0,
    min_notional: float = 0.0,
    maker_fee: float = 0.0,
    taker_fee: float = 0.0,
    contract_size: float = 1.0,
) -> np.ndarray:
    """A length-1 ``instrument_dt`` record (fill it from an exchange-filters object)."""
    if not (tick > 0 and lot > 0 and contract_size > 0):
        raise ValueError(f"tick, lot and contract_size must be positive: {tick=}, {lot=}")
    rec = np.zeros(1, dtype=instrument_dt)
    rec[0] = (tick, lot, min_qty, min_notional, maker_fee, taker_fee, contract_size)
    return rec


@dataclass(frozen=True)
class Executions:
    """What one call produced: executions and order status reports, in order."""

    fills: np.ndarray
    reports: np.ndarray


class MatchingCore:
    """The exchange's view of one instrument, stepped one event or one order action at a time.

    ``price_lo``/``price_hi`` bound the tick window of the dense book (depth outside it is
    counted, not kept); ``queue_model`` is one of ``risk_averse``, ``power``, ``power2``,
    ``power3``, ``log``, ``log2`` (``queue_n`` the exponent of the power forms).
    """

    def __init__(
        self,
        inst: np.ndarray,
        price_lo: float,
        price_hi: float,
        queue_model: str = "risk_averse",
        queue_n: float = 2.0,
        max_orders: int = 64,
    ) -> None:
        if queue_model not in QUEUE_MODELS:
            raise ValueError(
                f"unknown queue model {queue_model!r}; choose one of {sorted(QUEUE_MODELS)}"
            )
        if not price_hi > price_lo >= 0:
            raise ValueError(f"need 0 <= price_lo < price_hi, got {price_lo}, {price_hi}")
        tick = float(inst[0]["tick"])
        lo = int(math.floor(price_lo / tick))
        hi = int(math.ceil(price_hi / tick))
        self.core = nb.new_core(inst, lo, hi - lo + 1, QUEUE_MODELS[queue_model], queue_n,
                                max_orders)

    # ------------------------------------------------------------------ helpers
    @property
    def tick(self) -> float:
        return float(self.core.inst[0]["tick"])

    @property
    def lot(self) -> float:
        return float(self.core.inst[0]["lot"])

    def to_tick(self, px: float) -> int:
        """Tick of ``px``; raises if ``px`` is not on the tick grid."""
        k = px / self.tick
        t = round(k)
        if abs(k - t) > 1e-6:
            raise ValueError(f"price {px} is not a multiple of the tick size {self.tick}")
        return int(t)

    def round_price(self, px: float, side: int) -> float:
        """``px`` rounded to the tick away from the market (bids down, asks up)."""
        k = px / self.tick
        t = math.floor(k + 1e-9) if side == BUY else math.ceil(k - 1e-9)
        return float(nb.to_px_nb(self.core, t))

    def round_qty(self, qty: float) -> float:
        """``qty`` rounded down to the lot size."""
        return math.floor(qty / self.lot + 1e-9) * self.lot

    def _drain(self) -> Executions:
        iv = self.core.iv
        out = Executions(
            self.core.fills[: iv[I_N_FILLS]].copy(), self.core.reports[: iv[I_N_REPORTS]].copy()
        )
        iv[I_N_FILLS] = 0
        iv[I_N_REPORTS] = 0
        return out

    # ------------------------------------------------------------------ market data
    def on_depth(
        self, ts: int, side: int, px: float, qty: float, snapshot: bool = False,
        last: bool = True,
    ) -> Executions:
        """The ``side`` (BUY = bid, SELL = ask) level at ``px`` now holds ``qty``."""
        nb.on_depth_nb(self.core, ts, side == BUY, px, qty, snapshot, last)
        return self._drain()

    def on_book(self, ts: int, bids: Sequence[tuple[float, float]],
                asks: Sequence[tuple[float, float]], snapshot: bool = True) -> Executions:
        """A whole message of levels (a snapshot by default), ending with ``last``."""
        rows = [(BUY, p, q) for p, q in bids] + [(SELL, p, q) for p, q in asks]
        for k, (s, p, q) in enumerate(rows):
            nb.on_depth_nb(self.core, ts, s == BUY, p, q, snapshot, k == len(rows) - 1)
        return self._drain()

    def on_trade(self, ts: int, taker_side: int, px: float, qty: float) -> Executions:
        """A market trade whose taker was ``taker_side``."""
        nb.on_trade_nb(self.core, ts, taker_side == BUY, px, qty)
        return self._drain()

    def on_events(self, events: np.ndarray) -> Executions:
        """Feed ``event_dt`` rows at their exchange time."""
        for r in events:
            nb.on_event_nb(self.core, int(r["ev"]), int(r["exch_ts"]), float(r["px"]),
                           float(r["qty"]))
        return self._drain()

    # ------------------------------------------------------------------ order actions
    def place(
        self,
        ts: int,
        order_id: int,
        side: int,
        qty: float,
        px: float | None = None,
        kind: int = LIMIT,
        tif: int = GTC,
        reduce_only: bool = False,
        trigger: float | None = None,
        trail: float = 0.0,
        oco: int = 0,
    ) -> Executions:
        """An order reaches the exchange at ``ts`` (limit needs ``px``; contingent orders need
        ``trigger``)."""
        if side not in (BUY, SELL):
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side}")
        if kind == LIMIT and px is None:
            raise ValueError("a limit order needs a price")
        if kind > MARKET and trigger is None:
            raise ValueError("a stop / take-profit / trailing order needs a trigger price")
        px_t = self.to_tick(px) if kind == LIMIT and px is not None else 0
        trig_t = self.to_tick(trigger) if trigger is not None else 0
        nb.place_nb(self.core, ts, order_id, side, kind, tif, F_REDUCE_ONLY if reduce_only
                    else 0, px_t, trig_t, float(qty), float(trail), oco)
        return self._drain()

    def cancel(self, ts: int, order_id: int) -> Executions:
        nb.cancel_nb(self.core, ts, order_id)
        return self._drain()

    def modify(self, ts: int, order_id: int, px: float, leaves: float) -> Executions:
        """New price (trigger for contingent orders) and remaining quantity of a live order."""
        nb.modify_nb(self.core, ts, order_id, self.to_tick(px), float(leaves))
        return self._drain()

    def cancel_all(self, ts: int, reason: int) -> Executions:
        nb.cancel_all_nb(self.core, ts, reason)
        return self._drain()

    def bracket(
        self,
        ts: int,
        first_id: int,
        side: int,
        entry_px: float,
        qty: float,
        sl_pct: float,
        tp_pct: float = 0.0,
        trail_pct: float = 0.0,
        tp_tiers: Sequence[tuple[float, float]] = (),
        oco: int | None = None,
    ) -> Executions:
        """Protective orders for a position of ``qty`` opened on ``side`` at ``entry_px``:
        a stop ``sl_pct`` away (trailing by ``trail_pct`` when given), and take-profits: one
        at ``tp_pct`` for the whole quantity, or one per ``(R_multiple, fraction)`` tier at
        ``entry ± R_multiple * R`` with ``R = |entry - stop|``. All share one OCO id (default
        ``first_id``); ids are ``first_id, first_id + 1, ...`` (stop first)."""
        g = first_id if oco is None else oco
        close = -side
        stop = self.round_price(entry_px * (1 - side * sl_pct), close)
        r = abs(entry_px - stop)
        out: list[Executions] = []
        if trail_pct > 0:
            out.append(self.place(ts, first_id, close, qty, kind=TRAILING_STOP_MARKET,
                                  trigger=stop, trail=trail_pct, oco=g))
        else:
            out.append(self.place(ts, first_id, close, qty, kind=STOP_MARKET, trigger=stop,
                                  oco=g))
        targets: list[tuple[float, float]] = []
        if tp_tiers:
            left = qty
            for k, (mult, frac) in enumerate(tp_tiers):
                q = left if k == len(tp_tiers) - 1 else self.round_qty(qty * frac)
                left -= q
                targets.append((entry_px + side * mult * r, q))
        elif tp_pct > 0:
            targets.append((entry_px * (1 + side * tp_pct), qty))
        for k, (tpx, q) in enumerate(targets):
            if q <= 0:
                continue
            out.append(self.place(ts, first_id + 1 + k, close, q, kind=TAKE_PROFIT_MARKET,
                                  trigger=self.round_price(tpx, side), oco=g))
        return Executions(np.concatenate([e.fills for e in out]),
                          np.concatenate([e.reports for e in out]))

    # ------------------------------------------------------------------ state
    @property
    def position(self) -> float:
        return float(self.core.dv[D_POSITION])

    @property
    def cash(self) -> float:
        """Quote balance change from executions, fees included."""
        return float(self.core.dv[D_CASH])

    @property
    def fees(self) -> float:
        return float(self.core.dv[D_FEES])

    def best_bid(self) -> float:
        i = int(self.core.iv[I_BEST_BID])
        return float("nan") if i < 0 else float(nb.to_px_nb(self.core, self.core.iv[I_BASE] + i))

    def best_ask(self) -> float:
        i = int(self.core.iv[I_BEST_ASK])
        if i >= self.core.iv[I_N]:
            return float("nan")
        return float(nb.to_px_nb(self.core, self.core.iv[I_BASE] + i))

    def level(self, side: int, px: float) -> float:
        """Visible quantity of the ``side`` book at ``px``."""
        i = self.to_tick(px) - int(self.core.iv[I_BASE])
        return float((self.core.bid_q if side == BUY else self.core.ask_q)[i])

    def order(self, order_id: int) -> np.void | None:
        """The newest record of ``order_id`` (a copy), or None."""
        o = self.core.orders
        hits = np.flatnonzero((o["id"] == order_id) & (o["status"] != ST_FREE))
        if len(hits) == 0:
            return None
        return o[hits[np.argmax(o["seq"][hits])]].copy()
