"""Purged k-fold and CPCV: hand-made spans with the expected train sets written out, counts.

Source: López de Prado, Advances in Financial Machine Learning (2018), ch. 7 (purging 7.4.1,
embargo 7.4.2, purged k-fold 7.4.3) and ch. 12 (CPCV, section 12.4 and figure 12.1: N = 6
groups, k = 2 test groups, 15 splits, 5 backtest paths).
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest

from tradelab.validate import cpcv, purged_kfold

# Ten labels. Label i starts at t0 = i and its information ends at t1 (same units):
#
#   i    0  1  2  3  4  5  6  7  8  9
#   t0   0  1  2  3  4  5  6  7  8  9
#   t1   1  5  2  4  4  6  9  7  8  9
#
# Label 1 spans 1..5 and label 6 spans 6..9: both reach far past their neighbours.
T0 = np.arange(10)
T1 = np.array([1, 5, 2, 4, 4, 6, 9, 7, 8, 9])


def test_purged_kfold_hand_case():
    """Three folds: rows 0-3, 4-6, 7-9 (numpy.array_split of 10 into 3).

    Fold 0 tests 0-3, whose labels cover [0, 5]. Purged: 4 (starts at 4) and 5 (starts at 5),
    both inside [0, 5]. Train 6, 7, 8, 9.
    Fold 1 tests 4-6, labels covering [4, 9]. Purged on the left: 1 (ends at 5) and 3 (ends at
    4), whose labels reach into the test span; 0 (ends 1) and 2 (ends 2) stay. On the right
    7, 8, 9 start before 9, the end of test label 6: purged. Train 0, 2.
    Fold 2 tests 7-9, covering [7, 9]. Purged: 6 (ends at 9). Train 0-5.
    """
    folds = list(purged_kfold(T0, T1, n_splits=3))
    assert [test.tolist() for _, test in folds] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [train.tolist() for train, _ in folds] == [[6, 7, 8, 9], [0, 2], [0, 1, 2, 3, 4, 5]]


def test_purged_kfold_hand_case_with_embargo():
    """embargo = 0.2 of 10 observations: h = 2 observations after each test fold's labels end.

    Fold 0's labels end at 5; the first observations starting after 5 are 6 and 7: embargoed,
    train 8, 9. Fold 1's labels end at 9: nothing starts later, train stays 0, 2. Fold 2 is
    last: nothing follows. Observations before a test fold are never embargoed.
    """
    folds = list(purged_kfold(T0, T1, n_splits=3, embargo=0.2))
    assert [train.tolist() for train, _ in folds] == [[8, 9], [0, 2], [0, 1, 2, 3, 4, 5]]


def test_embargo_on_point_labels():
    """t1 = t0 (labels known at once): nothing to purge; 20 observations, embargo 0.1 -> h = 2."""
    t = np.arange(20)
    folds = list(purged_kfold(t, n_splits=4, embargo=0.1))
    expected = [
        list(range(7, 20)),  # test 0-4, embargo 5 and 6
        list(range(0, 5)) + list(range(12, 20)),  # test 5-9, embargo 10 and 11
        list(range(0, 10)) + list(range(17, 20)),  # test 10-14, embargo 15 and 16
        list(range(0, 15)),  # test 15-19: nothing follows
    ]
    assert [train.tolist() for train, _ in folds] == expected
    # embargo = 0.09 of 20 is 1.8 observations: AFML's int() makes it 1
    first_train = next(iter(purged_kfold(t, n_splits=4, embargo=0.09)))[0]
    assert first_train[0] == 6


def test_datetime_spans_give_the_same_folds():
    day = np.datetime64("2024-01-01", "D")
    t0 = day + T0.astype("timedelta64[D]")
    t1 = (day + T1.astype("timedelta64[D]")).astype("datetime64[ns]")  # units may differ
    got = [train.tolist() for train, _ in purged_kfold(t0, t1, n_splits=3, embargo=0.2)]
    assert got == [[8, 9], [0, 2], [0, 1, 2, 3, 4, 5]]


def _brute_force_train(t0, t1, test, h):
    """The definition, pair by pair: not tested, overlapping no test label, not embargoed."""
    n = len(t0)
    test = set(test.tolist())
    groups, run = [], []
    for i in sorted(test):
        if run and i != run[-1] + 1:
            groups.append(run)
            run = []
        run.append(i)
    groups.append(run)
    embargoed = set()
    for g in groups:
        end = max(t1[j] for j in g)
        after = [i for i in range(n) if t0[i] > end][:h]
        embargoed.update(after)
    keep = []
    for i in range(n):
        overlaps = any(t0[i] <= t1[j] and t0[j] <= t1[i] for j in test)
        if i not in test and not overlaps and i not in embargoed:
            keep.append(i)
    return keep


def test_random_spans_never_leak_and_match_the_definition():
    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(15, 60))
        t0 = np.sort(rng.integers(0, 100, n))
        t1 = t0 + rng.geometric(0.3, n) - 1
        for train, test in purged_kfold(t0, t1, n_splits=int(rng.integers(2, 6)), embargo=0.05):
            for i in train:  # no training label overlaps a test label
                assert not np.any((t0[i] <= t1[test]) & (t0[test] <= t1[i]))
            assert train.tolist() == _brute_force_train(t0, t1, test, int(0.05 * n))
        for train, test in cpcv(6, 2, t0, t1, embargo=0.05).splits:  # n >= 15 >= 6 groups
            assert train.tolist() == _brute_force_train(t0, t1, test, int(0.05 * n))


@pytest.mark.parametrize(
    ("n_groups", "k"),
    [(6, 2), (5, 1), (6, 3), (8, 2), (10, 4), (4, 3), (7, 1), (12, 6)],
)
def test_cpcv_split_and_path_counts(n_groups, k):
    r = cpcv(n_groups, k)
    assert r.n_splits == comb(n_groups, k)
    assert r.n_paths == k * comb(n_groups, k) // n_groups == comb(n_groups - 1, k - 1)
    assert r.paths.shape == (r.n_paths, n_groups)
    used = set()
    for p in range(r.n_paths):
        for g in range(n_groups):  # every path covers every group once, from a split testing it
            split = int(r.paths[p, g])
            assert g in r.test_groups[split]
            used.add((split, g))
    # and every (split, test group) pair feeds exactly one path
    assert used == {(s, int(g)) for s, groups in enumerate(r.test_groups) for g in groups}
    assert len(used) == r.n_paths * n_groups
    assert r.splits is None and r.group_bounds is None


def test_cpcv_book_example_n6_k2():
    """AFML figure 12.1: 15 splits, each group tested 5 times, 5 paths.

    Splits in order: 0:(0,1) 1:(0,2) 2:(0,3) 3:(0,4) 4:(0,5) 5:(1,2) 6:(1,3) 7:(1,4) 8:(1,5)
    9:(2,3) 10:(2,4) 11:(2,5) 12:(3,4) 13:(3,5) 14:(4,5). Path p takes, for each group, the
    p-th split testing it: group 0 is tested by splits 0-4, group 1 by 0, 5, 6, 7, 8, ...
    """
    r = cpcv(6, 2)
    assert [tuple(g) for g in r.test_groups] == list(combinations(range(6), 2))
    expected = np.array(
        [
            # g0 g1  g2  g3  g4  g5
            [0, 0, 1, 2, 3, 4],
            [1, 5, 5, 6, 7, 8],
            [2, 6, 9, 9, 10, 11],
            [3, 7, 10, 12, 12, 13],
            [4, 8, 11, 13, 14, 14],
        ]
    )
    np.testing.assert_array_equal(r.paths, expected)


# Twelve labels in six groups of two, for CPCV:
#
#   i    0  1  2  3  4  5  6  7  8  9 10 11
#   t1   1  2  3  3  5  5  8  7  8  9 11 11     (t0 = i)
#   g    0  0  1  1  2  2  3  3  4  4  5  5
C_T0 = np.arange(12)
C_T1 = np.array([1, 2, 3, 3, 5, 5, 8, 7, 8, 9, 11, 11])


def test_cpcv_purging_and_embargo_hand_case():
    """Split testing groups 1 and 4 (observations 2, 3 and 8, 9), and split testing 0 and 1.

    Groups 1 and 4: group 1's labels cover [2, 3]; label 1 (1..2) overlaps: purged. Group 4's
    cover [8, 9]; label 6 (6..8) overlaps: purged (label 7, 7..7, does not). Train 0, 4, 5, 7,
    10, 11. With embargo 0.1 (h = int(1.2) = 1): the first observation starting after 3 is 4,
    after 9 it is 10: both embargoed. Train 0, 5, 7, 11.

    Groups 0 and 1 (adjacent, observations 0-3): nothing left of them; group 0's embargo falls
    on test observation 3, group 1's (labels end at 3) on 4. Train 5-11 with the embargo,
    4-11 without.
    """
    plain = cpcv(6, 2, C_T0, C_T1)
    embargoed = cpcv(6, 2, C_T0, C_T1, embargo=0.1)
    i14 = [tuple(g) for g in plain.test_groups].index((1, 4))
    i01 = [tuple(g) for g in plain.test_groups].index((0, 1))
    assert plain.splits[i14][1].tolist() == [2, 3, 8, 9]
    assert plain.splits[i14][0].tolist() == [0, 4, 5, 7, 10, 11]
    assert embargoed.splits[i14][0].tolist() == [0, 5, 7, 11]
    assert plain.splits[i01][0].tolist() == list(range(4, 12))
    assert embargoed.splits[i01][0].tolist() == list(range(5, 12))
    np.testing.assert_array_equal(
        plain.group_bounds, [[0, 2], [2, 4], [4, 6], [6, 8], [8, 10], [10, 12]]
    )


def test_cpcv_with_one_test_group_is_purged_kfold():
    for embargo in (0.0, 0.1):
        folds = list(purged_kfold(C_T0, C_T1, n_splits=4, embargo=embargo))
        r = cpcv(4, 1, C_T0, C_T1, embargo=embargo)
        assert r.n_paths == 1
        for (train, test), (c_train, c_test) in zip(folds, r.splits):
            assert train.tolist() == c_train.tolist() and test.tolist() == c_test.tolist()


def test_stitch_assembles_each_path_from_its_splits():
    r = cpcv(6, 2, n_obs=20)  # groups of 4, 4, 3, 3, 3, 3 observations
    # split s "predicts" 1000 * s + observation index on its test rows
    oos = [1000 * s + test for s, (_, test) in enumerate(r.splits)]
    paths = r.stitch(oos)
    assert paths.shape == (5, 20)
    for p in range(5):
        for g, (lo, hi) in enumerate(r.group_bounds):
            expected = 1000 * r.paths[p, g] + np.arange(lo, hi)
            np.testing.assert_array_equal(paths[p, lo:hi], expected)
    # extra dimensions (e.g. several assets) ride along
    two_cols = [np.column_stack([v, -v]) for v in oos]
    np.testing.assert_array_equal(r.stitch(two_cols)[:, :, 1], -paths)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: list(purged_kfold(T0, T1, n_splits=1)), ValueError, "n_splits must be >= 2"),
        (lambda: list(purged_kfold(T0, T1, n_splits=11)), ValueError, "n_splits must be <= 10"),
        (lambda: purged_kfold(T0, T1, 3, embargo=1.0), ValueError, "embargo must be a fraction"),
        (lambda: purged_kfold(T0, T1[:-1], 3), ValueError, "same length"),
        (lambda: purged_kfold(T0, T0 - 1, 3), ValueError, r"t1 must be >= t0.*t1\[0\]"),
        (lambda: purged_kfold(T0[::-1], T0[::-1], 3), ValueError, "non-decreasing"),
        (lambda: purged_kfold(np.array(["a", "b"]), None, 2), TypeError, "t0 must hold"),
        (lambda: purged_kfold([0.0, np.nan, 2.0], None, 2), ValueError, "missing time"),
        (lambda: cpcv(1, 1), ValueError, "n_groups must be >= 2"),
        (lambda: cpcv(6, 6), ValueError, "n_test_groups must be <= 5"),
        (lambda: cpcv(6, 0), ValueError, "n_test_groups must be >= 1"),
        (lambda: cpcv(6, 2, embargo=0.1), ValueError, "embargo needs observations"),
        (lambda: cpcv(6, 2, T0[:5]), ValueError, "n_groups .6. must be <= the number"),
        (lambda: cpcv(6, 2).stitch([]), ValueError, "stitch needs observations"),
        (lambda: cpcv(3, 1, n_obs=6).stitch([[1]] * 3), ValueError, "one row per test"),
    ],
)
def test_bad_inputs_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
