"""Does the event backtester agree with the sweep on a chosen parameter set?

``compare_with_sweep(run_id, params, store)`` takes what a promotion gate holds: a saved sweep
run (``<store>/runs/<run_id>/``, see :class:`tradelab.backtest.runs.RunStore`), the chosen
parameter set (a mapping of parameter values, or a ``set_id`` of that run) and the store. It
re-creates the sweep's trades for that set from the run's own config (same bars, execution,
taker fee, funding), replays the same span of stored trades through the event backtester with
the same strategy kernel (:mod:`.bars`), and returns an :class:`Agreement`::

    from tradelab.backtest.event.agreement import compare_with_sweep
    a = compare_with_sweep(run_id, {"ema_period": 20, "k": 2.0}, store)
    a.agrees(1e-6), a.n_matched, a.max_abs_price_diff, a.rel_pnl_diff

Like for like (``fill="bar_price"``, the default): zero latency, market orders filled whole at
the bar price the sweep uses (``execution: next_open``: the next bar's open; ``close``: the
deciding bar's close), the sweep's taker fee, and the sweep's all-in sizing. Each bar closes
on its timer (:mod:`.bars`) with a close delay equal to the worst feed lag (receipt minus
exchange time) stored over the span, so every trade is in its bar when the bar closes and the
event bars are the store's bars (``late_trades`` counts any that were not). What may still
differ, and why: quantities are rounded down to ``lot`` (the sweep's are not), so PnL agrees
"within fee rounding" rather than bit for bit; funding of perpetuals is paid at the stored
mark price at settlement in the event engine and at the bar close in the sweep. A sweep with
``slippage`` is refused (the bar-price fill has none, so it could not be like for like).

``fill="book"`` runs the realistic engine instead (each market order walks the replayed book at
its arrival, with ``latency_ms`` of entry and response latency): it will not agree exactly (a
book walk is not a bar price; the order arrives after the bar closed), and the result measures
by how much.

Trades are matched in order: the i-th order of each side (an event order's fills taken
together, at their volume-weighted price: a book walk is one trade of several fills) is matched
when both have the same side, quantities within 1e-6 relative and prices within ``price_tol``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradelab import strategies
from tradelab.backtest.event.bars import run_bar_strategy
from tradelab.backtest.event.funding import load_funding
from tradelab.backtest.event.replay import Funding, Latency, Replay
from tradelab.backtest.metrics_nb import METRICS
from tradelab.backtest.runs import RunStore
from tradelab.backtest.vector.config import parse_sweep_config
from tradelab.backtest.vector.engine import load_market
from tradelab.backtest.vector.simulate import Costs, chunk_metrics, order_records
from tradelab.core.timeutil import interval_ns
from tradelab.errors import StoreError
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.store.catalog import Catalog

FILL_MODES = ("bar_price", "book")


@dataclass
class Agreement:
    """The event backtest of one parameter set next to the sweep's simulation of it."""

    run_id: str
    symbol: str
    params: dict[str, float]
    fill: str
    execution: str
    n_sweep_trades: int
    n_event_trades: int
    n_matched: int
    max_abs_price_diff: float
    max_rel_qty_diff: float
    pnl_sweep: float
    pnl_event: float
    rel_pnl_diff: float
    """``|pnl_event - pnl_sweep| / max(|pnl_sweep|, 1% of the initial cash)``."""
    late_trades: int = 0
    """Trades received after their event bar had closed (0 when the close delay covers the
    feed lag)."""
    rejected: int = 0
    """Event orders the matching core rejected."""
    sweep_trades: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    event_trades: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def agrees(self, tolerance: float = 1e-6) -> bool:
        """Same number of trades, all matched, PnL within ``tolerance`` (relative)."""
        return (
            self.n_sweep_trades == self.n_event_trades == self.n_matched
            and self.rel_pnl_diff <= tolerance
        )

    def as_dict(self) -> dict:
        """The figures (no tables), for reports."""
        keys = (
            "run_id",
            "symbol",
            "params",
            "fill",
            "execution",
            "n_sweep_trades",
            "n_event_trades",
            "n_matched",
            "max_abs_price_diff",
            "max_rel_qty_diff",
            "pnl_sweep",
            "pnl_event",
            "rel_pnl_diff",
            "late_trades",
            "rejected",
        )
        return {k: getattr(self, k) for k in keys}


