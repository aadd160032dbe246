"""Bar strategies in the event backtester: bars built from the replayed trades, the strategy's
own ``step`` once per closed bar, target changes sent as market orders through the matching core.

``run_bar_strategy(replay, "keltner_breakout", params, "1m")`` drives a :class:`~.replay.Replay`
with :func:`tradelab.matching.bar_clock_nb.bar_loop_nb` (the bar clock the paper broker runs
too), which builds OHLCV bars from the trades the local side receives (bucketed by exchange
time like the store's bars from trades) and closes each one on a timer, as a live runner's
clock would: at the bar's end plus ``close_delay`` of local time (the grace a feed's latency
needs; a trade that arrives after its bar closed is counted in ``late_trades`` and is in no
bar), or earlier when a trade of a later bar arrives first, or at the end of the data. Buckets
without trades are no bars, as in the store. The strategy module's ``step`` (the kernel its
sweeps run, unchanged) then advances by that bar through
:class:`tradelab.strategies.bar_driver.BarDriver` (the live runners' driver too); a new target
becomes one market order.

Two fill modes:

- ``fill="book"`` (realistic): the market order is sent at the close (local time), reaches
  the exchange after the entry latency and walks the exchange's book there, paying the taker
  fee per level; slippage and latency are real.
- ``fill="bar_price"`` (agreement checks only): the order fills whole at the bar price a
  vectorized sweep uses (:data:`tradelab.matching.types.F_AT_PRICE`): with ``execution=
  "close"`` the deciding bar's close, sent at the close; with ``"next_open"`` the next bar's
  open, sent when that bar's first trade arrives (a change on the last bar is not filled, as
  in the sweep). It ignores the book and exists so that :mod:`.agreement` can compare like
  with like.

Sizing: ``sizing="equity"`` trades the whole account the way the sweep's vectorbt simulation
does (``size=inf``: a long entry buys ``cash / (price x (1 + fee))``, a short entry sells the
long position plus ``free cash / (price x (1 + fee))``, an exit closes the position; free cash
is cash minus twice the short's entry value), rounded down to the lot; a number trades that
many base units per unit of target. A target change while an earlier order is still on its way
waits for the next bar; an order the exchange rejects leaves the target unreached, so the
next bar tries again (``BarRun.rejected`` lists the rejections).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradelab.backtest.event.replay import Replay, ReplayResult
from tradelab.matching import bar_clock_nb as lp
from tradelab.matching import core_nb as cn
from tradelab.matching import sim_nb as sn
from tradelab.matching.types import BUY, F_AT_PRICE, IOC, MARKET, RP_REJECTED, SELL, ST_REJECTED
from tradelab.strategies import StrategyParams, get
from tradelab.strategies.bar_driver import BAR_COLUMNS, BarDriver

FILL_MODES = ("book", "bar_price")
EXECUTIONS = ("next_open", "close")


@dataclass
class BarRun:
    """A bar strategy's event replay: its bars and targets, and everything received locally."""

    bars: pd.DataFrame  # ts, open, high, low, close, volume, target, ordered (bool)
    replay: ReplayResult
    init_cash: float
    late_trades: int = 0
    """Trades received after their bar had closed (in no bar; raise ``close_delay``)."""

    @property
    def rejected(self) -> pd.DataFrame:
        """Orders the exchange rejected: local time, order id, reason code."""
        r = self.replay.reports
        r = r[r["kind"] == RP_REJECTED]
        return pd.DataFrame({"local_ts": r["ts"], "order_id": r["order_id"],
                             "reason": r["reason"]})

    @property
    def fills(self) -> pd.DataFrame:
        f = self.replay.fills
        return pd.DataFrame(
            {
                "exch_ts": f["exch_ts"],
                "local_ts": f["ts"],
                "order_id": f["order_id"],
                "side": f["side"],
                "price": f["px"],
                "qty": f["qty"],
                "fee": f["fee"],
                "maker": f["maker"],
                "position": f["position"],
                "decision_ts": f["req_ts"],
            }
        )

    def final_equity(self, mark: float | None = None) -> float:
        """Cash plus the position valued at ``mark`` (default: the last bar's close)."""
        f = self.replay.fills
        cash = (
            self.init_cash - float(np.sum(f["side"] * f["px"] * f["qty"])) - float(np.sum(f["fee"]))
        )
        pos = float(f["position"][-1]) if len(f) else 0.0
        if mark is None:
            mark = float(self.bars["close"].iloc[-1]) if len(self.bars) else 0.0
        return cash + pos * mark


