"""Sweeps: a strategy's whole parameter grid over bars, in chunks, on every core.

``sweep_bars`` is the core: the grid is cut into chunks of ``chunk_size`` sets; each chunk's
targets are computed with the strategy's own grid kernel, simulated with vectorbt and reduced
to metrics and per-period returns. The chunks run wherever the compute backend puts them
(:mod:`tradelab.compute`): worker processes of the local pool (from a fork server, one numba
thread each), or the workers of a Dask cluster; the bars and market arrays go to each worker
once. Only the small results travel back, and each is written to the run's chunk folder as it
arrives (an interrupted sweep resumes from there), so peak memory is set by ``chunk_size`` and
the workers, not by the grid. Small sweeps on the local pool run in-process
(``POOL_MIN_CELLS``); larger ones start the pool lazily and work in-process until it answers
(:class:`tradelab.compute.LocalPool`). As with any process pool, a script that runs a sweep
needs the ``if __name__ == "__main__":`` guard.

``run_sweep`` wraps it for a :class:`SweepConfig`: loads bars (and settled funding for
perpetuals) from the store, runs the sweep per symbol, records every set in the trial registry,
scores the best set with PSR/DSR (all trials of the family counted) and PBO, runs the bias checks
and saves the run under ``<store>/runs/<run_id>/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from tradelab import strategies
from tradelab.backtest.metrics_nb import METRICS
from tradelab.backtest.vector.chunks import ChunkStore, sweep_key
from tradelab.backtest.vector.config import SweepConfig
from tradelab.backtest.vector.simulate import (
    Costs,
    Execution,
    Market,
    chunk_metrics,
    set_simulator_args,
    simulator_args,
)
from tradelab.compute import Backend, InProcess, Job, LocalPool, open_backend
from tradelab.core.timeutil import interval_ns
from tradelab.errors import StoreError
from tradelab.store.catalog import Catalog
from tradelab.strategies.contract import StrategyModule

YEAR_NS = 365 * 86_400 * 10**9
POOL_MIN_CELLS = 400_000_000
"""Below this many bars x sets the sweep runs in-process: starting worker processes (a fork
server importing vectorbt and loading kernels, 4 s or more) costs more than it saves on work
that one process does in about 10 s (a chunk of 64 sets over 130k bars takes ~0.2 s)."""
_WORKER: dict = {}


# -- the core: arrays in, metrics out -------------------------------------------------------


def market_arrays(bars: pd.DataFrame, interval: str, period: str,
                  funding: pd.DataFrame | None = None,
                  execution: Execution = "close") -> Market:
    """Prices, period ends, funding settlements aligned to bars, annualisation.

    A settlement at time tau is paid by the position held at tau. With ``close`` execution that
    is the position set at the close of the last bar that closed at or before tau; with
    ``next_open`` the position filled at the open of the bar that contains tau (it opened at or
    before tau).
    """
    ts = bars["ts"].to_numpy(dtype=np.int64)
    step = interval_ns(interval)
    pid = ts // interval_ns(period)
    period_end = np.r_[pid[1:] != pid[:-1], True] if len(ts) else np.zeros(0, bool)
    if funding is not None and len(funding):
        f_ts = funding["ts"].to_numpy(dtype=np.int64)
        edge = ts if execution == "next_open" else ts + step
        idx = np.searchsorted(edge, f_ts, side="right") - 1
        keep = (idx >= 0) & (idx < len(ts)) & (f_ts < ts[-1] + step)
        f_idx, f_rate = idx[keep].astype(np.int64), funding["rate"].to_numpy(float)[keep]
    else:
        f_idx, f_rate = np.empty(0, np.int64), np.empty(0)
    opens = bars["open"].to_numpy(dtype=np.float64) if "open" in bars else None
    return Market(bars["close"].to_numpy(dtype=np.float64), period_end, f_idx, f_rate,
                  YEAR_NS / interval_ns(period), len(ts) * step / YEAR_NS, opens, execution)


_Init = tuple[str, dict, Market, Costs, str, dict]
"""What every worker is given once: strategy name, inputs, market, costs, freq, simulator args."""
PRELOAD = ("tradelab.backtest.vector.engine", "tradelab.backtest.vector.pool_warm")
"""What a local pool's fork server imports before forking workers: numba, the strategies, and
vectorbt's simulator and the metrics kernels loaded once (``pool_warm``)."""


