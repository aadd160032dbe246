"""Bar strategies in the event backtester: bars built from the replayed trades, the strategy's
own ``step`` once per closed bar, target changes sent as market orders through the matching core.

``run_bar_strategy(replay, "keltner_breakout", params, "1m")`` drives a :class:`~.replay.Replay`
with :func:`~.loops_nb.bar_loop_nb`, which builds OHLCV bars from the trades the local side
receives (bucketed by exchange time like the store's bars from trades) and stops when one
closes: when the first trade of a later bucket arrives, or at the end of the data. The
strategy module's ``step`` (the kernel its sweeps run, unchanged) then advances by that bar; a
new target becomes one market order at the current local time, which reaches the exchange after
the entry latency.

Two fill modes:

- ``fill="book"`` (realistic): the market order walks the exchange's book at its arrival, pays
  the taker fee per level; slippage and latency are real.
- ``fill="bar_price"`` (agreement checks only): the order fills whole at the bar price a
  vectorized sweep uses (:data:`tradelab.matching.types.F_AT_PRICE`): with ``execution=
  "next_open"`` the next bar's open (the trade that closed the bar; a change on the last bar is
  not filled, as in the sweep), with ``"close"`` the deciding bar's close. It ignores the book
  and exists so that :mod:`.agreement` can compare like with like.

Sizing: ``sizing="equity"`` trades the whole account the way the sweep's vectorbt simulation
does (``size=inf``: a long entry buys ``cash / (price x (1 + fee))``, a short entry sells the
long position plus ``free cash / (price x (1 + fee))``, an exit closes the position; free cash
is cash minus twice the short's entry value), rounded down to the lot; a number trades that
many base units per unit of target. A target change while an earlier order is still on its way
waits for the next bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradelab.backtest.event import loops_nb as lp
from tradelab.backtest.event import sim_nb as sn
from tradelab.backtest.event.replay import Replay, ReplayResult
from tradelab.matching import core_nb as cn
from tradelab.matching.types import BUY, F_AT_PRICE, IOC, MARKET, SELL
from tradelab.strategies import BAR, StrategyParams, get
from tradelab.strategies.params import as_vector

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
FILL_MODES = ("book", "bar_price")
EXECUTIONS = ("next_open", "close")


@dataclass
class BarRun:
    """A bar strategy's event replay: its bars and targets, and everything received locally."""

    bars: pd.DataFrame  # ts, open, high, low, close, volume, target, ordered (bool)
    replay: ReplayResult
    init_cash: float

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
) -> BarRun:
    """Run bar strategy ``strategy`` over ``replay`` (see the module docstring)."""
    from tradelab.core.timeutil import interval_ns

    module = get(strategy)
    if module.KIND != BAR:
        raise ValueError(f"{strategy} is a {module.KIND} strategy, not a bar strategy")
    extra = [c for c in module.INPUTS if c not in BAR_COLUMNS]
    if extra:
        raise ValueError(
            f"{strategy} reads {', '.join(extra)}, which bars built from one "
            f"instrument's trades do not have (they have {', '.join(BAR_COLUMNS)})"
        )
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {', '.join(FILL_MODES)}, got {fill!r}")
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}, got {execution!r}")
    if isinstance(params, dict):
        params = module.Params(**params)
    p = as_vector(module.Params, params)
    state = module.init_state_nb(p)
    cols = [BAR_COLUMNS.index(c) for c in module.INPUTS]
    step_ns = interval_ns(interval) if isinstance(interval, str) else int(interval)
    bi, bf = lp.new_bar_state(step_ns)
    sim = replay.sim
    inst = sim.ex.inst[0]
    lot, fee = float(inst["lot"]), float(inst["taker_fee"])
    rows: list[tuple] = []
    held = [0]  # the target the orders sent so far aim at
    next_id = [1]

    def on_bar(code: int) -> None:
        if code != lp.EL_BAR:
            return
        bar = bf[lp.BF_CLOSED : lp.BF_CLOSED + 5]
        target = int(module.step(p, state, *(float(bar[k]) for k in cols)))
        ordered = False
        if target != held[0] and not _in_flight(sim):
            if fill == "bar_price":
                price = float(bar[3]) if execution == "close" else float(bf[lp.BF_NEXT_OPEN])
            else:
                price = float(bar[3])
            if not math.isnan(price):
                ordered = _send(
                    sim, target, price, sizing, init_cash, lot, fee, fill == "bar_price", next_id
                )
                held[0] = target
        rows.append((int(bi[lp.BI_TS]), *(float(x) for x in bar), target, ordered))

    res = replay.run(lambda s, ev: lp.bar_loop_nb(s, ev, bi, bf), on_stop=on_bar)
    bars = pd.DataFrame(rows, columns=["ts", *BAR_COLUMNS, "target", "ordered"])
    return BarRun(bars, res, init_cash)


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
