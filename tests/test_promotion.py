"""The promotion gate on real sweeps: noise is refused, a planted signal passes every gate
(the real agreement check included), and the verdict reproduces from the saved run alone."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.report_helpers import swept_store
from tradelab.backtest.runs import RunStore
from tradelab.cli import app
from tradelab.errors import ConfigError
from tradelab.report.promotion import (
    PromotionConfig,
    evaluate,
    load_promotion_config,
    write_promoted,
)

ROOT = Path(__file__).resolve().parents[1]
CFG = load_promotion_config(ROOT / "configs" / "promotion.yaml")


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    store = tmp_path_factory.mktemp("noise")
    return store, swept_store(store, drift=0.0, seed=3, family="noise")


@pytest.fixture(scope="module")
def signal(tmp_path_factory):
    store = tmp_path_factory.mktemp("signal")
    return store, swept_store(store, drift=1e-4, seed=3, family="signal")


def _gates(verdict):
    return {g.name: g for g in verdict.gates}


def test_the_shipped_gates_are_the_issues_thresholds():
    assert CFG.dsr_min == 0.95 and CFG.pbo_max == 0.2
    assert CFG.lookahead_required and CFG.warmup_required


def test_a_bad_promotion_config_names_the_key(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("dsr_min: 2\npbo_maxx: 0.2\n")
    with pytest.raises(ConfigError) as exc:
        load_promotion_config(bad)
    assert "dsr_min" in str(exc.value) and "pbo_maxx" in str(exc.value)


@pytest.mark.slow
def test_a_strategy_tuned_on_noise_fails_dsr_and_pbo(noise, tmp_path):
    store, run_id = noise
    v = evaluate(run_id, store, CFG, strategy="ma_crossover")
    g = _gates(v)
    assert not v.passed
    assert not g["dsr"].passed and g["dsr"].value < 0.95
    assert not g["pbo"].passed and g["pbo"].value > 0.2
    assert g["lookahead"].passed and g["warmup"].passed  # the code is honest, the edge is not
    out = tmp_path / "promoted"
    with pytest.raises(ConfigError):
        write_promoted(v, store, CFG, out)
    assert not out.exists()


@pytest.mark.slow
def test_a_planted_signal_passes_every_gate(signal):
    store, run_id = signal
    v = evaluate(run_id, store, CFG, strategy="ma_crossover")
    g = _gates(v)
    for name in ("dsr", "pbo", "oos_sharpe", "trades", "lookahead", "warmup", "agreement"):
        assert g[name].passed, g[name].line()
    assert g["dsr"].value >= 0.95 and g["pbo"].value <= 0.2 and g["trades"].value >= 20
    assert v.passed
    # the real agreement check (compare_with_sweep on the stored trades): the event engine
    # makes the sweep's trades, every one matched (it once lost 6 of 47 to off-lot rejections)
    a = g["agreement"]
    assert a.value is not None and a.value < 1e-6, a.line()
    fig = json.loads((RunStore(store).root / run_id / "agreement.json").read_text())
    assert fig["n_sweep_trades"] == fig["n_event_trades"] == fig["n_matched"]
    assert fig["n_matched"] == g["trades"].value
    assert fig["late_trades"] == 0 and fig["rejected"] == 0 and fig["max_abs_price_diff"] == 0
    assert f"trades sweep {fig['n_matched']}, event {fig['n_matched']}" in a.reason


@pytest.mark.slow
def test_the_agreement_gate_runs_the_real_check(noise):
    """On the noise run the event backtester reproduces the sweep's trades exactly: the real
    check passes (the gate's other failures are the statistics')."""
    store, run_id = noise
    a = _gates(evaluate(run_id, store, CFG))["agreement"]
    assert a.passed and a.value < 1e-6, a.line()
    assert "matched" in a.reason


def test_a_missing_agreement_module_fails_the_gate(monkeypatch, tmp_path):
    import tradelab.backtest.event as ev_pkg
    from tradelab.report.promotion import agreement_gate

    monkeypatch.setitem(sys.modules, "tradelab.backtest.event.agreement", None)
    monkeypatch.delattr(ev_pkg, "agreement", raising=False)
    g = agreement_gate(tmp_path, "run", {"a": 1.0}, 0.01)
    assert not g.passed and "agreement check unavailable" in g.reason


@pytest.mark.slow
def test_a_pass_writes_the_promoted_config(signal, tmp_path):
    """The write path with the real agreement check (run afresh: its saved figures are set
    aside first): the verdict passes and the promoted file carries parameters, symbols, gates
    and provenance, including the trades the agreement check replayed."""
    store, run_id = signal
    saved = RunStore(store).root / run_id / "agreement.json"
    real = saved.read_text() if saved.exists() else None
    saved.unlink(missing_ok=True)
    v = evaluate(run_id, store, CFG)
    assert v.passed, [g.line() for g in v.failed]
    assert saved.exists()  # the real check ran and saved its figures
    fig = json.loads(saved.read_text())
    assert fig["params"] == v.params and set(v.params) >= {"fast", "slow"}
    if real is not None:
        assert json.loads(real) == fig  # the same figures as the first run's
    path = write_promoted(v, store, CFG, tmp_path / "promoted")
    doc = yaml.safe_load(path.read_text())
    assert path.name == "ma_crossover.yaml"
    assert doc["run_id"] == run_id and doc["symbols"] == ["BTC-USDT"]
    assert doc["params"] == v.params
    assert {g["name"] for g in doc["gates"]} == {
        "dsr",
        "pbo",
        "oos_sharpe",
        "trades",
        "lookahead",
        "warmup",
        "agreement",
    }
    assert all(g["passed"] for g in doc["gates"])
    prov = doc["provenance"]
    assert prov["git"]["commit"] and prov["partitions"]
    assert {p["table"] for p in prov["partitions"]} == {"ohlcv", "trades"}
    assert all(p["symbol"] == "BTC-USDT" for p in prov["partitions"])


@pytest.mark.slow
def test_no_stored_trades_over_the_span_fails_the_agreement_gate_with_a_reason(noise, tmp_path):
    store, run_id = noise
    copy = tmp_path / "no-trades"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("trades", "agreement.json"))
    assert not (copy / "trades").exists() and (copy / "ohlcv").exists()
    a = _gates(evaluate(run_id, copy, CFG))["agreement"]
    assert not a.passed and a.value is None
    assert "the store has no BINANCE BTC-USDT trades between 2025-03-02" in a.reason
    assert "nothing to replay" in a.reason and "Error" not in a.reason


@pytest.mark.slow
def test_the_verdict_reproduces_from_the_saved_run_alone(signal, noise, tmp_path):
    for store, run_id in (signal, noise):
        copy = tmp_path / store.name
        shutil.copytree(store / "runs", copy / "runs")  # no market data: only the run
        a, b = evaluate(run_id, store, CFG), evaluate(run_id, copy, CFG)
        assert [(g.name, g.passed, g.value) for g in a.gates] == [
            (g.name, g.passed, g.value) for g in b.gates
        ]
        assert b.passed == (store is signal[0])  # the signal passes, noise does not


@pytest.mark.slow
def test_cli_promote_prints_each_failed_gate_and_writes_nothing(noise, tmp_path):
    store, run_id = noise
    out = tmp_path / "promoted"
    res = CliRunner().invoke(
        app,
        [
            "promote",
            "ma_crossover",
            "--run",
            run_id,
            "--store",
            str(store),
            "--out",
            str(out),
            "--config",
            str(ROOT / "configs" / "promotion.yaml"),
        ],
    )
    assert res.exit_code == 3, res.output
    assert "FAIL dsr:" in res.output and "needs >= 0.95" in res.output
    assert "FAIL pbo:" in res.output and "needs <= 0.2" in res.output
    assert "agreement:" in res.output
    assert "nothing written" in res.output and not out.exists()
    res = CliRunner().invoke(
        app, ["promote", "momentum", "--run", run_id, "--store", str(store), "--out", str(out)]
    )
    assert res.exit_code == 1 and "not 'momentum'" in res.output


def test_promotion_config_defaults_match_the_file():
    assert PromotionConfig().dsr_min == CFG.dsr_min
