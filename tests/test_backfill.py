"""ccxt backfill against the local venue serving the real freqtrade history and a recording.

The truth is the source files: the venue serves them over Binance's REST API, the real ccxt
client pages through it, and what lands in the store must equal the files row for row.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading

import numpy as np
import orjson
import pandas as pd
import pyarrow.feather as feather
import pytest

from tests.venue_helpers import venue_in_thread
from tradelab.adapters.binance.symbols import market_of_ccxt as market_of
from tradelab.adapters.binance.symbols import store_symbol_of_ccxt as store_symbol
from tradelab.collect.backfill import Backfill
from tradelab.store import Catalog, StoreError
from tradelab.venue.core import Venue
from tradelab.venue.history import History
from tradelab.venue.sources import RecordingSource

pytestmark = pytest.mark.data
MS = 1_000_000


def ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // MS)


@pytest.fixture(scope="module")
def venue(test_data):
    """A venue in a background thread: history from the freqtrade files, the USD-M recording
    replayed at once (no listener needed) so its trades are served by aggTrades."""

    def make() -> Venue:
        hist = History()
        hist.load_freqtrade(test_data / "ohlcv" / "binance_spot_2025q2q3")
        hist.load_freqtrade(test_data / "ohlcv" / "binance_usdm_2025")
        src = RecordingSource([test_data / "binance_ws" / "usdm_btcusdt_20240808.gz"])
        return Venue(src, hist, speed=0, wait_clients=0)

    with venue_in_thread(make, tls_port=None) as rv:
        for _ in range(600):  # the recording is replayed at once; its trades feed aggTrades
            if rv.venue.finished.is_set():
                break
            threading.Event().wait(0.1)
        yield rv


def backfill(tmp_path, rv, **kw):
    return Backfill(tmp_path, venue=f"127.0.0.1:{rv.port}", rate_limit_ms=1, backoff_s=0.05, **kw)


def source_candles(test_data, folder, name):
    df = feather.read_table(test_data / "ohlcv" / folder / name).to_pandas()
    df["ts"] = df["date"].astype("datetime64[ns, UTC]").astype("int64")
    return df


def stored_candles(root, exchange, symbol, interval="1m"):
    return Catalog(root).sql(
        f"SELECT ts, open, high, low, close, volume FROM ohlcv WHERE exchange = '{exchange}' "
        f"AND symbol = '{symbol}' AND interval = '{interval}' ORDER BY ts")


def test_symbols_map_to_markets_and_store_names():
    assert (market_of("BTC/USDT"), store_symbol("BTC/USDT")) == ("spot", "BTC-USDT")
    assert (market_of("ETH/USDT:USDT"), store_symbol("ETH/USDT:USDT")) == ("usdm",
                                                                             "ETH-USDT-PERP")
    with pytest.raises(ValueError, match="ccxt symbols"):
        market_of("BTCUSDT")
    with pytest.raises(ValueError, match="linear"):
        market_of("BTC/USD:BTC")


def test_ohlcv_equals_the_source_resumes_and_is_idempotent(tmp_path, venue, test_data):
    bf = backfill(tmp_path, venue)
    first = bf.ohlcv("ETH/USDT", "1m", ms("2025-06-01"), ms("2025-06-02"))
    assert (first.stored, first.pages) == (1440, 2) and first.resumed_from_ms is None
    second = bf.ohlcv("ETH/USDT", "1m", ms("2025-06-01"), ms("2025-06-04"))
    assert second.resumed_from_ms == ms("2025-06-02") and second.stored == 2 * 1440
    again = bf.ohlcv("ETH/USDT", "1m", ms("2025-06-01"), ms("2025-06-04"))
    assert again.stored == 0
    src = source_candles(test_data, "binance_spot_2025q2q3", "ETH_USDT-1m.feather")
    src = src[(src.ts >= ms("2025-06-01") * MS) & (src.ts < ms("2025-06-04") * MS)]
    got = stored_candles(tmp_path, "BINANCE", "ETH-USDT")
    assert len(got) == len(src) == 3 * 1440
    for col in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[col].to_numpy(), src[col].to_numpy(), err_msg=col)


def test_an_interrupted_run_continues_without_duplicates(tmp_path, venue, monkeypatch):
    bf = backfill(tmp_path, venue)
    client = bf.client("spot")
    real = client.fetch_ohlcv
    calls = {"n": 0}

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during page 3
        return real(*a, **kw)

    monkeypatch.setattr(client, "fetch_ohlcv", flaky)
    with pytest.raises(KeyboardInterrupt):
        bf.ohlcv("BTC/USDT", "1m", ms("2025-07-01"), ms("2025-07-03"))
    assert len(stored_candles(tmp_path, "BINANCE", "BTC-USDT")) == 2000  # two pages committed
    monkeypatch.setattr(client, "fetch_ohlcv", real)
    rep = bf.ohlcv("BTC/USDT", "1m", ms("2025-07-01"), ms("2025-07-03"))
    assert rep.resumed_from_ms is not None and rep.stored == 2 * 1440 - 2000
    got = stored_candles(tmp_path, "BINANCE", "BTC-USDT")
    assert len(got) == 2880 and got["ts"].is_unique and (np.diff(got["ts"]) == 60 * 10**9).all()


def test_rate_limits_are_waited_out(tmp_path, venue):
    bf = backfill(tmp_path, venue)
    bf.client("spot")  # markets loaded first, so the 429s hit the candle pages
    venue.venue.faults.rate_limit += 3  # the next three REST requests answer 429
    rep = bf.ohlcv("BTC/USDT", "5m", ms("2025-06-10"), ms("2025-06-11"))
    assert rep.retries["rate_limited"] >= 1 and rep.stored == 288
    assert venue.venue.faults.fired["rate_limit"] >= 3


def test_giving_up_names_the_cause(tmp_path, venue):
    venue.venue.faults.rate_limit += 50
    bf = Backfill(tmp_path, venue=f"127.0.0.1:{venue.port}", rate_limit_ms=1, backoff_s=0.01,
                  max_retries=2)
    try:
        with pytest.raises(StoreError, match="giving up after 3 attempts \\(rate_limited\\)"):
            bf.ohlcv("BTC/USDT", "1h", ms("2025-06-10"), ms("2025-06-11"))
    finally:
        venue.venue.faults.rate_limit = 0


def test_usdm_candles_and_funding_equal_the_source(tmp_path, venue, test_data):
    bf = backfill(tmp_path, venue)
    bf.ohlcv("BTC/USDT:USDT", "1m", ms("2025-05-10"), ms("2025-05-11"))
    src = source_candles(test_data, "binance_usdm_2025", "BTC_USDT_USDT-1m-futures.feather")
    src = src[(src.ts >= ms("2025-05-10") * MS) & (src.ts < ms("2025-05-11") * MS)]
    got = stored_candles(tmp_path, "BINANCE_FUTURES", "BTC-USDT-PERP")
    np.testing.assert_array_equal(got["close"].to_numpy(), src["close"].to_numpy())
    rep = bf.funding("BTC/USDT:USDT", ms("2025-01-01"), ms("2025-12-31"))
    fsrc = source_candles(test_data, "binance_usdm_2025", "BTC_USDT_USDT-8h-funding_rate.feather")
    fund = Catalog(tmp_path).funding("BINANCE_FUTURES", "BTC-USDT-PERP", settled=True)
    assert rep.stored == len(fsrc) == 266
    np.testing.assert_array_equal(fund["ts"].to_numpy(), fsrc["ts"].to_numpy())
    np.testing.assert_array_equal(fund["rate"].to_numpy(), fsrc["open"].to_numpy())
    with pytest.raises(ValueError, match="needs a perpetual"):
        bf.funding("BTC/USDT", ms("2025-01-01"), ms("2025-02-01"))


def test_trades_equal_the_recording_one_for_one(tmp_path, venue, test_data):
    with gzip.open(test_data / "binance_ws" / "usdm_btcusdt_20240808.gz", "rb") as fh:
        want = sorted(str(orjson.loads(line.split(b" ", 1)[1])["data"]["t"])
                      for line in fh if b"@trade" in line[:80])
    bf = backfill(tmp_path, venue)
    rep = bf.trades("BTC/USDT:USDT", 1723161200000, 1723161700000)
    got = Catalog(tmp_path).trades("BINANCE_FUTURES", "BTC-USDT-PERP")
    assert rep.stored == len(want) == 21_313
    assert sorted(got["trade_id"]) == want
    assert bf.trades("BTC/USDT:USDT", 1723161200000, 1723161700000).stored == 0


def test_cli(tmp_path, venue):
    args = [sys.executable, "-m", "tradelab.cli", "backfill", "--symbols",
            "BTC/USDT,ETH/USDT:USDT", "--since", "2025-05-21", "--until", "2025-05-21 06:00",
            "--timeframe", "15m", "--funding", "--store", str(tmp_path), "--venue",
            f"127.0.0.1:{venue.port}", "--rate-limit-ms", "1", "--json"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out = json.loads(res.stdout)
    assert res.returncode == 0, res.stderr
    assert [(r["kind"], r["symbol"], r["stored"]) for r in out] == [
        ("ohlcv", "BTC/USDT", 24), ("ohlcv", "ETH/USDT:USDT", 24),
        ("funding", "ETH/USDT:USDT", 1)]
    assert "BTC/USDT: spot, so no funding rates" in res.stderr
    res = subprocess.run(args[:-1], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "already there" in res.stdout  # a re-run adds nothing
    assert len(Catalog(tmp_path).bars("BINANCE", "BTC-USDT", "15m")) == 24
