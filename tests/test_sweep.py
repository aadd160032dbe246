"""Vectorized sweeps: metrics against vectorbt and hand computation, the engine, the registry."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tradelab import strategies
from tradelab.backtest.metrics_nb import METRICS
from tradelab.backtest.runs import RunStore
from tradelab.backtest.vector import bias, engine
from tradelab.backtest.vector.config import load_sweep_config, parse_sweep_config
from tradelab.backtest.vector.engine import market_arrays, run_sweep, sweep_bars
from tradelab.backtest.vector.simulate import (
    Costs,
    Market,
    chunk_metrics,
    order_records,
    simulate,
)
from tradelab.backtest.vector.walkforward import walk_forward_run
from tradelab.errors import ConfigError
from tradelab.synth import SynthConfig, generate_market, write_store

M = {name: i for i, name in enumerate(METRICS)}
MIN = 60 * 10**9


def market_of(close, days_every=None, funding_idx=(), funding_rate=()):
    close = np.asarray(close, dtype=float)
    n = len(close)
    period_end = np.zeros(n, bool)
    if days_every:
        period_end[days_every - 1::days_every] = True
    period_end[-1] = True
    return Market(close, period_end, np.asarray(funding_idx, np.int64),
                  np.asarray(funding_rate, float), 365.0, n / 525_600)


# -- the metrics kernel ------------------------------------------------------------------------


def test_hand_computed_long_short_round_trips():
    # price path and targets: long at bar 1 (100), flip short at bar 3 (110), flat at bar 5 (100)
    close = [100.0, 100.0, 105.0, 110.0, 105.0, 100.0, 100.0]
    targets = np.array([[0, 1, 1, -1, -1, 0, 0]], dtype=np.int8)
    costs = Costs(taker_fee=0.0, init_cash=1000.0)
    met, prets, n_orders = chunk_metrics(targets, market_of(close), costs)
    m = met[0]
    # long 10 units 100 -> 110: +100; flip to short 1100/110 = 10 units 110 -> 100: +100
    assert n_orders == 3
    assert m[M["final_equity"]] == pytest.approx(1200.0)
    assert m[M["total_return"]] == pytest.approx(0.2)
    assert m[M["n_trades"]] == 2 and m[M["hit_rate"]] == 1.0
    assert m[M["expectancy"]] == pytest.approx((100 / 1000 + 100 / 1100) / 2)
    assert m[M["exposure"]] == pytest.approx(4 / 7)
    assert m[M["profit_factor"]] == np.inf
    assert m[M["max_drawdown"]] == pytest.approx(0.0)


def test_fees_are_charged_and_split_on_a_flip_like_vectorbt():
    close = [100.0, 100.0, 110.0, 110.0, 100.0]
    targets = np.array([[1, 1, -1, -1, 0]], dtype=np.int8)
    costs = Costs(taker_fee=0.001, init_cash=1000.0)
    met, _, _ = chunk_metrics(targets, market_of(close), costs)
    pf = simulate(targets, np.asarray(close), costs)
    assert met[0][M["final_equity"]] == pytest.approx(pf.final_value().iloc[0])
    assert met[0][M["fees_paid"]] == pytest.approx(pf.orders.fees.sum().iloc[0] / 1000)
    assert met[0][M["hit_rate"]] == pf.trades.win_rate().iloc[0]
    assert met[0][M["n_trades"]] == pf.trades.count().iloc[0] == 2


def test_funding_is_paid_by_longs_and_received_by_shorts():
    close = [100.0] * 6
    long_short = np.array([[1] * 6, [-1] * 6], dtype=np.int8)
    mk = market_of(close, funding_idx=[2, 4], funding_rate=[0.001, 0.002])
    met, _, _ = chunk_metrics(long_short, mk, Costs(taker_fee=0.0, init_cash=1000.0))
    # a 1000 notional position: pays (long) / receives (short) 1 then 2
    assert met[0][M["final_equity"]] == pytest.approx(997.0)
    assert met[1][M["final_equity"]] == pytest.approx(1003.0)


# -- execution: next bar's open (default) or the deciding bar's close -----------------------------


def test_next_open_fills_at_the_next_bars_open_by_hand():
    # bar:      0      1      2      3      4      5
    # open:   100    101    104    107    103     99
    # close:  100    102    106    105    100     98
    # target:   0      1      1      0      0     -1   (decided on each bar's close)
    # next_open: buy on bar 2 at its open 104, sell on bar 4 at its open 103; the short decided
    # on the last bar has no next bar and is not filled. Taker fee 0.1% on both fills:
    #   units = 1040 / (104 * 1.001) (all cash, fee included), buy fee = units * 104 * 0.001
    #   cash after the sale = units * 103 * (1 - 0.001)
    opens = np.array([100.0, 101.0, 104.0, 107.0, 103.0, 99.0])
    close = np.array([100.0, 102.0, 106.0, 105.0, 100.0, 98.0])
    targets = np.array([[0, 1, 1, 0, 0, -1]], dtype=np.int8)
    costs = Costs(taker_fee=0.001, init_cash=1040.0)
    mk = Market(close, np.ones(6, bool), np.empty(0, np.int64), np.empty(0), 365.0, 6 / 525_600,
                opens, "next_open")
    met, prets, n_orders = chunk_metrics(targets, mk, costs)
    units = 1040 / (104 * 1.001)
    final = units * 103 * 0.999
    assert n_orders == 2
    assert met[0][M["final_equity"]] == pytest.approx(final, rel=1e-12)
    assert met[0][M["total_return"]] == pytest.approx(final / 1040 - 1, rel=1e-12)
    assert met[0][M["fees_paid"]] * 1040 == pytest.approx(units * 104 * 0.001 + units * 103
                                                          * 0.001, rel=1e-12)
    # per-bar equity: flat through bar 1 (the order waits for bar 2's open), in on bar 2 and 3
    eq = 1040 * np.cumprod(1 + prets[:, 0])
    np.testing.assert_allclose(eq, [1040, 1040, units * 106, units * 105, final, final],
                               rtol=1e-12)
    pf = simulate(targets, close, costs, open_=opens, execution="next_open")
    rec = pf.order_records
    assert rec["idx"].tolist() == [2, 4] and rec["price"].tolist() == [104.0, 103.0]
    # the same decisions filled at the deciding bar's close (optimistic): 102 in, 105 out, and
    # the last bar's short goes in at 98
    shut = Market(close, np.ones(6, bool), np.empty(0, np.int64), np.empty(0), 365.0, 6 / 525_600)
    met_c, _, n_c = chunk_metrics(targets, shut, costs)
    assert n_c == 3
    pf_c = simulate(targets, close, costs)
    assert pf_c.order_records["price"].tolist() == [102.0, 105.0, 98.0]
    assert met_c[0][M["final_equity"]] == pytest.approx(pf_c.final_value().iloc[0], rel=1e-12)


def test_next_open_needs_opens_and_execution_is_named():
    close = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="next_open needs the bars' open prices"):
        Market(close, np.ones(2, bool), np.empty(0, np.int64), np.empty(0), 1.0, 1.0, None,
               "next_open")
    with pytest.raises(ValueError, match="execution must be one of next_open, close"):
        Market(close, np.ones(2, bool), np.empty(0, np.int64), np.empty(0), 1.0, 1.0, close,
               "vwap")


def test_funding_is_paid_by_the_position_held_at_the_settlement_under_both_executions():
    t0 = 1_735_689_600 * 10**9
    bars = pd.DataFrame({"ts": t0 + np.arange(4) * MIN, "open": [1.0] * 4, "close": [1.0] * 4})
    # settlements at 00:01:00 exactly (a bar's open) and at 00:02:30 (inside bar 2)
    fund = pd.DataFrame({"ts": [t0 + MIN, t0 + 2 * MIN + 30 * 10**9], "rate": [0.1, 0.2]})
    close_mk = market_arrays(bars, "1m", "1h", fund, "close")
    open_mk = market_arrays(bars, "1m", "1h", fund, "next_open")
    # close: paid by the position set at the close of the last bar closed by then (bar 0, bar 1)
    assert close_mk.funding_idx.tolist() == [0, 1]
    # next_open: by the position filled at the open of the bar that holds the settlement
    assert open_mk.funding_idx.tolist() == [1, 2]
    assert open_mk.open.tolist() == [1.0] * 4 and open_mk.execution == "next_open"


@pytest.mark.parametrize("execution", ["next_open", "close"])
def test_kernel_equals_vectorbt_on_synthetic_data(synth_store, execution):
    from tradelab.store import Catalog

    bars = Catalog(synth_store).bars("BINANCE", "ETH-USDT", "1m", "2025-01-01", "2025-01-04")
    m = strategies.get("keltner_breakout")
    targets = m.grid(bars, m.Params.grid(ema_period=[20, 60], atr_period=[14, 40], k=[1.5, 3.0]))
    costs = Costs(taker_fee=0.0004, slippage=0.0001)
    market = market_arrays(bars, "1m", "1h", execution=execution)
    met, prets, n = chunk_metrics(targets, market, costs)
    pf = simulate(targets, bars["close"].to_numpy(), costs, "60s", bars["open"].to_numpy(),
                  execution)
    assert n == len(pf.order_records) > 100
    # the sweep's direct call of vectorbt's simulator gives Portfolio.from_signals' records
    assert np.array_equal(order_records(targets, market, costs), pf.order_records)
    np.testing.assert_allclose(met[:, M["final_equity"]], pf.final_value().to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(met[:, M["n_trades"]], pf.trades.count().to_numpy())
    np.testing.assert_allclose(met[:, M["fees_paid"]] * costs.init_cash,
                               pf.orders.fees.sum().to_numpy(), rtol=1e-12)
    # every fill is at the open of the bar after a target change (or that bar's own close)
    rec = pf.order_records
    lag = 1 if execution == "next_open" else 0
    col = bars["open" if lag else "close"].to_numpy()
    ideal = col[rec["idx"]]
    np.testing.assert_allclose(rec["price"], np.where(rec["side"] == 0, ideal * 1.0001,
                                                      ideal * 0.9999), rtol=1e-12)
    changed = np.flatnonzero(np.diff(targets[rec["col"][0]].astype(int), prepend=0))
    assert rec["idx"][rec["col"] == rec["col"][0]].tolist() == [
        i + lag for i in changed if i + lag < len(bars)]


@pytest.mark.data
@pytest.mark.parametrize("execution", ["close", "next_open"])
def test_kernel_equals_vectorbt_on_real_data(ohlcv_store, execution):
    from tradelab.store import Catalog

    bars = Catalog(ohlcv_store[0]).bars("BINANCE", "ETH-USDT", "1m", "2025-06-01", "2025-06-15")
    m = strategies.get("keltner_breakout")
    targets = m.grid(bars, m.Params.grid(ema_period=[20, 60, 120], atr_period=[14, 40],
                                         k=[1.5, 3.0]))
    costs = Costs()
    market = market_arrays(bars, "1m", "1d", execution=execution)
    met, prets, _ = chunk_metrics(targets, market, costs)
    pf = simulate(targets, bars["close"].to_numpy(), costs, "1min", bars["open"].to_numpy(),
                  execution)
    assert np.array_equal(order_records(targets, market, costs), pf.order_records)
    np.testing.assert_allclose(met[:, M["final_equity"]], pf.final_value().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(met[:, M["max_drawdown"]], -pf.max_drawdown().to_numpy(),
                               rtol=1e-12)
    np.testing.assert_array_equal(met[:, M["n_trades"]], pf.trades.count().to_numpy())
    np.testing.assert_array_equal(met[:, M["hit_rate"]], pf.trades.win_rate().to_numpy())
    np.testing.assert_allclose(met[:, M["fees_paid"]] * costs.init_cash,
                               pf.orders.fees.sum().to_numpy(), rtol=1e-12)
    # daily returns equal vectorbt's value series resampled at the day's last bar
    value = pd.DataFrame(pf.value().to_numpy(), index=bars.index)
    daily = value.groupby(bars.index.floor("D")).last()
    expect = daily.pct_change()
    expect.iloc[0] = daily.iloc[0] / costs.init_cash - 1
    np.testing.assert_allclose(prets, expect.to_numpy(), rtol=1e-10)


# -- the engine -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_store")
    write_store(generate_market(SynthConfig(days=6, seed=11)), root, fsync=False)
    return root


def sweep_cfg(**over):
    raw = {"name": "t", "strategy": "ma_crossover", "exchange": "BINANCE",
           "symbols": ["BTC-USDT"], "start": "2025-01-02", "end": "2025-01-07",
           "interval": "1m", "grid": {"fast": [5, 10, 20], "slow": {"start": 30, "stop": 90,
                                                                     "step": 30}},
           "period": "1h", "chunk_size": 4, "workers": 2}
    raw.update(over)
    return parse_sweep_config(raw)


def test_pool_and_in_process_give_identical_metrics(synth_store, monkeypatch):
    from tradelab.store import Catalog

    bars = Catalog(synth_store).bars("BINANCE", "ETH-USDT", "1m", "2025-01-01", "2025-01-03")
    m = strategies.get("mean_reversion")
    P = m.Params.grid(window=[20, 40, 80], edge=[0.002, 0.004])
    market = market_arrays(bars, "1m", "1h")
    one = sweep_bars(m, bars, P, market, Costs(), chunk_size=2, workers=1)
    monkeypatch.setattr(engine, "POOL_MIN_CELLS", 0)
    two = sweep_bars(m, bars, P, market, Costs(), chunk_size=2, workers=2)
    np.testing.assert_array_equal(one.metrics, two.metrics)
    np.testing.assert_array_equal(one.period_returns, two.period_returns)


def test_run_sweep_saves_scores_and_counts_every_trial_once(synth_store):
    first, = run_sweep(sweep_cfg(), synth_store)
    assert first.n_sets == 9 and len(first.period_returns) == 5 * 24
    assert set(first.metrics.columns) >= {"fast", "slow", *METRICS}
    s = first.scores
    assert s["n_trials"] == 9 and 0 <= s["dsr"] <= s["psr"] <= 1 and 0 <= s["pbo"] <= 1
    assert first.bias["lookahead"]["ok"] is True
    assert first.bias["warmup"]["ok"] is True  # a day of history precedes the start
    saved = RunStore(synth_store).load(first.run_id)
    assert saved["report"]["scores"]["n_trials"] == 9
    pd.testing.assert_frame_equal(saved["period_returns"], first.period_returns,
                                  check_names=False, check_column_type=False)
    again, = run_sweep(sweep_cfg(), synth_store)
    assert again.scores["n_trials"] == 9  # the same sets on the same data: no new trials
    wider, = run_sweep(sweep_cfg(grid={"fast": [5, 10, 20, 25], "slow": [30, 60, 90]}),
                       synth_store)
    assert wider.scores["n_trials"] == 12  # three new sets
    other, = run_sweep(sweep_cfg(family="other"), synth_store)
    assert other.scores["n_trials"] == 9  # another family counts apart


def test_walk_forward_over_a_saved_run(synth_store):
    res, = run_sweep(sweep_cfg(grid={"fast": [5, 10, 20], "slow": [30, 60, 90, 120]},
                               family="wf"), synth_store)
    wf = walk_forward_run(res.run_id, train=24, test=12, store=synth_store)
    assert wf["scores"]["windows"] == (120 - 24) // 12
    assert wf["scores"]["n_trials"] == 12
    oos = wf["oos_returns"].to_numpy()
    pr = res.period_returns
    for i, row in wf["windows"].iterrows():  # the stitched OOS is the chosen sets' own returns
        a, b = int(row["test_start"]), int(row["test_stop"])
        chosen = pr[row["chosen_set_id"]].to_numpy()[a:b]
        np.testing.assert_array_equal(oos[i * 12:(i + 1) * 12], chosen)
    assert json.loads((RunStore(synth_store).root / res.run_id / "walkforward.json").read_text())
    # the saved OOS returns carry each period's real timestamp (int64 ns UTC), not its position
    times = np.concatenate([pr.index[int(r["test_start"]):int(r["test_stop"])].as_unit("ns").asi8
                            for _, r in wf["windows"].iterrows()])
    saved = pd.read_parquet(RunStore(synth_store).root / res.run_id / "walkforward_oos.parquet")
    assert saved["ts"].dtype == np.int64 and saved["ts"].tolist() == times.tolist()
    assert saved["ts"].iloc[0] == pr.index[24].value  # the first test period: after 24 of train
    assert saved["ts"].iloc[0] >= pd.Timestamp("2020-01-01", tz="UTC").value
    np.testing.assert_array_equal(saved["ret"].to_numpy(), oos)
    assert wf["oos_returns"].index.equals(pr.index[24:24 + len(oos)])


# -- bias checks ------------------------------------------------------------------------------


def test_lookahead_check_catches_a_strategy_that_peeks():
    def peeking_grid(bars, P):
        c = bars["close"].to_numpy()
        nxt = np.r_[c[1:], c[-1]]
        return np.tile(np.sign(nxt - c).astype(np.int8), (len(P), 1))

    cheat = SimpleNamespace(NAME="cheat", grid=peeking_grid)
    bars = pd.DataFrame({"close": 100 + np.cumsum(np.random.default_rng(1).normal(size=400))})
    res = bias.lookahead(cheat, bars, np.zeros((2, 1)))
    assert res["ok"] is False and len(res["violations"]) == len(bias.CUTS)
    assert res["violations"][0]["first_bar"] == res["cuts"][0] - 1
    honest = strategies.get("ma_crossover")
    ok = bias.lookahead(honest, bars.assign(high=bars.close, low=bars.close),
                        honest.Params.grid(fast=[3, 5], slow=[10]))
    assert ok["ok"] is True


@pytest.mark.parametrize("execution", ["next_open", "close"])
def test_lookahead_check_covers_both_executions(execution):
    rng = np.random.default_rng(1)
    close = 100 + np.cumsum(rng.normal(size=400))
    bars = pd.DataFrame({"open": np.r_[100.0, close[:-1]] + rng.normal(0, 0.1, 400),
                         "high": close, "low": close, "close": close})

    def peeking_grid(b, P):
        c = b["close"].to_numpy()
        return np.tile(np.sign(np.r_[c[1:], c[-1]] - c).astype(np.int8), (len(P), 1))

    cheat = SimpleNamespace(NAME="cheat", grid=peeking_grid)
    res = bias.lookahead(cheat, bars, np.zeros((2, 1)), execution)
    assert res["ok"] is False and res["execution"] == execution
    assert res["violations"][0]["first_bar"] == res["cuts"][0] - 1
    honest = strategies.get("ma_crossover")
    ok = bias.lookahead(honest, bars, honest.Params.grid(fast=[3, 5], slow=[10]), execution)
    assert ok["ok"] is True and ok["fills_checked"] > 20
    assert ok["same_bar_fill"] is (execution == "close")
    assert ok["fill_lag_bars"] == (1 if execution == "next_open" else 0)
    # the fills themselves: bar after the decision at its open, or the decision bar's close
    T = honest.grid(bars, honest.Params.grid(fast=[3], slow=[10]))
    f = bias.fills(T, bars, execution)
    lag = ok["fill_lag_bars"]
    assert (f[:, 2] == f[:, 1] + lag).all()
    px = bars["open" if lag else "close"].to_numpy()
    assert (f[:, 3] == px[f[:, 2].astype(int)]).all()


def test_lookahead_check_catches_fills_that_move_when_the_future_changes():
    bars = pd.DataFrame({"open": np.arange(1.0, 201.0), "close": np.arange(1.0, 201.0)})

    def grid_ok(b, P):
        t = np.zeros((len(P), len(b)), np.int8)
        t[:, 10:] = 1
        return t

    honest = SimpleNamespace(NAME="honest", grid=grid_ok)
    assert bias.lookahead(honest, bars, np.zeros((1, 1)), "next_open")["ok"] is True
    # a fill price that depends on how much data follows (here: on the frame's length, as a
    # bad join or a centred smoothing of the opens would): same targets, moving fills
    class LeakyOpens(pd.DataFrame):
        def __getitem__(self, key):
            col = super().__getitem__(key)
            return col + len(self) if key == "open" else col

        @property
        def iloc(self):
            return _LeakyIloc(self)

    class _LeakyIloc:
        def __init__(self, df):
            self.df = df

        def __getitem__(self, key):
            return LeakyOpens(pd.DataFrame(self.df).iloc[key])

    res = bias.lookahead(honest, LeakyOpens(bars), np.zeros((1, 1)), "next_open")
    assert res["ok"] is False and not res["violations"]  # the targets themselves are honest
    assert res["fill_violations"][0]["cut"] == res["cuts"][0]


# -- configuration ----------------------------------------------------------------------------


def test_sweep_costs_default_to_the_taker_fee_at_the_next_open():
    cfg = sweep_cfg()
    assert cfg.execution == "next_open" and cfg.fees.taker == 0.0004 and cfg.fees.maker is None
    assert sweep_cfg(execution="close").execution == "close"


def test_the_shipped_sweep_config_is_valid():
    cfg = load_sweep_config("configs/sweeps/keltner_btc_eth_1m.yaml")
    m = strategies.get(cfg.strategy)
    assert len(m.Params.grid(**cfg.grid_values())) >= 1000


@pytest.mark.parametrize("over, message", [
    ({"strategy": "nope"}, "unknown strategy 'nope'"),
    ({"interval": "7x"}, "interval: Value error, bad interval"),
    ({"grid": {}}, "grid: Dictionary should have at least 1 item"),
    ({"fees": {"taker": 0.5}}, "fees.taker: Input should be less than 0.05"),
    ({"fees": {"maker": 0.0002, "taker": 0.0004}}, "fees.maker: Value error, a vectorized sweep "
     "fills every order as a market order, which pays the taker fee; a maker fee can never "
     "apply here. Remove fees.maker"),
    ({"execution": "vwap"}, "execution: Input should be 'next_open' or 'close'"),
    ({"colour": 1}, "colour: Extra inputs are not permitted"),
])
def test_bad_sweep_configs_name_the_key(over, message):
    with pytest.raises(ConfigError, match="invalid sweep config") as exc:
        sweep_cfg(**over)
    assert message in str(exc.value)


def test_unknown_parameters_and_book_strategies_are_refused(synth_store):
    with pytest.raises(ValueError, match="has no parameters \\['window'\\]"):
        run_sweep(sweep_cfg(grid={"window": [5]}), synth_store)
    m = strategies.get("imbalance_microprice")
    with pytest.raises(ValueError, match="event-driven backtester"):
        sweep_bars(m, pd.DataFrame({"close": [1.0, 2.0]}), np.zeros((1, 1)),
                   market_of([1.0, 2.0]), Costs())


# -- the real 3 months: >= 1,000 sets per symbol and a walk-forward ---------------------------


@pytest.mark.data
@pytest.mark.slow
def test_keltner_sweep_and_walk_forward_on_three_months_of_btc_and_eth(tmp_path, test_data):
    from tradelab.collect.importers.base import ImportRun
    from tradelab.collect.importers.freqtrade import FreqtradeImporter

    run = ImportRun("freqtrade", tmp_path, {})
    FreqtradeImporter(run, "BINANCE").import_dir(test_data / "ohlcv" / "binance_spot_2025q2q3")
    run.finish()
    cfg = load_sweep_config("configs/sweeps/keltner_btc_eth_1m.yaml")
    btc, eth = run_sweep(cfg, tmp_path)
    assert btc.n_sets == eth.n_sets == 1152
    assert len(btc.period_returns) == 91 and btc.timings["bars"] == 130_708
    assert btc.scores["n_trials"] == 1152 and eth.scores["n_trials"] == 2304
    assert 0 <= eth.scores["dsr"] <= eth.scores["psr"]
    assert btc.bias["lookahead"]["ok"] and eth.bias["lookahead"]["ok"]
    wf = walk_forward_run(eth.run_id, train=30, test=7, store=tmp_path)
    assert wf["scores"]["n_trials"] == 2304 and wf["scores"]["windows"] == 8
    assert "oos_dsr" in wf["scores"]
