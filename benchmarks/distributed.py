#!/usr/bin/env python
"""Distributed sweep benchmark: the same sweep on the local pool and on a Dask cluster with 1 and
2 workers on this machine; prints JSON on stdout.

Data: the real Binance spot BTC/USDT 1m bars, 2025-05-20 .. 2025-08-18 (130,708 bars).
Strategy: MA crossover (SMA, long/flat), 10,000 (fast, slow) sets in chunks of 64 (the grid of
``benchmarks/sweep.py``).

For each worker count N (``--workers 1,2``):

- ``local``: :func:`tradelab.backtest.vector.engine.sweep_bars` on a
  :class:`tradelab.compute.LocalPool` of N processes, today's default (the pool starts inside
  the timed call, and this process works through chunks while it starts);
- ``dask``: the same call on a :class:`tradelab.compute.cluster.DaskBackend` connected to a
  ``dask scheduler`` and N ``dask worker --nthreads 1 --no-nanny`` processes started beforehand
  on 127.0.0.1 (an existing cluster: its start-up is reported, not timed). Run twice: on fresh
  workers, which import the sweep's modules and load its kernels inside the timed call (as the
  local pool's fork server does on every run), and again on the same, now warm, workers (what
  every later sweep on a long-lived cluster sees).

Reported: bar x sets per second, the client's peak resident memory (this process alone, and
with every child process: pool workers or the cluster's processes), and ``overhead_ratio`` =
Dask throughput / local throughput at equal N on warm workers (target: at least 0.9, i.e.
within 10%; ``overhead_ratio_fresh_workers`` for the first sweep on a fresh cluster). Both
runs' metrics and period returns are checked equal bit for bit. The machine is described; on a
machine shared with other work the timings are noisy.
Usage: ``python benchmarks/distributed.py [--sets 10000] [--workers 1,2]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
# this file's name is the Dask package's: its folder must not come first on the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
import distributed  # noqa: E402,F401 - the real package, imported before the folder returns

sys.path.append(str(HERE))
from common import data_dir, emit, log, machine  # noqa: E402
from sweep import grid_values, load_bars  # noqa: E402


class Memory:
    """Peak RSS of this process alone and with its children, sampled every 0.1 s."""

    def __init__(self) -> None:
        self.client = self.total = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                own = self._proc.memory_info().rss
                kids = 0
                for p in self._proc.children(recursive=True):
                    try:
                        kids += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                own = kids = 0
            self.client = max(self.client, own)
            self.total = max(self.total, own + kids)
            self._stop.wait(0.1)

    def __enter__(self) -> Memory:
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def one_run(bars, market, P, backend) -> dict:
    from tradelab import strategies
    from tradelab.backtest.vector.engine import sweep_bars
    from tradelab.backtest.vector.simulate import Costs

    m = strategies.get("ma_crossover")
    base = psutil.Process().memory_info().rss
    with Memory() as mem:
        t0 = time.perf_counter()
        res = sweep_bars(m, bars, P, market, Costs(), chunk_size=64, backend=backend)
        seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "bar_sets_per_s": len(bars) * len(P) / seconds,
           "client_peak_rss_mib": mem.client / 2**20,
           "client_rss_growth_mib": (mem.client - base) / 2**20,
           "all_processes_peak_rss_mib": mem.total / 2**20, "orders": res.n_orders}
    return {"result": res, **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=int, default=10_000)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    data = data_dir()
    if data is None:
        sys.exit("the shared recordings are needed: set TRADELAB_TEST_DATA to ../shared/data")
    from tests.dask_helpers import LocalDaskCluster
    from tradelab import strategies
    from tradelab.backtest.vector.engine import market_arrays
    from tradelab.backtest.vector.simulate import Costs, simulator_args
    from tradelab.compute import LocalPool
    from tradelab.compute.cluster import DaskBackend

    doc: dict = {"benchmark": "distributed", "machine": machine(),
                 "strategy": "ma_crossover (SMA, long/flat)", "chunk_size": 64,
                 "note": "timings on a machine shared with other work are noisy"}
    with tempfile.TemporaryDirectory(prefix="tradelab-bench-dist-") as tmp:
        bars = load_bars(Path(data), Path(tmp) / "store")
        market = market_arrays(bars, "1m", "1d")
        fast, slow = grid_values(args.sets)
        P = strategies.get("ma_crossover").Params.grid(fast=fast, slow=slow, ma_type=[0],
                                                        allow_short=[0])
        simulator_args(Costs(), market.execution)  # vectorbt imported once, not timed
        doc.update(bars=len(bars), sets=len(P))
        for n in [int(x) for x in args.workers.split(",")]:
            log(f"local pool, {n} worker(s), {len(P):,} sets ...")
            local = one_run(bars, market, P, LocalPool(n))
            log(f"dask, {n} worker(s): starting the cluster ...")
            t0 = time.perf_counter()
            cluster = LocalDaskCluster(Path(tmp) / f"dask{n}", n_workers=n)
            started = time.perf_counter() - t0
            try:
                backend = DaskBackend.connect(cluster.address)
                log(f"dask, {n} worker(s), {len(P):,} sets, fresh workers ...")
                cold = one_run(bars, market, P, backend)
                log(f"dask, {n} worker(s), {len(P):,} sets, the same workers again ...")
                remote = one_run(bars, market, P, backend)
                backend.close()
            finally:
                cluster.close()
            same = all(np.array_equal(local["result"].metrics, r["result"].metrics,
                                      equal_nan=True)
                       and np.array_equal(local["result"].period_returns,
                                          r["result"].period_returns, equal_nan=True)
                       for r in (cold, remote))
            for r in (local, cold, remote):
                del r["result"]
            cold["cluster_start_s"] = started
            doc[f"workers_{n}"] = {
                "local": local, "dask_fresh_workers": cold, "dask": remote,
                "overhead_ratio": remote["bar_sets_per_s"] / local["bar_sets_per_s"],
                "overhead_ratio_fresh_workers": cold["bar_sets_per_s"]
                / local["bar_sets_per_s"],
                "identical_results": bool(same)}
    ratios = [v["overhead_ratio"] for k, v in doc.items() if k.startswith("workers_")]
    doc["target_overhead_ratio"] = 0.9
    doc["meets_target"] = bool(ratios) and min(ratios) >= 0.9
    if "workers_1" in doc and "workers_2" in doc:
        doc["dask_scaling_2_over_1"] = (doc["workers_2"]["dask"]["bar_sets_per_s"]
                                        / doc["workers_1"]["dask"]["bar_sets_per_s"])
    emit(doc)


if __name__ == "__main__":
    main()
