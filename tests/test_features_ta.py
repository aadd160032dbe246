"""Indicator kernels: hand-computed cases, TA-Lib on the real 1m data, streaming == vectorized."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

from tests.features_helpers import hlc, real_bars, same
from tradelab import features
from tradelab.features import returns_nb, ta_nb

NAN = np.nan


# -- hand-computed cases ----------------------------------------------------------------------


def test_fma_rounds_once():
    # 0.1 is 0.1000000000000000055511151231257827...; times 10 minus 1 is 5.55e-17 exactly,
    # which an unfused multiply rounds away to 0.
    assert 0.1 * 10.0 - 1.0 == 0.0
    assert ta_nb.fma(0.1, 10.0, -1.0) == 5.551115123125783e-17


def test_sma_and_ema_by_hand():
    x = np.array([2.0, 4.0, 6.0, 8.0, 12.0])
    # SMA(3): (2+4+6)/3, (4+6+8)/3, (6+8+12)/3
    assert same(ta_nb.sma_nb(x, 3), [NAN, NAN, 4.0, 6.0, 26.0 / 3.0])
    # EMA(3), k = 2/(3+1) = 0.5, seeded with the SMA of the first three: 4, then
    # 4 + 0.5 * (8 - 4) = 6, 6 + 0.5 * (12 - 6) = 9
    assert same(ta_nb.ema_nb(x, 3), [NAN, NAN, 4.0, 6.0, 9.0])
    # leading NaNs are skipped, as the TA-Lib wrapper does
    assert same(ta_nb.ema_nb(np.r_[NAN, NAN, x], 3), [NAN, NAN, NAN, NAN, 4.0, 6.0, 9.0])


def test_rsi_by_hand():
    x = np.array([1.0, 2.0, 1.0, 3.0, 3.0])
    # changes +1, -1, +2, 0. RSI(2): seed gain = (1 + 0) / 2, loss = (0 + 1) / 2 -> 50;
    # then gain = (0.5 * 1 + 2) / 2 = 1.25, loss = (0.5 * 1 + 0) / 2 = 0.25 -> 100 * 1.25 / 1.5;
    # then gain = 1.25 / 2, loss = 0.25 / 2 -> the same 83.33
    out = ta_nb.rsi_nb(x, 2)
    assert same(out[:2], [NAN, NAN])
    assert out[2:] == pytest.approx([50.0, 250.0 / 3.0, 250.0 / 3.0], rel=1e-15)
    # no movement at all: TA-Lib's convention is 0, not NaN
    assert same(ta_nb.rsi_nb(np.full(5, 7.0), 2), [NAN, NAN, 0.0, 0.0, 0.0])


BARS = {  # high, low, close; true ranges from bar 1: 2, 2 (gap up), 1.5, 4 (gap down)
    "high": [10.0, 11.0, 12.0, 12.5, 11.0],
    "low": [8.0, 9.0, 10.5, 11.0, 7.0],
    "close": [9.0, 10.0, 12.0, 11.0, 8.0],
}


def test_true_range_and_atr_by_hand():
    h, lo, c = (np.array(BARS[k]) for k in ("high", "low", "close"))
    assert [ta_nb.true_range(h[i], lo[i], c[i - 1]) for i in range(1, 5)] == [2.0, 2.0, 1.5, 4.0]
    # ATR(2): mean of the first two true ranges = 2, then Wilder: 2/2 + 1.5/2 = 1.75,
    # 1.75/2 + 4/2 = 2.875
    assert same(ta_nb.atr_nb(h, lo, c, 2), [NAN, NAN, 2.0, 1.75, 2.875])


def test_keltner_by_hand():
    h, lo, c = (np.array(BARS[k]) for k in ("high", "low", "close"))
    # typical prices: 9, 10, 11.5, 11.5, 26/3. KC(n_ema=2, n_atr=2, k=2) starts at bar
    # L = max(2 - 1, 2) = 2 and seeds the EMA on the two typical prices ending there:
    # (10 + 11.5) / 2 = 10.75 (a plain EMA(2) would have seeded at bar 1 and read 10.8333);
    # then 10.75 + 2/3 * (11.5 - 10.75) = 11.25 and 11.25 + 2/3 * (26/3 - 11.25) = 9.52777...
    mid, up, low = ta_nb.keltner_nb(h, lo, c, 2, 2, 2.0)
    assert same(mid[:2], [NAN, NAN]) and same(up[:2], [NAN, NAN])
    expected_mid = [10.75, 11.25, 11.25 + 2.0 / 3.0 * (26.0 / 3.0 - 11.25)]
    assert mid[2:] == pytest.approx(expected_mid, rel=1e-15)
    atr = np.array([2.0, 1.75, 2.875])
    assert up[2:] == pytest.approx(np.array(expected_mid) + 2.0 * atr, rel=1e-15)
    assert low[2:] == pytest.approx(np.array(expected_mid) - 2.0 * atr, rel=1e-15)
    kc = talib.KC(h, lo, c, 2, 2, 2.0)
    assert same(mid, kc[1]) and same(up, kc[0]) and same(low, kc[2])


def test_donchian_and_rolling_extremes_by_hand():
    high = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    low = np.array([0.0, 1.0, 1.0, 2.0, 3.0])
    up, lo, mid = ta_nb.donchian_nb(high, low, 3)
    assert same(up, [NAN, NAN, 3.0, 5.0, 5.0])
    assert same(lo, [NAN, NAN, 0.0, 1.0, 1.0])
    assert same(mid, [NAN, NAN, 1.5, 3.0, 3.0])
    # a NaN poisons the windows holding it, as pandas rolling(n).max() does
    x = np.array([1.0, NAN, 3.0, 4.0, 5.0, 1.0])
    assert same(ta_nb.rolling_max_nb(x, 2), [NAN, NAN, NAN, 4.0, 5.0, 5.0])
    assert same(ta_nb.rolling_min_nb(x, 2), [NAN, NAN, NAN, 3.0, 4.0, 1.0])
    assert same(ta_nb.rolling_max_nb(x, 2), pd.Series(x).rolling(2).max())


def test_returns_and_realized_vol_by_hand():
    p = np.array([100.0, 101.0, 102.0, 99.0])
    assert same(returns_nb.returns_nb(p, 2), [NAN, NAN, 102.0 / 100.0 - 1.0, 99.0 / 101.0 - 1.0])
    assert same(returns_nb.returns_nb(p, 1, True), [NAN, *np.log(p[1:] / p[:-1])])
    q = np.array([100.0, 110.0, 99.0, 99.0])
    r1, r2 = math.log(1.1), math.log(0.9)
    rv = returns_nb.realized_vol_nb(q, 2)
    assert same(rv[:2], [NAN, NAN])
    assert rv[2:] == pytest.approx([math.sqrt(r1 * r1 + r2 * r2), abs(r2)], rel=1e-15)


def test_pandas_api_validates_and_keeps_the_index():
    idx = pd.date_range("2025-01-01", periods=5, freq="1min", tz="UTC")
    bars = pd.DataFrame(BARS, index=idx)
    out = features.keltner(bars, 2, 2, 2.0)
    assert list(out.columns) == ["mid", "upper", "lower"] and out.index.equals(idx)
    assert features.atr(bars, 2).iloc[-1] == 2.875
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        features.ema(bars["close"], 0)
    with pytest.raises(ValueError, match="missing \\['high'\\]"):
        features.atr(bars.drop(columns="high"), 2)
    ann = features.realized_vol(bars["close"], 2, periods_per_year=525_600)
    raw = features.realized_vol(bars["close"], 2)
    assert ann.iloc[-1] == pytest.approx(raw.iloc[-1] * math.sqrt(525_600 / 2))


# -- TA-Lib on the real data ------------------------------------------------------------------

PERIODS = (2, 3, 14, 20, 100)


@pytest.mark.data
@pytest.mark.parametrize("symbol", ["BTC-USDT", "ETH-USDT"])
def test_indicators_equal_talib_on_three_months_of_1m_bars(ohlcv_store, symbol):
    h, lo, c = hlc(real_bars(ohlcv_store[0], symbol))
    worst = {}

    def check(name, ours, ref):
        ours, ref = np.asarray(ours), np.asarray(ref)
        assert np.array_equal(np.isnan(ours), np.isnan(ref)), f"{name}: warm-up NaNs differ"
        diff = float(np.nanmax(np.abs(ours - ref)))
        worst[name] = max(worst.get(name, 0.0), diff)
        assert diff < 1e-9, f"{name}: max abs diff {diff}"

    for n in PERIODS:
        check("EMA", ta_nb.ema_nb(c, n), talib.EMA(c, n))
        check("SMA", ta_nb.sma_nb(c, n), talib.SMA(c, n))
        check("RSI", ta_nb.rsi_nb(c, n), talib.RSI(c, n))
        check("ATR", ta_nb.atr_nb(h, lo, c, n), talib.ATR(h, lo, c, n))
        up, low, mid = ta_nb.donchian_nb(h, lo, n)
        ref = talib.DONCHIAN(h, lo, n)
        for ours, theirs in zip((up, mid, low), ref):
            check("Donchian", ours, theirs)
    for n_ema, n_atr, k in ((20, 10, 2.0), (5, 8, 1.5), (50, 14, 3.0), (2, 1, 0.5)):
        mid, up, low = ta_nb.keltner_nb(h, lo, c, n_ema, n_atr, k)
        for ours, theirs in zip((up, mid, low), talib.KC(h, lo, c, n_ema, n_atr, k)):
            check("Keltner", ours, theirs)
    # on an FMA CPU (every x86-64 since 2013) the agreement is exact, not merely close
    assert worst == {k: 0.0 for k in worst}, worst


# -- streaming == vectorized ------------------------------------------------------------------


def _stream(new_state, step, *cols):
    """Drive a step kernel from Python, one input at a time."""
    s = new_state()
    out = []
    for row in zip(*cols):
        out.append(step(s, 0, *row))
    return np.array(out)


@pytest.mark.data
def test_streaming_equals_vectorized_on_real_bars(ohlcv_store):
    n = 20_000
    h, lo, c = hlc(real_bars(ohlcv_store[0]), n)
    assert same(_stream(lambda: ta_nb.ema_new(20), ta_nb.ema_step, c), ta_nb.ema_nb(c, 20))
    assert same(_stream(lambda: ta_nb.sma_new(20), ta_nb.sma_step, c), ta_nb.sma_nb(c, 20))
    assert same(_stream(lambda: ta_nb.rsi_new(14), ta_nb.rsi_step, c), ta_nb.rsi_nb(c, 14))
    assert same(_stream(lambda: ta_nb.atr_new(14), ta_nb.atr_step, h, lo, c),
                ta_nb.atr_nb(h, lo, c, 14))
    kc = _stream(lambda: ta_nb.keltner_new(20, 10, 2.0), ta_nb.keltner_step, h, lo, c)
    assert same(kc.T, ta_nb.keltner_nb(h, lo, c, 20, 10, 2.0))
    dc = _stream(lambda: ta_nb.donchian_new(20), ta_nb.donchian_step, h, lo)
    assert same(dc.T, ta_nb.donchian_nb(h, lo, 20))

    def ret_state(k):
        s = np.empty(returns_nb.returns_size(k))
        returns_nb.returns_init(s, 0, k)
        return s

    def rv_state(k):
        s = np.empty(returns_nb.realized_vol_size(k))
        returns_nb.realized_vol_init(s, 0, k)
        return s

    assert same(_stream(lambda: ret_state(15), returns_nb.returns_step, c),
                returns_nb.returns_nb(c, 15))
    assert same(_stream(lambda: ret_state(5), returns_nb.log_returns_step, c),
                returns_nb.returns_nb(c, 5, True))
    assert same(_stream(lambda: rv_state(60), returns_nb.realized_vol_step, c),
                returns_nb.realized_vol_nb(c, 60))


@pytest.mark.data
def test_returns_and_realized_vol_match_pandas_on_real_bars(ohlcv_store):
    close = real_bars(ohlcv_store[0])["close"]
    assert same(features.returns(close, 15), close / close.shift(15) - 1)
    # numpy's SIMD log and libm's log (numba's) may differ in the last bit
    logr = features.returns(close, 1, log=True)
    ref = np.log(close / close.shift(1))
    assert np.array_equal(np.isnan(logr), np.isnan(ref))
    assert np.nanmax(np.abs(logr - ref)) <= 1e-18
    ref = np.sqrt((np.log(close / close.shift()) ** 2).rolling(60).sum())
    ours = features.realized_vol(close, 60)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours / ref - 1)) < 1e-10
