"""Bar strategies: hand-computed targets, streaming == vectorized == grid on the real 1m bars,
no look-ahead, and the entries/exits conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.features_helpers import real_bars
from tradelab import features, strategies
from tradelab.store import Catalog
from tradelab.strategies import (
    funding_carry,
    keltner_breakout,
    ma_crossover,
    mean_reversion,
    momentum,
    volatility_breakout,
)
from tradelab.synth import SynthConfig, generate_market

NAN = np.nan
BAR_STRATEGIES = [n for n in strategies.names() if strategies.get(n).KIND == "bar"]
PRICE_STRATEGIES = [n for n in BAR_STRATEGIES if n != "funding_carry"]


def closes(values):
    return pd.DataFrame({"close": np.asarray(values, dtype=float)})


def flat_bars(values):
    """Bars whose high, low and close are all the close: true ranges are the gaps."""
    c = np.asarray(values, dtype=float)
    return pd.DataFrame({"high": c, "low": c, "close": c})


# -- hand-computed cases ------------------------------------------------------------------------


def test_keltner_breakout_by_hand():
    # ema_period 2 (k = 2/3), atr_period 1 (ATR = the gap), width 0.1 ATR, typical price = close
    #  bar 1: mid 10, ATR 0, band 10..10 (first channel: no previous one, flat)
    #  bar 3: mid 10 + 2/3 * 0.5 = 10.333, ATR 0.5, upper 10.383; 10 <= 10 before, 10.5 above:
    #         long
    #  bar 4: mid 11.444, upper 11.594: 12 is above but was above before too: no new cross, hold
    #  bar 6: mid 11.815 + 2/3 * (9 - 11.815) = 9.938, ATR 3, lower 9.638; 12 >= 11.815 before,
    #         9 below now: short (flat without shorts)
    bars = flat_bars([10, 10, 10, 10.5, 12, 12, 9, 9])
    p = keltner_breakout.Params(ema_period=2, atr_period=1, k=0.1)
    assert keltner_breakout.run(bars, p).tolist() == [0, 0, 0, 1, 1, 1, -1, -1]
    p = keltner_breakout.Params(ema_period=2, atr_period=1, k=0.1, allow_short=0)
    assert keltner_breakout.run(bars, p).tolist() == [0, 0, 0, 1, 1, 1, 0, 0]


def test_momentum_by_hand():
    # returns over 1, 2 and 3 bars; from bar 3 all exist
    #  bar 3 (103): +0.98%, +1.98%, +3%: all up -> long
    #  bar 4 (102): -0.97%, 0%, +0.99%: mixed, slow still > 0 -> hold
    #  bar 5 (101): all down -> short;  bar 7 (101): +1%, 0%, -0.98%: mixed, slow < 0 -> hold
    #  bar 8 (103): all up -> long
    c = closes([100, 101, 102, 103, 102, 101, 100, 101, 103])
    p = momentum.Params(fast_bars=1, mid_bars=2, slow_bars=3)
    assert momentum.run(c, p).tolist() == [0, 0, 0, 1, 1, -1, -1, -1, 1]
    p = momentum.Params(fast_bars=1, mid_bars=2, slow_bars=3, allow_short=0)
    assert momentum.run(c, p).tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 1]
    # a 1.5% threshold: bar 3's 1-bar return (0.98%) is too small, bar 8's (1.98%) is not
    p = momentum.Params(fast_bars=1, mid_bars=2, slow_bars=3, threshold=0.015)
    assert momentum.run(c, p).tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1]
    # a long is closed when the slow return turns non-positive
    c = closes([100, 101, 102, 103, 103, 103, 103])
    assert momentum.run(c, momentum.Params(fast_bars=1, mid_bars=2, slow_bars=3)).tolist() == [
        0, 0, 0, 1, 1, 1, 0]


def test_ma_crossover_by_hand():
    # fast = SMA(1) = the close; slow = SMA(3): 10, 10.333, 11, 10.667, 9.667 from bar 2
    c = closes([10, 10, 10, 11, 12, 9, 8])
    p = ma_crossover.Params(fast=1, slow=3)
    assert ma_crossover.run(c, p).tolist() == [0, 0, 0, 1, 1, -1, -1]
    # EMA(3): 10, 10.5, 11.25, 10.125, 9.0625: the same crosses
    p = ma_crossover.Params(fast=1, slow=3, ma_type=1)
    assert ma_crossover.run(c, p).tolist() == [0, 0, 0, 1, 1, -1, -1]
    p = ma_crossover.Params(fast=1, slow=3, allow_short=0)
    assert ma_crossover.run(c, p).tolist() == [0, 0, 0, 1, 1, 0, 0]


def test_mean_reversion_by_hand():
    # mean = SMA(3); edge 5%:
    #  bar 3: mean 96.67, 90 < 91.83 -> long;  bar 4: mean 95, 95 >= 95 -> out
    #  bar 5: mean 95, 100 > 99.75 -> short;   bar 6: mean 102.33, 112 -> hold
    #  bar 7: mean 105.67, 105 <= 105.67 -> out; bar 8: mean 105.67, 100 < 100.38 -> long
    c = closes([100, 100, 100, 90, 95, 100, 112, 105, 100])
    p = mean_reversion.Params(window=3, edge=0.05)
    assert mean_reversion.run(c, p).tolist() == [0, 0, 0, 1, 0, -1, -1, 0, 1]
    p = mean_reversion.Params(window=3, edge=0.05, allow_short=0)
    assert mean_reversion.run(c, p).tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 1]


def test_volatility_breakout_by_hand():
    # range of the 2 bars before: after bar 1 [9, 10], bar 2 [9, 11], bar 3 [8, 11],
    # bar 4 [8, 12]
    bars = pd.DataFrame(
        [(10, 9, 9.5), (10, 9, 9.5), (11, 10, 10.5), (10.5, 8, 8.5), (12, 11, 11.5),
         (9, 7, 7.5), (9, 7.5, 8)],
        columns=["high", "low", "close"],
    )
    # bar 2: 10.5 > 10 -> long. bar 3: 8.5 < 9 would go short, but the 1-bar cooldown holds.
    # bar 4: 11.5 > 11, long already. bar 5: 7.5 < 8 -> short. bar 6: cooldown.
    p = volatility_breakout.Params(window=2, edge=0.0, cooldown=1)
    assert volatility_breakout.run(bars, p).tolist() == [0, 0, 1, 1, 1, -1, -1]
    p = volatility_breakout.Params(window=2, edge=0.0, cooldown=0)
    assert volatility_breakout.run(bars, p).tolist() == [0, 0, 1, -1, 1, -1, -1]
    # a 5% edge: 10.5 is not above 10 * 1.05 = 10.5, but 8.5 is below 9 * 0.95 = 8.55 (short);
    # 11.5 is not above 11 * 1.05 = 11.55, so the short stays
    p = volatility_breakout.Params(window=2, edge=0.05, cooldown=0)
    assert volatility_breakout.run(bars, p).tolist() == [0, 0, 0, -1, -1, -1, -1]


def test_funding_carry_by_hand():
    # span 1: the forecast is the last published rate. Horizon 10 periods, fees 2 * (0.05% +
    # 0.02%) = 0.14%.
    #  bar 1: 10 * 0.01% - 0.14% < 0 -> flat;  bar 3: 10 * 0.02% - 0.14% = +0.06%, basis 10 bps
    #  -> carry on;  bar 4: basis 60 bps, already in: hold;  bar 5: 10 * -0.01% < 0 -> off
    data = pd.DataFrame({
        "funding_rate": [NAN, 0.0001, NAN, 0.0002, NAN, -0.0001, NAN],
        "spot_close": [100.0] * 7,
        "perp_close": [100.1, 100.1, 100.1, 100.1, 100.6, 100.1, 100.1],
    })
    p = funding_carry.Params(span=1, horizon=10, spot_fee=0.0005, perp_fee=0.0002)
    assert funding_carry.run(data, p).tolist() == [0, 0, 0, 1, 1, 0, 0]
    # the basis filter blocks entry at 60 bps
    data.loc[3, "perp_close"] = 100.6
    assert funding_carry.run(data, p).tolist() == [0, 0, 0, 0, 0, 0, 0]


def test_funding_inputs_put_each_rate_on_the_bar_that_closes_after_it():
    t0 = pd.Timestamp("2025-06-01", tz="UTC")
    idx = pd.DatetimeIndex([t0 + pd.Timedelta(minutes=m) for m in (0, 1, 2, 5)], name="time")
    spot = pd.DataFrame({"close": [1.0, 2.0, 3.0, 4.0]}, index=idx)
    spot.attrs["interval"] = "1m"
    perp = pd.DataFrame({"close": [1.1, 2.1, 3.1, 4.1]}, index=idx)
    fund = pd.DataFrame({
        "ts": [(t0 + pd.Timedelta(s, "s")).value for s in (5, 62, 190, 330, 600)],
        "rate": [0.1, 0.2, 0.3, 0.4, 0.5],
    })
    out = features.carry_inputs(spot, perp, fund)
    # 00:00:05 -> bar 00:00; 00:01:02 -> bar 00:01; 00:03:10 falls in a missing minute: the
    # next bar that closes after it is 00:05 (00:02 closes at 00:03, before it); 00:05:30 ->
    # 00:05, and wins over 0.3; 00:10 is after the last close: dropped
    assert out["funding_rate"].iloc[:2].tolist() == [0.1, 0.2]
    assert np.isnan(out["funding_rate"].iloc[2]) and out["funding_rate"].iloc[3] == 0.4


# -- the real data --------------------------------------------------------------------------------

SETS = {
    "keltner_breakout": [{}, {"ema_period": 50, "atr_period": 30, "k": 1.5, "allow_short": 0}],
    "momentum": [{}, {"threshold": 0.001, "slow_bars": 30}],
    "ma_crossover": [{}, {"fast": 5, "slow": 30, "ma_type": 1}],
    "mean_reversion": [{}, {"window": 240, "edge": 0.004, "exit_edge": 0.001}],
    "volatility_breakout": [{}, {"window": 60, "edge": 0.0005, "cooldown": 30}],
}


def stream(module, p, cols):
    """A live runner's loop: the step kernel called from Python, one bar at a time."""
    s = module.init_state(p)
    return np.array([module.step(p, s, *row) for row in zip(*cols)], dtype=np.int8)


