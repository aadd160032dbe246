"""`make demo` end to end, small: every step runs and the cross-checks it prints hold."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tradelab.demo import run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = io.StringIO()
    result = run_demo(tmp_path / "demo", days=7.0, seed=3, reports=tmp_path / "reports",
                      console=Console(file=out, width=140), collect_s=6, paper_s=15)
    text = out.getvalue()
    assert result["trades_match_candles"] is True
    assert result["report"]["summary"]["partitions_with_issues"] == 0
    assert result["report"]["summary"]["rejected_lines"] == 0
    assert result["bars_1h"] == 168 and result["funding_settlements"] == 21
    assert "identical" in text and "summary" in text
    # the research step: a sweep with its statistics and a walk-forward over it
    sw, wf = result["sweep"], result["walkforward"]
    assert sw["n_trials_this_run"] == 60 and 0 <= sw["dsr"] <= sw["psr"] <= 1
    assert 0 <= sw["pbo"] <= 1 and wf["windows"] == 8 and "oos_dsr" in wf
    assert "Deflated Sharpe" in text and "PBO" in text and "walk-forward" in text
    # the live step: the venue's flow through cryptofeed into the store, and a ccxt backfill
    assert result["collected_rows"]["trades"] > 0 and result["collected_rows"]["book"] > 0
    assert all(v == 1.0 for v in result["book_agreement"].values())
    assert result["backfilled_candles"] == 96
    html = (tmp_path / "reports" / "store.html").read_text()
    assert "plotly" in html.lower() and "BTC-USDT 1h" in html
    # the nightly on the demo data, then promotion: the demo's Keltner sweep on a random market
    # has no edge, so nothing is promoted and the demo says which gates failed
    assert result["nightly"] == result["nightly"] | {"ok": 4, "failed": 0}
    index = tmp_path / "index.html"
    assert result["reports_index"] == str(index.resolve()) and index.is_file()
    assert f"reports: {index.resolve()}" in text.replace("\n", "")
    assert result["promotion"]["passed"] is False and result["promoted"] is None
    assert "nothing promoted" in text and "FAIL dsr" in text
    # the agreement gate ran the real check on the stored BTC-USDT trades the swept bars are
    # made of (not "no events to replay"): the event backtest makes the sweep's trades
    gates = {g["name"]: g for g in result["promotion"]["gates"]}
    agreement = gates["agreement"]
    assert agreement["passed"] and agreement["value"] < 1e-6, agreement
    n = int(gates["trades"]["value"])
    assert f"trades sweep {n}, event {n}, matched {n}" in agreement["reason"]
    assert "PASS agreement" in text and "no events" not in text
    # the paper step: nothing promoted, so the named demo strategy trades, forced and recorded
    # as such, through the real runner process against a real venue process
    paper = result["paper"]
    assert paper["strategy"] == "ma_crossover" and paper["forced"] is True
    assert paper["bars"] >= 5 and paper["metrics_url"].startswith("http://127.0.0.1:")
    assert "python -m runners.paper" in text and "--force" in text
    # a second run starts from a fresh store, not on top of the first
    again = run_demo(tmp_path / "demo", days=7.0, seed=3, reports=tmp_path / "reports",
                     console=Console(file=io.StringIO()), collect_s=0, paper_s=0)
    assert again["report"]["summary"]["rows"] == result["report"]["summary"]["rows"]
