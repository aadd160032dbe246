"""Purged k-fold and combinatorial purged cross-validation (CPCV) with embargo.

Source: M. López de Prado, "Advances in Financial Machine Learning" (AFML), Wiley 2018:
chapter 7 (section 7.4: purging 7.4.1, embargo 7.4.2, the purged k-fold class 7.4.3) and
chapter 12 (section 12.4: combinatorial purged cross-validation, its splits and backtest paths).

Conventions
-----------
- Observation i is a *label* whose information spans the closed interval ``[t0[i], t1[i]]``
  (AFML's ``t1`` series: the label starts at ``t0`` and is only known at ``t1``). ``t0``
  must be non-decreasing (observations in time order) and ``t1 >= t0``. Times are numbers
  (e.g. the store's int64 UTC nanoseconds, or bar numbers) or ``datetime64``.
- Groups (folds) are contiguous runs of observations, the first ``n % k`` one longer
  (``numpy.array_split``), as in AFML.
- **Purging** (AFML 7.4.1) removes from training every observation whose span overlaps the span
  of any test observation: ``t0[i] <= t1[j]`` and ``t0[j] <= t1[i]`` (closed intervals: a label
  ending exactly when a test label starts is purged too).
- **Embargo** (AFML 7.4.2) additionally removes, after each contiguous test group, the
  ``h = int(embargo * n_obs)`` observations that follow the purged zone, i.e. the first h
  observations whose ``t0`` is later than the group's last ``t1`` (AFML's ``pctEmbargo``:
  training resumes h bars after the test labels' information ends). Observations *before* a
  test group need no embargo: purging already removed those that overlap it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from tradelab.validate._checks import check_int, contiguous_blocks


def purged_kfold(
    t0, t1=None, n_splits: int = 5, embargo: float = 0.0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """K-fold splits over time-ordered labels, with purging and embargo (AFML ch. 7).

    Source: AFML section 7.4 (``PurgedKFold``, snippets 7.1-7.3): test folds are contiguous
    and not shuffled; training observations overlapping a test label are purged, and an
    embargo of ``embargo * n_obs`` observations follows each test fold.

    Parameters
    ----------
    t0, t1 : array_like, shape (n_obs,)
        Start and end of each label's information span (see the module conventions). ``t1``
        defaults to ``t0`` (labels known at once: nothing to purge, the embargo still applies).
    n_splits : int
        Number of folds, 2 <= n_splits <= n_obs.
    embargo : float
        Fraction of the observations to embargo after each test fold, in [0, 1); AFML suggests
        about 0.01.

    Returns
    -------
    iterator of (train_idx, test_idx)
        Sorted int64 position arrays, one pair per fold in time order. Inputs are checked
        before the first pair is produced.
    """
    t0, t1 = _check_spans(t0, t1)
    n = t0.size
    k = check_int(n_splits, "n_splits", minimum=2, maximum=n)
    h = _embargo_count(embargo, n)
    groups = contiguous_blocks(n, k)

    def folds():
        for lo, hi in groups:
            train = _train_mask(t0, t1, [(lo, hi)], h)
            yield np.flatnonzero(train), np.arange(lo, hi, dtype=np.int64)

    return folds()


@dataclass(frozen=True)
class CPCVResult:
    """Splits and backtest paths of combinatorial purged cross-validation (AFML ch. 12).

    Attributes
    ----------
    n_groups, n_test_groups : int
        N and k.
    test_groups : ndarray of int, shape (C(N, k), k)
        The test groups of each split, splits in ``itertools.combinations`` order.
    paths : ndarray of int, shape (k/N * C(N, k), N)
        ``paths[p, g]`` is the split whose test set provides group g on backtest path p. Every
        path covers each group exactly once, and every (split, test group) pair is used by
        exactly one path (AFML 12.4, figure 12.1: the j-th path takes, for each group, the
        j-th split that tests it).
    group_bounds : ndarray of int, shape (N, 2) or None
        ``[start, stop)`` observation positions of each group, when observations were given.
    splits : list of (train_idx, test_idx) or None
        Purged and embargoed position arrays per split, when observations were given.
    """

    n_groups: int
    n_test_groups: int
    test_groups: np.ndarray
    paths: np.ndarray
    group_bounds: np.ndarray | None
    splits: list[tuple[np.ndarray, np.ndarray]] | None

    @property
    def n_splits(self) -> int:
        return int(self.test_groups.shape[0])

    @property
    def n_paths(self) -> int:
        return int(self.paths.shape[0])

    def stitch(self, oos_by_split: Sequence) -> np.ndarray:
        """Assemble per-split OOS values into one full-length series per backtest path.

        ``oos_by_split[i]`` holds split i's out-of-sample values (returns, predictions), one
        row per position of ``splits[i][1]`` in that order (extra trailing dimensions are
        kept). Returns an array of shape ``(n_paths, n_obs, ...)``: row block g of path p comes
        from split ``paths[p, g]``.
        """
        if self.splits is None or self.group_bounds is None:
            raise ValueError(
                "stitch needs observations: call cpcv with t0 (and t1) or n_obs to get splits"
            )
        if len(oos_by_split) != self.n_splits:
            raise ValueError(
                f"oos_by_split must hold one array per split ({self.n_splits}), "
                f"got {len(oos_by_split)}"
            )
        parts = []
        for i, values in enumerate(oos_by_split):
            arr = np.asarray(values)
            test_idx = self.splits[i][1]
            if arr.shape[:1] != test_idx.shape:
                raise ValueError(
                    f"oos_by_split[{i}] must have one row per test observation of split {i} "
                    f"({test_idx.size}), got shape {arr.shape}"
                )
            parts.append(arr)
        n_obs = int(self.group_bounds[-1, 1])
        out = np.empty((self.n_paths, n_obs) + parts[0].shape[1:], dtype=np.result_type(*parts))
        for p in range(self.n_paths):
            for g, (lo, hi) in enumerate(self.group_bounds):
                i = int(self.paths[p, g])
                where = np.searchsorted(self.splits[i][1], lo)
                out[p, lo:hi] = parts[i][where : where + (hi - lo)]
        return out


def cpcv(
    n_groups: int,
    n_test_groups: int,
    t0=None,
    t1=None,
    embargo: float = 0.0,
    n_obs: int | None = None,
) -> CPCVResult:
    """Combinatorial purged cross-validation: all C(N, k) splits and their backtest paths.

    Source: AFML section 12.4. The observations are cut into N contiguous groups; each split
    tests k of them and trains on the rest (purged and embargoed around every test group as in
    AFML ch. 7, see the module docstring). Each group is tested in C(N-1, k-1) splits, which
    yields phi = k/N * C(N, k) = C(N-1, k-1) complete backtest paths (N=6, k=2: 15 splits,
    5 paths).

    Parameters
    ----------
    n_groups : int
        N >= 2.
    n_test_groups : int
        k, 1 <= k < N.
    t0, t1 : array_like, optional
        Label spans (module conventions). Give them to get observation-level splits with
        purging; ``t1`` defaults to ``t0``.
    embargo : float
        Fraction of observations embargoed after each test group, in [0, 1).
    n_obs : int, optional
        Without spans, the number of observations (point labels: no purging, embargo only).

    Returns
    -------
    CPCVResult
        ``splits`` and ``group_bounds`` are None when neither spans nor ``n_obs`` are given
        (group-level splits and paths only).
    """
    n_g = check_int(n_groups, "n_groups", minimum=2)
    k = check_int(n_test_groups, "n_test_groups", minimum=1, maximum=n_g - 1)
    test_groups = np.array(list(combinations(range(n_g), k)), dtype=np.int64)
    paths = _paths(test_groups, n_g)
    assert paths.shape == (comb(n_g - 1, k - 1), n_g)

    if t0 is None:
        if t1 is not None:
            raise ValueError("t1 was given without t0: pass both label span arrays")
        if n_obs is None:
            if embargo:
                raise ValueError("embargo needs observations: pass t0/t1 or n_obs")
            return CPCVResult(n_g, k, test_groups, paths, None, None)
        t0 = np.arange(check_int(n_obs, "n_obs", minimum=1))
    elif n_obs is not None:
        raise ValueError("pass either t0/t1 or n_obs, not both")
    t0, t1 = _check_spans(t0, t1)
    n = t0.size
    if n < n_g:
        raise ValueError(f"n_groups ({n_g}) must be <= the number of observations ({n})")
    h = _embargo_count(embargo, n)
    bounds = contiguous_blocks(n, n_g)
    splits = []
    for groups in test_groups:
        tested = [tuple(bounds[g]) for g in groups]
        train = _train_mask(t0, t1, tested, h)
        test = np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in tested])
        splits.append((np.flatnonzero(train), test))
    return CPCVResult(n_g, k, test_groups, paths, bounds, splits)


# -- internals ------------------------------------------------------------------------------


def _paths(test_groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``paths[p, g]``: the p-th split (in split order) whose test set contains group g."""
    testing = [np.flatnonzero((test_groups == g).any(axis=1)) for g in range(n_groups)]
    return np.column_stack(testing)


