"""Research notebooks execute end to end with papermill against a real store."""

from __future__ import annotations

import io
from pathlib import Path

import papermill as pm
import pytest
from rich.console import Console

from tradelab.demo import run_demo

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
def test_store_tour_runs_on_the_demo_store(tmp_path):
    run_demo(tmp_path / "demo", days=1.0, seed=5, reports=tmp_path / "r",
             console=Console(file=io.StringIO()), collect_s=0, paper_s=0)
    out = tmp_path / "tour.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "store_tour.ipynb"), str(out),
                        parameters={"store": str(tmp_path / "demo" / "store"),
                                    "symbol": "ETH-USDT", "interval": "4h"},
                        kernel_name="python3", progress_bar=False)
    text = out.read_text()
    assert "bars of 4h from ohlcv:5m" in text
    assert "'partitions_with_issues': 0" in text
