"""Probability of Backtest Overfitting by combinatorially symmetric cross-validation (CSCV).

Source: D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu, "The Probability of
Backtest Overfitting", Journal of Computational Finance 20(4), 2017 (working paper 2013/2015):
the CSCV procedure and the statistics derived from it (PBO, performance degradation,
probability of loss).

The procedure, as implemented by :func:`pbo`:

1. ``M`` is a ``T x N`` matrix: T observations (e.g. daily returns) of N configurations
   (e.g. every parameter set of a sweep).
2. Its rows are cut into S contiguous blocks of (nearly) equal size, in time order.
3. Every one of the C(S, S/2) ways to choose S/2 blocks is an in-sample (IS) set J; the other
   S/2 blocks, its complement, are the out-of-sample (OOS) set.
4. For each split the metric (default: the Sharpe ratio) of every column is computed IS and
   OOS; n* is the IS-best column; its OOS relative rank is w = r / (N + 1), where r in [1, N]
   is its rank among the N OOS values (1 = worst, N = best); the logit is
   lambda = ln(w / (1 - w)).
5. PBO is the share of splits with lambda <= 0: the configuration that looked best IS did no
   better than the OOS median.

Ties (documented because small or discrete matrices have them, and sweeps have duplicate
columns):

- Two metric values of one split are tied when they differ by at most 1e-9 times
  the largest finite magnitude among that split's N values (equal infinities are tied). This
  makes mathematically equal values tie although floating-point sums may differ in the last
  bits; real strategies are never meaningfully distinguished at that precision.
- IS: the IS-best is the *lowest-numbered* column among those tied for the IS maximum.
- OOS: ranks are average ranks (``scipy.stats.rankdata(method="average")``): a selected column
  tied with e columns (itself included) after b strictly worse ones has rank b + (e + 1) / 2.
  A column tied with every other one sits exactly at the median: lambda = 0, counted as
  overfit, which is the honest reading (no evidence that the selection helped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from tradelab.validate._checks import (
    FLAT_RTOL,
    check_int,
    check_matrix,
    contiguous_blocks,
    first_best,
    tie_tolerance,
)

_METRICS = ("sharpe", "mean")
#: float64 elements per (combinations x configurations) work array of the vectorised path
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class PBOResult:
    """Outcome of :func:`pbo`; one entry per CSCV split in the ``*`` arrays.

    Attributes
    ----------
    pbo : float
        Probability of backtest overfitting: share of splits with ``logits <= 0``.
    logits : ndarray, shape (C,)
        lambda_c = ln(w_c / (1 - w_c)) per split (the paper's logit distribution).
    oos_rank : ndarray, shape (C,)
        w_c, the IS-best column's relative OOS rank r / (N + 1), in (0, 1).
    selected : ndarray of int, shape (C,)
        The IS-best column of each split.
    is_performance, oos_performance : ndarray, shape (C,)
        The metric of the selected column IS and OOS (the paper's performance-degradation
        scatter: OOS against IS).
    prob_loss : float
        Share of splits whose selected column has a negative OOS metric (a loss OOS).
    slope, intercept : float
        Least-squares line ``oos = intercept + slope * is`` through the scatter (NaN when the
        IS values do not vary). A slope below 0 means higher IS performance came with worse OOS.
    combinations : ndarray of int, shape (C, S/2)
        The IS blocks of each split, in ``itertools.combinations`` order.
    block_bounds : ndarray of int, shape (S, 2)
        ``[start, stop)`` rows of each block.
    metric : str
        "sharpe", "mean" or the callable's name.
    """

    pbo: float
    logits: np.ndarray
    oos_rank: np.ndarray
    selected: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    prob_loss: float
    slope: float
    intercept: float
    combinations: np.ndarray
    block_bounds: np.ndarray
    metric: str

    @property
    def n_combinations(self) -> int:
        return int(self.logits.size)

    @property
    def n_splits(self) -> int:
        return int(self.block_bounds.shape[0])


def pbo(
    performance_matrix,
    n_splits: int = 16,
    metric: str | Callable[[np.ndarray], np.ndarray] = "sharpe",
) -> PBOResult:
    """Probability of backtest overfitting of selecting the IS-best of N configurations (CSCV).

    Source: Bailey, Borwein, López de Prado, Zhu, "The Probability of Backtest Overfitting"
    (J. Computational Finance, 2017), the CSCV procedure; the module docstring restates its
    steps and the tie rules.

    Parameters
    ----------
    performance_matrix : array_like, shape (T, N)
        Per-period performance (e.g. daily returns) of N >= 2 configurations, rows in time
        order. A pandas DataFrame works (its values are used). NaN/inf are refused.
    n_splits : int
        S, the number of contiguous row blocks: even, >= 2 and <= T (default 16, i.e. 12,870
        splits). When T is not a multiple of S the first ``T % S`` blocks hold one extra row
        (``numpy.array_split``), so IS and OOS halves differ by at most S/2 rows.
    metric : "sharpe", "mean" or callable
        Performance of each column on a set of rows. "sharpe" (default): mean / sample standard
        deviation (ddof=1) per column; a column constant on a set (variance below 1e-12 of its
        mean square: round-off) scores +inf, -inf or 0 by the sign of its mean, so a parameter
        set that never trades scores 0. "mean": the column mean. Both run vectorised from block
        sums. A callable receives the ``(rows, N)`` submatrix (IS blocks, or OOS blocks,
        concatenated in time order) and returns N scores (higher is better); it is called
        twice per split, so it is slower.

    Returns
    -------
    PBOResult

    Notes
    -----
    Cost: the vectorised path is O(C*N) work with C = C(S, S/2), in chunks of bounded memory;
    N = 10,000, T = 90, S = 16 takes on the order of a second.
    """
    m = check_matrix(performance_matrix, "performance_matrix", min_rows=2, min_cols=2)
    t, n = m.shape
    s = check_int(n_splits, "n_splits", minimum=2)
    if s % 2:
        raise ValueError(f"n_splits must be even (S/2 blocks in-sample), got {s}")
    if s > t:
        raise ValueError(
            f"n_splits must be <= the number of rows of performance_matrix ({t}), got {s}"
        )
    if isinstance(metric, str):
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS} or a callable, got {metric!r}")
        metric_name = metric
    elif callable(metric):
        metric_name = getattr(metric, "__name__", type(metric).__name__)
    else:
        raise TypeError(f"metric must be a string or a callable, got {type(metric).__name__}")

    bounds = contiguous_blocks(t, s)
    half_rows = (s // 2) * int((bounds[:, 1] - bounds[:, 0]).min())
    if metric == "sharpe" and half_rows < 2:
        raise ValueError(
            f"n_splits={s} leaves {half_rows} row(s) in some IS/OOS half of a {t}-row matrix; "
            "the Sharpe ratio needs >= 2: use fewer splits or more rows"
        )
    combos = np.array(list(combinations(range(s), s // 2)), dtype=np.int64)
    assert combos.shape[0] == comb(s, s // 2)

    if isinstance(metric, str):
        selected, is_perf, oos_perf, rank = _cscv_vectorised(m, bounds, combos, metric)
    else:
        selected, is_perf, oos_perf, rank = _cscv_callable(m, bounds, combos, metric)

    omega = rank / (n + 1.0)
    logits = np.log(omega / (1.0 - omega))
    slope, intercept = _line(is_perf, oos_perf)
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        oos_rank=omega,
        selected=selected,
        is_performance=is_perf,
        oos_performance=oos_perf,
        prob_loss=float(np.mean(oos_perf < 0.0)),
        slope=slope,
        intercept=intercept,
        combinations=combos,
        block_bounds=bounds,
        metric=metric_name,
    )


# -- internals ------------------------------------------------------------------------------


def _selected_rank(oos: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Average rank (1 = worst) of ``oos[i, selected[i]]`` within row i, ties by tolerance."""
    value = oos[np.arange(oos.shape[0]), selected][:, None]
    tol = tie_tolerance(oos)
    below = np.count_nonzero(oos < value - tol, axis=1)  # inf - tol stays inf: exact for infs
    equal = np.count_nonzero(oos <= value + tol, axis=1) - below  # includes the selected one
    return below + (equal + 1) / 2.0


def _complements(combos: np.ndarray, s: int) -> np.ndarray:
    """Index of each combination's complement (its OOS blocks) within ``combos``."""
    masks = (1 << combos).sum(axis=1)
    position = {int(mask): i for i, mask in enumerate(masks)}
    full = (1 << s) - 1
    return np.array([position[full ^ int(mask)] for mask in masks], dtype=np.int64)


def _cscv_vectorised(m, bounds, combos, metric):
    """CSCV from block sums; each half-set's metric is computed once and read IS and OOS.

    The OOS set of split c is the IS set of the split holding its complement, so the metric of
    every column on every half-set is computed once, for the split of each complementary pair
    that comes first, and read both ways.
    """
    t, n = m.shape
    s = bounds.shape[0]
    mu = m.mean(axis=0)
    x = m - mu  # centring keeps the variance from sums free of cancellation
    block1 = np.add.reduceat(x, bounds[:, 0], axis=0)  # (S, N)
    block2 = np.add.reduceat(x * x, bounds[:, 0], axis=0)
    sizes = (bounds[:, 1] - bounds[:, 0]).astype(np.float64)
    total1 = block1.sum(axis=0)
    total2 = block2.sum(axis=0)
    # a half-set whose variance is round-off (FLAT_RTOL of its mean square) is constant; it can
    # only be constant if its blocks are, so only those columns are checked per split
    scale = FLAT_RTOL * (total2 + (m * m).sum(axis=0))
    block_ssd = block2 - block1**2 / sizes[:, None]
    maybe_flat = np.flatnonzero((block_ssd <= scale).any(axis=0))

    n_comb = combos.shape[0]
    indicator = np.zeros((n_comb, s))
    np.put_along_axis(indicator, combos, 1.0, axis=1)
    partner = _complements(combos, s)
    first = np.flatnonzero(np.arange(n_comb) < partner)  # one split of each complementary pair

    selected = np.empty(n_comb, dtype=np.int64)
    is_perf = np.empty(n_comb)
    oos_perf = np.empty(n_comb)
    rank = np.empty(n_comb)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for lo in range(0, first.size, chunk):
        ia = first[lo : lo + chunk]
        ib = partner[ia]
        a = indicator[ia]
        sum_a = a @ block1
        count_a = a @ sizes
        count_b = t - count_a
        if metric == "mean":
            metric_a = sum_a / count_a[:, None] + mu
            metric_b = (total1 - sum_a) / count_b[:, None] + mu
        else:
            sq_a = a @ block2
            metric_a = _sharpe(sum_a, sq_a, count_a, mu, maybe_flat)
            metric_b = _sharpe(total1 - sum_a, total2 - sq_a, count_b, mu, maybe_flat)
        for split, own, other in ((ia, metric_a, metric_b), (ib, metric_b, metric_a)):
            sel = first_best(own)
            rows = np.arange(sel.size)
            selected[split] = sel
            is_perf[split] = own[rows, sel]
            oos_perf[split] = other[rows, sel]
            rank[split] = _selected_rank(other, sel)
    return selected, is_perf, oos_perf, rank


def _sharpe(sum1, sum2, count, mu, maybe_flat):
    """Per-column Sharpe ratio (ddof=1) from sums of x - mu and its squares.

    A constant column on the set (variance within FLAT_RTOL of its mean square) scores +inf,
    -inf or 0 by the sign of its mean.
    """
    c = count[:, None]
    mean = sum1 / c
    var = sum1 * mean
    np.subtract(sum2, var, out=var)
    np.maximum(var, 0.0, out=var)
    var /= c - 1.0
    mean += mu
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = np.sqrt(var, out=var)
        np.divide(mean, sr, out=sr)
    if maybe_flat.size:
        cols = maybe_flat
        s1, s2, mc = sum1[:, cols], sum2[:, cols], mu[cols]
        ssd = s2 - s1 * s1 / c
        raw2 = s2 + 2.0 * mc * s1 + c * mc * mc  # sum of the returns' squares on the set
        flat = ssd <= FLAT_RTOL * (s2 + raw2)
        m = mean[:, cols]
        signed_inf = np.where(m > 0, np.inf, np.where(m < 0, -np.inf, 0.0))
        sr[:, cols] = np.where(flat, signed_inf, sr[:, cols])
    return sr


def _cscv_callable(m, bounds, combos, metric):
    t, n = m.shape
    s = bounds.shape[0]
    block_rows = [np.arange(lo, hi) for lo, hi in bounds]
    n_comb = combos.shape[0]
    selected = np.empty(n_comb, dtype=np.int64)
    is_perf = np.empty(n_comb)
    oos_perf = np.empty(n_comb)
    rank = np.empty(n_comb)
    for i, combo in enumerate(combos):
        in_sample = np.zeros(s, dtype=bool)
        in_sample[combo] = True
        is_rows = np.concatenate([block_rows[b] for b in range(s) if in_sample[b]])
        oos_rows = np.concatenate([block_rows[b] for b in range(s) if not in_sample[b]])
        is_metric = _call_metric(metric, m[is_rows], n)
        oos_metric = _call_metric(metric, m[oos_rows], n)
        sel = int(first_best(is_metric[None, :])[0])
        selected[i] = sel
        is_perf[i] = is_metric[sel]
        oos_perf[i] = oos_metric[sel]
        rank[i] = _selected_rank(oos_metric[None, :], np.array([sel]))[0]
    return selected, is_perf, oos_perf, rank


def _call_metric(metric, sub: np.ndarray, n: int) -> np.ndarray:
    out = np.asarray(metric(sub), dtype=np.float64)
    if out.shape != (n,):
        raise ValueError(
            f"metric must return one score per column, shape ({n},), got shape {out.shape}"
        )
    if np.isnan(out).any():
        raise ValueError("metric returned NaN; scores must be comparable (use -inf for 'worst')")
    return out


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = a + b x``; NaN when x has no spread or is not finite."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan")
    xc = x - x.mean()
    slope = float((xc * (y - y.mean())).sum() / (xc * xc).sum())
    return slope, float(y.mean() - slope * x.mean())
