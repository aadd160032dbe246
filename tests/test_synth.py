"""The synthetic market: reproducibility, stylised facts, exact bars, funding, and its exports."""

from __future__ import annotations

import functools
import gzip
import json
import operator
import os
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow.feather as feather
import pytest

from tradelab.store import Catalog
from tradelab.synth import (
    PERP_EXCHANGE,
    SPOT_EXCHANGE,
    SynthConfig,
    generate_market,
    write_binance_ws,
    write_freqtrade,
    write_store,
)

NS_MIN = 60_000_000_000
NS_H = 3_600_000_000_000
SMALL = SynthConfig(seed=11, days=1)
BTC_ONLY = {"BTC-USDT": 60000.0}


@pytest.fixture(scope="module")
def market():
    return generate_market(SMALL)


@pytest.fixture(scope="module")
def long_btc():
    """Four days of BTC spot only: enough minutes for return statistics."""
    return generate_market(SynthConfig(seed=7, days=4, perp=False, spot_symbols=BTC_ONLY))


def _returns(m) -> np.ndarray:
    return np.diff(np.log(m.ohlcv["BTC-USDT"]["1m"]["close"].to_numpy()))


def _acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def _assert_markets_equal(a, b) -> None:
    assert a.symbols == b.symbols
    for s in a.symbols:
        pd.testing.assert_frame_equal(a.trades[s], b.trades[s], check_exact=True)
        for iv in a.ohlcv[s]:
            pd.testing.assert_frame_equal(a.ohlcv[s][iv], b.ohlcv[s][iv], check_exact=True)
        assert np.array_equal(a.mid_1s[s], b.mid_1s[s])
    for s in a.funding:
        pd.testing.assert_frame_equal(a.funding[s], b.funding[s], check_exact=True)
        pd.testing.assert_frame_equal(a.mark[s], b.mark[s], check_exact=True)


# -- reproducibility --------------------------------------------------------------------------


def test_same_seed_is_bit_identical(market):
    _assert_markets_equal(market, generate_market(SMALL))


def test_different_seed_differs(market):
    other = generate_market(SynthConfig(seed=12, days=1))
    for s in market.symbols:
        a, b = market.trades[s], other.trades[s]
        n = min(len(a), len(b))
        assert not np.array_equal(a["price"].to_numpy()[:n], b["price"].to_numpy()[:n])
        assert not np.array_equal(a["ts"].to_numpy()[:n], b["ts"].to_numpy()[:n])


def test_shorter_market_is_a_prefix(market):
    half = generate_market(SynthConfig(seed=11, days=0.5))
    cut = half.end_ns
    for s in market.symbols:
        full = market.trades[s]
        pd.testing.assert_frame_equal(half.trades[s], full[full["ts"] < cut], check_exact=True)
        bars = market.ohlcv[s]["1m"]
        pd.testing.assert_frame_equal(half.ohlcv[s]["1m"], bars[bars["ts"] < cut])
    for s in market.funding:
        f = market.funding[s]
        pd.testing.assert_frame_equal(half.funding[s], f[f["ts"] < cut])


def test_config_is_checked():
    with pytest.raises(ValueError, match="BASE-QUOTE"):
        SynthConfig(spot_symbols={"BTCUSDT": 1.0})
    with pytest.raises(ValueError, match="alpha"):
        SynthConfig(garch_alpha=0.2, garch_beta=0.85)
    with pytest.raises(ValueError, match="whole minute"):
        SynthConfig(start="2025-01-01 00:00:30")
    with pytest.raises(ValueError, match="1 / an integer"):
        SynthConfig(tick_size={"BTC-USDT": 0.3})
    assert hash(SMALL) == hash(SynthConfig(seed=11, days=1))


# -- the price process ------------------------------------------------------------------------


def test_return_magnitude(long_btc):
    r = _returns(long_btc)
    assert 1e-4 < r.std() < 3e-3


def test_fat_tails(long_btc):
    r = _returns(long_btc)
    z = r - r.mean()
    excess_kurtosis = (z**4).mean() / (z**2).mean() ** 2 - 3.0
    assert excess_kurtosis > 1.5


def test_volatility_clusters_but_returns_do_not_predict(long_btc):
    r = _returns(long_btc)
    abs_acf = np.mean([_acf(np.abs(r), lag) for lag in range(1, 6)])
    sq_acf = np.mean([_acf(r * r, lag) for lag in range(1, 6)])
    assert abs_acf > 0.04
    assert sq_acf > 0.02
    assert abs(_acf(r, 1)) < 0.08
    assert abs(_acf(r, 2)) < 0.08


