"""PBO by CSCV: hand-computed small matrices, a plain reference, noise and a dominant column.

Source of the procedure: Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest
Overfitting", J. Computational Finance 20(4), 2017, section 2. Ranks are 1 = worst .. N = best,
w = rank / (N + 1), logit = ln(w / (1 - w)), PBO = share of logits <= 0.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import rankdata

from tradelab.validate import pbo

LN3 = math.log(3.0)


def test_hand_computed_mean_metric_s4_n3_with_ties():
    """T = 8 rows, N = 3 configurations (A, B, C), S = 4 blocks of 2 rows, metric = mean.

    Block means (each block is two equal rows):

             A   B   C
        b0:  1  -1   0
        b1:  0   1  -1
        b2:  1   0  -1
        b3: -1   0   1

    IS mean of a split = average of its two blocks. C(4, 2) = 6 splits:

        IS     IS means (A,B,C)   pick   OOS    OOS means (A,B,C)   rank    w     logit
        0,1    0.5,  0,  -0.5     A      2,3    0,    0,   0        2      2/4    0
        0,2    1,  -0.5, -0.5     A      1,3   -0.5,  0.5, 0        1      1/4   -ln 3
        0,3    0,  -0.5,  0.5     C      1,2    0.5,  0.5, -1       1      1/4   -ln 3
        1,2    0.5, 0.5, -1       A*     0,3    0,   -0.5,  0.5     2      2/4    0
        1,3   -0.5, 0.5,  0       B      0,2    1,   -0.5, -0.5     1.5    1.5/4 ln 0.6
        2,3    0,   0,    0       A*     0,1    0.5,  0,  -0.5      3      3/4    ln 3

    * IS ties go to the lowest column (A). OOS ties get the average rank: in split (0,1) all
    three tie (ranks 1, 2, 3 -> 2); in split (1,3) B ties C for last (1, 2 -> 1.5).
    PBO = 5/6 (every logit but the last is <= 0). The selected OOS means are
    0, -0.5, -1, 0, -0.5, 0.5: three losses, prob_loss = 1/2. IS values 0.5, 1, 0.5, 0.5, 0.5, 0:
    x-bar 0.5, y-bar -0.25, sum(xc*yc) = 0.5*(-0.25) + (-0.5)*(0.75) = -0.5, sum(xc^2) = 0.5,
    so the OOS-on-IS line has slope -1 and intercept -0.25 + 0.5 = 0.25.
    """
    blocks = np.array([[1, -1, 0], [0, 1, -1], [1, 0, -1], [-1, 0, 1]], dtype=float)
    m = np.repeat(blocks, 2, axis=0)
    r = pbo(m, n_splits=4, metric="mean")
    np.testing.assert_array_equal(r.combinations, [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    np.testing.assert_array_equal(r.selected, [0, 0, 2, 0, 1, 0])
    np.testing.assert_allclose(r.oos_rank, [2 / 4, 1 / 4, 1 / 4, 2 / 4, 1.5 / 4, 3 / 4])
    np.testing.assert_allclose(r.logits, [0.0, -LN3, -LN3, 0.0, math.log(0.6), LN3], atol=1e-15)
    assert r.pbo == pytest.approx(5 / 6)
    np.testing.assert_allclose(r.is_performance, [0.5, 1, 0.5, 0.5, 0.5, 0])
    np.testing.assert_allclose(r.oos_performance, [0, -0.5, -1, 0, -0.5, 0.5])
    assert r.prob_loss == 0.5
    assert r.slope == pytest.approx(-1.0) and r.intercept == pytest.approx(0.25)
    np.testing.assert_array_equal(r.block_bounds, [[0, 2], [2, 4], [4, 6], [6, 8]])
    assert (r.n_combinations, r.n_splits, r.metric) == (6, 4, "mean")


def test_hand_computed_sharpe_versus_mean_s2_n2():
    """T = 4, N = 2, S = 2: the Sharpe ratio picks the low-volatility column, the mean does not.

    Column A: block 0 = (0, 4), block 1 = (1, 3); column B: block 0 = (1, 2), block 1 = (2, -2).
    Two-value Sharpe ratio (ddof=1): mean / (|a - b| / sqrt 2).

        block 0: A mean 2,   SR 2 / (4/sqrt2) = 0.7071;  B mean 1.5, SR 1.5 / (1/sqrt2) = 2.1213
        block 1: A mean 2,   SR 2 / (2/sqrt2) = 1.4142;  B mean 0,   SR 0

    Sharpe: IS block 0 picks B, whose OOS SR 0 < 1.4142 ranks 1 of 2: w = 1/3, logit -ln 2;
    IS block 1 picks A, whose OOS SR 0.7071 < 2.1213 ranks 1: logit -ln 2. PBO = 1.
    Mean: A wins IS on both blocks (2 > 1.5, 2 > 0) and OOS too: w = 2/3, logit +ln 2, PBO = 0.
    """
    m = np.array([[0.0, 1.0], [4.0, 2.0], [1.0, 2.0], [3.0, -2.0]])
    by_sharpe = pbo(m, n_splits=2)
    np.testing.assert_array_equal(by_sharpe.selected, [1, 0])
    np.testing.assert_allclose(by_sharpe.is_performance, [1.5 * math.sqrt(2), math.sqrt(2)])
    np.testing.assert_allclose(by_sharpe.oos_performance, [0.0, 1 / math.sqrt(2)], atol=1e-15)
    np.testing.assert_allclose(by_sharpe.logits, [-math.log(2)] * 2)
    assert by_sharpe.pbo == 1.0
    by_mean = pbo(m, n_splits=2, metric="mean")
    np.testing.assert_array_equal(by_mean.selected, [0, 0])
    np.testing.assert_allclose(by_mean.logits, [math.log(2)] * 2)
    assert by_mean.pbo == 0.0


def test_constant_columns_follow_the_documented_sharpe_convention():
    # column 0 is a riskless +1% a period (Sharpe +inf), column 2 never trades (Sharpe 0)
    rng = np.random.default_rng(0)
    m = np.column_stack([np.full(12, 0.01), rng.normal(0, 0.01, 12), np.zeros(12)])
    r = pbo(m, n_splits=4)
    assert np.all(r.selected == 0) and np.all(np.isinf(r.is_performance))
    assert r.pbo == 0.0  # it is also the best OOS, every time: w = 3/4
    np.testing.assert_allclose(r.oos_rank, 0.75)
    assert math.isnan(r.slope)  # IS values are all +inf: no line


def test_sets_that_trade_only_part_of_the_time_score_exactly_zero_when_flat():
    """Columns 0 and 1 are flat (never in the market) in rows 0-14 and trade in rows 15-29.

    S = 6 blocks of 5 rows; the split whose IS blocks are 0, 1, 2 sees only the flat stretch:
    there both columns score exactly 0 (not NaN, not round-off of either sign) and tie, so
    the lowest, 0, is selected; column 2 loses money there. The fast path centres every
    column on its global mean, which must not leave 0/0 or sign noise behind.
    """
    rng = np.random.default_rng(0)
    m = rng.normal(0.001, 0.01, (30, 3))
    m[:15, :2] = 0.0
    m[:15, 2] -= 0.02
    r = pbo(m, n_splits=6)
    flat_split = [tuple(c) for c in r.combinations].index((0, 1, 2))
    assert r.selected[flat_split] == 0 and r.is_performance[flat_split] == 0.0
    assert np.isfinite(r.logits).all() and not np.isnan(r.oos_performance).any()
    reference = pbo(m, n_splits=6, metric=_sharpe_or_flat)
    np.testing.assert_array_equal(r.selected, reference.selected)
    np.testing.assert_allclose(r.logits, reference.logits)


def _sharpe_or_flat(x):
    """Direct Sharpe ratio with the documented convention for constant columns."""
    sd = x.std(axis=0, ddof=1)
    mean = x.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd == 0, np.sign(mean) * np.where(mean == 0, 0.0, np.inf), mean / sd)


def _reference_pbo(m, s, metric):
    """Plain transcription of the paper's steps: loops, scipy ranks, explicit complements."""
    t, n = m.shape
    blocks = np.array_split(np.arange(t), s)
    logits, selected = [], []
    for combo in combinations(range(s), s // 2):
        is_rows = np.concatenate([blocks[b] for b in combo])
        oos_rows = np.concatenate([blocks[b] for b in range(s) if b not in combo])
        # ties as documented: equal to 1e-9 of the split's largest magnitude
        is_perf = _snap(metric(m[is_rows]))
        oos_perf = _snap(metric(m[oos_rows]))
        best = int(np.flatnonzero(is_perf == is_perf.max())[0])
        w = rankdata(oos_perf, method="average")[best] / (n + 1)
        logits.append(math.log(w / (1 - w)))
        selected.append(best)
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits, np.array(selected)


def _snap(values):
    """Round values to a grid of 1e-10 of the largest magnitude, so near-equal ones tie."""
    step = 1e-10 * np.abs(values).max()
    return np.round(values / step) * step if step > 0 else values


def _sharpe(x):
    return x.mean(axis=0) / x.std(axis=0, ddof=1)


def _mean(x):
    return x.mean(axis=0)


@pytest.mark.parametrize(("t", "n", "s"), [(8, 3, 2), (10, 4, 4), (23, 5, 6), (40, 7, 8)])
def test_vectorised_matches_the_reference_with_ties(t, n, s):
    rng = np.random.default_rng(t * 100 + n)
    m = rng.integers(-3, 4, size=(t, n)).astype(float)  # small integers: many ties
    m[:, 0] += rng.normal(0, 0.1, t)  # and one column without variance ties
    for name, fn in (("mean", _mean), ("sharpe", _sharpe)):
        expected_pbo, expected_logits, expected_sel = _reference_pbo(m, s, fn)
        got = pbo(m, n_splits=s, metric=name)
        np.testing.assert_array_equal(got.selected, expected_sel)
        np.testing.assert_allclose(got.logits, expected_logits, rtol=1e-12, atol=1e-12)
        assert got.pbo == expected_pbo
        by_callable = pbo(m, n_splits=s, metric=fn)
        np.testing.assert_array_equal(by_callable.selected, expected_sel)
        np.testing.assert_allclose(by_callable.logits, expected_logits, rtol=1e-12, atol=1e-12)
        assert by_callable.metric == fn.__name__


def test_uneven_blocks_follow_array_split():
    m = np.random.default_rng(1).normal(size=(10, 3))
    r = pbo(m, n_splits=4)
    np.testing.assert_array_equal(r.block_bounds, [[0, 3], [3, 6], [6, 8], [8, 10]])


def test_pure_noise_gives_pbo_near_one_half():
    """IID noise: the IS winner's OOS rank is uniform on 1..N, so E[PBO] = 1/2 for even N.

    One matrix's PBO is very noisy (its C(S, S/2) splits overlap; sd ~0.19 here), so the test
    averages 200 seeded matrices (T = 128, N = 50, S = 8): standard error ~0.014, tolerance
    0.045 (about 3 standard errors).
    """
    values = [
        pbo(np.random.default_rng(1000 + seed).normal(0, 0.01, (128, 50)), n_splits=8).pbo
        for seed in range(200)
    ]
    assert np.mean(values) == pytest.approx(0.5, abs=0.045)


def test_a_dominant_column_gives_pbo_near_zero():
    m = np.random.default_rng(2).normal(0, 0.01, (256, 50))
    m[:, 7] += 0.005  # a true Sharpe of 0.5 per period against 0 for the rest
    r = pbo(m, n_splits=16)
    assert r.pbo < 0.01
    assert np.bincount(r.selected).argmax() == 7
    assert r.prob_loss < 0.01


def test_sweep_sized_matrix_has_every_split():
    """N = 10,000 configurations, T = 90 days, S = 16: 12,870 splits (timed by
    benchmarks/validate_pbo.py)."""
    m = np.random.default_rng(3).normal(0, 0.01, (90, 10_000))
    r = pbo(m, n_splits=16)
    assert r.n_combinations == 12_870 and r.logits.shape == (12_870,)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_splits": 3}, ValueError, "n_splits must be even"),
        ({"n_splits": 0}, ValueError, "n_splits must be >= 2"),
        ({"n_splits": 12}, ValueError, "n_splits must be <= the number of rows"),
        ({"n_splits": 2.0}, TypeError, "n_splits must be an integer"),
        ({"n_splits": 2, "metric": "median"}, ValueError, "metric must be one of"),
        ({"n_splits": 2, "metric": lambda x: x[0, :1]}, ValueError, "one score per column"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    m = np.random.default_rng(4).normal(size=(10, 3))
    with pytest.raises(error, match=message):
        pbo(m, **kwargs)


def test_bad_matrices_are_named():
    with pytest.raises(ValueError, match="at least 2 columns"):
        pbo(np.zeros((8, 1)), n_splits=2)
    with pytest.raises(ValueError, match="must be 2-D"):
        pbo(np.zeros(8), n_splits=2)
    bad = np.zeros((8, 3))
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="row 5, column 2"):
        pbo(bad, n_splits=2)
    with pytest.raises(ValueError, match="Sharpe ratio needs >= 2"):
        pbo(np.random.default_rng(0).normal(size=(3, 2)), n_splits=2)