def _chosen(module, metrics: pd.DataFrame | None, params) -> dict[str, float]:
    names = list(module.Params.names())
    if isinstance(params, (int, np.integer)):
        if metrics is None:
            raise ValueError("a set_id needs the run's metrics.parquet")
        row = metrics[metrics["set_id"] == int(params)]
        if row.empty:
            raise ValueError(f"the run has no set_id {int(params)}")
        return {n: float(row.iloc[0][n]) for n in names}
    chosen = dict(params)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"{module.NAME} has no parameters {unknown}; it has {names}")
    return {n: float(v) for n, v in chosen.items()}


def _stored_trades(cat: Catalog, exchange: str, symbol: str, s: int, e: int) -> tuple[int, int]:
    """(stored trades of ``symbol`` in ``[s, e)``, the worst feed lag of its trade and book rows
    up to ``e`` in ns: receipt minus exchange time, 0 where no receipt time is stored; negative
    when the recording's clock runs behind the exchange's)."""
    n, lag = 0, None
    for table in ("trades", "book"):
        if not (cat.root / table / f"exchange={exchange}" / f"symbol={symbol}").is_dir():
            continue
        row = cat.con.execute(
            f"SELECT count(*) FILTER (WHERE ts >= {s}), max(coalesce(recv_ts, ts) - ts) "
            f"FROM {cat.scan(table, exchange, symbol, None, e)}"
        ).fetchone()
        cnt, worst = row if row is not None else (0, 0)
        if table == "trades":
            n = int(cnt or 0)
        if worst is not None:
            lag = int(worst) if lag is None else max(lag, int(worst))
    return n, lag or 0


