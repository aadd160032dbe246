"""Walk-forward: a hand-made sweep whose best set changes at a known point, window arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tradelab.validate import walk_forward

# 16 periods, 3 parameter sets. Every set carries the same alternating noise +-1%, so within a
# window of even length the sets differ only through their means:
#
#   set 0 (fast 5,  slow 50):   +0.4% a period in rows 0-7, -0.4% in rows 8-15
#   set 1 (fast 10, slow 50):   +0.1% throughout
#   set 2 (fast 20, slow 100):  -0.4% in rows 0-7, +0.4% in rows 8-15
#
# The best set changes from 0 to 2 at row 8.
NOISE = 0.01 * np.where(np.arange(16) % 2 == 0, 1.0, -1.0)
HALF = np.where(np.arange(16) < 8, 1.0, -1.0)
R = np.column_stack([0.004 * HALF, np.full(16, 0.001), -0.004 * HALF]) + NOISE[:, None]
PARAMS = pd.DataFrame({"fast": [5, 10, 20], "slow": [50, 50, 100]})


def test_rolling_windows_follow_the_change():
    """train = 4, test = 2, step = test: test windows start at 4, 6, ..., 14.

    window  train    test     IS means (set 0, 1, 2)        chosen
    0       0-3      4-5      +0.4%, +0.1%, -0.4%            0
    1       2-5      6-7      same                           0
    2       4-7      8-9      same                           0
    3       6-9      10-11    0, +0.1%, 0  (rows 6-7 vs 8-9) 1
    4       8-11     12-13    -0.4%, +0.1%, +0.4%            2
    5       10-13    14-15    same                           2

    Within windows 0-2 and 4-5 every set has the same standard deviation, so the Sharpe ratio
    ranks as the mean does; in window 3 sets 0 and 2 have mean 0 and set 1 wins.
    """
    wf = walk_forward(R, PARAMS, 4, 2)
    w = wf.windows
    assert w["train_start"].tolist() == [0, 2, 4, 6, 8, 10]
    assert w["train_stop"].tolist() == [4, 6, 8, 10, 12, 14]
    assert w["test_start"].tolist() == [4, 6, 8, 10, 12, 14]
    assert w["test_stop"].tolist() == [6, 8, 10, 12, 14, 16]
    assert w["chosen"].tolist() == wf.chosen.tolist() == [0, 0, 0, 1, 2, 2]
    assert w["param_fast"].tolist() == [5, 5, 5, 10, 20, 20]
    assert w["param_slow"].tolist() == [50, 50, 50, 50, 100, 100]
    # IS metric of window 3: set 1's values 1.1%, -0.9%, 1.1%, -0.9%: mean 0.1%, sd 1.1547%
    assert w["is_metric"].iloc[3] == pytest.approx(0.001 / np.std([0.011, -0.009] * 2, ddof=1))
    # window 2 keeps set 0 into rows 8-9, where it loses: -0.4% mean
    assert w["oos_metric"].iloc[2] < 0

    # the stitched OOS series is each window's chosen set on its test rows, in order
    expected = np.concatenate([R[4:6, 0], R[6:8, 0], R[8:10, 0], R[10:12, 1], R[12:16, 2]])
    np.testing.assert_array_equal(wf.oos_returns, expected)
    np.testing.assert_array_equal(wf.oos_index, np.arange(4, 16))
    assert wf.oos_labels is None
    np.testing.assert_allclose(wf.equity(), np.cumprod(1 + expected))
    np.testing.assert_allclose(wf.equity("additive"), np.cumsum(expected))
    np.testing.assert_allclose(wf.equity("log"), np.exp(np.cumsum(expected)))

    s = wf.summary
    assert s["n_windows"] == 6 and s["n_oos"] == 12 and s["gap_periods"] == 0
    assert s["n_changes"] == 2
    assert s["oos_sharpe"] == pytest.approx(expected.mean() / expected.std(ddof=1))
    assert s["is_metric_mean"] == pytest.approx(w["is_metric"].mean())
    assert s["degradation"] == pytest.approx(s["oos_metric_mean"] - s["is_metric_mean"])
    assert s["efficiency"] == pytest.approx(s["oos_metric_mean"] / s["is_metric_mean"])


def test_parameter_stability_by_hand():
    """Chosen values over the 6 rolling windows: fast 5, 5, 5, 10, 20, 20; slow 50 x4, 100 x2.

    fast: 2 changes; mean 65/6; steps 0, 0, 5, 10, 0 -> mean |change| 3, over the grid's range
    20 - 5 = 15: 0.2. slow: 1 change; steps 0, 0, 0, 50, 0 -> 10, over 100 - 50: 0.2.
    """
    st = walk_forward(R, PARAMS, train=4, test=2).stability
    assert st.loc["set", "n_changes"] == 2
    assert st.loc["fast", "n_changes"] == 2 and st.loc["slow", "n_changes"] == 1
    assert st.loc["fast", "mean"] == pytest.approx(65 / 6)
    assert st.loc["fast", "std"] == pytest.approx(np.std([5, 5, 5, 10, 20, 20], ddof=1))
    assert (st.loc["fast", "grid_min"], st.loc["fast", "grid_max"]) == (5, 20)
    assert st.loc["fast", "mean_abs_change"] == pytest.approx(3.0)
    assert st.loc["fast", "mean_abs_change_norm"] == pytest.approx(0.2)
    assert st.loc["slow", "mean_abs_change"] == pytest.approx(10.0)
    assert st.loc["slow", "mean_abs_change_norm"] == pytest.approx(0.2)
    assert np.isnan(st.loc["set", "mean"])  # the column index is not a parameter value


def test_anchored_windows_expand_and_adapt_later():
    """Anchored: training always starts at row 0; its length grows 4, 6, ..., 14.

    Set 0's IS mean is +0.4% until row 7, then 0.24% over rows 0-9 (8 x 0.4 - 2 x 0.4)/10,
    0.133% over 0-11 and 0.057% over 0-13, where set 1's steady 0.1% (and lower variance)
    finally wins: chosen 0, 0, 0, 0, 0, 1 - the expanding window adapts two windows later
    than the rolling one, which switched in window 3.
    """
    wf = walk_forward(R, PARAMS, train=4, test=2, anchored=True)
    w = wf.windows
    assert w["train_start"].tolist() == [0] * 6
    assert w["train_stop"].tolist() == [4, 6, 8, 10, 12, 14]
    assert w["test_start"].tolist() == [4, 6, 8, 10, 12, 14]
    assert wf.chosen.tolist() == [0, 0, 0, 0, 0, 1]
    for row in w.itertuples():  # the IS metric is the chosen set's Sharpe on rows 0..train_stop
        x = R[: row.train_stop, row.chosen]
        assert row.is_metric == pytest.approx(x.mean() / x.std(ddof=1))
    expected = np.concatenate([R[4:14, 0], R[14:16, 1]])
    np.testing.assert_array_equal(wf.oos_returns, expected)


def test_step_longer_than_test_leaves_reported_gaps():
    wf = walk_forward(R, None, train=4, test=2, step=3)
    assert wf.windows["test_start"].tolist() == [4, 7, 10, 13]
    assert wf.windows["train_start"].tolist() == [0, 3, 6, 9]
    assert wf.oos_index.tolist() == [4, 5, 7, 8, 10, 11, 13, 14]
    assert wf.summary["gap_periods"] == 3
    np.testing.assert_array_equal(wf.oos_returns, R[wf.oos_index, np.repeat(wf.chosen, 2)])


def test_partial_last_window_only_when_asked():
    full = walk_forward(R, None, train=4, test=5)
    assert full.windows["test_start"].tolist() == [4, 9]  # [14, 19) does not fit in 16 rows
    part = walk_forward(R, None, train=4, test=5, allow_partial=True)
    assert part.windows["test_start"].tolist() == [4, 9, 14]
    assert part.windows["test_stop"].tolist() == [9, 14, 16]
    assert part.oos_index.tolist() == list(range(4, 16))


def test_dataframe_input_carries_dates_and_parameter_tables_of_any_form():
    dates = pd.date_range("2024-01-01", periods=16, freq="D", tz="UTC")
    frame = pd.DataFrame(R, index=dates)
    wf = walk_forward(frame, PARAMS, train=4, test=2, periods_per_year=365)
    w = wf.windows
    assert w["train_first"].iloc[1] == dates[2] and w["train_last"].iloc[1] == dates[5]
    assert w["test_first"].iloc[1] == dates[6] and w["test_last"].iloc[1] == dates[7]
    assert list(wf.oos_labels) == list(dates[4:16])
    assert wf.summary["oos_sharpe_annual"] == pytest.approx(wf.summary["oos_sharpe"] * 365**0.5)

    @dataclass(frozen=True)
    class Params:
        fast: int
        slow: int

    forms = [
        {"fast": [5, 10, 20], "slow": [50, 50, 100]},
        [Params(5, 50), Params(10, 50), Params(20, 100)],
        [{"fast": 5, "slow": 50}, {"fast": 10, "slow": 50}, {"fast": 20, "slow": 100}],
    ]
    for table in forms:
        got = walk_forward(R, table, train=4, test=2).windows
        assert got["param_fast"].tolist() == [5, 5, 5, 10, 20, 20]
    grid = np.array([[5.0, 50.0], [10.0, 50.0], [20.0, 100.0]])  # a strategy's Params.grid()
    got = walk_forward(R, grid, train=4, test=2, param_names=["fast", "slow"]).windows
    assert got["param_slow"].tolist() == [50, 50, 50, 50, 100, 100]
    assert "param_p0" in walk_forward(R, grid, train=4, test=2).windows


def test_parameters_come_from_a_sweep_frames_column_levels():
    columns = pd.MultiIndex.from_arrays([[5, 10, 20], [50, 50, 100]], names=["fast", "slow"])
    wf = walk_forward(pd.DataFrame(R, columns=columns), train=4, test=2)
    assert wf.windows["param_fast"].tolist() == [5, 5, 5, 10, 20, 20]
    assert wf.stability.loc["slow", "n_changes"] == 1
    single = pd.DataFrame(R, columns=pd.Index([5, 10, 20], name="fast"))
    assert walk_forward(single, train=4, test=2).windows["param_fast"].tolist()[3] == 10
    unnamed = walk_forward(pd.DataFrame(R), train=4, test=2)
    assert list(unnamed.stability.index) == ["set"]


def test_select_mean_and_callable():
    by_mean = walk_forward(R, None, train=4, test=2, select="mean")
    assert by_mean.chosen.tolist() == [0, 0, 0, 1, 2, 2]
    # a callable objective: prefer the lowest in-sample standard deviation (set 1 on the
    # windows that straddle row 8, ties elsewhere -> lowest column)
    calls = []

    def low_vol(x):
        calls.append(x.shape)
        return -x.std(axis=0)

    wf = walk_forward(R, None, train=4, test=2, select=low_vol)
    assert calls[:2] == [(4, 3), (2, 3)]  # IS rows, then the OOS rows of window 0
    assert wf.chosen.tolist() == [0, 0, 0, 1, 0, 0]
    assert wf.windows["oos_metric"].iloc[0] == pytest.approx(-R[4:6, wf.chosen[0]].std())


@pytest.mark.filterwarnings("ignore:Degrees of freedom:RuntimeWarning")  # the user's std(ddof=1)
def test_one_period_test_windows_stitch_but_have_no_oos_sharpe():
    wf = walk_forward(R, None, train=4, test=1)
    assert wf.summary["n_windows"] == 12 and wf.oos_index.tolist() == list(range(4, 16))
    assert wf.windows["oos_metric"].isna().all()

    def sharpe(x):  # a user objective that is NaN on one row must not fail out of sample
        return x.mean(axis=0) / x.std(axis=0, ddof=1)

    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 on the one-row OOS windows
        by_callable = walk_forward(R, None, train=4, test=1, select=sharpe)
    np.testing.assert_array_equal(by_callable.chosen, wf.chosen)


def test_a_set_that_never_trades_scores_zero_not_nan():
    r = np.column_stack([np.zeros(16), R[:, 2]])  # set 0 is flat; set 2 loses early
    wf = walk_forward(r, None, train=4, test=2)
    assert wf.chosen[:3].tolist() == [0, 0, 0]  # Sharpe 0 beats a negative one
    assert wf.windows["is_metric"].iloc[0] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"train": 4, "test": 2, "step": 1}, ValueError, "step .1. must be >= test .2."),
        ({"train": 15, "test": 2}, ValueError, "no window fits"),
        ({"train": 1, "test": 2}, ValueError, "train must be >= 2"),
        ({"train": 4, "test": 0}, ValueError, "test must be >= 1"),
        ({"train": 4, "test": 2, "select": "calmar"}, ValueError, "select must be one of"),
        ({"train": 4, "test": 2, "select": lambda x: x[:, :1]}, ValueError, "one score per"),
        ({"train": 4, "test": 2, "params_table": PARAMS.iloc[:2]}, ValueError, "one row per"),
        ({"train": 4, "test": 2, "param_names": ["a"]}, ValueError, "without params_table"),
        ({"train": 4.0, "test": 2}, TypeError, "train must be an integer"),
        ({"test": 2}, TypeError, "needs train and test"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        walk_forward(R, **kwargs)


def test_nan_returns_are_refused_with_their_position():
    r = R.copy()
    r[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3, column 1"):
        walk_forward(r, None, train=4, test=2)