SOURCES = ["real", "synthetic"]


@pytest.fixture(scope="module")
def synth_market():
    """Three weeks of a seeded synthetic BTC spot and perp (1m bars, funding): the parity
    checks run on it whether or not the recordings are there."""
    cfg = SynthConfig(seed=5, days=21, spot_symbols={"BTC-USDT": 60_000.0}, trades_per_s=0.3,
                      intervals=("1m",))
    return generate_market(cfg)


def bars_from(request, source):
    """3 months of real Binance 1m bars, or the synthetic three weeks."""
    if source == "real":
        return real_bars(request.getfixturevalue("ohlcv_store")[0])
    bars = request.getfixturevalue("synth_market").ohlcv["BTC-USDT"]["1m"]
    assert len(bars) == 21 * 1440
    return bars


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", PRICE_STRATEGIES)
def test_streaming_equals_vectorized_equals_grid_on_real_bars(request, name, source):
    m = strategies.get(name)
    bars = bars_from(request, source)
    cols = [bars[c].to_numpy(dtype=np.float64) for c in m.INPUTS]
    grid = np.vstack([m.Params(**kw).to_array() for kw in SETS[name]])
    g = m.grid(bars, grid)
    assert g.shape == (len(grid), len(bars)) and g.dtype == np.int8
    n = 15_000
    for j, p in enumerate(grid):
        full = m.run(bars, p)
        assert np.array_equal(g[j], full)
        assert np.array_equal(stream(m, p, [c[:n] for c in cols]), full[:n])
        assert set(np.unique(full)) <= {-1, 0, 1}
        assert (full != 0).sum() > 1000, "the strategy trades on real data"


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", PRICE_STRATEGIES)
def test_no_look_ahead_on_real_bars(request, name, source):
    m = strategies.get(name)
    bars = bars_from(request, source)[["high", "low", "close"]]
    full = m.run(bars)
    rng = np.random.default_rng(7)
    for t in [t for t in (0, 40, 1_000, 23_456, 33_333, 77_777) if t < len(bars) - 2] + [
            len(bars) - 2]:
        # the target at bar t is unchanged when everything after t is removed ...
        assert np.array_equal(m.run(bars.iloc[: t + 1]), full[: t + 1])
        # ... or replaced by something else entirely
        other = bars.copy()
        k = len(bars) - t - 1
        noise = 1 + rng.normal(0, 0.01, size=(k, 1))
        other.iloc[t + 1 :] = other.iloc[t + 1 :].to_numpy()[::-1] * noise
        assert np.array_equal(m.run(other)[: t + 1], full[: t + 1])


