"""Paper fills as configured: fees, queue model and latency from configs/paper.yaml, from an event
backtest config, or from the command line; a paper run charges those fees and waits that
latency; bad values are refused with the problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_live_core import RISING_THEN_FALLING, _stream
from tests.test_live_multi import ENTRY_ROWS, _run
from tradelab.errors import ConfigError
from tradelab.live.cli import main_paper
from tradelab.live.fill_model import (
    FillModel,
    fill_model_from_dict,
    load_fill_model,
    with_overrides,
)
from tradelab.matching import latency_nb as L

ROOT = Path(__file__).resolve().parents[1]
MS = 1_000_000


def test_the_shipped_paper_config_and_a_backtest_config_load():
    paper = load_fill_model(ROOT / "configs" / "paper.yaml").describe()
    assert (paper["maker_fee"], paper["taker_fee"]) == (0.0002, 0.0004)
    assert paper["queue"] == {"model": "power", "n": 3}
    assert paper["latency"] == {"kind": "constant", "entry_ms": 20.0, "response_ms": 20.0}
    # an event backtest config: its instrument fees, queue and latency blocks
    mm = load_fill_model(ROOT / "configs" / "backtests" / "mm_btcusdt_perp.yaml")
    assert (mm.maker_fee, mm.taker_fee, mm.queue_model, mm.queue_n) == \
        (0.0002, 0.0005, "power", 3.0)
    assert mm.describe()["latency"] == {"kind": "constant", "entry_ms": 10.0,
                                        "response_ms": 10.0}
    kelt = load_fill_model(ROOT / "configs" / "backtests" / "keltner_btcusdt_spot.yaml")
    assert (kelt.maker_fee, kelt.taker_fee) == (0.001, 0.001)


def test_a_recorded_latency_table_and_per_action_latency(tmp_path):
    (tmp_path / "t.csv").write_text("req_ts,exch_ts,resp_ts\n0,3000000,5000000\n")
    m = fill_model_from_dict({"latency": {"kind": "table", "table": "t.csv"}}, "f.yaml",
                             tmp_path)
    assert m.latency[0] == L.LAT_TABLE and m.describe()["latency"] == {"kind": "table",
                                                                        "rows": 1}
    per = fill_model_from_dict({"latency": {"kind": "per_action", "entry_ms": 4,
                                            "response_ms": 6, "cancel_entry_ms": 1}}, "f")
    assert per.describe()["latency"] == {"kind": "per_action", "entry_ms": 4.0,
                                         "response_ms": 6.0, "cancel_entry_ms": 1.0,
                                         "modify_entry_ms": 4.0}
    cli = with_overrides(FillModel(), taker_fee=0.001, latency="5/7", queue_model="log")
    d = cli.describe()
    assert d["taker_fee"] == 0.001 and d["queue"]["model"] == "log"
    assert d["latency"] == {"kind": "constant", "entry_ms": 5.0, "response_ms": 7.0}
    assert d["source"] == "built-in defaults + command line"


@pytest.mark.parametrize("raw, message", [
    ({"fees": {"maker": 0.5}}, "maker_fee must be a fraction of the notional"),
    ({"fees": {"taker": "cheap"}}, "taker must be a number"),
    ({"fees": {"makr": 0.1}}, "fees: unknown keys ['makr']"),
    ({"queue": {"model": "fifo"}}, "unknown queue model 'fifo'"),
    ({"queue": {"n": 0}}, "queue n must be > 0"),
    ({"latency": {"kind": "fast"}}, "unknown kind 'fast'"),
    ({"latency": {"entry_ms": -3}}, "entry_ms must be >= 0"),
    ({"fee": {}}, "unknown keys ['fee']"),
    ([1, 2], "expected a mapping"),
])
def test_bad_fill_models_name_their_problem(raw, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fill_model_from_dict(raw, "paper.yaml")


def test_the_paper_run_charges_the_configured_fee_after_the_configured_latency(tmp_path):
    # the same long 2 entry (decided at the 4.2 s trade, local 4.201 s) with a 0.1 % taker
    # fee and 400 ms / 600 ms of entry latency: the fee is 0.001 x 2 x 100.5 = 0.201, and the
    # order reaches the book 400 or 600 ms after the decision (the 4.5 s trade's own local
    # time is 4.501 s: the slower order arrives after it)
    stream = _stream(RISING_THEN_FALLING)
    times = {}
    for entry_ms in (400, 600):
        # what --taker-fee 0.001 --latency-ms ENTRY/5 builds
        fm = with_overrides(FillModel(), taker_fee=0.001, latency=f"{entry_ms}/5")
        run = _run(tmp_path, run_dir=f"run{entry_ms}", taker_fee=fm.taker_fee,
                   latency_model=fm.latency, fill_model=fm.describe())
        assert run.summary()["fill_model"]["latency"]["entry_ms"] == entry_ms
        leg = run.legs[0]
        run._feed(leg, stream[:ENTRY_ROWS + 2], "trade")
        run.journal.close()
        order = next(iter(run.oms.orders.values()))
        (ex,) = order.executions
        assert float(ex.fee) == pytest.approx(0.001 * 2 * 100.5)
        assert ex.ts_ns >= order.created_ns + entry_ms * MS
        times[entry_ms] = ex.ts_ns
    assert times[600] - times[400] >= 200 * MS


def test_the_runner_refuses_a_bad_fill_model_before_it_connects(tmp_path, capsys):
    bad = tmp_path / "fills.yaml"
    bad.write_text("fees:\n  maker: 2\n")
    assert main_paper(["--strategy", "ma_crossover", "--force", "--fill-model", str(bad),
                       "--venue-address", "127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "maker_fee must be a fraction" in err and str(bad) in err
    assert main_paper(["--strategy", "ma_crossover", "--force", "--latency-ms", "soon",
                       "--venue-address", "127.0.0.1:9"]) == 1
    assert "entry_ms must be a number of ms, got 'soon'" in capsys.readouterr().err
