"""freqtrade importer: the store must equal the feather sources row for row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.freqtrade import FreqtradeImporter, classify
from tradelab.store import Catalog

SOURCES = [
    # (folder, file, exchange, symbol, table, interval, kind)
    ("binance_spot_2025q2q3", "BTC_USDT-1m.feather", "BINANCE", "BTC-USDT", "ohlcv", "1m", "trade"),
    ("binance_spot_2025q2q3", "ETH_USDT-5m.feather", "BINANCE", "ETH-USDT", "ohlcv", "5m", "trade"),
    (
        "binance_spot_btc_1h_2017_2024",
        "BTC_USDT-1h.feather",
        "BINANCE",
        "BTC-USDT",
        "ohlcv",
        "1h",
        "trade",
    ),
    (
        "binance_usdm_2025",
        "ETH_USDT_USDT-1m-futures.feather",
        "BINANCE_FUTURES",
        "ETH-USDT-PERP",
        "ohlcv",
        "1m",
        "trade",
    ),
    (
        "binance_usdm_2025",
        "BTC_USDT_USDT-8h-mark.feather",
        "BINANCE_FUTURES",
        "BTC-USDT-PERP",
        "ohlcv",
        "8h",
        "mark",
    ),
    (
        "binance_usdm_2025",
        "BTC_USDT_USDT-8h-funding_rate.feather",
        "BINANCE_FUTURES",
        "BTC-USDT-PERP",
        "funding",
        "8h",
        None,
    ),
]


def run_import(store, path, exchange="BINANCE"):
    run = ImportRun("freqtrade", store, {})
    reports = FreqtradeImporter(run, exchange).import_dir(path)
    run.finish()
    return reports


@pytest.mark.data
@pytest.mark.parametrize("folder, name, exchange, symbol, table, interval, kind", SOURCES)
def test_store_equals_feather_row_for_row(
    ohlcv_store, test_data, folder, name, exchange, symbol, table, interval, kind
):
    store, reports = ohlcv_store
    assert all(r.status == "committed" and r.n_rejects == 0 for r in reports)
    src = feather.read_table(test_data / "ohlcv" / folder / name).to_pandas()
    src_ts = src["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    cat = Catalog(store)
    if table == "funding":
        got = cat.funding(exchange, symbol, settled=True)
        np.testing.assert_array_equal(got["ts"].to_numpy(), src_ts)
        np.testing.assert_array_equal(got["rate"].to_numpy(), src["open"].to_numpy())
        return
    got = cat.sql(
        f"SELECT ts, open, high, low, close, volume FROM ohlcv WHERE exchange = "
        f"'{exchange}' AND symbol = '{symbol}' AND interval = '{interval}' "
        f"AND kind = '{kind}' ORDER BY ts"
    )
    assert len(got) == len(src)
    np.testing.assert_array_equal(got["ts"].to_numpy(), src_ts)
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[col].to_numpy(), src[col].to_numpy(), err_msg=col)


@pytest.mark.data
def test_bars_from_the_store_equal_the_source_and_its_resampling(ohlcv_store, test_data):
    """bars('1m') returns the stored candles; bars('4h') equals a pandas resample of the 5m
    candles it is built from (the coarsest stored interval dividing 4h, where the 5m candles
    cover the range as well as the 1m ones: up to 2025-08-18 16:00)."""
    cat = Catalog(ohlcv_store[0])
    folder = test_data / "ohlcv/binance_spot_2025q2q3"
    src = feather.read_table(folder / "BTC_USDT-1m.feather").to_pandas().set_index("date")
    one = cat.bars("BINANCE", "BTC-USDT", "1m", start="2025-05-20", end="2025-08-19")
    assert len(one) == 130_708
    np.testing.assert_array_equal(one["close"].to_numpy(), src["close"].to_numpy())
    hour = cat.bars("BINANCE", "BTC-USDT", "4h", start="2025-05-20", end="2025-08-18 16:00")
    src5 = feather.read_table(folder / "BTC_USDT-5m.feather").to_pandas().set_index("date")
    ref = (
        src5[src5.index < "2025-08-18 16:00"].resample("4h")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
    )
    assert hour.attrs["source"] == "ohlcv:5m"  # the coarsest stored divisor of 4h
    assert len(hour) == len(ref)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(hour[col].to_numpy(), ref[col].to_numpy())
    np.testing.assert_allclose(hour["volume"].to_numpy(), ref["volume"].to_numpy(), rtol=1e-12)
    assert hour["complete"].all()
    # to the end of the data the 1m candles (to 18:27) cover more than the 5m ones (to 18:25):
    # they are used, and the last 4h bucket, 16:00-20:00, is marked partial
    whole = cat.bars("BINANCE", "BTC-USDT", "4h", start="2025-05-20", end="2025-08-19")
    assert whole.attrs["source"] == "ohlcv:1m" and len(whole) == len(hour) + 1
    assert whole["complete"].tolist() == [True] * len(hour) + [False]
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(whole[col].to_numpy()[:-1], ref[col].to_numpy())


@pytest.mark.data
def test_reimport_is_idempotent(ohlcv_store, test_data):
    store, _ = ohlcv_store
    before = Catalog(store).sql("SELECT count(*) AS n FROM ohlcv").n.iloc[0]
    reports = run_import(store, test_data / "ohlcv" / "binance_usdm_2025")
    assert all(sum(r.rows.values()) == 0 for r in reports)
    assert sum(r.skipped["already_stored"] for r in reports) == sum(r.lines for r in reports)
    assert Catalog(store).sql("SELECT count(*) AS n FROM ohlcv").n.iloc[0] == before


def test_file_names_map_to_symbols_and_venues():
    from pathlib import Path

    assert classify(Path("BTC_USDT-1m.feather"))["symbol"] == "BTC-USDT"
    fut = classify(Path("BTC_USDT_USDT-1m-futures.feather"))
    assert (fut["symbol"], fut["futures"], fut["kind"]) == ("BTC-USDT-PERP", True, "trade")
    assert classify(Path("ETH_USDT_USDT-8h-funding_rate.feather"))["table"] == "funding"
    assert classify(Path("ETH_USDT_USDT-8h-mark.feather"))["kind"] == "mark"
    assert classify(Path("BTC_USD_BTC-1m-futures.feather"))["inverse"] is True
    assert classify(Path("BTC_USDT-trades.feather"))["table"] == "trades"
    assert classify(Path("notes.feather")) is None


def write_candles(path, df):
    feather.write_feather(pa.Table.from_pandas(df, preserve_index=False), path)


def candles(n=5, start="2025-01-01", freq="1min"):
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame(
        {"date": idx, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1.0}
    )


def test_a_file_with_other_columns_is_refused_and_nothing_stored(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    df = candles()
    df["extra"] = 1
    write_candles(src / "BTC_USDT-1m.feather", df)
    write_candles(src / "ETH_USDT-1m.feather", candles())
    reports = run_import(tmp_path / "store", src)
    by = {r.path.rsplit("/", 1)[1]: r for r in reports}
    bad = by["BTC_USDT-1m.feather"]
    assert bad.status == "failed"
    assert "BTC_USDT-1m.feather" in bad.detail and "unexpected ['extra']" in bad.detail
    assert by["ETH_USDT-1m.feather"].status == "committed"
    assert not (tmp_path / "store" / "ohlcv" / "exchange=BINANCE" / "symbol=BTC-USDT").exists()


def test_bad_rows_are_rejected_with_reasons_and_good_rows_kept(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    df = candles(8)
    df.loc[1, "high"] = 8.0  # high below open/close
    df.loc[2, "close"] = np.nan  # not finite
    df.loc[3, "volume"] = -1.0  # negative volume
    df.loc[4, "date"] = df.loc[4, "date"] + pd.Timedelta("7s")  # off the 1m grid
    df.loc[6, "date"] = df.loc[5, "date"]  # duplicate time
    write_candles(src / "BTC_USDT-1m.feather", df)
    (rep,) = run_import(tmp_path / "store", src)
    assert rep.status == "committed"
    assert dict(rep.rejects) == {
        "inconsistent OHLC": 1,
        "non-finite value": 1,
        "negative volume": 1,
        "candle time not on the 1m grid": 1,
        "duplicate time": 1,
    }
    assert rep.rows["ohlcv"] == 3
    got = Catalog(tmp_path / "store").bars("BINANCE", "BTC-USDT", "1m")
    assert got.index.tolist() == [df.date[0], df.date[5], df.date[7]]


def test_unrecognised_and_unreadable_files_are_reported(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "random.feather").write_bytes(b"not arrow")
    (src / "BTC_USDT-1m.feather").write_bytes(b"not arrow either")
    reports = run_import(tmp_path / "store", src)
    by = {r.path.rsplit("/", 1)[1]: r for r in reports}
    assert by["random.feather"].status == "skipped"
    assert "not a freqtrade data file name" in by["random.feather"].detail
    assert by["BTC_USDT-1m.feather"].status == "failed"
    assert "not a readable feather file" in by["BTC_USDT-1m.feather"].detail