@pytest.fixture(scope="module")
def carry_data(ohlcv_store):
    cat = Catalog(ohlcv_store[0])
    # ETH: the spot 1m file starts 2025-05-20, the perp 1m file ends 2025-06-15 10:43
    spot = cat.bars("BINANCE", "ETH-USDT", "1m", "2025-05-20", "2025-06-16")
    perp = cat.bars("BINANCE_FUTURES", "ETH-USDT-PERP", "1m", "2025-05-20", "2025-06-16")
    fund = cat.funding("BINANCE_FUTURES", "ETH-USDT-PERP", "2025-05-20", "2025-06-16")
    cat.close()
    return features.carry_inputs(spot, perp, fund), fund


def carry_parity(data, n_stream: int, cuts):
    """grid == run == the streaming step (first ``n_stream`` bars), and runs on data cut after
    each of ``cuts`` agree with the full run, for a small carry grid; returns (grid, targets)."""
    m = funding_carry
    grid = m.Params.grid(horizon=[21, 90], spot_fee=[0.0, 0.001], perp_fee=[0.0, 0.0005])
    g = m.grid(data, grid)
    cols = [data[c].to_numpy(dtype=np.float64)[:n_stream] for c in m.INPUTS]
    for j, p in enumerate(grid):
        full = m.run(data, p)
        assert np.array_equal(g[j], full)
        assert np.array_equal(stream(m, p, cols), full[:n_stream])
        for t in cuts:
            assert np.array_equal(m.run(data.iloc[: t + 1], p), full[: t + 1])
    return grid, g


