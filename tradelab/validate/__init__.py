"""Validation statistics for the research step: is a backtest's edge real, or selected noise?

- :mod:`.sharpe`: per-observation Sharpe statistics, the Probabilistic Sharpe Ratio, the
  expected maximum Sharpe ratio of N trials, the Deflated Sharpe Ratio and the Minimum Track
  Record Length (Bailey and López de Prado 2012, 2014);
- :mod:`.cscv`: the probability of backtest overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, López de Prado and Zhu 2017);
- :mod:`.cv`: purged k-fold with embargo and combinatorial purged cross-validation with its
  backtest paths (López de Prado, Advances in Financial Machine Learning, ch. 7 and 12);
- :mod:`.walkforward`: rolling and anchored walk-forward optimisation over a sweep's
  periods x parameter-sets return matrix, stitched out-of-sample returns and parameter
  stability.

Everything is per observation (never annualized) and kurtosis is Pearson's (Normal = 3). The
package needs numpy and scipy only; :func:`walk_forward` imports pandas for its tables.
"""

from tradelab.validate.cscv import PBOResult, pbo
from tradelab.validate.cv import CPCVResult, cpcv, purged_kfold
from tradelab.validate.sharpe import (
    SharpeStats,
    annualize_sharpe,
    average_correlation,
    deannualize_sharpe,
    deflated_sharpe_ratio,
    effective_n_trials,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    sharpe_stats,
    sharpe_std_error,
    trials_sr_variance,
)
from tradelab.validate.walkforward import WalkForwardResult, walk_forward

__all__ = [
    "CPCVResult",
    "PBOResult",
    "SharpeStats",
    "WalkForwardResult",
    "annualize_sharpe",
    "average_correlation",
    "cpcv",
    "deannualize_sharpe",
    "deflated_sharpe_ratio",
    "effective_n_trials",
    "expected_max_sharpe",
    "min_track_record_length",
    "pbo",
    "probabilistic_sharpe_ratio",
    "purged_kfold",
    "sharpe_stats",
    "sharpe_std_error",
    "trials_sr_variance",
    "walk_forward",
]
