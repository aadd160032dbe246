"""Event backtests on the real USD-M BTCUSDT recording: market making and imbalance_microprice.

Checks are accounting identities computed independently from the saved fills (signed fills sum
to the position, fees are the maker rate times notional, equity = cash + position x mid), the
rules the strategies promise (post-only quotes only ever fill as maker, the position limit
holds up to the quotes in flight), the missing-funding error on the real span, and the run
layout on disk.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tradelab.backtest.event import loops_nb as lp
from tradelab.backtest.event.config import EventBacktestConfig
from tradelab.backtest.event.replay import Latency, Replay
from tradelab.backtest.event.run import run_backtest, run_grid
from tradelab.backtest.runs import RunStore
from tradelab.errors import StoreError
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.matching import sim_nb as sn
from tradelab.store.catalog import Catalog
from tradelab.strategies import imbalance_microprice as im

pytestmark = [pytest.mark.slow, pytest.mark.data]

EX, SYM = "BINANCE_FUTURES", "BTC-USDT-PERP"


def _cfg(**kw) -> EventBacktestConfig:
    base = dict(
        name="mm", exchange=EX, symbol=SYM, end="2024-08-09T00:00:00Z",
        params=dict(half_spread_bps=0.0, skew_bps=1.0, max_position=0.02, qty=0.002,
                    requote_ms=100),
        instrument=dict(tick=0.1, lot=0.001, maker_fee=0.0002, taker_fee=0.0005),
        queue=dict(model="power", n=3), latency=dict(entry_ms=10, response_ms=10),
        chunk="1m",
    )
    base.update(kw)
    return EventBacktestConfig.model_validate(base)


def test_market_making_on_the_recording(usdm_store) -> None:
    store, _ = usdm_store
    run = run_backtest(_cfg(), store)
    f = run.fills
    assert run.stats["fills"] > 100 and run.stats["decisions"] > 3000
    assert (f["liquidity"] == "maker").all()  # post-only quotes never take
    assert np.allclose(np.round(f["price"] * 10), f["price"] * 10)  # on the 0.1 tick
    signed = (f["side"] * f["qty"]).cumsum()
    assert np.allclose(signed, f["position"])
    assert f["position"].abs().max() <= 0.02 + 2 * 0.002 + 1e-9
    assert f["fee"].sum() == pytest.approx(0.0002 * (f["price"] * f["qty"]).sum())
    assert run.pnl["fees"] == pytest.approx(f["fee"].sum())
    eq = run.equity.iloc[-1]
    cash = run.config.init_cash - (f["side"] * f["price"] * f["qty"]).sum() - f["fee"].sum()
    assert eq["cash"] == pytest.approx(cash)
    assert eq["equity"] == pytest.approx(cash + eq["position"] * eq["mid"])
    assert eq["position"] == pytest.approx(signed.iloc[-1])
    assert (f["queue_wait_ms"] >= 0).all()
    rep = json.loads((run.path / "report.json").read_text())
    assert rep["kind"] == "event" and rep["stats"]["fills"] == len(f)
    for name in ("fills", "orders", "equity"):
        assert (run.path / f"{name}.parquet").exists()


def test_perpetual_span_without_funding_fails_naming_it(usdm_store) -> None:
    store, _ = usdm_store
    with pytest.raises(StoreError, match=r"no stored funding for BINANCE_FUTURES BTC-USDT-PERP "
                                         r"at 2024-08-09 00:00:00\+00:00"):
        run_backtest(_cfg(end=None), store, save=False)


def test_grid_registers_its_trials(usdm_store) -> None:
    store, _ = usdm_store
    cfg = _cfg(grid={"half_spread_bps": [0.0, 1.0]}, family="event-test", workers=1,
               end="2024-08-08T23:56:00Z")
    runs = run_grid(cfg, store)
    assert [r.params["half_spread_bps"] for r in runs] == [0.0, 1.0]
    trials = RunStore(store).trials("event-test")
    assert len(trials) == 2
    # a wider quote trades less
    assert runs[1].stats["fills"] < runs[0].stats["fills"]


def test_imbalance_microprice_runs_on_the_recording(usdm_store) -> None:
    store, _ = usdm_store
    with Catalog(store) as cat:
        rp = Replay(cat.iter_events(EX, SYM, chunk="1m"),
                    instrument(0.1, 0.001, maker_fee=0.0002, taker_fee=0.0005),
                    Latency(*L.constant(10_000_000, 10_000_000)), "power", 3.0)
        p = im.Params(tilt_entry_bps=0.05, tilt_rearm_bps=0.02).to_array()
        ss = im.init_state_nb(p)
        st = lp.new_intent_state()
        frame = np.full((1, 4 * int(p[im.LEVELS])), np.nan)
        res = rp.run(lambda s, ev: lp.imbalance_loop_nb(s, ev, p, ss, st, frame, 0.002))
    assert st[lp.B_UPDATES] > 5000 and st[lp.B_INTENTS] > 10
    f = res.fills
    assert (f["side"] * f["qty"]).sum() == pytest.approx(res.sim.fv[sn.F_POS])
    # entries rest (maker); flattening after a CANCEL takes (taker)
    assert set(np.unique(f["maker"]).tolist()) <= {0, 1}


def test_cli_backtest_saves_a_run_and_names_bad_configs(usdm_store, tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    store, _ = usdm_store
    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "configs" / "backtests" / "mm_btcusdt_perp.yaml").read_text())
    raw["end"] = "2024-08-08T23:56:00Z"
    cfg = tmp_path / "mm.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    res = subprocess.run([sys.executable, "-m", "tradelab.cli", "backtest", "--config", str(cfg),
                          "--store", str(store), "--json"], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out) == 1 and out[0]["stats"]["fills"] > 0
    assert (Path(out[0]["path"]) / "report.json").exists()
    raw["queue"] = {"model": "power9"}
    cfg.write_text(yaml.safe_dump(raw))
    res = subprocess.run([sys.executable, "-m", "tradelab.cli", "backtest", "--config", str(cfg),
                          "--store", str(store)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 1
    assert "queue.model" in res.stderr and "unknown queue model 'power9'" in res.stderr
    assert "Traceback" not in res.stderr