def test_trade_rate_rises_with_volatility(long_btc):
    bars = long_btc.ohlcv["BTC-USDT"]["1m"]
    move = (np.log(bars["high"]) - np.log(bars["low"])).to_numpy()
    n = bars["n_trades"].to_numpy()
    calm, wild = n[move <= np.quantile(move, 0.2)], n[move >= np.quantile(move, 0.8)]
    assert wild.mean() > 1.3 * calm.mean()
    assert abs(n.mean() / 60.0 - long_btc.config.trades_per_s) < 0.3 * long_btc.config.trades_per_s


# -- trades -----------------------------------------------------------------------------------


def test_trade_invariants(market):
    for s in market.symbols:
        tr = market.trades[s]
        ts = tr["ts"].to_numpy()
        assert ts.dtype == np.int64
        assert (np.diff(ts) > 0).all()
        inside = ts % 1_000_000_000
        assert inside.min() >= 1_000 and inside.max() <= 1_000_000_000 - 1_000
        assert ts[0] >= market.start_ns and ts[-1] < market.end_ns
        px = tr["price"].to_numpy()
        assert np.array_equal(px, np.rint(px * 100) / 100)  # the double of a 2-decimal price
        qty = tr["qty"].to_numpy()
        assert qty.min() >= 1e-5
        assert np.array_equal(qty, np.rint(qty * 1e5) / 1e5)
        assert set(tr["side"].unique()) == {"buy", "sell"}
        assert tr["trade_id"].iloc[0] == "1"
        assert np.array_equal(tr["trade_id"].astype("int64").to_numpy(), np.arange(1, len(tr) + 1))
        bars = market.ohlcv[s]["1m"]
        assert len(bars) == 1440 and bars["n_trades"].min() >= 20


def test_trades_print_at_the_quote(market):
    q = market.quotes("BTC-USDT")
    tr = market.trades["BTC-USDT"]
    sec = (tr["ts"].to_numpy() - market.start_ns) // 1_000_000_000
    bid, ask = q["bid"].to_numpy()[sec], q["ask"].to_numpy()[sec]
    buy = (tr["side"] == "buy").to_numpy()
    px = tr["price"].to_numpy()
    assert np.array_equal(px[buy], ask[buy]) and np.array_equal(px[~buy], bid[~buy])
    assert (q["ask"] > q["bid"]).all()


def test_perp_tracks_spot_with_a_small_basis(market):
    spot, perp = market.mid_1s["BTC-USDT"], market.mid_1s["BTC-USDT-PERP"]
    basis = perp / spot - 1.0
    assert np.abs(basis).max() < 0.003
    assert 0.0 < np.abs(basis).mean() < 0.001
    assert market.exchange["BTC-USDT"] == SPOT_EXCHANGE
    assert market.exchange["BTC-USDT-PERP"] == PERP_EXCHANGE


# -- bars -------------------------------------------------------------------------------------


def _pandas_bars(trades: pd.DataFrame, step: int) -> pd.DataFrame:
    """Bars from trades by an independent route: a pandas groupby on the bucket number.

    Volume is summed left to right (as a streaming aggregator and DuckDB do); pandas' own
    ``sum`` is compensated and may differ in the last bit, so it is only compared approximately.
    """
    key = trades["ts"] // step
    g = trades.groupby(key, sort=True)
    out = pd.DataFrame(
        {
            "ts": g["ts"].first().index.to_numpy() * step,
            "open": g["price"].first().to_numpy(),
            "high": g["price"].max().to_numpy(),
            "low": g["price"].min().to_numpy(),
            "close": g["price"].last().to_numpy(),
            "volume": g["qty"]
            .agg(lambda s: functools.reduce(operator.add, s.tolist(), 0.0))
            .to_numpy(dtype=np.float64),
            "n_trades": g["price"].count().to_numpy(dtype=np.int64),
        }
    )
    np.testing.assert_allclose(out["volume"], g["qty"].sum().to_numpy(), rtol=1e-12)
    return out


@pytest.mark.parametrize("interval,step", [("1m", NS_MIN), ("5m", 5 * NS_MIN)])
def test_bars_equal_an_independent_aggregation(market, interval, step):
    for s in ("BTC-USDT", "ETH-USDT-PERP"):
        ours = market.ohlcv[s][interval].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, _pandas_bars(market.trades[s], step), check_exact=True)


# -- funding and mark -------------------------------------------------------------------------