@pytest.mark.data
def test_funding_carry_on_real_data(carry_data):
    data, fund = carry_data
    assert len(data) > 35_000
    # every rate sits on the bar in whose minute it was published (bars are contiguous here)
    placed = data["funding_rate"].dropna()
    assert len(placed) == len(fund) > 70
    assert (fund["ts"].to_numpy() // 60_000_000_000 * 60_000_000_000
            == placed.index.as_unit("ns").asi8).all()
    grid, g = carry_parity(data, n_stream=20_000, cuts=(500, 20_000, 35_000))
    on = dict(zip(map(tuple, grid[:, 1:4]), g.mean(axis=1)))
    # ETH funding was positive through the period: without fees the carry is on all along ...
    assert on[(21, 0.0, 0.0)] > 0.99 and on[(90, 0.0, 0.0)] > 0.99
    # ... but 21 periods of it (a week) never pay VIP-0 taker fees on both legs twice (0.3%),
    # while 90 periods (a month) do
    assert on[(21, 0.001, 0.0005)] == 0.0 and on[(90, 0.001, 0.0005)] > 0.9


# -- entries / exits ---------------------------------------------------------------------------


def test_targets_to_signals_by_hand():
    t = np.array([0, 1, 1, -1, -1, 0, 1, 0], dtype=np.int8)
    sig = strategies.to_signals(t)
    assert sig.entries.tolist() == [False, True, False, False, False, False, True, False]
    assert sig.exits.tolist() == [False, False, False, True, False, False, False, True]
    assert sig.short_entries.tolist() == [False, False, False, True, False, False, False, False]
    assert sig.short_exits.tolist() == [False, False, False, False, False, True, False, False]
    idx = pd.date_range("2025-01-01", periods=8, freq="1min", tz="UTC")
    grid = np.vstack([t, -t])
    sig = strategies.to_signals(grid, idx, pd.Index(["a", "b"], name="set"))
    assert sig.entries.shape == (8, 2) and sig.entries.index.equals(idx)
    assert sig.entries["b"].tolist() == sig.short_entries["a"].tolist()


@pytest.mark.slow
def test_signals_and_targets_drive_vectorbt_portfolios():
    # the sweep issue feeds these to vectorbt: the portfolio's position must follow the targets
    vbt = pytest.importorskip("vectorbt")
    idx = pd.date_range("2025-01-01", periods=400, freq="1min", tz="UTC")
    rng = np.random.default_rng(11)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 400))), index=idx)
    bars = pd.DataFrame({"high": close * 1.0005, "low": close * 0.9995, "close": close})
    m = keltner_breakout
    grid = m.Params.grid(ema_period=[5, 10], k=[0.5, 1.0])
    targets = m.grid(bars, grid)
    cols = pd.MultiIndex.from_frame(m.Params.frame(grid))
    sig = strategies.to_signals(targets, idx, cols)
    pf = vbt.Portfolio.from_signals(close, sig.entries, sig.exits, short_entries=sig.short_entries,
                                    short_exits=sig.short_exits, freq="1min")
    assert np.array_equal(np.sign(pf.assets().to_numpy()), targets.T)
    pf = vbt.Portfolio.from_orders(close, pd.DataFrame(targets.T.astype(float), idx, cols),
                                   size_type="targetpercent", freq="1min")
    assert np.array_equal(np.sign(pf.assets().to_numpy()), targets.T)


def test_funding_carry_streaming_equals_vectorized_equals_grid_on_synthetic_data(synth_market):
    spot = synth_market.ohlcv["BTC-USDT"]["1m"]
    perp = synth_market.ohlcv["BTC-USDT-PERP"]["1m"]
    fund = synth_market.funding["BTC-USDT-PERP"]
    data = features.carry_inputs(spot, perp, fund)
    assert len(data) == len(spot) and data["funding_rate"].notna().sum() == len(fund) == 63
    _, g = carry_parity(data, n_stream=len(data), cuts=(500, 10_000, 25_000))
    assert 0.3 < g.mean() < 0.95, "the carry is on part of the time, not never or always"
