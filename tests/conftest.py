"""Shared fixtures: the real recordings (from TRADELAB_TEST_DATA) and stores built from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.binance_ws import BinanceWsImporter
from tradelab.collect.importers.freqtrade import FreqtradeImporter


def _data_dir() -> Path | None:
    value = os.environ.get("TRADELAB_TEST_DATA")
    if value and Path(value).is_dir():
        return Path(value)
    guess = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return guess if guess.is_dir() else None


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The folder of real recordings; tests that need it are skipped, loudly, without it."""
    path = _data_dir()
    if path is None:
        pytest.skip(
            "real recordings not found: set TRADELAB_TEST_DATA to ../shared/data "
            "(make test does this when the folder exists)"
        )
    return path


@pytest.fixture(scope="session")
def binance_ws(test_data: Path) -> Path:
    return test_data / "binance_ws"


def import_ws(store: Path, *files: Path, market: str | None = None):
    """Import recordings into ``store`` and return the file reports."""
    run = ImportRun("binance-ws", store, {})
    reports = BinanceWsImporter(run, market).import_files(files)
    run.finish()
    return reports


@pytest.fixture(scope="session")
def usdm_store(tmp_path_factory, binance_ws: Path):
    """A store holding usdm_btcusdt_20240808 (the largest recording)."""
    store = tmp_path_factory.mktemp("usdm_store")
    reports = import_ws(store, binance_ws / "usdm_btcusdt_20240808.gz")
    return store, reports


@pytest.fixture(scope="session")
def spot_store(tmp_path_factory, binance_ws: Path):
    """A store holding both spot BTCUSDT files (split at midnight), imported in one call."""
    store = tmp_path_factory.mktemp("spot_store")
    reports = import_ws(
        store, binance_ws / "spot_btcusdt_20240809.gz", binance_ws / "spot_btcusdt_20240808.gz"
    )
    return store, reports


@pytest.fixture(scope="session")
def ohlcv_store(tmp_path_factory, test_data: Path):
    """A store holding every freqtrade file of the shared data."""
    store = tmp_path_factory.mktemp("ohlcv_store")
    run = ImportRun("freqtrade", store, {})
    reports = FreqtradeImporter(run, "BINANCE").import_dir(test_data / "ohlcv")
    run.finish()
    return store, reports


@pytest.fixture(scope="session")
def small_store(tmp_path_factory) -> tuple[Path, str]:
    """A 1-day demo store (trades, book tickers, candles, funding) plus one MA-crossover sweep
    with its walk-forward on planted-trend bars of SIG-USDT; built once per session. Returns
    (store, sweep run id)."""
    import io

    from rich.console import Console

    from tests.report_helpers import swept_store
    from tradelab.demo import run_demo

    work = tmp_path_factory.mktemp("small_store")
    run_demo(work / "demo", days=1.0, seed=5, reports=work / "r",
             console=Console(file=io.StringIO()), collect_s=0, paper_s=0)
    store = work / "demo" / "store"
    return store, swept_store(store, drift=1e-4, seed=3, family="sig", symbol="SIG-USDT")
