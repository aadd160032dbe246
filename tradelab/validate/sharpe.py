"""Sharpe ratio statistics: PSR, expected maximum Sharpe, DSR, MinTRL and the sweep helpers.

Sources
-------
- [BLdP12] D. H. Bailey, M. López de Prado, "The Sharpe Ratio Efficient Frontier",
  Journal of Risk 15(2), 2012: the standard error of the Sharpe ratio under non-Normal IID
  returns (after Mertens 2002), the Probabilistic Sharpe Ratio (PSR) and the Minimum Track
  Record Length (MinTRL), with worked examples (reproduced in the tests).
- [BLdP14] D. H. Bailey, M. López de Prado, "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management
  40(5), 2014: the rejection threshold SR_0 (expected maximum Sharpe ratio of N trials) and the
  DSR; numerical example on pp. 9-10 of the working paper (reproduced in the tests).
- [BBLdPZ14] D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu, "Pseudo-Mathematics
  and Financial Charlatanism", Notices of the AMS 61(5), 2014: the approximation of the
  expected maximum of N standard Normal draws behind its Minimum Backtest Length.
- M. López de Prado, "Advances in Financial Machine Learning" (AFML), Wiley 2018, ch. 14
  (PSR and DSR as backtest statistics).

Conventions (all functions)
---------------------------
- ``sr``, ``sr_benchmark`` and ``sr_variance`` are **per observation**, never annualized: a
  daily series has a daily Sharpe ratio. Use :func:`annualize_sharpe` only for display.
- ``kurt`` is **Pearson** (non-excess) kurtosis: 3 for a Normal distribution.
  ``scipy.stats.kurtosis`` and ``pandas.Series.kurt`` return *excess* kurtosis by default;
  add 3.
- ``skew`` and ``kurt`` are the sample's moment ratios m3/m2^1.5 and m4/m2^2 (divisor n, as
  ``scipy.stats.skew``/``kurtosis(fisher=False)`` with ``bias=True``); the Sharpe ratio uses the
  sample standard deviation with ``ddof=1``. The papers' formulas are asymptotic, so the choice
  changes results only at O(1/n); :func:`sharpe_stats` documents and exposes it.
- Every statistic broadcasts over NumPy arrays, so a sweep scores all its parameter sets in one
  call; a scalar input gives a Python float.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from tradelab.validate._checks import FLAT_RTOL, as_float_array, scalar_or_array

#: Euler-Mascheroni constant, used by the expected maximum of N Normal draws.
EULER_GAMMA = float(np.euler_gamma)


@dataclass(frozen=True)
class SharpeStats:
    """Per-observation Sharpe ratio and the moments the PSR/DSR need, one entry per series.

    ``sr``: mean / standard deviation (``ddof`` of :func:`sharpe_stats`, default 1);
    ``n_obs``: number of finite observations; ``skew``: m3 / m2**1.5; ``kurt``: Pearson
    kurtosis m4 / m2**2 (3 for a Normal distribution), with m_k = mean((x - mean)**k).
    A constant series (variance below 1e-12 of its mean square) has NaN ``sr``, ``skew`` and
    ``kurt``.
    """

    sr: np.ndarray | float
    n_obs: np.ndarray | int
    skew: np.ndarray | float
    kurt: np.ndarray | float


def sharpe_stats(returns, axis: int = 0, ddof: int = 1) -> SharpeStats:
    """Per-observation Sharpe ratio, count, skewness and Pearson kurtosis of return series.

    Parameters
    ----------
    returns : array_like
        Per-period (excess) returns; with the default ``axis=0`` a ``(T, N)`` matrix gives one
        result per column (parameter set). NaNs are skipped per series (``n_obs`` counts the
        finite values); infinities are refused.
    axis : int
        The time axis.
    ddof : int
        Delta degrees of freedom of the standard deviation in the Sharpe ratio (default 1, the
        sample standard deviation). Skewness and kurtosis always use the sample moments with
        divisor n, as in [BLdP12] ("sample moments") and ``scipy.stats`` with ``bias=True``.

    Returns
    -------
    SharpeStats
        Arrays shaped like ``returns`` without ``axis`` (Python scalars for a 1-D input).

    Notes
    -----
    Source: the inputs of the PSR in [BLdP12] section 3 and of the DSR in [BLdP14]. Pass them
    straight on: ``probabilistic_sharpe_ratio(s.sr, s.n_obs, s.skew, s.kurt)``.
    """
    x = as_float_array(returns, "returns")
    if x.ndim == 0:
        raise ValueError("returns must have at least one dimension (a series of returns)")
    if np.isinf(x).any():
        raise ValueError("returns holds inf; fix the series (a NaN is skipped, an inf is not)")
    x = np.moveaxis(x, axis, 0)
    finite = ~np.isnan(x)
    n = finite.sum(axis=0)
    if (n < 2).any():
        raise ValueError(
            f"returns needs at least 2 finite observations per series, got {int(n.min())}"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(x, axis=0) / n
        d = np.where(finite, x - mean, 0.0)
        m2 = (d**2).sum(axis=0) / n
        m3 = (d**3).sum(axis=0) / n
        m4 = (d**4).sum(axis=0) / n
        # a constant series leaves round-off in m2: below FLAT_RTOL of the mean square it is 0
        flat = m2 <= FLAT_RTOL * (m2 + mean**2)
        m2 = np.where(flat, 0.0, m2)
        std = np.sqrt(m2 * n / (n - ddof))
        sr = np.where(flat, np.nan, mean / std)
        skew = np.where(flat, np.nan, m3 / m2**1.5)
        kurt = np.where(flat, np.nan, m4 / m2**2)
    if np.ndim(sr) == 0:
        return SharpeStats(float(sr), int(n), float(skew), float(kurt))
    return SharpeStats(sr, n, skew, kurt)


def annualize_sharpe(sr, periods_per_year: float):
    """Annualize a per-observation Sharpe ratio: ``sr * sqrt(periods_per_year)``.

    Valid for IID returns (Lo, "The Statistics of Sharpe Ratios", FAJ 2002: the IID case; serial
    correlation changes the factor). Crypto trades every day: daily bars give 365 periods a year.
    """
    ppy = _positive(periods_per_year, "periods_per_year")
    return scalar_or_array(as_float_array(sr, "sr") * np.sqrt(ppy))


def deannualize_sharpe(sr_annual, periods_per_year: float):
    """The per-observation Sharpe ratio of an annualized one: ``sr / sqrt(periods_per_year)``.

    A Sharpe *variance* scales by ``periods_per_year`` itself: an annualized variance V is
    ``V / periods_per_year`` per observation ([BLdP14] numerical example).
    """
    ppy = _positive(periods_per_year, "periods_per_year")
    return scalar_or_array(as_float_array(sr_annual, "sr_annual") / np.sqrt(ppy))


def sharpe_std_error(sr, n_obs, skew, kurt):
    """Standard deviation of the Sharpe ratio estimator under non-Normal IID returns.

    ``sqrt((1 - skew*sr + (kurt - 1)/4 * sr**2) / (n_obs - 1))`` ([BLdP12], after Mertens
    2002; the denominator of the PSR). Same conventions as the module.
    """
    sr, n_obs, skew, kurt = _sharpe_inputs(sr, n_obs, skew, kurt)
    return scalar_or_array(np.sqrt(_moment_term(sr, skew, kurt) / (n_obs - 1.0)))


def probabilistic_sharpe_ratio(sr, n_obs, skew, kurt, sr_benchmark=0.0):
    """Probabilistic Sharpe Ratio: the probability that the true Sharpe ratio exceeds a benchmark.

    ``PSR(SR*) = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - skew*SR + (kurt - 1)/4 * SR**2))``

    Source: [BLdP12] (the PSR); AFML ch. 14. The observed ``sr`` (not the benchmark) enters the
    denominator, as in the paper.

    Parameters
    ----------
    sr : array_like
        Observed per-observation Sharpe ratio(s).
    n_obs : array_like
        Number of return observations behind each ``sr``; must be >= 2.
    skew, kurt : array_like
        Skewness and Pearson kurtosis of the returns (Normal: 0 and 3); ``kurt`` >= 1.
    sr_benchmark : array_like
        The per-observation Sharpe ratio SR* to beat (default 0).

    Returns
    -------
    float or ndarray
        Probabilities in [0, 1], broadcast over the inputs. A NaN input (e.g. the Sharpe ratio
        of a series that never moved) gives NaN.
    """
    sr, n_obs, skew, kurt = _sharpe_inputs(sr, n_obs, skew, kurt)
    bench = as_float_array(sr_benchmark, "sr_benchmark")
    try:
        np.broadcast_shapes(sr.shape, n_obs.shape, bench.shape)
    except ValueError:
        raise ValueError(
            f"sr_benchmark (shape {bench.shape}) must broadcast with sr {sr.shape} and "
            f"n_obs {n_obs.shape}"
        ) from None
    z = (sr - bench) * np.sqrt(n_obs - 1.0) / np.sqrt(_moment_term(sr, skew, kurt))
    return scalar_or_array(norm.cdf(z))


def expected_max_sharpe(n_trials, sr_variance):
    """Expected maximum Sharpe ratio of ``n_trials`` independent zero-skill trials (SR_0).

    ``E[max SR] ~ sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))`` with g the
    Euler-Mascheroni constant, Z^-1 the standard Normal quantile, N = ``n_trials`` and
    V = ``sr_variance``, the variance of the trials' per-observation Sharpe ratios.

    Source: [BBLdPZ14] (the expected maximum of N standard Normals, an extreme-value
    approximation), scaled by sqrt(V) as the DSR's rejection threshold SR_0 in [BLdP14];
    AFML ch. 14.

    Parameters
    ----------
    n_trials : array_like
        Number of independent trials, >= 1. A non-integer effective count is accepted (see
        :func:`effective_n_trials`).
    sr_variance : array_like
        Variance across the trials of their per-observation Sharpe ratios, >= 0 (see
        :func:`trials_sr_variance`).

    Returns
    -------
    float or ndarray
        Per-observation Sharpe ratio. The approximation diverges to -inf as N -> 1 while the
        true expectation of the maximum of N >= 1 zero-mean draws is >= 0, so the result is
        floored at 0: exactly 0 for one trial (the DSR then equals the PSR against SR* = 0),
        and 0 for N below about 1.28 where the approximation turns negative.
    """
    n = as_float_array(n_trials, "n_trials")
    v = as_float_array(sr_variance, "sr_variance")
    if np.isnan(n).any() or (n < 1).any():
        raise ValueError("n_trials must be >= 1 (the number of trials, including the one selected)")
    if np.isnan(v).any() or (v < 0).any():
        raise ValueError("sr_variance must be >= 0 (a variance of per-observation Sharpe ratios)")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm.ppf(
            1.0 - 1.0 / (n * np.e)
        )
    z = np.where(n > 1, np.maximum(z, 0.0), 0.0)
    return scalar_or_array(np.sqrt(v) * z)


def deflated_sharpe_ratio(sr, n_obs, skew, kurt, n_trials, sr_variance):
    """Deflated Sharpe Ratio: the PSR against the expected maximum Sharpe ratio of the trials.

    ``DSR = PSR(SR_0)`` with ``SR_0 = expected_max_sharpe(n_trials, sr_variance)``: the
    probability that the true Sharpe ratio of the *selected* strategy is above zero once the
    selection among ``n_trials`` trials, the sample length and non-Normal returns are accounted
    for.

    Source: [BLdP14] (SR_0 and the DSR); AFML ch. 14. With ``n_trials=1`` the DSR equals the PSR
    against SR* = 0.

    Parameters
    ----------
    sr, n_obs, skew, kurt : array_like
        As in :func:`probabilistic_sharpe_ratio`, for the selected strategy (or every candidate:
        all broadcast).
    n_trials : array_like
        Number of independent trials (>= 1). Pass the count of parameter sets tried unless you
        have a reason to use :func:`effective_n_trials` (read its caveat).
    sr_variance : array_like
        Variance of the trials' per-observation Sharpe ratios (:func:`trials_sr_variance`).

    Returns
    -------
    float or ndarray
        Probabilities in [0, 1]; the customary bar is 0.95.
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return probabilistic_sharpe_ratio(sr, n_obs, skew, kurt, sr_benchmark=sr0)


