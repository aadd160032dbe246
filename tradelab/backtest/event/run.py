"""One event backtest from the store, its analysis, and how it is saved (like a sweep run).

``run_backtest(cfg, store)`` replays ``cfg.exchange``/``cfg.symbol`` over ``[start, end)`` in
time chunks, runs the strategy, then measures:

- fills: price, quantity, maker/taker, fee, queue wait (acceptance to execution), slippage
  against the mid at decision time (the local mid when the order was sent; positive = paid);
- positions and equity on an ``equity_interval`` grid (cash + position x mid);
- the sweep metrics (``tradelab.backtest.metrics_nb``) over that equity, so PSR, DSR and
  PBO work on event runs as on sweeps;
- PnL decomposition: spread captured (``side x (mid - price) x qty`` with the mid just before the
  execution), fees (negative = rebates), funding, and adverse selection: ``side x (mid(t + h) -
  mid) x qty`` for h = 1 s and 5 s after each execution (negative = the market moved against
  the fill). Mids are the exchange-side book's, at exchange time.

Saved under ``<store>/runs/<run_id>/``: ``config.json``, ``orders.parquet`` (every order report),
``fills.parquet``, ``equity.parquet`` and ``report.json``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tradelab.backtest.event import analysis_nb as an
from tradelab.backtest.event import loops_nb as lp
from tradelab.backtest.event.config import EventBacktestConfig
from tradelab.backtest.event.funding import load_funding
from tradelab.backtest.event.replay import Latency, Replay
from tradelab.backtest.metrics_nb import METRICS, sweep_metrics_nb
from tradelab.backtest.runs import RunStore, new_run_id, write_json, write_parquet
from tradelab.compute import Backend, InProcess, Job, LocalPool, open_backend
from tradelab.core.timeutil import interval_ns, to_ns
from tradelab.matching import core_nb as cn
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.matching import sim_nb as sn
from tradelab.matching.types import QUEUE_MODELS, REASONS
from tradelab.store.catalog import Catalog
from tradelab.strategies import market_making as mm

YEAR_NS = 365.25 * 86_400e9
REPORT_KINDS = {1: "accepted", 2: "partial", 3: "filled", 4: "canceled", 5: "expired",
                6: "rejected", 7: "triggered", 8: "modified", 9: "amended"}


@dataclass
class EventRun:
    run_id: str
    config: EventBacktestConfig
    params: dict[str, float]
    fills: pd.DataFrame
    orders: pd.DataFrame
    equity: pd.DataFrame
    metrics: dict[str, float]
    pnl: dict[str, float]
    stats: dict[str, float]
    path: Path | None = None


def _fills_frame(fl, reference: str, ref_px: np.ndarray, mid_fill: np.ndarray,
                 mid_1s: np.ndarray, mid_5s: np.ndarray) -> pd.DataFrame:
    """One row per execution: slippage against ``ref_px`` (saved as column ``reference``), and
    spread captured and adverse selection against the mid at, 1 s and 5 s after the fill."""
    side = fl["side"].astype(np.float64)
    return pd.DataFrame({
        "exch_ts": fl["exch_ts"], "local_ts": fl["ts"], "order_id": fl["order_id"],
        "side": fl["side"], "price": fl["px"], "qty": fl["qty"], "leaves": fl["leaves"],
        "liquidity": np.where(fl["maker"] == 1, "maker", "taker"), "fee": fl["fee"],
        "queue_wait_ms": fl["queue_wait"] / 1e6, "decision_ts": fl["req_ts"],
        reference: ref_px, "slippage": side * (fl["px"] - ref_px),
        "mid_at_fill": mid_fill, "spread_captured": side * (mid_fill - fl["px"]) * fl["qty"],
        "adverse_1s": side * (mid_1s - mid_fill) * fl["qty"],
        "adverse_5s": side * (mid_5s - mid_fill) * fl["qty"],
        "position": fl["position"],
    })


def _orders_frame(log) -> pd.DataFrame:
    """One row per order report (accepted, filled, canceled, rejected ...) with its reason."""
    rep = log[log["what"] == sn.M_REPORT]
    return pd.DataFrame({
        "exch_ts": rep["exch_ts"], "local_ts": rep["ts"], "order_id": rep["order_id"],
        "report": [REPORT_KINDS.get(int(k), str(k)) for k in rep["kind"]],
        "reason": [REASONS.get(int(r), str(r)) for r in rep["reason"]],
        "leaves": rep["leaves"], "price": rep["px"], "decision_ts": rep["req_ts"],
    })


def _latency(cfg: EventBacktestConfig) -> Latency:
    lc = cfg.latency
    ms = 1_000_000
    if lc.kind == "constant":
        return Latency(*L.constant(int(lc.entry_ms * ms), int(lc.response_ms * ms)))
    resp = int(lc.response_ms * ms)
    cancel = lc.cancel_entry_ms if lc.cancel_entry_ms is not None else lc.entry_ms
    modify = lc.modify_entry_ms if lc.modify_entry_ms is not None else lc.entry_ms
    return Latency(*L.per_action((int(lc.entry_ms * ms), resp), (int(cancel * ms), resp),
                                 (int(modify * ms), resp)))


def _span(cat: Catalog, cfg: EventBacktestConfig) -> tuple[int, int]:
    s, e = to_ns(cfg.start), to_ns(cfg.end)
    if s is None or e is None:
        span = cat._event_span(cfg.exchange, cfg.symbol)
        if span is None:
            raise ValueError(f"no book or trades stored for {cfg.exchange} {cfg.symbol}")
        s = span[0] if s is None else s
        e = span[1] + 1 if e is None else e
    return int(s), int(e)


class EventSource:
    """A backtest's span, settled funding and event chunks, read from the store."""

    def __init__(self, cat: Catalog, cfg: EventBacktestConfig) -> None:
        self._cat, self._cfg = cat, cfg
        self.span = _span(cat, cfg)
        self.funding = load_funding(cat, cfg.exchange, cfg.symbol, *self.span)

    def chunks(self) -> Iterator[np.ndarray]:
        """The span's events in time chunks (read anew on every call)."""
        s, e = self.span
        return self._cat.iter_events(self._cfg.exchange, self._cfg.symbol, s, e,
                                     chunk=self._cfg.chunk)


