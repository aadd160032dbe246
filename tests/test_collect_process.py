"""`tradelab collect` as a process against the venue's synthetic flow: SIGINT and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from tests.venue_helpers import venue_in_thread
from tradelab.store import Catalog
from tradelab.venue.core import Venue
from tradelab.venue.run import synthetic_source

pytestmark = pytest.mark.slow

CONFIG = """
flush_interval_s: 1
stats_interval_s: 1
feeds:
  - exchange: BINANCE_FUTURES
    symbols: [BTC-USDT-PERP]
    channels: [l2_book, trades, bbo, funding, open_interest]
"""


@pytest.fixture(scope="module")
def zi_venue():
    """A venue in a background thread serving a synthetic USD-M market in real time."""
    with venue_in_thread(lambda: Venue(synthetic_source(["BTCUSDT"], ["usdm"], seed=3),
                                       speed=1.0, wait_clients=1)) as rv:
        yield rv


def start_collect(tmp_path, rv):
    cfg = tmp_path / "collect.yaml"
    cfg.write_text(CONFIG)
    return subprocess.Popen(
        [sys.executable, "-m", "tradelab.cli", "collect", "--config", str(cfg), "--store",
         str(tmp_path / "store"), "--venue", f"127.0.0.1:{rv.port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def wait_for_parts(store, n: int, timeout: float = 60.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if len(list(store.rglob("*.parquet"))) >= n:
            return
        time.sleep(0.2)
    raise TimeoutError("the collector wrote no part files")


def test_sigint_flushes_everything_and_exits_zero(tmp_path, zi_venue):
    proc = start_collect(tmp_path, zi_venue)
    wait_for_parts(tmp_path / "store", 4)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert "[stats] BINANCE_FUTURES" in err and "bps" in err
    cat = Catalog(tmp_path / "store")
    for table, n in summary["rows"].items():  # everything received was written
        stored = int(cat.sql(f"SELECT count(*) AS n FROM {table}").n.iloc[0])
        assert stored == n, table
    assert summary["rows"]["trades"] > 0 and summary["rows"]["book"] > 0
    assert summary["messages"]["BINANCE_FUTURES"]["trades"] == summary["rows"]["trades"]
    top = cat.top_of_book("BINANCE_FUTURES", "BTC-USDT-PERP")
    assert (top[top.valid].bid_px < top[top.valid].ask_px).all()


def test_sigkill_leaves_only_readable_part_files(tmp_path, zi_venue):
    proc = start_collect(tmp_path, zi_venue)
    wait_for_parts(tmp_path / "store", 6)
    time.sleep(2.2)
    published_ns = zi_venue.venue.now_ms * 1_000_000  # the venue's stream position at the kill
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    parts = list((tmp_path / "store").rglob("*.parquet"))
    assert parts
    for part in parts:  # every visible file is complete
        pq.read_table(part)
    hidden = [p for p in (tmp_path / "store").rglob(".*") if p.is_file()]
    assert all(".tmp" in p.name for p in hidden)  # at most a temp file being written
    cat = Catalog(tmp_path / "store")
    trades = cat.trades("BINANCE_FUTURES", "BTC-USDT-PERP")
    # loss is bounded by the flush interval (1 s here) plus the client's processing lag:
    # measured against what the venue had published, not the wall clock, so load cannot fool it
    assert published_ns - trades["ts"].max() < 4e9
