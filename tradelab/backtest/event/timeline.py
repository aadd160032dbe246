"""Run a scripted order timeline through the event backtester's two-clock replay.

Each :class:`~tradelab.matching.timeline.Action` is submitted when the local clock reaches its
``t_ns`` (after every event due by then on both sides), so it reaches the exchange side after the
replay's entry latency, exactly as a strategy's order would. The fills come back in the engines'
common form, to compare with the venue's (:mod:`tradelab.venue.timeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from tradelab.backtest.event.replay import Replay, ReplayResult
from tradelab.matching import sim_nb as sn
from tradelab.matching.timeline import Action, TimelineFill, spot_fee
from tradelab.matching.types import (
    BUY,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    R_UNKNOWN_ORDER,
    RP_REJECTED,
    SELL,
    ST_CANCELED,
    ST_EXPIRED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIAL,
    ST_REJECTED,
)

TIF = {"GTC": GTC, "IOC": IOC, "FOK": FOK}
STATUS = {ST_NEW: "NEW", ST_PARTIAL: "PARTIALLY_FILLED", ST_FILLED: "FILLED",
          ST_CANCELED: "CANCELED", ST_EXPIRED: "EXPIRED", ST_REJECTED: "REJECTED"}
MS = 1_000_000


@dataclass
class BacktestTimeline:
    """What the timeline did in the backtester."""

    fills: list[TimelineFill]
    status: dict[int, str]  # order id -> final status, in Binance's words
    result: ReplayResult


def _submit(sim: sn.Sim, a: Action, tick: float) -> None:
    if a.kind == "cancel":
        sn.submit_cancel_nb(sim, a.order_id)
        return
    side = BUY if a.side == "BUY" else SELL
    kind = MARKET if a.type == "MARKET" else LIMIT
    tif = GTX if a.type == "LIMIT_MAKER" else TIF[a.tif]
    px_t = int(round(float(a.price) / tick)) if kind == LIMIT and a.price is not None else 0
    sn.submit_place_nb(sim, a.order_id, side, kind, tif, 0, px_t, 0, float(a.qty), 0.0, 0)


def run_timeline(rp: Replay, actions: Sequence[Action], price_places: int,
                 qty_places: int) -> BacktestTimeline:
    """Replay ``rp`` to its end with ``actions`` submitted at their local times; prices and
    quantities of the fills are read back at ``price_places`` / ``qty_places`` decimals."""
    todo = sorted(actions, key=lambda a: a.t_ns)
    tick = float(rp.sim.ex.inst[0]["tick"])
    k = 0

    def step(sim: sn.Sim, ev: np.ndarray) -> int:
        nonlocal k
        while k < len(todo):
            r = sn.elapse_nb(sim, ev, todo[k].t_ns)
            if r not in (sn.EL_UNTIL, sn.EL_END):
                return r  # more data, or the log needs draining: called again afterwards
            _submit(sim, todo[k], tick)
            k += 1
        return sn.elapse_nb(sim, ev, sn.INF)

    res = rp.run(step)
    fills = []
    status: dict[int, str] = {}
    for m in res.log:
        oid = int(m["order_id"])
        if m["what"] == sn.M_FILL:
            px = Decimal(f"{float(m['px']):.{price_places}f}")
            qty = Decimal(f"{float(m['qty']):.{qty_places}f}")
            side = "BUY" if m["side"] == BUY else "SELL"
            fills.append(TimelineFill(oid, int(m["exch_ts"]) // MS, side, px, qty,
                                      bool(m["maker"]),
                                      spot_fee(side, float(m["fee"]), float(m["px"]))))
            status[oid] = STATUS[int(m["status"])]
        elif m["what"] == sn.M_REPORT:
            if m["kind"] == RP_REJECTED and m["reason"] == R_UNKNOWN_ORDER:
                continue  # a cancel that came too late: the order's own status stands
            status[oid] = STATUS.get(int(m["status"]), status.get(oid, "NEW"))
    return BacktestTimeline(fills, status, res)
