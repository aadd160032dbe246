"""The testnet runner as a process, through the real ccxt client, against a real local venue:
it trades, survives its own SIGKILL (the restart reconciles: no duplicate orders, its journal's
position equals the venue's balance change), refuses a wrong key with a clear error, and never
writes the key or secret anywhere."""

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

from tests.test_live_paper_process import venue  # noqa: F401  (fixture)
from tradelab.net.ports import free_port_pair
from tradelab.store.jsonlog import read_log

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "tradelab-demo-api-key", "tradelab-demo-secret"
pytestmark = pytest.mark.slow


def _cmd(venue_port: int, run_dir: Path, out: Path, duration: float, mport: int,
         store: Path) -> list[str]:
    return [sys.executable, "-m", "runners.testnet", "--strategy", "ma_crossover", "--force",
            "--param", "fast=2", "--param", "slow=4", "--interval", "1s",
            "--venue-address", f"127.0.0.1:{venue_port}", "--duration-s", str(duration),
            "--run-dir", str(run_dir), "--run-id", "tn-test", "--out-json", str(out),
            "--metrics-port", str(mport), "--notional-usdt", "200", "--store", str(store)]


def _env(key: str = KEY, secret: str = SECRET) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_API_KEY": key,
            "TRADELAB_API_SECRET": secret}


def _position(mport: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith('tradelab_position{symbol="BTCUSDT"}'):
            return float(line.split()[-1])
    return None


def _balance(venue_port: int) -> float:

    from tradelab.adapters.binance.ccxt_client import make_client

    c = make_client("spot", KEY, SECRET, f"http://127.0.0.1:{venue_port}", asynchronous=False)
    return float(c.fetch_balance()["BTC"]["total"])


def test_testnet_runner_survives_its_own_sigkill_and_reconciles(venue, tmp_path):  # noqa: F811
    run_dir, out, store = tmp_path / "run", tmp_path / "out.json", tmp_path / "store"
    start_btc = _balance(venue)
    mport = free_port_pair()
    proc = subprocess.Popen(_cmd(venue, run_dir, out, 300, mport, store), env=_env(),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            time.sleep(0.5)
            pos = _position(mport)
            if pos:
                break
        else:
            pytest.fail("the runner did not trade within 90 s")
        proc.send_signal(signal.SIGKILL)
        first_out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = read_log(run_dir / "journal.log")
    orders_before = [r["client_id"] for r in before if r["type"] == "order"]
    assert orders_before
    # restart the same run: it resumes from the journal and reconciles with the venue first
    mport2 = free_port_pair()
    r = subprocess.run(_cmd(venue, run_dir, out, 12, mport2, store), env=_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(out.read_text())
    rec = s["reconciled"]
    # the venue's BTC moved by exactly the journal's position (fees are paid in USDT here
    # for sells and in BTC for buys: the reconciliation accounts for both)
    assert rec["venue_balance"] == rec["expected_balance"]
    after = read_log(run_dir / "journal.log")
    ids = [r["client_id"] for r in after if r["type"] == "order"]
    assert len(ids) == len(set(ids))  # no client id reused: no duplicate order
    assert ids[: len(orders_before)] == orders_before
    trade_ids = [r["trade_id"] for r in after if r["type"] == "execution"]
    assert len(trade_ids) == len(set(trade_ids))  # no fill booked twice
    fees_btc = sum(float(r["fee"]) for r in after if r["type"] == "execution"
                   and r["fee_asset"] == "BTC")
    net = sum((1 if r["side"] == "BUY" else -1) * float(r["qty"]) for r in after
              if r["type"] == "execution")
    assert _balance(venue) == pytest.approx(start_btc + net - fees_btc, abs=1e-9)
    assert s["position"] == pytest.approx(net - fees_btc, abs=1e-9)
    # neither the key nor the secret appears in any output of the run
    outputs = [first_out, r.stdout, r.stderr, out.read_text(),
               (run_dir / "journal.log").read_text()]
    outputs += [p.read_bytes().decode("latin-1") for p in store.rglob("*.parquet")]
    for text in outputs:
        assert KEY not in text and SECRET not in text


def test_a_wrong_key_is_a_clear_authentication_error(venue, tmp_path):  # noqa: F811
    mport = free_port_pair()
    r = subprocess.run(_cmd(venue, tmp_path / "run", tmp_path / "o.json", 5, mport,
                            tmp_path / "store"),
                       env=_env("not-a-key", "not-a-secret"), cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1
    assert "authentication failed" in r.stderr.lower() and "not-a-secret" not in r.stderr
    # the run still leaves its summary: stopped on an error, before any order
    s = json.loads((tmp_path / "o.json").read_text())
    assert s["exit_reason"] == "error" and "authentication failed" in s["error"]
    assert s["orders"] == 0 and "not-a-secret" not in r.stdout + json.dumps(s)


def test_quotes_are_placed_amended_and_cancelled_and_the_kill_switch_clears_them(
        venue, tmp_path):  # noqa: F811
    """market_making through ccxt on the venue: quotes placed, amended (cancel then a new
    post-only quote), and the kill switch (HTTP) leaves nothing open on the venue."""
    from tradelab.adapters.binance.ccxt_client import make_client

    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    mport = free_port_pair()
    cmd = [sys.executable, "-m", "runners.testnet", "--strategy", "market_making", "--force",
           "--param", "requote_ms=300", "--venue-address", f"127.0.0.1:{venue}",
           "--duration-s", "120", "--run-dir", str(run_dir), "--run-id", "mm",
           "--out-json", str(out), "--metrics-port", str(mport), "--no-store"]
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            time.sleep(1.0)
            recs = read_log(run_dir / "journal.log") if (run_dir / "journal.log").exists() \
                else []
            if len({r["client_id"] for r in recs
                    if r["type"] == "order_state" and r["state"] == "CANCELED"}) >= 3:
                break
        else:
            pytest.fail("no requotes within 90 s")
        req = urllib.request.Request(f"http://127.0.0.1:{mport}/kill", method="POST")
        urllib.request.urlopen(req, timeout=5).read()
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    s = json.loads(out.read_text())
    assert s["exit_reason"] == "kill_switch"
    assert s["cancels_by_reason"].get("requote", 0) >= 3
    recs = read_log(run_dir / "journal.log")
    quotes = [r for r in recs if r["type"] == "order"]
    assert all(r["order_type"] == "LIMIT" and r["tif"] == "GTX" for r in quotes)
    assert {r["side"] for r in quotes} == {"BUY", "SELL"}
    c = make_client("spot", KEY, SECRET, f"http://127.0.0.1:{venue}", asynchronous=False)
    c.load_markets()
    assert c.fetch_open_orders("BTC/USDT") == []  # the kill switch cancelled everything
    assert s["cancel_rtt_us"]["p50"] is not None and s["place_rtt_us"]["p50"] is not None
