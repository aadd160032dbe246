"""Candle grids follow the exchange: days from 00:00 UTC, weeks from Monday, months from the 1st."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.freqtrade import FreqtradeImporter
from tradelab.core.timeutil import candle_slots, interval_ns
from tradelab.store import Catalog
from tradelab.store.quality import quality_report


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def test_weekly_slots_open_on_monday():
    # 2024-08-05 and 2024-08-12 are Mondays; 2024-08-08 is a Thursday (the epoch's weekday)
    slot, ok = candle_slots(np.array([ns("2024-08-05"), ns("2024-08-12"), ns("2024-08-08")]), "1w")
    assert ok.tolist() == [True, True, False]
    assert slot[1] - slot[0] == 1
    # 1970-01-05 (the first Monday after the epoch) is slot 0
    assert candle_slots(np.array([ns("1970-01-05")]), "1w")[0].tolist() == [0]


def test_monthly_slots_open_on_the_first():
    ts = np.array([ns("2024-01-01"), ns("2024-02-01"), ns("2024-04-01"), ns("2024-03-15")])
    slot, ok = candle_slots(ts, "1M")
    assert ok.tolist() == [True, True, True, False]
    assert np.diff(slot[:3]).tolist() == [1, 2]  # March is missing: one hole
    assert (2024 - 1970) * 12 == slot[0]


def test_fixed_intervals_stay_epoch_aligned():
    slot, ok = candle_slots(np.array([ns("2024-08-08 04:00"), ns("2024-08-08 04:30")]), "1h")
    assert ok.tolist() == [True, False]


def test_interval_overflow_is_a_clear_error():
    with pytest.raises(ValueError, match="too long"):
        interval_ns("999999999w")
    with pytest.raises(ValueError, match="calendar month"):
        interval_ns("1M")


def _write(path, dates):
    n = len(dates)
    tbl = pa.table({
        "date": pa.array(pd.DatetimeIndex(dates, tz="UTC")),
        "open": np.full(n, 100.0), "high": np.full(n, 110.0), "low": np.full(n, 90.0),
        "close": np.full(n, 105.0), "volume": np.full(n, 1.0),
    })
    feather.write_feather(tbl, path)


def test_weekly_and_monthly_freqtrade_candles_import_and_pass_quality(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    mondays = pd.date_range("2024-07-01", periods=8, freq="W-MON")
    _write(src / "BTC_USDT-1w.feather", mondays)
    firsts = pd.date_range("2024-01-01", periods=6, freq="MS")
    _write(src / "BTC_USDT-1M.feather", firsts)
    _write(src / "ETH_USDT-1w.feather", [pd.Timestamp("2024-07-04"), pd.Timestamp("2024-07-08")])
    store = tmp_path / "store"
    run = ImportRun("freqtrade", store, {})
    reports = {r.path.rsplit("/", 1)[1]: r for r in
               FreqtradeImporter(run, "BINANCE").import_dir(src)}
    run.finish()
    assert reports["BTC_USDT-1w.feather"].rows["ohlcv"] == 8
    assert reports["BTC_USDT-1w.feather"].n_rejects == 0
    assert reports["BTC_USDT-1M.feather"].rows["ohlcv"] == 6
    eth = reports["ETH_USDT-1w.feather"]
    assert eth.rows["ohlcv"] == 1 and eth.n_rejects == 1  # the Thursday candle
    stored = Catalog(store).sql("SELECT interval, count(*) AS n FROM ohlcv "
                                "WHERE symbol = 'BTC-USDT' GROUP BY 1 ORDER BY 1")
    assert stored.to_dict("list") == {"interval": ["1M", "1w"], "n": [6, 8]}
    rep = quality_report(store, symbol="BTC-USDT")
    parts = [p for p in rep["partitions"] if p["table"] == "ohlcv"]
    assert len(parts) == 14  # one per candle date
    assert sum(p["off_grid"] for p in parts) == 0
    assert sum(p["missing_candles"] for p in parts) == 0
