"""Sweeps: a strategy's whole parameter grid over bars, in chunks, on every core.

``sweep_bars`` is the core: the grid is cut into chunks of ``chunk_size`` sets; worker
processes (from a fork server, one numba thread each) compute each chunk's targets with the
strategy's own grid kernel, simulate them with vectorbt and reduce them to metrics and per-period
returns. Only those small results travel back, so peak memory is set by ``chunk_size`` and
``workers``, not by the grid. Small sweeps run in-process (``POOL_MIN_CELLS``); larger ones
start the pool lazily and work in-process until it answers (:func:`_run_pooled`). As with any
process pool, a script that runs a sweep needs the ``if __name__ == "__main__":`` guard.

``run_sweep`` wraps it for a :class:`SweepConfig`: loads bars (and settled funding for
perpetuals) from the store, runs the sweep per symbol, records every set in the trial registry,
scores the best set with PSR/DSR (all trials of the family counted) and PBO, runs the bias checks
and saves the run under ``<store>/runs/<run_id>/``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from tradelab import strategies
from tradelab.backtest.metrics_nb import METRICS
from tradelab.backtest.vector.config import SweepConfig
from tradelab.backtest.vector.simulate import (
    Costs,
    Execution,
    Market,
    chunk_metrics,
    set_simulator_args,
    simulator_args,
)
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


def _context():
    """Workers fork from a clean server process that has imported numba, vectorbt and the
    strategies once: forking the caller itself is unsafe after it has used numba's OpenMP
    threads ("fork() called from a process already using GNU OpenMP") or DuckDB's."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tradelab.backtest.vector.engine",
                                "tradelab.backtest.vector.pool_warm"])
    return ctx


_Init = tuple[str, dict, Market, Costs, str, dict]
"""What every worker is given once: strategy name, inputs, market, costs, freq, simulator args."""


def _init_worker(module_name: str, inputs: dict, market: Market, costs: Costs, freq: str,
                 sim_args: dict, threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, threads))
    set_simulator_args(costs, market.execution, sim_args)  # no vectorbt import in workers
    _WORKER.update(module=strategies.get(module_name), inputs=inputs, market=market,
                   costs=costs, freq=freq)


def _pid() -> int:
    """A no-op task: its result says the pool's workers are up."""
    return os.getpid()


def _run_chunk(args: tuple[int, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray, int, float]:
    i, P = args
    t0 = time.perf_counter()
    w = _WORKER
    targets = w["module"].grid(w["inputs"], P)
    metrics, prets, n_orders = chunk_metrics(targets, w["market"], w["costs"], w["freq"])
    return i, metrics, prets, n_orders, time.perf_counter() - t0


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
               progress: Callable[[int, int], None] | None = None) -> GridResult:
    """Every row of ``params`` over ``bars``; see the module docstring."""
    if module.KIND != strategies.BAR:
        raise ValueError(f"{module.NAME} reads the order book: sweep it with the event-driven "
                         "backtester, not the vectorized one")
    if "funding_rate" in module.INPUTS:
        raise ValueError(f"{module.NAME} trades two legs (spot and perp): the vectorized sweep "
                         "simulates one instrument")
    inputs = {c: np.ascontiguousarray(bars[c].to_numpy(dtype=np.float64)) for c in module.INPUTS}
    params = np.ascontiguousarray(params, dtype=np.float64)
    chunks = [(i, params[s:s + chunk_size]) for i, s in
              enumerate(range(0, params.shape[0], chunk_size))]
    n_periods = int(market.period_end.sum())
    metrics = np.empty((params.shape[0], len(METRICS)))
    prets = np.empty((n_periods, params.shape[0]))
    n_orders = 0
    chunk_seconds = []
    freq = f"{interval_ns(interval) // 10**9}s"
    t0 = time.perf_counter()
    init: _Init = (module.NAME, inputs, market, costs, freq,
                   simulator_args(costs, market.execution))

    def take(res) -> None:
        nonlocal n_orders
        i, m, p, n, sec = res
        lo = i * chunk_size
        metrics[lo:lo + m.shape[0]] = m
        prets[:, lo:lo + m.shape[0]] = p
        n_orders += n
        chunk_seconds.append(sec)
        if progress:
            progress(len(chunk_seconds), len(chunks))

    if workers <= 1 or len(chunks) < 2 * workers or params.shape[0] * len(bars) < POOL_MIN_CELLS:
        _init_worker(*init, os.cpu_count() or 1)
        for c in chunks:
            take(_run_chunk(c))
    else:
        _run_pooled(chunks, init, min(workers, len(chunks)), take)
    return GridResult(params, metrics, prets, n_orders, time.perf_counter() - t0, chunk_seconds)


def _run_pooled(chunks: list[tuple[int, np.ndarray]], init: _Init, workers: int,
                take: Callable) -> None:
    """Chunks on a pool of ``workers`` processes, started lazily.

    Starting the pool takes seconds (the fork server imports vectorbt before the workers can
    fork from it), so a feeder thread starts it, waits for a no-op task to come back (no chunk
    is handed to a pool that is not up yet) and then keeps two chunks in flight per worker,
    while this thread works through chunks itself, from the other end of the queue, until the
    pool returns its first result; from then on it only collects. If this thread finishes every
    chunk before the pool is up, the sweep returns without waiting for it. The simulator and
    metrics kernels release the GIL, so the feeder is not held up. Each worker receives the
    market arrays once, in its initializer.
    """
    pending = deque(chunks)
    lock = threading.Lock()
    results: queue.Queue = queue.Queue()
    up = threading.Event()

    def pop(front: bool) -> tuple[int, np.ndarray] | None:
        with lock:
            if not pending:
                return None
            return pending.popleft() if front else pending.pop()

    def feeder() -> None:
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=_context(),
                                     initializer=_init_worker, initargs=(*init, 1)) as pool:
                pool.submit(_pid).result()
                up.set()
                running = set()
                for _ in range(2 * workers):
                    c = pop(True)
                    if c is not None:
                        running.add(pool.submit(_run_chunk, c))
                while running:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for f in done:
                        results.put(f.result())
                        c = pop(True)
                        if c is not None:
                            running.add(pool.submit(_run_chunk, c))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            results.put(exc)
        results.put(None)

    thread = threading.Thread(target=feeder, name="sweep-pool-feeder", daemon=True)
    thread.start()
    pool_ready = local_ready = False
    n_done = 0
    try:
        while n_done < len(chunks):
            try:
                item = results.get_nowait() if not pool_ready else results.get()
            except queue.Empty:
                c = pop(False)
                if c is None:
                    item = results.get()
                else:
                    if not local_ready:
                        _init_worker(*init, os.cpu_count() or 1)
                        local_ready = True
                    take(_run_chunk(c))
                    n_done += 1
                    continue
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            take(item)
            n_done += 1
            pool_ready = True
    finally:
        with lock:
            pending.clear()  # on an error: let the feeder finish what is running, and stop
        if up.is_set():
            thread.join()
        # else no chunk went to the pool, still starting: the feeder shuts it down once it is
        # up, in the background


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
              save: bool = True) -> list[SweepResult]:
    """Run a configured sweep for every symbol; see the module docstring."""
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
        res = sweep_bars(module, bars, P, market, costs, interval=cfg.interval,
                         chunk_size=cfg.chunk_size, workers=cfg.workers, progress=report)
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
        out.append(result)
    return out