def compare_with_sweep(
    run_id: str,
    params: dict[str, float] | int,
    store: str | os.PathLike,
    *,
    symbol: str | None = None,
    tick: float = 0.01,
    lot: float = 1e-9,
    fill: str = "bar_price",
    latency_ms: float = 0.0,
    price_tol: float = 1e-9,
) -> Agreement:
    """Event backtest of ``params`` against sweep run ``run_id`` (see the module docstring).

    ``tick`` is the instrument's price tick (the stored prices must lie on it), ``lot`` the
    quantity step the event engine rounds its orders down to."""
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {', '.join(FILL_MODES)}, got {fill!r}")
    folder = RunStore(store).root / run_id
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no sweep run {run_id!r} under {folder.parent}")
    cfg = parse_sweep_config(
        json.loads((folder / "config.json").read_text()), str(folder / "config.json")
    )
    report = (
        json.loads((folder / "report.json").read_text())
        if (folder / "report.json").exists()
        else {}
    )
    symbol = symbol or report.get("symbol") or cfg.symbols[0]
    if cfg.slippage:
        raise ValueError(
            f"sweep {run_id} charged slippage {cfg.slippage}; the event engine's "
            "bar-price fill has none, so the two cannot be compared like for like"
        )
    module = strategies.get(cfg.strategy)
    metrics = (
        pd.read_parquet(folder / "metrics.parquet")
        if (folder / "metrics.parquet").exists()
        else None
    )
    chosen = _chosen(module, metrics, params)
    p = module.Params(**chosen)
    costs = Costs(cfg.fees.taker, 0.0, cfg.init_cash)
    step = interval_ns(cfg.interval)
    with Catalog(store) as cat:
        bars, market = load_market(cat, cfg, symbol)
        targets = module.grid(bars, p.to_array()[None, :])
        rec = order_records(targets, market, costs)
        m, _, _ = chunk_metrics(targets, market, costs)
        pnl_sweep = float(m[0, METRICS.index("total_return")]) * cfg.init_cash
        ts = bars["ts"].to_numpy(dtype=np.int64)
        s, e = int(ts[0]), int(ts[-1]) + step
        n_trades, lag = _stored_trades(cat, cfg.exchange, symbol, s, e)
        if n_trades == 0:
            raise StoreError(
                f"the store has no {cfg.exchange} {symbol} trades between "
                f"{pd.Timestamp(s, unit='ns', tz='UTC')} and {pd.Timestamp(e, unit='ns', tz='UTC')}"
                f", the span of sweep {run_id}'s bars: the event backtest has nothing to replay "
                "(store the trades the bars are made of)"
            )
        funding = Funding()
        if cfg.funding and symbol.endswith("-PERP") and market.funding_idx.size:
            funding = load_funding(cat, cfg.exchange, symbol, s, e)
        inst = instrument(tick, lot, maker_fee=0.0, taker_fee=cfg.fees.taker)
        lat = int(latency_ms * 1_000_000) if fill == "book" else 0
        replay = Replay(
            cat.iter_events(cfg.exchange, symbol, s, e, chunk="1h"),
            inst,
            Latency(*L.constant(lat, lat)),
            funding=funding,
        )
        run = run_bar_strategy(
            replay,
            cfg.strategy,
            p,
            cfg.interval,
            fill=fill,
            execution=cfg.execution,
            sizing="equity",
            init_cash=cfg.init_cash,
            close_delay=max(0, lag + replay.feed_offset),  # the feed lag after the shift
        )
    close_last = float(bars["close"].iloc[-1])
    paid = float(run.replay.funding["fee"].sum())
    pnl_event = run.final_equity(close_last) - paid - cfg.init_cash
    sweep = pd.DataFrame(
        {
            "ts": ts[rec["idx"]],
            "side": np.where(rec["side"] == 0, 1, -1),
            "price": rec["price"],
            "qty": rec["size"],
            "fee": rec["fees"],
        }
    )
    ev = run.fills.assign(notional=lambda d: d["price"] * d["qty"])
    per_order = ev.groupby("order_id", sort=False)  # a book walk is one trade of several fills
    event = pd.DataFrame(
        {
            "exch_ts": per_order["exch_ts"].first(),
            "side": per_order["side"].first(),
            "price": np.where(  # one fill: its own price, exactly
                per_order.size() == 1,
                per_order["price"].first(),
                per_order["notional"].sum() / per_order["qty"].sum(),
            ),
            "qty": per_order["qty"].sum(),
            "fee": per_order["fee"].sum(),
            "fills": per_order.size(),
        }
    ).reset_index(drop=True)
    n = min(len(sweep), len(event))
    matched, max_px, max_q = 0, 0.0, 0.0
    for i in range(n):
        a, b = sweep.iloc[i], event.iloc[i]
        dpx = abs(float(a["price"]) - float(b["price"]))
        dq = abs(float(a["qty"]) - float(b["qty"])) / max(abs(float(a["qty"])), 1e-300)
        max_px, max_q = max(max_px, dpx), max(max_q, dq)
        if int(a["side"]) == int(b["side"]) and dq <= 1e-6 and dpx <= price_tol:
            matched += 1
    rel = abs(pnl_event - pnl_sweep) / max(abs(pnl_sweep), 0.01 * cfg.init_cash)
    return Agreement(
        run_id,
        symbol,
        chosen,
        fill,
        cfg.execution,
        len(sweep),
        len(event),
        matched,
        max_px if n else math.nan,
        max_q if n else math.nan,
        pnl_sweep,
        pnl_event,
        rel,
        run.late_trades,
        len(run.rejected),
        sweep,
        event,
    )
