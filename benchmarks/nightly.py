"""Nightly benchmark: wall time and peak memory of configs/nightly.yaml on the demo data.

Builds the demo store (``run_demo``, 7 days, no live step), then runs the nightly twice on it:
once with the config's ``parallel`` and once with ``parallel=1`` as the reference in the same run
(the ratio is the speed-up from running jobs at once). Peak memory is the largest sum of the
resident set sizes of this process and all its descendants (workers and notebook kernels),
sampled every 0.1 s. Prints JSON.

    python benchmarks/nightly.py [--days 7]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: E402


class PeakRss:
    """Peak total RSS of this process tree while the context is open."""

    def __enter__(self) -> PeakRss:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def main() -> None:
    from rich.console import Console

    from tradelab.demo import run_demo
    from tradelab.report.nightly import load_nightly_config, run_nightly

    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=7.0)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        demo = run_demo(
            work / "demo",
            days=args.days,
            seed=7,
            reports=work / "r" / "demo",
            console=Console(file=io.StringIO()),
            collect_s=0,
            paper_s=0,
        )
        demo_s = time.perf_counter() - t0
        base = load_nightly_config(root / "configs" / "nightly.yaml")
        out = {}
        for label, parallel in (("parallel", base.parallel), ("sequential", 1)):
            cfg = base.model_copy(
                update={"store": work / "demo" / "store", "out": work / label, "parallel": parallel}
            )
            with PeakRss() as mem:
                t0 = time.perf_counter()
                s = run_nightly(cfg)
                wall = time.perf_counter() - t0
            out[label] = {
                "parallel": parallel,
                "wall_s": round(wall, 2),
                "peak_rss_mb": round(mem.peak / 2**20, 1),
                "ok": s["ok"],
                "failed": s["failed"],
                "jobs_s": {r["name"]: round(r.get("seconds") or 0, 2) for r in s["jobs"]},
            }
    print(
        json.dumps(
            {
                "benchmark": "nightly",
                "config": "configs/nightly.yaml",
                "demo_days": args.days,
                "demo_build_s": round(demo_s, 1),
                "demo_total_s": round(demo["timings"]["total"], 1),
                **out,
                "speedup_vs_sequential": round(
                    out["sequential"]["wall_s"] / out["parallel"]["wall_s"], 2
                ),
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
