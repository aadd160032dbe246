"""The whole live path against the event backtester: the real USD-M recording replayed by the
local venue, received by the paper runner through cryptofeed (a real process, exchange clock),
and the rows its runner core got replayed through the event backtester. Same rows, same
decisions: the runner's orders and fills equal the backtester's, order by order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_live_paper_process import local_venue
from tradelab.backtest.event.bars import run_bar_strategy
from tradelab.backtest.event.replay import Latency, Replay
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.store.jsonlog import read_log

ROOT = Path(__file__).resolve().parents[1]
MS = 1_000_000
pytestmark = pytest.mark.slow

# the runner's risk limits out of the way: the backtest has none (no caps, no runner exits)
LOOSE_RISK = """
caps: {per_symbol_usdt: 1.0e9, total_usdt: 1.0e9}
orders: {max_orders_per_s: 1.0e6, price_band_pct: 1.0, stale_after_s: 1.0e6}
daily: {max_loss_usdt: 1.0e9, max_drawdown_pct: 1.0, max_consecutive_losses: 1000000}
oco: {enabled: false}
"""


def test_paper_runner_through_the_venue_makes_the_backtesters_orders(binance_ws, tmp_path):
    run_dir, out, risk = tmp_path / "run", tmp_path / "out.json", tmp_path / "risk.yaml"
    risk.write_text(LOOSE_RISK)
    recording = binance_ws / "usdm_btcusdt_20240808.gz"
    with local_venue(args=["--replay", str(recording), "--speed", "0", "--wait-clients",
                           "1"]) as port:
        r = subprocess.run(
            [sys.executable, "-m", "runners.paper", "--strategy", "ma_crossover", "--force",
             "--param", "fast=3", "--param", "slow=10", "--interval", "1s", "--market", "usdm",
             "--units", "0.01", "--clock", "exchange", "--dump-rows", "--risk", str(risk),
             "--venue-address", f"127.0.0.1:{port}", "--duration-s", "40", "--run-dir",
             str(run_dir), "--out-json", str(out), "--no-store", "--log-level", "WARNING",
             "--maker-fee", "0.0002", "--taker-fee", "0.0004", "--queue-model", "power",
             "--queue-n", "3", "--latency-ms", "20/15"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True,
            text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(out.read_text())
    rows = np.load(run_dir / "rows-BTCUSDT.npy")
    assert len(rows) > 100_000 and s["bars"] > 100  # the whole recording came through
    assert np.all(np.diff(rows["local_ts"]) >= 0)
    f = s["filters"]
    inst = instrument(float(f["tick"]), float(f["step"]), float(f["step"]),
                      float(f["min_notional"]), maker_fee=0.0002, taker_fee=0.0004)
    bt = run_bar_strategy(Replay([rows], inst, Latency(*L.constant(20 * MS, 15 * MS)),
                                 queue_model="power", queue_n=3.0, feed_offset=0),
                          "ma_crossover", {"fast": 3, "slow": 10}, "1s", fill="book",
                          sizing=0.01, close_delay="250ms")
    recs = read_log(run_dir / "journal.log")
    placed = {r["client_id"]: r["ts_ns"] for r in recs if r["type"] == "order"}
    execs = [r for r in recs if r["type"] == "execution"]
    got_orders: dict[str, list] = {}
    for e in execs:
        side, qty = e["side"], float(e["qty"])
        entry = got_orders.setdefault(e["client_id"], [side, 0.0, placed[e["client_id"]]])
        entry[1] = round(entry[1] + qty, 9)
    got = list(got_orders.values())
    fl = bt.fills
    by_order = fl.groupby("order_id", sort=True).agg(
        side=("side", "first"), qty=("qty", "sum"), decided=("decision_ts", "first"))
    want = [["BUY" if x.side > 0 else "SELL", round(float(x.qty), 9), int(x.decided)]
            for x in by_order.itertuples()]
    assert len(want) > 10
    # the backtest closes the last bar at the end of data; the runner stopped on its clock
    assert len(want) - 1 <= len(got) <= len(want)
    assert got == want[:len(got)]
    got_fills = sorted((int(e["ts_ns"]), float(e["price"]), float(e["qty"])) for e in execs)
    want_fills = sorted(zip(fl["local_ts"].astype(int), fl["price"].astype(float),
                            fl["qty"].astype(float), strict=True))
    assert got_fills == want_fills[:len(got_fills)] and len(got_fills) >= len(want) - 1
