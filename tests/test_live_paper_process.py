"""The paper runner as a process against a real local venue (synthetic flow over cryptofeed):
it trades, serves metrics, stops on the kill switch, and leaves a complete journal whose
tables land in the store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tradelab.net.ports import free_port_pair
from tradelab.store.catalog import Catalog
from tradelab.store.jsonlog import read_log

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def local_venue(symbols: str = "BTCUSDT", args: list[str] | None = None):
    """A local venue on a free port: synthetic spot flow of ``symbols`` (comma-separated), or
    what ``args`` say (e.g. a replay)."""
    port = free_port_pair()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    what = args if args is not None else ["--synthetic", "--symbols", symbols, "--market",
                                          "spot"]
    proc = subprocess.Popen([sys.executable, "-m", "tradelab.cli", "venue", *what, "--port",
                             str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=ROOT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/venue/status",
                                            timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("venue did not start")
        yield port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def venue():
    with local_venue("BTCUSDT") as port:
        yield port


def kill_and_wait(mport: int, proc: subprocess.Popen) -> str:
    """Pull a runner's kill switch (POST /kill on its metrics port); its output once it exits."""
    req = urllib.request.Request(f"http://127.0.0.1:{mport}/kill", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert json.load(r)["killed"] is True
    output, _ = proc.communicate(timeout=60)
    return output


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


@pytest.mark.slow
def test_paper_runner_trades_on_the_venue_and_stops_on_the_kill_switch(venue, tmp_path):
    store, run_dir, out = tmp_path / "store", tmp_path / "run", tmp_path / "summary.json"
    mport = free_port_pair()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "runners.paper", "--strategy", "ma_crossover", "--force",
           "--param", "fast=2", "--param", "slow=4", "--interval", "1s",
           "--venue-address", f"127.0.0.1:{venue}", "--duration-s", "120",
           "--run-dir", str(run_dir), "--store", str(store), "--out-json", str(out),
           "--metrics-port", str(mport), "--notional-usdt", "300"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=ROOT, text=True)
    try:
        deadline = time.time() + 90
        text = ""
        while time.time() < deadline:  # until it has traded
            time.sleep(1.0)
            try:
                text = _metrics(mport)
            except OSError:
                continue
            if 'tradelab_position{symbol="BTCUSDT"}' in text and \
                    'tradelab_position{symbol="BTCUSDT"} 0.0' not in text:
                break
        else:
            pytest.fail(f"no position within 90 s; metrics:\n{text[-2000:]}")
        assert "tradelab_feed_messages_total" in text
        rate = [line for line in text.splitlines()
                if line.startswith('tradelab_feed_messages_per_second{symbol="BTCUSDT"}')]
        assert rate and float(rate[0].split()[-1]) > 0  # the synthetic venue streams
        for name in ("tradelab_feed_uptime_seconds", "tradelab_feed_last_event_age_seconds",
                     "tradelab_tick_to_order_seconds_bucket", "tradelab_orders{",
                     "tradelab_pnl_realized", "tradelab_pnl_unrealized", "tradelab_equity",
                     "tradelab_exposure", "tradelab_risk_halted"):
            assert name in text, name
        output = kill_and_wait(mport, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    s = json.loads(out.read_text())
    assert s["exit_reason"] == "kill_switch" and s["forced"] is True
    assert s["counters"]["fills"] >= 1 and s["orders"] >= 1 and s["bars"] >= 4
    assert s["risk"]["trips"]["kill_switch"] == 1
    recs = read_log(run_dir / "journal.log")
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "start" and "order" in kinds and "execution" in kinds
    assert any(r["type"] == "risk" and r["kind"] == "kill" for r in recs)
    n_fills = sum(1 for r in recs if r["type"] == "execution")
    with Catalog(store) as cat:
        got = cat.sql(f"SELECT count(*) n FROM fills WHERE run_id = '{s['run_id']}'").iloc[0, 0]
        pos = cat.sql("SELECT position FROM positions ORDER BY ts DESC, trade_id DESC "
                      "LIMIT 1").iloc[0, 0]
        kills = cat.sql("SELECT count(*) FROM risk_events WHERE kind = 'kill'").iloc[0, 0]
    assert got == n_fills and kills == 1
    assert pos == pytest.approx(s["position"])
    # paper fills pay the configured taker fee on each fill's notional (market orders)
    fills = [r for r in recs if r["type"] == "execution"]
    for f in fills:
        assert float(f["fee"]) == pytest.approx(0.0004 * float(f["qty"]) * float(f["price"]))
        assert f["maker"] is False


@pytest.mark.slow
def test_an_unpromoted_strategy_is_refused_without_force(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "runners.paper", "--strategy", "momentum",
                        "--promoted-dir", str(tmp_path)], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 1
    assert "momentum was not promoted" in r.stderr and "--force" in r.stderr