def min_track_record_length(sr, skew, kurt, sr_benchmark=0.0, confidence=0.95):
    """Minimum Track Record Length: observations needed for PSR(SR*) to reach ``confidence``.

    ``MinTRL = 1 + (1 - skew*SR + (kurt - 1)/4 * SR**2) * (Z_a / (SR - SR*))**2``

    Source: [BLdP12] (the MinTRL). It is the ``n`` at which :func:`probabilistic_sharpe_ratio`
    equals ``confidence`` exactly.

    Parameters
    ----------
    sr, skew, kurt : array_like
        Observed per-observation Sharpe ratio, skewness and Pearson kurtosis.
    sr_benchmark : array_like
        The per-observation Sharpe ratio to beat (default 0).
    confidence : float
        Required probability, in (0, 1); default 0.95.

    Returns
    -------
    float or ndarray
        Number of observations, in the returns' own frequency and not rounded (take ``ceil``
        for whole observations; divide by periods per year for years). ``inf`` where
        ``sr <= sr_benchmark``: no track record is long enough.
    """
    sr, _, skew, kurt = _sharpe_inputs(sr, 2, skew, kurt)
    bench = as_float_array(sr_benchmark, "sr_benchmark")
    conf = as_float_array(confidence, "confidence")
    if np.isnan(conf).any() or (conf <= 0).any() or (conf >= 1).any():
        raise ValueError("confidence must be strictly between 0 and 1, e.g. 0.95")
    edge = sr - bench
    with np.errstate(divide="ignore", invalid="ignore"):
        n = 1.0 + _moment_term(sr, skew, kurt) * (norm.ppf(conf) / edge) ** 2
    n = np.where(edge > 0, n, np.where(np.isnan(edge), np.nan, np.inf))
    return scalar_or_array(n)