def _train_mask(t0, t1, tested, h: int) -> np.ndarray:
    """Training mask: not tested, not overlapping a tested span, not embargoed."""
    n = t0.size
    train = np.ones(n, dtype=bool)
    for lo, hi in tested:
        start = t0[lo]  # t0 is sorted: the group's earliest start
        end = t1[lo:hi].max()
        train[lo:hi] = False
        train &= ~((t0 <= end) & (t1 >= start))  # purge (exact for contiguous groups)
        if h:
            first_after = int(np.searchsorted(t0, end, side="right"))
            train[first_after : first_after + h] = False
    return train


def _embargo_count(embargo, n: int) -> int:
    try:
        e = float(embargo)
    except (TypeError, ValueError):
        msg = f"embargo must be a fraction of the observations, got {embargo!r}"
        raise TypeError(msg) from None
    if not 0.0 <= e < 1.0:
        raise ValueError(f"embargo must be a fraction in [0, 1) (AFML uses ~0.01), got {embargo!r}")
    return int(e * n)


def _check_spans(t0, t1):
    a = _as_times(t0, "t0")
    b = a if t1 is None else _as_times(t1, "t1")
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"t0 and t1 must be 1-D, got shapes {a.shape} and {b.shape}")
    if a.size != b.size:
        raise ValueError(f"t0 and t1 must have the same length, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"t0 needs at least 2 observations, got {a.size}")
    if (a.dtype.kind == "M") != (b.dtype.kind == "M"):
        raise TypeError(
            f"t0 and t1 must both be numbers or both datetime64, got {a.dtype} and {b.dtype}"
        )
    for name, x in (("t0", a), ("t1", b)):
        missing = np.isnat(x) if x.dtype.kind == "M" else np.isnan(x)
        if missing.any():
            raise ValueError(f"{name} has a missing time at position {int(np.argmax(missing))}")
    backwards = a[1:] < a[:-1]
    if backwards.any():
        i = int(np.argmax(backwards))
        raise ValueError(
            f"t0 must be non-decreasing (observations in time order); t0[{i + 1}] < t0[{i}]"
        )
    early = b < a
    if early.any():
        i = int(np.argmax(early))
        raise ValueError(f"t1 must be >= t0 (a label ends after it starts); t1[{i}] < t0[{i}]")
    return a, b


def _as_times(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind in "iufM":
        return arr
    raise TypeError(
        f"{name} must hold numbers (e.g. int64 ns timestamps) or datetime64 values, got dtype "
        f"{arr.dtype}; for a tz-aware pandas index pass .tz_convert(None) or .asi8"
    )
