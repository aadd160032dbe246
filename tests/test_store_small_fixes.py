"""Smaller integrity fixes: clear errors instead of tracebacks, structured catalog arguments,
quality flags for odd receipt times and bad values, failed-file manifests."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import import_ws
from tradelab.backtest.vector.config import parse_sweep_config
from tradelab.store import Catalog, StoreError, StoreWriter
from tradelab.store.quality import quality_report

S = 10**9
T0 = 1_704_067_200 * S  # 2024-01-01 00:00:00 UTC


def test_select_by_typo_fails_at_validation_naming_the_choices():
    raw = {"name": "t", "strategy": "ma_crossover", "exchange": "BINANCE",
           "symbols": ["BTC-USDT"], "interval": "1m", "grid": {"fast": [5], "slow": [30]},
           "select_by": "sharp"}
    with pytest.raises(Exception, match=r"unknown select_by 'sharp'.*sharpe.*sortino"):
        parse_sweep_config(raw)


def test_book_queries_over_a_range_before_any_data_are_empty(usdm_store):
    store, _ = usdm_store
    cat = Catalog(store)
    snaps = cat.book_snapshots("BINANCE_FUTURES", "BTC-USDT-PERP", levels=2, every="1s",
                               start="2020-01-01", end="2020-01-02")
    assert len(snaps) == 0 and "bid_px_0" in snaps.columns
    top = cat.top_of_book("BINANCE_FUTURES", "BTC-USDT-PERP", start="2020-01-01",
                          end="2020-01-02")
    assert len(top) == 0 and list(top.columns)[:4] == ["ts", "recv_ts", "seq", "valid"]


def test_trade_bars_refuses_an_interval_that_overflows(usdm_store):
    store, _ = usdm_store
    with pytest.raises(ValueError, match="too long"):
        Catalog(store).trade_bars("BINANCE_FUTURES", "BTC-USDT-PERP", "999999999w")


def test_bars_csv_into_a_missing_folder_creates_it(tmp_path, usdm_store):
    store, _ = usdm_store
    out = tmp_path / "new" / "dir" / "bars.csv"
    res = subprocess.run([sys.executable, "-m", "tradelab.cli", "bars", "BINANCE_FUTURES",
                          "BTC-USDT-PERP", "1m", "--csv", str(out), "--store", str(store)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    header = "time,ts,open,high,low,close,volume,n_trades,complete"
    assert out.read_text().splitlines()[0] == header
    assert len(out.read_text().splitlines()) == 1 + 6  # the recording spans 23:54..23:59
    # a path that cannot be a folder is one clear line, no traceback
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = subprocess.run([sys.executable, "-m", "tradelab.cli", "bars", "BINANCE_FUTURES",
                          "BTC-USDT-PERP", "1m", "--csv", str(blocker / "bars.csv"), "--store",
                          str(store)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "cannot write" in res.stderr
    assert "Traceback" not in res.stderr


def test_stored_values_and_last_time_take_structured_arguments(tmp_path):
    with StoreWriter(tmp_path) as w:
        w.write("ohlcv", "BINANCE", "BTC-USDT", {
            "ts": [T0, T0 + 60 * S, T0], "interval": ["1m", "1m", "1h"],
            "kind": ["trade", "trade", "trade"], "open": [1.0] * 3, "high": [1.0] * 3,
            "low": [1.0] * 3, "close": [1.0] * 3, "volume": [1.0] * 3})
    cat = Catalog(tmp_path)
    got = cat.stored_values("ohlcv", "BINANCE", "BTC-USDT", "ts", equal={"interval": "1m"})
    assert sorted(got.tolist()) == [T0, T0 + 60 * S]
    assert cat.last_time("ohlcv", "BINANCE", "BTC-USDT", {"interval": "1h"}) == T0
    # a value is a bound parameter, never SQL
    assert cat.last_time("ohlcv", "BINANCE", "BTC-USDT", {"interval": "1m' OR '1'='1"}) is None
    with pytest.raises(StoreError, match="no column 'interval; DROP'"):
        cat.stored_values("ohlcv", "BINANCE", "BTC-USDT", equal={"interval; DROP": "1m"})
    with pytest.raises(StoreError, match="no column"):
        cat.stored_values("ohlcv", "BINANCE", "BTC-USDT", column="ts; DROP")


def test_quality_flags_odd_receipt_times_and_bad_values(tmp_path):
    with StoreWriter(tmp_path) as w:
        w.write("trades", "BINANCE", "BTC-USDT", {
            "ts": T0 + np.arange(6) * S,
            "recv_ts": [T0 + 5, 0, -3, T0 + 3 * S + 600 * S, T0 + 4 * S + 5, T0 + 5 * S + 5],
            "price": [100.0, 100.0, 100.0, 100.0, -1.0, np.inf],
            "qty": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "side": ["buy"] * 6, "trade_id": [str(i) for i in range(6)]})
        w.write("book", "BINANCE", "BTC-USDT", {
            "ts": [T0, T0], "recv_ts": [T0 + 1, T0 + 1], "seq": [1, 1], "prev_seq": [None, None],
            "side": ["bid", "ask"], "price": [0.0, 101.0], "qty": [1.0, 0.0],
            "flags": [1, 3]})
    rep = quality_report(tmp_path)
    (tr,) = [p for p in rep["partitions"] if p["table"] == "trades"]
    assert (tr["recv_ts_not_positive"], tr["recv_ts_far"], tr["bad_values"]) == (2, 1, 2)
    assert "2 rows with a zero or negative receipt time" in tr["issues"]
    assert "1 rows received more than 300 s from the exchange time" in tr["issues"]
    (bk,) = [p for p in rep["partitions"] if p["table"] == "book"]
    assert bk["bad_values"] == 1  # the zero price; a zero size removes a level and is fine


def test_manifest_of_a_failed_file_lists_no_row_counts(tmp_path, binance_ws):
    bad = tmp_path / "bad.txt"
    bad.write_text("not a recording\n")
    store = tmp_path / "store"
    reports = import_ws(store, bad)
    assert reports[0].status == "failed"
    (manifest,) = (store / "_imports").glob("*.json")
    (f,) = json.loads(manifest.read_text())["files"]
    assert f["status"] == "failed" and f["detail"] and f["rows"] == {}