def _init_worker(init: _Init, threads: int) -> None:
    """A process's setup before its first chunk (a worker's, or this process's)."""
    import numba

    module_name, inputs, market, costs, freq, sim_args = init
    numba.set_num_threads(max(1, threads))
    set_simulator_args(costs, market.execution, sim_args)  # no vectorbt import in workers
    _WORKER.update(module=strategies.get(module_name), inputs=inputs, market=market,
                   costs=costs, freq=freq)


def _run_chunk(init: _Init, P: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, float]:
    """One chunk of parameter sets: (metrics, period returns, orders, seconds)."""
    t0 = time.perf_counter()
    w = _WORKER
    targets = w["module"].grid(w["inputs"], P)
    metrics, prets, n_orders = chunk_metrics(targets, w["market"], w["costs"], w["freq"])
    return metrics, prets, n_orders, time.perf_counter() - t0


@dataclass
class GridResult:
    """Metrics ``(n_sets, len(METRICS))`` and period returns ``(n_periods, n_sets)``."""

    params: np.ndarray
    metrics: np.ndarray
    period_returns: np.ndarray
    n_orders: int
    seconds: float
    chunk_seconds: list[float] = field(default_factory=list)


def sweep_bars(module: StrategyModule, bars: pd.DataFrame, params: np.ndarray, market: Market,
               costs: Costs, *, interval: str = "1m", chunk_size: int = 64, workers: int = 2,
               progress: Callable[[int, int], None] | None = None,
               backend: Backend | None = None, chunks: ChunkStore | None = None) -> GridResult:
    """Every row of ``params`` over ``bars``; see the module docstring.

    ``backend``: where the chunks run (default: a local pool of ``workers``, or this process
    for a small sweep). ``chunks``: where each chunk's results are written as they arrive;
    chunks it already holds (an interrupted run of the same sweep) are read, not recomputed.
    Results are placed by chunk number, so they do not depend on where or in which order the
    chunks ran."""
    if module.KIND != strategies.BAR:
        raise ValueError(f"{module.NAME} reads the order book: sweep it with the event-driven "
                         "backtester, not the vectorized one")
    if "funding_rate" in module.INPUTS:
        raise ValueError(f"{module.NAME} trades two legs (spot and perp): the vectorized sweep "
                         "simulates one instrument")
    inputs = {c: np.ascontiguousarray(bars[c].to_numpy(dtype=np.float64)) for c in module.INPUTS}
    params = np.ascontiguousarray(params, dtype=np.float64)
    starts = list(range(0, params.shape[0], chunk_size))
    n_periods = int(market.period_end.sum())
    metrics = np.empty((params.shape[0], len(METRICS)))
    prets = np.empty((n_periods, params.shape[0]))
    n_orders = 0
    chunk_seconds = []
    freq = f"{interval_ns(interval) // 10**9}s"
    t0 = time.perf_counter()
    init: _Init = (module.NAME, inputs, market, costs, freq,
                   simulator_args(costs, market.execution))
    n_done = 0

    def take(i: int, m: np.ndarray, p: np.ndarray, n: int) -> None:
        nonlocal n_orders, n_done
        lo = starts[i]
        metrics[lo:lo + m.shape[0]] = m
        prets[:, lo:lo + m.shape[0]] = p
        n_orders += n
        n_done += 1
        if progress:
            progress(n_done, len(starts))

    written = chunks.written() if chunks is not None else set()
    for i in sorted(written):
        take(i, *chunks.read(i))  # type: ignore[union-attr]
    todo = [i for i in range(len(starts)) if i not in written]
    if backend is None:
        small = params.shape[0] * len(bars) < POOL_MIN_CELLS
        backend = InProcess() if workers <= 1 or len(todo) < 2 * workers or small \
            else LocalPool(workers)
    job = Job(_run_chunk, init, _init_worker, name=f"sweep-{module.NAME}", preload=PRELOAD,
              caller_helps=True)
    items = [params[starts[i]:starts[i] + chunk_size] for i in todo]
    for k, (m, p, n, sec) in backend.run(job, items):
        i = todo[k]
        if chunks is not None:
            chunks.write(i, m, p, n)
        chunk_seconds.append(sec)
        take(i, m, p, n)
    return GridResult(params, metrics, prets, n_orders, time.perf_counter() - t0, chunk_seconds)


# -- a configured sweep on the store --------------------------------------------------------


@dataclass
class SweepResult:
    """One symbol's sweep: tables for people, arrays for validation."""

    run_id: str
    symbol: str
    config: SweepConfig
    metrics: pd.DataFrame  # one row per parameter set: set_id, parameters, metrics
    period_returns: pd.DataFrame  # index: period end time; one column per set_id
    best: pd.DataFrame
    scores: dict
    bias: dict
    timings: dict
    path: object = None

    @property
    def n_sets(self) -> int:
        return len(self.metrics)