def trials_sr_variance(sr, ddof: int = 1, nan_policy: str = "raise") -> float:
    """Variance across trials of their per-observation Sharpe ratios: the DSR's ``sr_variance``.

    Source: [BLdP14], V[{SR_n}] in SR_0. Use every trial that was tried, losers included: the
    dispersion of the whole search is what the selected maximum is compared with.

    Parameters
    ----------
    sr : array_like
        Per-observation Sharpe ratios of all trials (e.g. ``sharpe_stats(R).sr`` of a sweep's
        ``(T, n_sets)`` return matrix).
    ddof : int
        1 (default) for the unbiased sample variance.
    nan_policy : {"raise", "omit"}
        A NaN Sharpe ratio comes from a trial whose returns never moved. "raise" (default)
        refuses it; "omit" leaves those trials out of the variance (they still count in
        ``n_trials`` if you pass them there).
    """
    x = as_float_array(sr, "sr").ravel()
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    nan = np.isnan(x)
    if nan.any():
        if nan_policy == "raise":
            raise ValueError(
                f"sr holds {int(nan.sum())} NaN Sharpe ratio(s) (trials with constant returns); "
                "pass nan_policy='omit' to leave them out of the variance"
            )
        x = x[~nan]
    if x.size <= ddof:
        raise ValueError(f"sr needs more than {ddof} finite trial(s), got {x.size}")
    return float(np.var(x, ddof=ddof))