def equity_order_qty(
    target: int, pos: float, cash: float, short_cost: float, price: float, fee: float
) -> float:
    """Quantity vectorbt's ``from_signals`` (``size=inf``, reversing entries) trades to move
    from position ``pos`` to ``target`` at ``price`` (see the module docstring)."""
    if target == 0:
        return abs(pos)
    if target > 0:
        return max(cash, 0.0) / (price * (1.0 + fee))
    long = max(pos, 0.0)
    free = cash - 2.0 * short_cost + long * price * (1.0 - fee)
    return long + (free / (price * (1.0 + fee)) if free > 0.0 else 0.0)


def run_bar_strategy(
    replay: Replay,
    strategy: str,
    params: StrategyParams | np.ndarray | dict | None,
    interval: str | int,
    *,
    fill: str = "book",
    execution: str = "next_open",
    sizing: str | float = "equity",
    init_cash: float = 10_000.0,
    close_delay: str | int = 0,
) -> BarRun:
    """Run bar strategy ``strategy`` over ``replay`` (see the module docstring).
    ``close_delay`` (ns, or a duration such as ``"250ms"``) is how long after its end, in
    local time, a bar closes."""
    from tradelab.core.timeutil import interval_ns

    driver = BarDriver(get(strategy), params)
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {', '.join(FILL_MODES)}, got {fill!r}")
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}, got {execution!r}")
    step_ns = interval_ns(interval) if isinstance(interval, str) else int(interval)
    delay_ns = interval_ns(close_delay) if isinstance(close_delay, str) else int(close_delay)
    bi, bf = lp.new_bar_state(step_ns, delay_ns)
    sim = replay.sim
    inst = sim.ex.inst[0]
    lot, fee = float(inst["lot"]), float(inst["taker_fee"])
    at_price = fill == "bar_price"
    rows: list[list] = []
    waiting: list[int | None] = [None]  # next_open at bar price: the target waiting for its open
    next_id = [1]

    def send(target: int, price: float) -> None:
        sent = _send(sim, target, price, sizing, init_cash, lot, fee, at_price, next_id)
        if sent:
            rows[-1][-1] = True
        driver.sent(target, next_id[0] - 1 if sent else None)

    def on_stop(code: int) -> None:
        if code == lp.EL_OPEN:
            want = waiting[0]
            if want is not None:
                send(want, float(bf[lp.BF_NEXT_OPEN]))
                waiting[0] = None
            return
        if code != lp.EL_BAR:
            return
        bar = bf[lp.BF_CLOSED : lp.BF_CLOSED + 5]
        target = driver.on_bar(bar)
        rows.append([int(bi[lp.BI_TS]), *(float(x) for x in bar), target, False])
        last = driver.last_order
        if not driver.wants_order(target, _in_flight(sim),
                                  last is not None and _rejected(sim, last)):
            return
        if not at_price or execution == "close":  # sized (book) or filled (bar price) at it
            send(target, float(bar[3]))
        elif not math.isnan(bf[lp.BF_NEXT_OPEN]):  # closed by the next bar's first trade
            send(target, float(bf[lp.BF_NEXT_OPEN]))
        else:
            waiting[0] = target

    res = replay.run(lambda s, ev: lp.bar_loop_nb(s, ev, bi, bf), on_stop=on_stop)
    bars = pd.DataFrame(rows, columns=["ts", *BAR_COLUMNS, "target", "ordered"])
    bars["ordered"] = bars["ordered"].astype(bool)
    return BarRun(bars, res, init_cash, int(bi[lp.BI_LATE]))


def _rejected(sim: sn.Sim, oid: int) -> bool:
    lo = sim.lorders
    return bool(np.any((lo["id"] == oid) & (lo["status"] == ST_REJECTED)))


def _in_flight(sim: sn.Sim) -> bool:
    lo = sim.lorders
    live = (lo["status"] == 1) | (lo["status"] == 2)
    return bool(np.any(live & ((lo["flags"] & sn.LF_PENDING) != 0)))


def _send(
    sim: sn.Sim,
    target: int,
    price: float,
    sizing: str | float,
    init_cash: float,
    lot: float,
    fee: float,
    at_price: bool,
    next_id: list[int],
) -> bool:
    pos = float(sim.fv[sn.F_POS])
    if sizing == "equity":
        cash = init_cash + float(sim.fv[sn.F_CASH])
        qty = equity_order_qty(target, pos, cash, float(sim.fv[sn.F_SHORT_COST]), price, fee)
        side = BUY if target > 0 or (target == 0 and pos < 0) else SELL
    else:
        delta = target * float(sizing) - pos
        qty, side = abs(delta), BUY if delta > 0 else SELL
    qty = math.floor(qty / lot + 1e-9) * lot
    if qty <= 0.0:
        return False
    oid = next_id[0]
    next_id[0] += 1
    px_t = cn.to_tick_nb(sim.ex, price) if at_price else 0
    sn.submit_place_nb(
        sim, oid, side, MARKET, IOC, F_AT_PRICE if at_price else 0, px_t, 0, qty, 0.0, 0
    )
    return True
