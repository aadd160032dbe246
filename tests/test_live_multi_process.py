"""A run of two symbols as processes against a real local venue serving both: the paper runner
trades both on one feed, one metrics endpoint and one journal; the testnet runner trades both
through one ccxt client, is SIGKILLed, and its restart reconciles each symbol with the venue
(each base asset's balance moved by exactly that symbol's journaled fills)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_live_paper_process import kill_and_wait, local_venue
from tradelab.net.ports import free_port_pair
from tradelab.store.catalog import Catalog
from tradelab.store.jsonlog import read_log

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "tradelab-demo-api-key", "tradelab-demo-secret"
SYMS = ("BTCUSDT", "ETHUSDT")
pytestmark = pytest.mark.slow


@pytest.fixture
def venue2():
    with local_venue(",".join(SYMS)) as port:
        yield port


def _cmd(runner: str, venue_port: int, run_dir: Path, out: Path, duration: float, mport: int,
         store: Path) -> list[str]:
    # momentum on 1 s bars trades within seconds whichever way each synthetic price drifts
    return [sys.executable, "-m", runner, "--strategy", "momentum", "--force",
            "--symbols", ",".join(SYMS), "--param", "fast_bars=1", "--param", "mid_bars=2",
            "--param", "slow_bars=3",
            "--interval", "1s", "--venue-address", f"127.0.0.1:{venue_port}",
            "--duration-s", str(duration), "--run-dir", str(run_dir), "--run-id", "multi-test",
            "--out-json", str(out), "--metrics-port", str(mport), "--notional-usdt", "200",
            "--store", str(store)]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_API_KEY": KEY,
            "TRADELAB_API_SECRET": SECRET}


def _positions(mport: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        for s in SYMS:
            if line.startswith(f'tradelab_position{{symbol="{s}"}}'):
                out[s] = float(line.split()[-1])
    return out


def _wait_both_traded(mport: int, proc: subprocess.Popen, within_s: float = 120) -> None:
    deadline = time.time() + within_s
    while time.time() < deadline:
        time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"the runner exited early:\n{proc.communicate()[0][-3000:]}")
        pos = _positions(mport)
        if len(pos) == 2 and all(pos.values()):
            return
    pytest.fail(f"not both symbols traded within {within_s:g} s: {_positions(mport)}")


def test_paper_runner_trades_two_symbols_in_one_run(venue2, tmp_path):
    run_dir, out, store = tmp_path / "run", tmp_path / "out.json", tmp_path / "store"
    mport = free_port_pair()
    proc = subprocess.Popen(_cmd("runners.paper", venue2, run_dir, out, 300, mport, store),
                            env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_both_traded(mport, proc)
        output = kill_and_wait(mport, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    s = json.loads(out.read_text())
    assert s["exit_reason"] == "kill_switch" and s["symbols"] == list(SYMS)
    for sym in SYMS:
        leg = s["legs"][sym]
        assert leg["messages"] > 0 and leg["bars"] >= 4 and leg["fills"] >= 1, (sym, leg)
    assert s["counters"]["fills"] == sum(v["fills"] for v in s["legs"].values())
    recs = read_log(run_dir / "journal.log")
    assert recs[0]["type"] == "start" and recs[0]["symbols"] == list(SYMS)
    ids = [r["client_id"] for r in recs if r["type"] == "order"]
    assert len(ids) == len(set(ids))  # one client-id sequence for the run
    with Catalog(store) as cat:
        fills = cat.sql("SELECT symbol, count(*) n FROM fills GROUP BY symbol ORDER BY symbol")
        kills = cat.sql("SELECT count(*) FROM risk_events WHERE kind = 'kill'").iloc[0, 0]
    assert fills["n"].tolist() == [s["legs"][sym]["fills"] for sym in sorted(SYMS)]
    assert kills == 2  # the run's kill switch, under each symbol it stopped


def _balances(venue_port: int) -> dict[str, float]:
    from tradelab.adapters.binance.ccxt_client import make_client

    c = make_client("spot", KEY, SECRET, f"http://127.0.0.1:{venue_port}", asynchronous=False)
    bal = c.fetch_balance()
    return {a: float(bal[a]["total"]) for a in ("BTC", "ETH")}


def test_testnet_runner_of_two_symbols_survives_sigkill_and_reconciles_each(venue2, tmp_path):
    run_dir, out, store = tmp_path / "run", tmp_path / "out.json", tmp_path / "store"
    start = _balances(venue2)
    mport = free_port_pair()
    proc = subprocess.Popen(_cmd("runners.testnet", venue2, run_dir, out, 300, mport, store),
                            env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_both_traded(mport, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = read_log(run_dir / "journal.log")
    orders_before = [r["client_id"] for r in before if r["type"] == "order"]
    r = subprocess.run(_cmd("runners.testnet", venue2, run_dir, out, 10, free_port_pair(),
                            store), env=_env(), cwd=ROOT, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(out.read_text())
    end = _balances(venue2)
    for sym, asset in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        rec = s["legs"][sym]["reconciled"]
        assert Decimal(rec["venue_balance"]) == Decimal(rec["expected_balance"]), (sym, rec)
        # the runner's position of each symbol (net of the fees the venue took in the base
        # asset) is what that asset moved by on the venue, the restart's own trading included
        assert end[asset] - start[asset] == pytest.approx(s["legs"][sym]["position"],
                                                          abs=1e-9)
    after = read_log(run_dir / "journal.log")
    ids = [x["client_id"] for x in after if x["type"] == "order"]
    assert len(ids) == len(set(ids)) and ids[: len(orders_before)] == orders_before
    trade_ids = [(x["symbol"], x["trade_id"]) for x in after if x["type"] == "execution"]
    assert len(trade_ids) == len(set(trade_ids))  # no fill booked twice