def test_funding_grid_jitter_and_clip():
    m = generate_market(SynthConfig(seed=3, days=10, spot_symbols=BTC_ONLY))
    f = m.funding["BTC-USDT-PERP"]
    ts = f["ts"].to_numpy()
    grid = ts // (8 * NS_H) * (8 * NS_H)
    jitter = ts - grid
    assert len(f) == 30
    assert ((jitter >= 0) & (jitter <= 10_000_000)).all()
    assert (jitter % 1_000_000 == 0).all()  # Binance fundingTime is in ms
    hours = pd.to_datetime(grid, unit="ns", utc=True).hour
    assert set(hours) == {0, 8, 16}
    rate = f["rate"].to_numpy()
    assert np.abs(rate).max() <= m.config.funding_clip
    assert 0.0 < rate.mean() < 5e-4 and rate.std() > 0
    mark = m.mark["BTC-USDT-PERP"]
    assert np.array_equal(mark["ts"].to_numpy(), grid)
    assert (mark["volume"] == 0.0).all()
    assert (mark["high"] >= mark[["open", "close"]].max(axis=1)).all()
    assert (mark["low"] <= mark[["open", "close"]].min(axis=1)).all()
    perp_bars = m.ohlcv["BTC-USDT-PERP"]["1m"]
    assert abs(mark["high"].max() / perp_bars["high"].max() - 1.0) < 1e-3


# -- exports ----------------------------------------------------------------------------------


def _test_data() -> Path | None:
    value = os.environ.get("TRADELAB_TEST_DATA")
    return Path(value) if value and Path(value).is_dir() else None