class LoadedEvents(EventSource):
    """The same, read once into memory: what a worker that cannot see the store is sent."""

    def __init__(self, cfg: EventBacktestConfig, store: str | os.PathLike) -> None:
        with Catalog(store) as cat:
            src = EventSource(cat, cfg)
            self.span, self.funding = src.span, src.funding
            self._chunks = list(src.chunks())

    def chunks(self) -> Iterator[np.ndarray]:
        return iter(self._chunks)


@contextmanager
def _source(cfg: EventBacktestConfig,
            store: str | os.PathLike | LoadedEvents) -> Iterator[EventSource]:
    if isinstance(store, LoadedEvents):
        yield store
        return
    with Catalog(store) as cat:
        yield EventSource(cat, cfg)


def _mids(src: EventSource, inst: np.ndarray, offset: int, base: int,
          n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    core = cn.new_core(inst, base, n, QUEUE_MODELS["risk_averse"], 1.0, 1)
    ts_parts, lts_parts, mid_parts = [], [], []
    for chunk in src.chunks():
        m = len(chunk) + 1
        ts = np.empty(m, dtype=np.int64)
        lts = np.empty(m, dtype=np.int64)
        mid = np.empty(m)
        k = an.mid_series_nb(core, chunk, offset, ts, lts, mid, 0)
        ts_parts.append(ts[:k])
        lts_parts.append(lts[:k])
        mid_parts.append(mid[:k])
    return np.concatenate(ts_parts), np.concatenate(lts_parts), np.concatenate(mid_parts)


def _at(ts: np.ndarray, vals: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Value in force at each time of ``t`` (the last one at or before it; NaN before the first)."""
    i = np.searchsorted(ts, t, side="right") - 1
    out = np.where(i >= 0, vals[np.clip(i, 0, None)], np.nan)
    return out


def run_backtest(cfg: EventBacktestConfig, store: str | os.PathLike | LoadedEvents,
                 params: dict[str, float] | None = None, save: bool = True,
                 run_id: str | None = None) -> EventRun:
    """Run one parameter set (``params`` over ``cfg.params``) and analyse it. ``store``: the
    store's root, or the span's events already read (:class:`LoadedEvents`; then ``save``
    must be false: the caller saves)."""
    if save and isinstance(store, LoadedEvents):
        raise ValueError("a run from events read into memory is saved by the caller: "
                         "pass save=False")
    merged = {**cfg.params, **(params or {})}
    if cfg.strategy != mm.NAME:
        return run_bar_backtest(cfg, store, merged, save, run_id)
    p = mm.Params(**merged)
    pv = p.to_array()
    ic = cfg.instrument
    inst = instrument(ic.tick, ic.lot, ic.min_qty, ic.min_notional, ic.maker_fee, ic.taker_fee,
                      ic.contract_size)
    with _source(cfg, store) as src:
        s, e = src.span
        funding = src.funding
        rp = Replay(src.chunks(), inst,
                    _latency(cfg), cfg.queue.model, cfg.queue.n, funding,
                    window_pct=cfg.window_pct,
                    base_feed_latency=int(cfg.latency.feed_base_ms * 1_000_000))
        first_local = int(rp.ev["local_ts"][0])
        st = lp.new_quote_state(first_local, pv[mm.REQUOTE_MS])
        res = rp.run(lambda sim, ev: lp.quote_loop_nb(sim, ev, pv, st))
        ex = res.sim.ex
        mts, mlts, mid = _mids(src, inst, rp.feed_offset, int(ex.iv[cn.I_BASE]),
                               int(ex.iv[cn.I_N]))
    log = res.log
    fl = log[log["what"] == sn.M_FILL]
    side = fl["side"].astype(np.float64)
    mid_fill = _at(mts, mid, fl["exch_ts"] - 1)  # the mid just before the execution
    mid_dec = _at(mlts, mid, fl["req_ts"])
    mid_1s = _at(mts, mid, fl["exch_ts"] + 1_000_000_000)
    mid_5s = _at(mts, mid, fl["exch_ts"] + 5_000_000_000)
    fills = _fills_frame(fl, "mid_at_decision", mid_dec, mid_fill, mid_1s, mid_5s)
    orders = _orders_frame(log)
    fu = log[log["what"] == sn.M_FUNDING]
    # equity on a grid of local time
    step = interval_ns(cfg.equity_interval)
    last = int(max(mlts[-1] if len(mlts) else first_local, log["ts"].max() if len(log) else 0))
    grid = np.arange(first_local, last + step, step, dtype=np.int64)
    flow_ts = np.concatenate([fl["ts"], fu["ts"]])
    flow_cash = np.concatenate([-side * fl["px"] * fl["qty"] * ic.contract_size - fl["fee"],
                                -fu["fee"]])
    flow_pos = np.concatenate([side * fl["qty"], np.zeros(len(fu))])
    o = np.argsort(flow_ts, kind="stable")
    flow_ts, flow_cash, flow_pos = flow_ts[o], np.cumsum(flow_cash[o]), np.cumsum(flow_pos[o])
    pos_g = np.nan_to_num(_at(flow_ts, flow_pos, grid)) if len(flow_ts) else np.zeros(len(grid))
    cash_g = np.nan_to_num(_at(flow_ts, flow_cash, grid)) if len(flow_ts) else np.zeros(len(grid))
    mid_g = pd.Series(_at(mlts, mid, grid)).ffill().bfill().to_numpy()
    equity = pd.DataFrame({"ts": grid, "position": pos_g, "cash": cfg.init_cash + cash_g,
                           "mid": mid_g,
                           "equity": cfg.init_cash + cash_g + pos_g * mid_g * ic.contract_size})
    metrics = _metrics(cfg, grid, mid_g, fl, fu, pos_g)
    pnl = {
        "total": float(equity["equity"].iloc[-1] - cfg.init_cash) if len(equity) else 0.0,
        "spread_captured": float(np.nansum(fills["spread_captured"])),
        "fees": float(fl["fee"].sum()),
        "funding": float(fu["fee"].sum()),
        "adverse_selection_1s": float(np.nansum(fills["adverse_1s"])),
        "adverse_selection_5s": float(np.nansum(fills["adverse_5s"])),
        "inventory_mark": float(pos_g[-1] * mid_g[-1]) if len(grid) else 0.0,
    }
    stats = {
        "events": res.events, "dropped_depth_rows": res.dropped_depth,
        "decisions": int(st[lp.Q_DECISIONS]), "fills": int(len(fl)),
        "maker_fills": int((fl["maker"] == 1).sum()), "volume": float(fl["qty"].sum()),
        "orders": int((orders["report"] == "accepted").sum()),
        "rejected": int((orders["report"] == "rejected").sum()),
        "feed_offset_ns": rp.feed_offset, "start": s, "end": e,
    }
    run = EventRun(run_id or new_run_id(cfg.name, cfg.symbol), cfg, merged, fills, orders,
                   equity, metrics, pnl, stats)
    if save and not isinstance(store, LoadedEvents):
        run.path = save_run(run, store)
    return run


def _instrument(cfg: EventBacktestConfig) -> np.ndarray:
    ic = cfg.instrument
    return instrument(ic.tick, ic.lot, ic.min_qty, ic.min_notional, ic.maker_fee, ic.taker_fee,
                      ic.contract_size)


def run_bar_backtest(cfg: EventBacktestConfig, store: str | os.PathLike | LoadedEvents,
                     params: dict[str, float], save: bool = True,
                     run_id: str | None = None) -> EventRun:
    """A bar strategy (``cfg.strategy``, ``cfg.bar``) over the stored events: fills, orders,
    equity on the ``equity_interval`` grid (positions marked at the last closed bar's close),
    the sweep metrics and fees / funding."""
    from tradelab.backtest.event.bars import run_bar_strategy

    ic = cfg.instrument
    with _source(cfg, store) as src:
        s, e = src.span
        funding = src.funding
        rp = Replay(src.chunks(),
                    _instrument(cfg), _latency(cfg), cfg.queue.model, cfg.queue.n, funding,
                    window_pct=cfg.window_pct,
                    base_feed_latency=int(cfg.latency.feed_base_ms * 1_000_000))
        first_local = int(rp.ev["local_ts"][0])
        br = run_bar_strategy(rp, cfg.strategy, params, cfg.bar.interval, fill=cfg.bar.fill,
                              execution=cfg.bar.execution, sizing=cfg.bar.sizing,
                              init_cash=cfg.init_cash,
                              close_delay=int(cfg.bar.close_delay_ms * 1_000_000))
        ex = br.replay.sim.ex
        mts, _, mid = _mids(src, _instrument(cfg), rp.feed_offset,
                            int(ex.iv[cn.I_BASE]), int(ex.iv[cn.I_N]))
    log = br.replay.log
    fl = log[log["what"] == sn.M_FILL]
    fu = log[log["what"] == sn.M_FUNDING]
    side = fl["side"].astype(np.float64)
    bars = br.bars
    step_bar = interval_ns(cfg.bar.interval)
    mark_ts = bars["ts"].to_numpy(dtype=np.int64) + step_bar  # a bar's close is known at its end
    mark = bars["close"].to_numpy(dtype=np.float64)
    fill_close = _at(mark_ts, mark, fl["exch_ts"])
    mid_fill = _at_or_nan(mts, mid, fl["exch_ts"] - 1)  # exchange book's mid (NaN: no book)
    mid_1s = _at_or_nan(mts, mid, fl["exch_ts"] + 1_000_000_000)
    mid_5s = _at_or_nan(mts, mid, fl["exch_ts"] + 5_000_000_000)
    fills = _fills_frame(fl, "bar_close_at_decision", fill_close, mid_fill, mid_1s, mid_5s)
    orders = _orders_frame(log)
    step = interval_ns(cfg.equity_interval)
    last = int(max(mark_ts[-1] if len(mark_ts) else first_local,
                   log["ts"].max() if len(log) else 0))
    grid = np.arange(first_local, last + step, step, dtype=np.int64)
    flow_ts = np.concatenate([fl["ts"], fu["ts"]])
    flow_cash = np.concatenate([-side * fl["px"] * fl["qty"] * ic.contract_size - fl["fee"],
                                -fu["fee"]])
    flow_pos = np.concatenate([side * fl["qty"], np.zeros(len(fu))])
    o = np.argsort(flow_ts, kind="stable")
    flow_ts, flow_cash, flow_pos = flow_ts[o], np.cumsum(flow_cash[o]), np.cumsum(flow_pos[o])
    pos_g = np.nan_to_num(_at(flow_ts, flow_pos, grid)) if len(flow_ts) else np.zeros(len(grid))
    cash_g = np.nan_to_num(_at(flow_ts, flow_cash, grid)) if len(flow_ts) else np.zeros(len(grid))
    mark_g = pd.Series(_at(mark_ts, mark, grid)).ffill().bfill().to_numpy()
    equity = pd.DataFrame({"ts": grid, "position": pos_g, "cash": cfg.init_cash + cash_g,
                           "mark": mark_g,
                           "equity": cfg.init_cash + cash_g + pos_g * mark_g * ic.contract_size})
    metrics = _metrics(cfg, grid, mark_g, fl, fu, pos_g)
    pnl = {
        "total": float(equity["equity"].iloc[-1] - cfg.init_cash) if len(equity) else 0.0,
        "spread_captured": float(np.nansum(fills["spread_captured"])),
        "fees": float(fl["fee"].sum()), "funding": float(fu["fee"].sum()),
        "adverse_selection_1s": float(np.nansum(fills["adverse_1s"])),
        "adverse_selection_5s": float(np.nansum(fills["adverse_5s"])),
        "slippage_vs_bar_close": float(np.nansum(fills["slippage"] * fills["qty"])),
    }
    stats = {
        "events": br.replay.events, "bars": int(len(bars)),
        "target_changes": int(bars["ordered"].sum()), "fills": int(len(fl)),
        "maker_fills": int((fl["maker"] == 1).sum()),
        "volume": float(fl["qty"].sum()),
        "orders": int((orders["report"] == "accepted").sum()),
        "rejected": int((orders["report"] == "rejected").sum()),
        "feed_offset_ns": rp.feed_offset, "start": s, "end": e,
        "late_trades": br.late_trades,
    }
    run = EventRun(run_id or new_run_id(cfg.name, cfg.symbol), cfg, params, fills, orders,
                   equity, metrics, pnl, stats)
    if save and not isinstance(store, LoadedEvents):
        run.path = save_run(run, store)
    return run


def _at_or_nan(ts: np.ndarray, vals: np.ndarray, t: np.ndarray) -> np.ndarray:
    return _at(ts, vals, t) if len(ts) else np.full(len(t), np.nan)


def _metrics(cfg: EventBacktestConfig, grid: np.ndarray, mid: np.ndarray, fl: np.ndarray,
             fu: np.ndarray, pos: np.ndarray) -> dict[str, float]:
    if len(grid) < 2:
        return dict.fromkeys(METRICS, float("nan"))
    idx = np.clip(np.searchsorted(grid, fl["ts"], side="left"), 0, len(grid) - 1)
    o = np.argsort(idx, kind="stable")
    per = interval_ns(cfg.period)
    period_end = np.zeros(len(grid), dtype=np.bool_)
    bucket = grid // per
    period_end[:-1] = bucket[1:] != bucket[:-1]
    period_end[-1] = True
    fidx = np.clip(np.searchsorted(grid, fu["ts"], side="left"), 0, len(grid) - 1)
    denom = pos[fidx] * mid[fidx] * cfg.instrument.contract_size
    rate = np.where(denom != 0, fu["fee"] / np.where(denom != 0, denom, 1.0), 0.0)
    years = (grid[-1] - grid[0]) / YEAR_NS
    m, _ = sweep_metrics_nb(
        mid.astype(np.float64), np.zeros(len(fl), dtype=np.int64), idx[o].astype(np.int64),
        fl["qty"][o].astype(np.float64) * cfg.instrument.contract_size,
        fl["px"][o].astype(np.float64), fl["fee"][o].astype(np.float64),
        np.where(fl["side"][o] > 0, 0, 1).astype(np.int64), 1, float(cfg.init_cash),
        period_end, fidx.astype(np.int64), rate.astype(np.float64), YEAR_NS / per,
        max(years, 1e-12))
    return {k: float(v) for k, v in zip(METRICS, m[0])}


def save_run(run: EventRun, store: str | os.PathLike) -> Path:
    folder = RunStore(store).root / run.run_id
    folder.mkdir(parents=True, exist_ok=True)
    write_json(run.config.model_dump(mode="json") | {"params": run.params},
                folder / "config.json")
    write_parquet(run.fills, folder / "fills.parquet")
    write_parquet(run.orders, folder / "orders.parquet")
    write_parquet(run.equity, folder / "equity.parquet")
    write_json({"run_id": run.run_id, "kind": "event", "symbol": run.config.symbol,
                 "params": run.params, "metrics": run.metrics, "pnl": run.pnl,
                 "stats": run.stats}, folder / "report.json")
    return folder


def _grid_sets(cfg: EventBacktestConfig) -> list[dict[str, float]]:
    if not cfg.grid:
        return [{}]
    keys = sorted(cfg.grid)
    mesh = np.meshgrid(*[cfg.grid[k] for k in keys], indexing="ij")
    return [{k: float(m.ravel()[i]) for k, m in zip(keys, mesh)} for i in range(mesh[0].size)]


def _one(shared: tuple[EventBacktestConfig, str | LoadedEvents],
         item: tuple[dict[str, float], str]) -> EventRun:
    """One set of a grid, on a worker: run and analyse it; the caller saves it."""
    cfg, store = shared
    params, run_id = item
    return run_backtest(cfg, store, params, save=False, run_id=run_id)


def run_grid(cfg: EventBacktestConfig, store: str | os.PathLike,
             backend: Backend | None = None) -> list[EventRun]:
    """Every set of ``cfg.grid`` (one run each, in parallel on ``backend``: by default what
    ``cfg.compute`` names, else a local pool of ``cfg.workers`` processes); each run is saved
    here as it arrives. The trials are registered in the family registry (``cfg.family`` or the
    strategy name), in grid order whatever order the runs finished in."""
    if backend is None and cfg.compute.distributed:
        with open_backend(cfg.compute, cfg.workers) as opened:
            return run_grid(cfg, store, opened)
    sets = _grid_sets(cfg)
    base_id = new_run_id(cfg.name, cfg.symbol)
    jobs = [(ps, f"{base_id}-{i:03d}") for i, ps in enumerate(sets)]
    if backend is None:
        backend = LocalPool(cfg.workers) if cfg.workers > 1 and len(jobs) > 1 else InProcess()
    # workers that see the store read the events themselves; others are sent them, once
    events: str | LoadedEvents = str(store)
    if not cfg.compute.store_visible and not isinstance(backend, (InProcess, LocalPool)):
        events = LoadedEvents(cfg, store)
    job = Job(_one, (cfg, events), name=f"grid-{cfg.name}", preload=(__name__,))
    runs: list[EventRun | None] = [None] * len(jobs)
    for i, run in backend.run(job, jobs):
        run.path = save_run(run, store)
        runs[i] = run
    done = [r for r in runs if r is not None]
    if len(done) > 1 or cfg.grid:
        trials = pd.DataFrame({
            "params": [repr(sorted(r.params.items())) for r in done],
            "symbol": cfg.symbol, "interval": f"event:{cfg.equity_interval}",
            "start": str(done[0].stats["start"]), "end": str(done[0].stats["end"]),
            "sr_period": [r.metrics["sr_period"] for r in done],
            "n_obs": [r.metrics["n_obs"] for r in done],
            "skew": [r.metrics["skew"] for r in done],
            "kurt": [r.metrics["kurt"] for r in done],
        })
        RunStore(store).record_trials(cfg.family or f"event-{cfg.strategy}", base_id, trials)
    return done