def load_market(cat: Catalog, cfg: SweepConfig, symbol: str) -> tuple[pd.DataFrame, Market]:
    """Bars (and settled funding for perpetuals) of a sweep's symbol and range."""
    bars = cat.bars(cfg.exchange, symbol, cfg.interval, cfg.start, cfg.end, complete_only=True)
    if len(bars) < 2:
        raise StoreError(f"{cfg.exchange} {symbol}: no {cfg.interval} bars between {cfg.start} "
                         f"and {cfg.end}")
    funding = None
    if cfg.funding and symbol.endswith("-PERP"):
        try:
            funding = cat.funding(cfg.exchange, symbol, cfg.start, cfg.end, settled=True)
        except StoreError:
            funding = None
    return bars, market_arrays(bars, cfg.interval, cfg.period, funding, cfg.execution)


def run_sweep(cfg: SweepConfig, store=None, *,
              progress: Callable[[str, int, int], None] | None = None,
              save: bool = True, backend: Backend | None = None) -> list[SweepResult]:
    """Run a configured sweep for every symbol; see the module docstring.

    ``backend``: where the chunks run; default: what ``cfg.compute`` names (a Dask scheduler
    or local cluster), else the local pool. When saving, each chunk is written as it arrives
    and a sweep interrupted on this side resumes from the chunks already written."""
    if backend is None and cfg.compute.distributed:
        with open_backend(cfg.compute, cfg.workers) as opened:
            return run_sweep(cfg, store, progress=progress, save=save, backend=opened)
    from tradelab.backtest.runs import RunStore, new_run_id, score_run
    from tradelab.backtest.vector import bias as bias_checks

    module = strategies.get(cfg.strategy)
    grid_values = cfg.grid_values()
    unknown = [k for k in grid_values if k not in module.Params.names()]
    if unknown:
        raise ValueError(f"{cfg.strategy} has no parameters {unknown}; it has "
                         f"{list(module.Params.names())}")
    P = module.Params.grid(**grid_values)
    costs = Costs(cfg.fees.taker, cfg.slippage, cfg.init_cash)
    cat = Catalog(store)
    runs = RunStore(cat.root)
    out = []
    for symbol in cfg.symbols:
        t0 = time.perf_counter()
        bars, market = load_market(cat, cfg, symbol)
        t_load = time.perf_counter() - t0
        report: Callable[[int, int], None] | None = None
        if progress is not None:
            report = partial(progress, symbol)
        chunks = None
        if save:
            key = sweep_key(cfg.model_dump_json(exclude={"workers", "compute"}), symbol, P,
                            cfg.chunk_size, bars)
            chunks = ChunkStore.under(runs.root, key)
        res = sweep_bars(module, bars, P, market, costs, interval=cfg.interval,
                         chunk_size=cfg.chunk_size, workers=cfg.workers, progress=report,
                         backend=backend, chunks=chunks)
        names = list(module.Params.names())
        metrics = pd.DataFrame(res.metrics, columns=list(METRICS))
        table = pd.concat([pd.DataFrame({"set_id": np.arange(len(P))}),
                           pd.DataFrame(P, columns=names), metrics], axis=1)
        period_ts = bars["ts"].to_numpy()[market.period_end]
        prets = pd.DataFrame(res.period_returns,
                             index=pd.to_datetime(period_ts, unit="ns", utc=True))
        run_id = new_run_id(cfg.name, symbol)
        t1 = time.perf_counter()
        scores = score_run(runs, cfg, symbol, run_id, table, prets, save=save)
        t_score = time.perf_counter() - t1
        bias = {}
        if cfg.bias_checks:
            t2 = time.perf_counter()
            bias = bias_checks.run_checks(module, cat, cfg, symbol, bars, table)
            bias["seconds"] = time.perf_counter() - t2
        best = table.sort_values(cfg.select_by, ascending=False, na_position="last").head(
            cfg.top_n)
        timings = {"load_s": t_load, "sweep_s": res.seconds, "score_s": t_score,
                   "n_orders": res.n_orders, "bars": len(bars), "sets": len(P),
                   "bar_sets_per_s": len(bars) * len(P) / res.seconds}
        result = SweepResult(run_id, symbol, cfg, table, prets, best, scores, bias, timings)
        if save:
            result.path = runs.save(result)
            if chunks is not None:
                chunks.clear()
        out.append(result)
    return out