def test_freqtrade_files(market, tmp_path):
    paths = write_freqtrade(market, tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert {
        "BTC_USDT-1m.feather",
        "BTC_USDT-5m.feather",
        "ETH_USDT-1m.feather",
        "futures/BTC_USDT_USDT-1m-futures.feather",
        "futures/BTC_USDT_USDT-5m-futures.feather",
        "futures/BTC_USDT_USDT-8h-funding_rate.feather",
        "futures/BTC_USDT_USDT-8h-mark.feather",
    } <= names
    for p in paths:
        t = feather.read_table(p)
        assert t.column_names == ["date", "open", "high", "low", "close", "volume"]
        assert str(t.schema.field("date").type) == "timestamp[ns, tz=UTC]"
    df = pd.read_feather(tmp_path / "BTC_USDT-1m.feather")
    bars = market.ohlcv["BTC-USDT"]["1m"]
    assert np.array_equal(pd.DatetimeIndex(df["date"]).asi8, bars["ts"].to_numpy())
    assert np.array_equal(df["volume"].to_numpy(), bars["volume"].to_numpy())
    fr = pd.read_feather(tmp_path / "futures/BTC_USDT_USDT-8h-funding_rate.feather")
    f = market.funding["BTC-USDT-PERP"]
    assert np.array_equal(fr["open"].to_numpy(), f["rate"].to_numpy())
    assert (fr[["high", "low", "close", "volume"]].to_numpy() == 0.0).all()
    assert np.array_equal(pd.DatetimeIndex(fr["date"]).asi8, f["ts"].to_numpy())


def test_freqtrade_schema_matches_real_files(market, tmp_path):
    data = _test_data()
    if data is None:
        pytest.skip("TRADELAB_TEST_DATA is not set: cannot compare with real freqtrade files")
    write_freqtrade(market, tmp_path)
    pairs = [
        ("binance_spot_2025q2q3/BTC_USDT-1m.feather", "BTC_USDT-1m.feather"),
        ("binance_spot_2025q2q3/BTC_USDT-5m.feather", "BTC_USDT-5m.feather"),
        (
            "binance_usdm_2025/BTC_USDT_USDT-1m-futures.feather",
            "futures/BTC_USDT_USDT-1m-futures.feather",
        ),
        (
            "binance_usdm_2025/BTC_USDT_USDT-8h-funding_rate.feather",
            "futures/BTC_USDT_USDT-8h-funding_rate.feather",
        ),
        (
            "binance_usdm_2025/BTC_USDT_USDT-8h-mark.feather",
            "futures/BTC_USDT_USDT-8h-mark.feather",
        ),
    ]
    for real_name, ours_name in pairs:
        real = feather.read_table(data / "ohlcv" / real_name).schema
        ours = feather.read_table(tmp_path / ours_name).schema
        assert ours.equals(real, check_metadata=False), (ours_name, ours, real)
        rm, om = (json.loads(s.metadata[b"pandas"]) for s in (real, ours))
        assert om["columns"] == rm["columns"]
        assert om["column_indexes"] == rm["column_indexes"]
        assert [i["kind"] for i in om["index_columns"]] == [i["kind"] for i in rm["index_columns"]]


def _parse_recording(path: Path) -> list[tuple[int, dict]]:
    out = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            assert line.endswith(b"\n")
            recv, payload = line.rstrip(b"\n").split(b" ", 1)
            out.append((int(recv), orjson.loads(payload)))
    return out


def test_binance_ws_recording(market, tmp_path):
    (path,) = write_binance_ws(market, tmp_path, symbols=["BTC-USDT"], hours=3)
    assert path.name == "spot_btcusdt_20250101.gz"
    msgs = _parse_recording(path)
    recv = np.array([r for r, _ in msgs])
    assert (np.diff(recv) >= 0).all()
    trades = [m["data"] for _, m in msgs if m["stream"] == "btcusdt@trade"]
    tickers = [m["data"] for _, m in msgs if m["stream"] == "btcusdt@bookTicker"]
    assert len(trades) + len(tickers) == len(msgs)
    tr = market.trades["BTC-USDT"]
    tr = tr[tr["ts"] < market.start_ns + 3 * NS_H]
    assert len(trades) == len(tr)
    assert len(tickers) == 3 * 3600
    assert list(trades[0]) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
    assert list(tickers[0]) == ["u", "s", "b", "B", "a", "A"]
    assert all(isinstance(d[k], str) for d in tickers[:50] for k in "sbBaA")
    assert all(isinstance(d[k], str) for d in trades[:50] for k in "spq")
    assert np.array_equal([float(d["p"]) for d in trades], tr["price"].to_numpy())
    assert np.array_equal([float(d["q"]) for d in trades], tr["qty"].to_numpy())
    assert [d["t"] for d in trades] == tr["trade_id"].astype("int64").tolist()
    assert [d["m"] for d in trades] == (tr["side"] == "sell").tolist()
    assert np.array_equal([d["T"] for d in trades], tr["ts"].to_numpy() // 1_000_000)
    assert trades[0]["p"].count(".") == 1 and len(trades[0]["p"].split(".")[1]) == 8
    u = np.array([d["u"] for d in tickers])
    assert (np.diff(u) > 0).all()
    trade_recv = np.array([r for r, m in msgs if m["stream"] == "btcusdt@trade"])
    lag = trade_recv - tr["ts"].to_numpy()
    assert lag.min() >= 2_000_000 and lag.max() <= 25_000_000


def test_binance_ws_whole_market(tmp_path):
    m = generate_market(SynthConfig(seed=5, days=0.05))
    paths = write_binance_ws(m, tmp_path)
    assert len(paths) == 2
    for path, symbol in zip(paths, m.spot_symbols):
        n = sum(1 for _, msg in _parse_recording(path) if msg["stream"].endswith("@trade"))
        assert n == len(m.trades[symbol])


def test_write_store_round_trip(market, tmp_path):
    stats = write_store(market, tmp_path / "store", fsync=False)
    assert stats["rows"]["trades"] == market.n_trades()
    cat = Catalog(tmp_path / "store")
    for s in market.symbols:
        ex = market.exchange[s]
        got = cat.bars(ex, s, "1m")
        want = market.ohlcv[s]["1m"]
        assert got.attrs["source"] == "ohlcv:1m"
        assert got.pop("complete").all()  # stored 1m candles, each a whole minute
        pd.testing.assert_frame_equal(got.astype({"n_trades": "int64"}), want, check_exact=True)
        # the same bars aggregated by DuckDB from the stored trades, bit for bit
        q = (
            f"SELECT (ts // {NS_MIN}) * {NS_MIN} AS ts, "
            "first(price ORDER BY ts) AS open, max(price) AS high, min(price) AS low, "
            "last(price ORDER BY ts) AS close, sum(qty) AS volume, count(*) AS n_trades "
            f"FROM trades WHERE exchange = '{ex}' AND symbol = '{s}' GROUP BY 1 ORDER BY 1"
        )
        duck = cat.sql(q)
        pd.testing.assert_frame_equal(
            duck, want.reset_index(drop=True), check_exact=True, check_dtype=False
        )
    f = cat.funding(PERP_EXCHANGE, "BTC-USDT-PERP", settled=True)
    assert np.array_equal(f["rate"].to_numpy(), market.funding["BTC-USDT-PERP"]["rate"].to_numpy())
    mark = cat.bars(PERP_EXCHANGE, "BTC-USDT-PERP", "8h", kind="mark")
    assert np.array_equal(mark["high"].to_numpy(), market.mark["BTC-USDT-PERP"]["high"].to_numpy())
    cat.close()
