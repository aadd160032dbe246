"""The testnet runner against a venue that misbehaves (real processes, real ccxt): an order
whose submit got a 5xx but was placed, one whose submit timed out but was placed, a dropped
user-data stream, and a venue restart in the middle of the run. Afterwards the runner's journal
and the venue agree order by order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.net.ports import free_port_pair
from tradelab.store.jsonlog import read_log

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "tradelab-demo-api-key", "tradelab-demo-secret"
pytestmark = pytest.mark.slow


def _start_venue(port: int, journal: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradelab.cli", "venue", "--synthetic", "--symbols", "BTCUSDT",
         "--market", "spot", "--port", str(port), "--journal", str(journal)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/venue/status", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("venue did not start")


def _fault(port: int, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/venue/fault",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def _records(run_dir: Path) -> list[dict]:
    try:
        return read_log(run_dir / "journal.log")
    except (FileNotFoundError, ValueError):
        return []


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_testnet_runner_through_a_5xx_a_dropped_stream_and_a_venue_restart(tmp_path):
    port = free_port_pair()
    journal = tmp_path / "venue.journal"
    venue = _start_venue(port, journal)
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    risk = tmp_path / "risk.yaml"  # this test needs trading to go on: no losing-streak halt
    risk.write_text("daily:\n  max_consecutive_losses: 1000\n  max_drawdown_pct: 0.5\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_API_KEY": KEY,
           "TRADELAB_API_SECRET": SECRET}
    cmd = [sys.executable, "-m", "runners.testnet", "--strategy", "ma_crossover", "--force",
           "--param", "fast=2", "--param", "slow=4", "--interval", "1s",
           "--venue-address", f"127.0.0.1:{port}", "--duration-s", "100", "--run-dir",
           str(run_dir), "--run-id", "faults", "--out-json", str(out), "--no-store",
           "--notional-usdt", "200", "--metrics-port", str(free_port_pair()),
           "--request-timeout-s", "3", "--risk", str(risk)]
    runner = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        n_orders = lambda: sum(r["type"] == "order" for r in _records(run_dir))  # noqa: E731
        _wait(lambda: n_orders() >= 1, 60, "a first order")
        # 1. the next order is placed but answered with a 5xx: its outcome is unknown
        before = n_orders()
        _fault(port, {"kind": "order_5xx", "count": 1})
        _wait(lambda: any(r["type"] == "order_state" and r["outcome_unknown"]
                          for r in _records(run_dir)), 40, "an unknown outcome")
        _wait(lambda: n_orders() > before + 1, 40, "trading to go on")
        # 1b. the next order is placed at once but answered only after 6 s: the runner's 3 s
        # request timeout leaves its outcome unknown, and a query finds it
        n_unknown = lambda: sum(r["type"] == "order_state" and r["outcome_unknown"]  # noqa: E731
                                for r in _records(run_dir))
        seen = n_unknown()
        _fault(port, {"kind": "delay_ack", "count": 1, "seconds": 6})
        _wait(lambda: n_unknown() > seen, 60, "a timed-out submit")
        # 2. the user-data stream is dropped: the runner reconnects and reconciles
        got = _fault(port, {"kind": "disconnect_user_stream"})
        assert got["disconnected"] >= 1
        _wait(lambda: any(r["type"] == "risk" and "reconnected" in r["reason"]
                          for r in _records(run_dir)), 40, "the stream's reconnection")
        # 3. the venue restarts mid-run from its journal (same ports)
        venue.send_signal(signal.SIGTERM)
        venue.wait(20)
        venue = _start_venue(port, journal)
        mark = n_orders()
        _wait(lambda: n_orders() > mark, 60, "an order after the venue restart")
        output, _ = runner.communicate(timeout=120)
        assert runner.returncode == 0, output[-3000:]
        # the venue's own record of the account's orders against the runner's journal
        client = make_client("spot", KEY, SECRET, f"http://127.0.0.1:{port}",
                             asynchronous=False)
        client.load_markets()
        venue_orders = {o["clientOrderId"]: o for o in client.fetch_orders("BTC/USDT")}
    finally:
        if runner.poll() is None:
            runner.kill()
        venue.send_signal(signal.SIGTERM)
        try:
            venue.wait(20)
        except subprocess.TimeoutExpired:
            venue.kill()
    recs = read_log(run_dir / "journal.log")
    ours = {r["client_id"]: r for r in recs if r["type"] == "order"}
    placed = [c for c in ours if c in venue_orders]
    # every order the venue has under the runner's prefix is in the journal, once
    assert {c for c in venue_orders if c.startswith("tl-")} <= set(ours)
    assert len(placed) >= 3
    # the 5xx order was placed, and the runner found it by asking (not by assuming)
    unknown = list(dict.fromkeys(r["client_id"] for r in recs if r["type"] == "order_state"
                                 and r["outcome_unknown"]))
    assert unknown and unknown[0] in venue_orders
    # fills: the journal's executions of each order equal the venue's filled quantity
    for cid in placed:
        filled = sum(float(r["qty"]) for r in recs
                     if r["type"] == "execution" and r["client_id"] == cid)
        assert filled == pytest.approx(float(venue_orders[cid]["filled"]), abs=1e-12), cid
    # every execution carries the venue's time (never a placeholder such as -1 ms)
    assert all(r["ts_ns"] > 1_600_000_000 * 10**9 for r in recs if r["type"] == "execution")
    s = json.loads(out.read_text())
    assert s["exit_reason"] == "timeout" and s["broker_errors"]
    assert s["broker_errors"].get("RequestTimeout", 0) >= 1, s["broker_errors"]
    # both unknown outcomes (the 5xx and the timeout) were orders the venue had
    assert len(unknown) >= 2 and all(c in venue_orders for c in unknown[:2])