def average_correlation(returns, axis: int = 0) -> float:
    """Average pairwise Pearson correlation between the columns (trials) of a return matrix.

    Computed in O(T*N) without forming the N x N matrix: with z the standardized columns, the
    sum of all correlations is ``|sum_j z_j|**2 / (T - 1)``; removing the N unit diagonal terms
    and dividing by N(N - 1) gives the mean off-diagonal correlation. Columns with zero variance
    are refused (their correlation is undefined).
    """
    x = as_float_array(returns, "returns")
    if x.ndim != 2:
        raise ValueError(f"returns must be 2-D (observations x trials), got shape {x.shape}")
    x = np.moveaxis(x, axis, 0)
    t, n = x.shape
    if t < 3 or n < 2:
        raise ValueError(f"returns needs >= 3 observations and >= 2 trials, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("returns holds NaN or inf; average_correlation needs complete columns")
    d = x - x.mean(axis=0)
    sd = np.sqrt((d**2).sum(axis=0) / (t - 1))
    if (sd == 0).any():
        raise ValueError(
            f"returns has {int((sd == 0).sum())} constant column(s); drop them before "
            "estimating the correlation between trials"
        )
    z = d / sd
    total = float((z.sum(axis=1) ** 2).sum()) / (t - 1)
    return (total - n) / (n * (n - 1))


def effective_n_trials(n_trials, avg_corr):
    """Approximate number of independent trials among ``n_trials`` correlated ones.

    ``N_eff = avg_corr + (1 - avg_corr) * n_trials``: a linear interpolation between the two
    limits of equicorrelated trials (1 when perfectly correlated, ``n_trials`` when
    uncorrelated), a common practitioners' approximation. López de Prado and Lewis ("Detection
    of false investment strategies using unsupervised learning methods", Quantitative Finance,
    2019) instead cluster the trials and count the clusters.

    What tradelab does: the DSR takes ``n_trials`` explicitly and the sweep passes the raw
    number of parameter sets tried. Use this only deliberately: when ``sr_variance`` is the
    empirical variance of correlated trials, that variance is already shrunk by the correlation,
    and shrinking N as well lowers SR_0 twice, letting more zero-skill winners through. Negative
    average correlations are clipped to 0 (N_eff <= n_trials).
    """
    n = as_float_array(n_trials, "n_trials")
    rho = as_float_array(avg_corr, "avg_corr")
    if np.isnan(n).any() or (n < 1).any():
        raise ValueError("n_trials must be >= 1")
    if np.isnan(rho).any() or (rho > 1).any() or (rho < -1).any():
        raise ValueError("avg_corr must be a correlation in [-1, 1]")
    rho = np.clip(rho, 0.0, 1.0)
    return scalar_or_array(rho + (1.0 - rho) * n)


# -- internals ------------------------------------------------------------------------------


def _positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def _sharpe_inputs(sr, n_obs, skew, kurt):
    sr = as_float_array(sr, "sr")
    n_obs = as_float_array(n_obs, "n_obs")
    skew = as_float_array(skew, "skew")
    kurt = as_float_array(kurt, "kurt")
    if np.isnan(n_obs).any() or (n_obs < 2).any():
        raise ValueError("n_obs must be >= 2 (the number of return observations)")
    if (kurt < 1).any():  # NaN passes through: it propagates to a NaN result
        raise ValueError(
            "kurt must be >= 1: it is Pearson kurtosis (3 for a Normal distribution); "
            "if you have excess kurtosis (scipy/pandas default), add 3"
        )
    try:
        np.broadcast_shapes(sr.shape, n_obs.shape, skew.shape, kurt.shape)
    except ValueError:
        raise ValueError(
            "sr, n_obs, skew and kurt must broadcast together, got shapes "
            f"{sr.shape}, {n_obs.shape}, {skew.shape}, {kurt.shape}"
        ) from None
    # Pearson's inequality, kurt >= skew**2 + 1, holds for every distribution (a sample's
    # moments included; equality for two-point distributions, e.g. [BLdP14]'s skew -3, kurt 10)
    with np.errstate(invalid="ignore"):
        impossible = kurt < (skew**2 + 1.0) * (1.0 - 1e-9)
    if np.any(impossible):
        raise ValueError(
            "skew and kurt are not attainable together: Pearson's inequality needs "
            "kurt >= skew**2 + 1 (kurt is Pearson kurtosis, 3 for a Normal distribution)"
        )
    return sr, n_obs, skew, kurt


def _moment_term(sr, skew, kurt):
    """``1 - skew*sr + (kurt - 1)/4 * sr**2``: >= 0 for attainable (skew, kurt), see above."""
    term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if (term <= 0).any():  # only at kurt == skew**2 + 1 exactly and sr == 2 / skew
        raise ValueError(
            "1 - skew*sr + (kurt - 1)/4*sr**2 must be > 0: the Sharpe ratio's standard error "
            "vanishes for these skew, kurt and sr"
        )
    return term
