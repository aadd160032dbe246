"""tradelab exec-smoke against a real venue process (REST and the WebSocket API): round trips,
acks on the user-data stream, and a latency table the backtester's recorded model takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_live_paper_process import venue  # noqa: F401  (fixture)
from tradelab.matching import latency_nb as L

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("transport", ["rest", "ws_api"])
def test_exec_smoke_reports_round_trips_and_a_usable_latency_table(venue, tmp_path,  # noqa: F811
                                                                   transport):
    out = tmp_path / "smoke.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_API_KEY": "tradelab-demo-api-key",
           "TRADELAB_API_SECRET": "tradelab-demo-secret"}
    r = subprocess.run([sys.executable, "-m", "tradelab.cli", "exec-smoke", "--venue",
                        f"127.0.0.1:{venue}", "--iterations", "12", "--warmup", "2",
                        "--transport", transport, "--out-json", str(out)],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rep = json.loads(out.read_text())
    assert rep["succeeded_measured"] == 12 and rep["errors"] == {}
    assert rep["warmup_iterations_excluded"] == 2
    assert rep["samples"] == {"place_rtt_us": 12, "cancel_rtt_us": 12, "place_to_ack_us": 12,
                              "cancel_to_ack_us": 12}
    g = rep["stats_global"]
    for k in ("place_rtt_us", "cancel_rtt_us", "place_to_ack_us"):
        assert 0 < g[k]["p50"] <= g[k]["p95"] <= g[k]["p99"], k
    table = np.array(rep["latency_table"], dtype=np.int64)
    assert table.shape == (12, 3)
    assert (table[:, 0] <= table[:, 1]).all() and (table[:, 1] <= table[:, 2]).all()
    code, params, t = L.recorded(table)  # the backtester takes it as is
    assert code == L.LAT_TABLE and t.shape == (12, 3)
    assert "place rtt p50/p99" in r.stdout
