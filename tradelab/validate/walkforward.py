"""Walk-forward optimisation over a sweep's periods x parameter-sets return matrix.

Sources: R. Pardo, "The Evaluation and Optimization of Trading Strategies" (2nd ed., Wiley
2008), the chapter on walk-forward analysis (rolling and anchored windows, the stitched
out-of-sample record, walk-forward efficiency = OOS / IS performance); M. López de Prado,
"Advances in Financial Machine Learning" (2018), section 12.2 (the walk-forward method and its
caveats: a single path, easily overfit, hence CPCV and PBO beside it).

Window arithmetic (positions are row numbers, ``stop`` exclusive). Window w = 0, 1, ...:

- ``test_start = train + w * step``, ``test_stop = test_start + test``;
- rolling: ``train_start = test_start - train`` (a fixed-length training window);
- anchored: ``train_start = 0`` (an expanding window whose first length is ``train``);
- ``train_stop = test_start``: the test window starts the period after the last training one.

Windows are produced while a full test window fits (``allow_partial=True`` adds a last, shorter
one). ``step`` defaults to ``test`` and may not be smaller, so test windows never overlap and
their returns stitch into one out-of-sample series (``step > test`` leaves gaps, which are
skipped and reported).

This module needs pandas for its tables (imported when :func:`walk_forward` runs); the rest of
:mod:`tradelab.validate` needs only numpy and scipy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from tradelab.validate._checks import FLAT_RTOL, check_int, check_matrix, first_best

_SELECT = ("sharpe", "mean")


@dataclass(frozen=True)
class WalkForwardResult:
    """Outcome of :func:`walk_forward`.

    Attributes
    ----------
    oos_returns : ndarray
        The stitched out-of-sample returns: each window's test rows of its chosen set, in order.
    oos_index : ndarray of int
        Row position of each stitched return in the input matrix.
    oos_labels : ndarray or None
        The input's index labels (dates) of those rows, when it was a pandas object.
    chosen : ndarray of int
        The chosen parameter set (column) per window.
    windows : pandas.DataFrame
        One row per window: ``train_start``, ``train_stop``, ``test_start``, ``test_stop``
        (positions, stop exclusive), ``*_first``/``*_last`` labels when the input had an index,
        ``chosen``, ``is_metric``, ``oos_metric`` and one ``param_<name>`` column per parameter.
    stability : pandas.DataFrame
        One row per parameter (and ``set`` for the column index): ``n_changes`` (windows whose
        choice differs from the previous window's), and for numeric parameters ``mean``,
        ``std`` over windows, ``grid_min``/``grid_max`` over the whole table,
        ``mean_abs_change`` between consecutive windows and ``mean_abs_change_norm`` (that
        change as a fraction of the grid's range).
    summary : dict
        ``n_windows``, ``n_oos``, ``oos_sharpe`` (per observation, of the stitched returns),
        ``oos_sharpe_annual`` (when ``periods_per_year`` was given), ``is_metric_mean``,
        ``oos_metric_mean``, ``degradation`` (= oos - is mean metric), ``efficiency``
        (= oos / is mean metric: Pardo's walk-forward efficiency taken on the selection metric
        rather than on annualized returns; NaN unless the IS mean is
        > 0), ``n_changes`` and ``gap_periods`` (rows between test windows, when step > test).
    """

    oos_returns: np.ndarray
    oos_index: np.ndarray
    oos_labels: np.ndarray | None
    chosen: np.ndarray
    windows: Any
    stability: Any
    summary: dict

    def equity(self, kind: str = "simple") -> np.ndarray:
        """Equity curve of the stitched OOS returns, starting from 1 (``"additive"``: from 0).

        ``kind``: "simple" compounds simple returns (cumprod(1 + r)), "log" exponentiates summed
        log returns, "additive" sums them (PnL in return units).
        """
        r = self.oos_returns
        if kind == "simple":
            return np.cumprod(1.0 + r)
        if kind == "log":
            return np.exp(np.cumsum(r))
        if kind == "additive":
            return np.cumsum(r)
        raise ValueError(f"kind must be 'simple', 'log' or 'additive', got {kind!r}")


def walk_forward(
    returns,
    params_table=None,
    train: int | None = None,
    test: int | None = None,
    step: int | None = None,
    anchored: bool = False,
    select: str | Callable[[np.ndarray], np.ndarray] = "sharpe",
    *,
    param_names: Sequence[str] | None = None,
    periods_per_year: float | None = None,
    allow_partial: bool = False,
) -> WalkForwardResult:
    """Walk-forward: optimise in-sample on the grid, trade the choice out of sample, stitch.

    Source: Pardo (2008), walk-forward analysis; AFML section 12.2. The module docstring gives
    the window arithmetic.

    Parameters
    ----------
    returns : array_like or pandas.DataFrame, shape (T, N)
        Per-period returns of N parameter sets (e.g. a sweep's daily returns), rows in time
        order. A DataFrame's index labels are carried into the tables. NaN/inf are refused.
    params_table : optional
        The parameter values of the N sets, for the stability report: a pandas DataFrame (one
        row per set), a dict of name -> N values, a ``(N, n_params)`` array (a strategy's
        ``Params.grid(...)``; name the columns with ``param_names``), or a sequence of N dicts
        or dataclass instances. None: taken from the named column levels of a ``returns``
        DataFrame (as vectorbt labels a sweep's columns), else only the chosen column index is
        reported.
    train, test : int
        Required. Training window length (the first length, when anchored) and test window
        length, in periods; train >= 2, test >= 1 (a one-period test window has no OOS Sharpe
        ratio: its ``oos_metric`` is NaN, while its return is still stitched).
    step : int, optional
        Periods between consecutive windows; default ``test``; must be >= ``test``.
    anchored : bool
        False: rolling windows of fixed length ``train``; True: expanding windows from row 0.
    select : "sharpe", "mean" or callable
        In-sample objective, maximised over the sets: "sharpe" (default) is mean / standard
        deviation (ddof=1; a constant set, variance below 1e-12 of its mean square, scores
        +inf, -inf or 0 by the sign of its mean, so a set that never trades scores 0); "mean"
        is the mean return. A callable gets the ``(rows, N)`` returns of a window and returns
        N scores. Ties go to the lowest
        column; scores within 1e-9 of the largest |score| of the window are tied (as in
        :func:`tradelab.validate.pbo`). The same function scores the chosen set out of sample.
    param_names : sequence of str, optional
        Column names for an array ``params_table``.
    periods_per_year : float, optional
        Adds the annualized OOS Sharpe ratio to the summary.
    allow_partial : bool
        Add a last, shorter test window when the data end inside one.

    Returns
    -------
    WalkForwardResult
    """
    import pandas as pd

    labels = None
    if isinstance(returns, pd.DataFrame):
        labels = returns.index.to_numpy()
        if params_table is None and param_names is None:
            params_table = _params_from_columns(returns.columns, pd)
        returns = returns.to_numpy(dtype=np.float64)
    r = check_matrix(returns, "returns", min_rows=3, min_cols=1)
    t, n = r.shape
    if train is None or test is None:
        raise TypeError("walk_forward needs train and test window lengths, in periods")
    train = check_int(train, "train", minimum=2)
    test = check_int(test, "test", minimum=1)
    step = test if step is None else check_int(step, "step", minimum=1)
    if step < test:
        raise ValueError(
            f"step ({step}) must be >= test ({test}): overlapping test windows cannot be "
            "stitched into one out-of-sample series"
        )
    if train + (1 if allow_partial else test) > t:
        raise ValueError(
            f"returns has {t} rows, fewer than train ({train}) + test ({test}): no window fits"
        )
    score = _scorer(select)
    params = _params_frame(params_table, n, param_names, pd)

    rows = []
    chosen = []
    pieces = []
    w = 0
    while True:
        test_start = train + w * step
        test_stop = min(test_start + test, t)
        if test_start >= t or (test_stop - test_start < test and not allow_partial):
            break
        train_start = 0 if anchored else test_start - train
        is_scores = score(r[train_start:test_start])
        c = int(first_best(is_scores[None, :])[0])  # lowest-numbered set on ties
        oos_scores = score(r[test_start:test_stop], selecting=False)  # NaN allowed OOS
        row = {
            "window": w,
            "train_start": train_start,
            "train_stop": test_start,
            "test_start": test_start,
            "test_stop": test_stop,
        }
        if labels is not None:
            row.update(
                train_first=labels[train_start],
                train_last=labels[test_start - 1],
                test_first=labels[test_start],
                test_last=labels[test_stop - 1],
            )
        row.update(chosen=c, is_metric=float(is_scores[c]), oos_metric=float(oos_scores[c]))
        if params is not None:
            for name, value in params.iloc[c].items():
                row[f"param_{name}"] = value
        rows.append(row)
        chosen.append(c)
        pieces.append(np.arange(test_start, test_stop))
        w += 1

    windows = pd.DataFrame(rows).set_index("window")
    chosen_arr = np.asarray(chosen, dtype=np.int64)
    oos_index = np.concatenate(pieces)
    set_of_row = np.repeat(chosen_arr, [p.size for p in pieces])
    oos = r[oos_index, set_of_row]
    stability = _stability(chosen_arr, params, pd)
    summary = _summary(windows, oos, chosen_arr, pieces, periods_per_year)
    return WalkForwardResult(
        oos_returns=oos,
        oos_index=oos_index,
        oos_labels=None if labels is None else labels[oos_index],
        chosen=chosen_arr,
        windows=windows,
        stability=stability,
        summary=summary,
    )


# -- internals ------------------------------------------------------------------------------


def _scorer(select):
    if isinstance(select, str):
        if select not in _SELECT:
            raise ValueError(f"select must be one of {_SELECT} or a callable, got {select!r}")
        if select == "sharpe":
            return lambda x, selecting=True: _sharpe_scores(x)
        return lambda x, selecting=True: x.mean(axis=0)
    if not callable(select):
        raise TypeError(f"select must be a string or a callable, got {type(select).__name__}")

    def call(x, selecting=True):
        out = np.asarray(select(x), dtype=np.float64)
        if out.shape != (x.shape[1],):
            raise ValueError(
                f"select must return one score per parameter set, shape ({x.shape[1]},), "
                f"got shape {out.shape}"
            )
        if selecting and np.isnan(out).any():
            raise ValueError(
                "select returned NaN in-sample; scores must be comparable (use -inf for worst)"
            )
        return out

    return call


def _sharpe_scores(x: np.ndarray) -> np.ndarray:
    """Column Sharpe ratios (ddof=1); a constant column -> +inf/-inf/0 by the sign of its mean."""
    if x.shape[0] < 2:
        return np.full(x.shape[1], np.nan)
    mean = x.mean(axis=0)
    d = x - mean
    ssd = (d * d).sum(axis=0)
    flat = ssd <= FLAT_RTOL * (x * x).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(np.where(flat, 1.0, ssd / (x.shape[0] - 1)))
    signed_inf = np.where(mean > 0, np.inf, np.where(mean < 0, -np.inf, 0.0))
    return np.where(flat, signed_inf, sr)


def _params_from_columns(columns, pd):
    """Parameter values from a sweep frame's named column levels (vectorbt's layout), or None."""
    if isinstance(columns, pd.MultiIndex):
        if any(name is None for name in columns.names):
            return None
        return columns.to_frame(index=False)
    if columns.name is None:
        return None
    return pd.DataFrame({columns.name: columns.to_numpy()})


def _params_frame(table, n: int, names, pd):
    """The parameter table as a DataFrame with one row per set, or None."""
    if table is None:
        if names is not None:
            raise ValueError("param_names was given without params_table")
        return None
    if isinstance(table, pd.DataFrame):
        frame = table.reset_index(drop=True)
    elif isinstance(table, dict):
        frame = pd.DataFrame({k: np.asarray(v) for k, v in table.items()})
    elif isinstance(table, np.ndarray):
        arr = table if table.ndim == 2 else table.reshape(-1, 1)
        cols = list(names) if names is not None else [f"p{j}" for j in range(arr.shape[1])]
        if len(cols) != arr.shape[1]:
            raise ValueError(
                f"param_names has {len(cols)} names for {arr.shape[1]} params_table columns"
            )
        frame = pd.DataFrame(arr, columns=cols)
    elif isinstance(table, Sequence) and not isinstance(table, str):
        records = [
            {f.name: getattr(item, f.name) for f in fields(item)} if is_dataclass(item) else item
            for item in table
        ]
        if not all(isinstance(rec, dict) for rec in records):
            raise TypeError("params_table sequence items must be dicts or dataclass instances")
        frame = pd.DataFrame.from_records(records)
    else:
        raise TypeError(
            "params_table must be a DataFrame, a dict of columns, a (n_sets, n_params) array or "
            f"a sequence of dicts/dataclasses, got {type(table).__name__}"
        )
    if names is not None and not isinstance(table, np.ndarray):
        raise ValueError("param_names only names the columns of an array params_table")
    if len(frame) != n:
        raise ValueError(
            f"params_table must have one row per parameter set (returns has {n} columns), "
            f"got {len(frame)}"
        )
    return frame


def _stability(chosen: np.ndarray, params, pd):
    """Per-parameter movement of the chosen values across windows (see WalkForwardResult)."""
    columns = {"set": pd.Series(chosen)}
    grid: dict[str, pd.Series | None] = {"set": None}
    if params is not None:
        for name in params.columns:
            columns[name] = params[name].iloc[chosen].reset_index(drop=True)
            grid[name] = params[name]
    out = {}
    for name, values in columns.items():
        changes = int((values.to_numpy()[1:] != values.to_numpy()[:-1]).sum())
        row: dict[str, float] = {"n_changes": changes}
        values_on_grid = grid[name]
        if values_on_grid is not None and pd.api.types.is_numeric_dtype(values):
            v = values.to_numpy(dtype=np.float64)
            lo = float(values_on_grid.min())
            hi = float(values_on_grid.max())
            step_abs = np.abs(np.diff(v))
            mean_abs = float(step_abs.mean()) if step_abs.size else float("nan")
            row.update(
                mean=float(v.mean()),
                std=float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                grid_min=lo,
                grid_max=hi,
                mean_abs_change=mean_abs,
                mean_abs_change_norm=mean_abs / (hi - lo) if hi > lo else float("nan"),
            )
        out[name] = row
    cols = [
        "n_changes",
        "mean",
        "std",
        "grid_min",
        "grid_max",
        "mean_abs_change",
        "mean_abs_change_norm",
    ]
    return pd.DataFrame.from_dict(out, orient="index").reindex(columns=cols)


def _summary(windows, oos, chosen, pieces, periods_per_year) -> dict:
    if oos.size >= 2:
        sd = oos.std(ddof=1)
        oos_sr = float(oos.mean() / sd) if sd > 0 else float("nan")
    else:
        oos_sr = float("nan")
    is_mean = float(windows["is_metric"].mean())
    oos_mean = float(windows["oos_metric"].mean())
    gaps = sum(int(b[0] - a[-1] - 1) for a, b in zip(pieces[:-1], pieces[1:]))
    summary = {
        "n_windows": int(len(windows)),
        "n_oos": int(oos.size),
        "oos_sharpe": oos_sr,
        "is_metric_mean": is_mean,
        "oos_metric_mean": oos_mean,
        "degradation": oos_mean - is_mean,
        "efficiency": oos_mean / is_mean if is_mean > 0 else float("nan"),
        "n_changes": int((chosen[1:] != chosen[:-1]).sum()),
        "gap_periods": gaps,
    }
    if periods_per_year is not None:
        summary["oos_sharpe_annual"] = oos_sr * float(np.sqrt(periods_per_year))
    return summary
