"""Event engine benchmark: tradelab's replay and market-making loop against hftbacktest 2.4.4.

Data: the real USD-M BTCUSDT recording (``$TRADELAB_TEST_DATA/binance_ws/usdm_btcusdt_20240808.gz``,
imported once into a cache store) and a long stream of ``--copies`` time-shifted copies of it.
Local times are corrected once (every local time shifted by the worst negative feed latency plus
1 ms, as hftbacktest's ``correct_local_timestamp`` does) so both engines see the same stream.

Runs, each in its own process (peak RSS is the process's ``ru_maxrss``), both engines streaming
the copies from one chunk / one file at a time:

- ``replay``: no orders;
- ``mm``: quotes around the microprice every 100 ms (post-only, 0.002 BTC, inventory skew,
  position limit 0.02), power queue n = 3, 10 ms constant entry and response latency,
  maker 2 bps / taker 5 bps.

Usage::

    python benchmarks/event_engine.py [--copies 43] [--hbt-python /work/wt/hbt-venv/bin/python]

Prints JSON: events/s and peak RSS per run and engine, tradelab/hftbacktest ratios, and both
engines' fills on the market-making loop side by side. hftbacktest pins numpy 2.2, so it runs from
its own virtualenv (``--hbt-python``); without one the hftbacktest half is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXCHANGE, SYMBOL = "BINANCE_FUTURES", "BTC-USDT-PERP"
CFG = {
    "maker": 0.0002,
    "taker": 0.0005,
    "half_spread_bps": 0.0,
    "skew_bps": 1.0,
    "max_position": 0.02,
    "qty": 0.002,
    "interval_ns": 100_000_000,
    "latency_ns": 10_000_000,
}


def _store(cache: Path) -> Path:
    store = cache / "event_store"
    if not (store / "book").is_dir():
        data = Path(os.environ.get("TRADELAB_TEST_DATA", ROOT.parent / "shared" / "data"))
        rec = data / "binance_ws" / "usdm_btcusdt_20240808.gz"
        if not rec.exists():
            sys.exit(f"recording not found: {rec} (set TRADELAB_TEST_DATA)")
        from tradelab.collect.importers.base import ImportRun
        from tradelab.collect.importers.binance_ws import BinanceWsImporter

        run = ImportRun("binance-ws", store, {})
        BinanceWsImporter(run, None).import_files([rec])
        run.finish()
    return store


def _base(cache: Path) -> Path:
    path = cache / "usdm_btcusdt_base.npy"
    if not path.exists():
        from tradelab.store.catalog import Catalog

        with Catalog(_store(cache)) as cat:
            ev = cat.events(EXCHANGE, SYMBOL)
        lat = ev["local_ts"] - ev["exch_ts"]
        ev["local_ts"] += max(0, -int(lat.min())) + 1_000_000
        np.save(path, ev)
    return path


def _peak_rss_mib() -> float:
    """VmHWM of this process (``ru_maxrss`` would carry the parent's peak across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _copies(base: np.ndarray, copies: int):
    """The base stream ``copies`` times, each shifted by its span + 1 s. Like a file reader
    reusing its read buffer, one array is shifted in place and yielded again: the replay has
    copied the previous chunk into its own buffers by the time it asks for the next one."""
    span = int(base["exch_ts"][-1] - base["exch_ts"][0]) + 1_000_000_000
    c = base.copy()
    for k in range(copies):
        if k:
            c["exch_ts"] += span
            c["local_ts"] += span
        yield c


def child_tradelab(base_path: str, copies: int, mode: str) -> dict:
    """One tradelab run in this process (called by the parent through a subprocess)."""
    from tradelab.backtest.event import loops_nb as lp
    from tradelab.backtest.event.replay import Latency, Replay
    from tradelab.matching import instrument
    from tradelab.matching import latency_nb as L
    from tradelab.matching import sim_nb as sn
    from tradelab.strategies import market_making as mm

    base = np.load(base_path)
    inst = instrument(0.1, 0.001, maker_fee=CFG["maker"], taker_fee=CFG["taker"])
    lat = Latency(*L.constant(CFG["latency_ns"], CFG["latency_ns"]))
    p = mm.Params(half_spread_bps=CFG["half_spread_bps"], skew_bps=CFG["skew_bps"],
                  max_position=CFG["max_position"], qty=CFG["qty"],
                  requote_ms=CFG["interval_ns"] / 1e6).to_array()

    def make(chunks):
        rp = Replay(chunks, inst, lat, "power", 3.0, feed_offset=0, window_pct=0.1)
        st = lp.new_quote_state(int(rp.ev["local_ts"][0]), p[mm.REQUOTE_MS])
        if mode == "replay":
            return rp, st, sn.replay_nb
        return rp, st, (lambda s, ev: lp.quote_loop_nb(s, ev, p, st))

    rp, st, step = make(iter([base[:20_000]]))  # warm-up: load the kernels
    rp.run(step)
    rp, st, step = make(_copies(base, copies))
    t = time.perf_counter()
    res = rp.run(step)
    secs = time.perf_counter() - t
    f = res.fills
    return {
        "seconds": secs,
        "events": res.events,
        "peak_rss_mib": _peak_rss_mib(),
        "decisions": int(st[lp.Q_DECISIONS]),
        "fills": int(len(f)),
        "maker_fills": int(f["maker"].sum()),
        "volume": float(f["qty"].sum()),
        "position": float(res.sim.fv[sn.F_POS]),
        "balance": float(res.sim.fv[sn.F_CASH]),
        "fees": float(res.sim.fv[sn.F_FEES]),
        "dropped_depth_rows": res.dropped_depth,
    }


def _run(cmd: list[str], env: dict) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(a: dict | None, b: dict) -> dict:
    if a is None or "seconds" not in a:
        return b
    if "seconds" not in b:
        return a
    return b if b["seconds"] < a["seconds"] else a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--copies", type=int, default=43)
    ap.add_argument("--repeat", type=int, default=2, help="runs per engine (fastest kept)")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tradelab-bench"))
    ap.add_argument("--hbt-python", default=str(ROOT.parent / "hbt-venv" / "bin" / "python"))
    ap.add_argument("--child", nargs=3, metavar=("BASE", "COPIES", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child_tradelab(a.child[0], int(a.child[1]), a.child[2])))
        return
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    base_path = _base(cache)
    n_base = len(np.load(base_path, mmap_mode="r"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    hbt_ok = Path(a.hbt_python).exists()
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "config": CFG | {"queue": "power n=3", "copies": a.copies, "repeat": a.repeat},
        "load_avg_start": os.getloadavg(),
        "runs": {},
    }
    for label, copies in (("real", 1), ("long", a.copies)):
        for mode in ("replay", "mm"):
            key = f"{label}_{mode}"
            run = {"events": n_base * copies}
            # alternate the engines and keep each one's fastest run: the machine is shared
            for _ in range(a.repeat):
                ours = _run([sys.executable, __file__, "--child", str(base_path), str(copies),
                             mode], env)
                run["tradelab"] = _best(run.get("tradelab"), ours)
                if hbt_ok:
                    work = cache / "hbt"
                    work.mkdir(exist_ok=True)
                    hbt = _run([a.hbt_python, str(ROOT / "benchmarks" / "_hbt_child.py"),
                                str(base_path), str(copies), mode, str(work), json.dumps(CFG)],
                               {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
                    run["hftbacktest"] = _best(run.get("hftbacktest"), hbt)
            if not hbt_ok:
                run["hftbacktest"] = {"skipped": f"no interpreter at {a.hbt_python}"}
            for eng in ("tradelab", "hftbacktest"):
                r = run[eng]
                if "seconds" in r:
                    r["events_per_s"] = run["events"] / r["seconds"]
            t, h = run["tradelab"], run["hftbacktest"]
            if "events_per_s" in t and "events_per_s" in h:
                run["speed_ratio_tradelab_over_hbt"] = t["events_per_s"] / h["events_per_s"]
                run["rss_ratio_tradelab_over_hbt"] = t["peak_rss_mib"] / h["peak_rss_mib"]
            results["runs"][key] = run
            print(json.dumps({key: run}), file=sys.stderr)
    results["load_avg_end"] = os.getloadavg()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
