"""Walk-forward over a saved sweep run.

The run's per-period returns of every parameter set are the grid; :func:`tradelab.validate.
walk_forward` picks the best set in each training window and trades it in the next test window.
The stitched out-of-sample returns are scored with the PSR and with the Deflated Sharpe Ratio
counting every trial of the family (the most conservative reading: the walk-forward's choices
were made among all of them). Results are saved beside the run (``walkforward.json``,
``walkforward_oos.parquet``: ``ts``, each OOS period's timestamp in int64 ns UTC, and ``ret``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tradelab.backtest.runs import RunStore, write_json, write_parquet
from tradelab.compute import Backend, InProcess, Job
from tradelab.core.timeutil import interval_ns
from tradelab.store.paths import resolve_root


def walk_forward_run(run_id: str, train: int, test: int, *, step: int | None = None,
                     anchored: bool = False, select: str = "sharpe", store=None,
                     save: bool = True) -> dict:
    """Walk-forward on a saved run; returns the result, the window table and the scores."""
    from tradelab import strategies
    from tradelab import validate as v

    root = resolve_root(store)
    runs = RunStore(root)
    data = runs.load(run_id)
    cfg = json.loads((runs.root / run_id / "config.json").read_text())
    names = list(strategies.get(cfg["strategy"]).Params.names())
    prets = data["period_returns"]
    ok = np.isfinite(prets.to_numpy()).all(axis=0)
    prets = prets.loc[:, ok]
    params = data["metrics"].set_index("set_id").loc[prets.columns, names].reset_index()
    ppy = 365 * 86_400 * 10**9 / interval_ns(cfg.get("period", "1d"))
    wf = v.walk_forward(prets, params[names], train=train, test=test, step=step,
                        anchored=anchored, select=select, periods_per_year=ppy)
    oos = np.asarray(wf.oos_returns, dtype=float)
    stats = v.sharpe_stats(oos)
    family = cfg.get("family") or cfg["strategy"]
    trials = runs.trials(family)
    srs = trials["sr_period"].to_numpy(dtype=float)
    srs = srs[np.isfinite(srs)]
    scores = {"family": family, "n_trials": int(len(trials)), "windows": len(wf.windows),
              "oos_periods": int(len(oos)), "oos_sr_period": float(stats.sr),
              "oos_sharpe_annualized": float(v.annualize_sharpe(stats.sr, ppy)),
              "oos_total_return": float(np.prod(1 + oos) - 1)}
    if np.isfinite(stats.sr) and stats.n_obs > 2 and np.isfinite(stats.kurt):
        args = (float(stats.sr), int(stats.n_obs), float(stats.skew), float(stats.kurt))
        scores["oos_psr"] = float(v.probabilistic_sharpe_ratio(*args))
        scores["oos_dsr"] = float(v.deflated_sharpe_ratio(
            *args, n_trials=max(len(trials), 1),
            sr_variance=float(np.var(srs, ddof=1)) if len(srs) > 1 else 0.0))
    # the OOS periods' own timestamps (the walk-forward's oos_index holds row positions)
    oos_ts = (pd.DatetimeIndex(wf.oos_labels) if wf.oos_labels is not None
              and isinstance(prets.index, pd.DatetimeIndex) else None)
    windows = wf.windows.copy()
    windows["chosen_set_id"] = [int(params["set_id"].iloc[int(c)]) for c in windows["chosen"]] \
        if "chosen" in windows else None
    result = {"run_id": run_id, "train": train, "test": test, "step": step or test,
              "anchored": anchored, "select": select, "scores": scores,
              "summary": _plain(wf.summary), "stability": _plain(wf.stability),
              "windows": windows, "oos_returns": pd.Series(oos, index=oos_ts)}
    if save:
        save_walk_forward(result, root)
    return result


def save_walk_forward(result: dict, store) -> None:
    """Write a walk-forward's result beside its run (``walkforward.json``,
    ``walkforward_oos.parquet``) and set ``result["path"]``."""
    runs = RunStore(resolve_root(store))
    run_id, windows = result["run_id"], result["windows"]
    oos_s: pd.Series = result["oos_returns"]
    oos = oos_s.to_numpy(dtype=float)
    oos_ts = oos_s.index if isinstance(oos_s.index, pd.DatetimeIndex) else None
    folder = runs.root / run_id
    write_json({k: val for k, val in result.items() if k not in ("windows", "oos_returns")}
                | {"windows": json.loads(windows.to_json(orient="records", date_format="iso",
                                                         default_handler=str))},
                folder / "walkforward.json")
    oos_df = pd.DataFrame({"ret": oos})
    if oos_ts is not None:  # int64 ns UTC, the store's convention
        oos_df.insert(0, "ts", oos_ts.tz_convert("UTC").as_unit("ns").asi8)
    write_parquet(oos_df, folder / "walkforward_oos.parquet")
    result["path"] = str(Path(folder))


def _one_run(shared: dict, run_id: str) -> dict:
    """One saved run's walk-forward, on a worker (it reads the run from the store)."""
    return walk_forward_run(run_id, save=False, **shared)


def walk_forward_runs(run_ids: list[str], train: int, test: int, *, step: int | None = None,
                      anchored: bool = False, select: str = "sharpe", store=None,
                      save: bool = True, backend: Backend | None = None) -> list[dict]:
    """:func:`walk_forward_run` on each of several saved runs, in parallel on ``backend``
    (default: in this process); each result is saved here as it arrives. Results in the
    order of ``run_ids``."""
    root = str(resolve_root(store))
    shared = dict(train=train, test=test, step=step, anchored=anchored, select=select,
                  store=root)
    out: list[dict] = [{} for _ in run_ids]
    for i, res in (backend or InProcess()).run(Job(_one_run, shared, name="walkforward"),
                                               run_ids):
        if save:
            save_walk_forward(res, root)
        out[i] = res
    return out


def _plain(x):
    """Summary/stability objects as plain JSON-able values."""
    if isinstance(x, pd.DataFrame):  # keyed by its index (e.g. parameter names)
        if isinstance(x.index, pd.RangeIndex):
            return json.loads(x.to_json(orient="records", default_handler=str))
        return json.loads(x.to_json(orient="index", default_handler=str))
    if isinstance(x, pd.Series):
        return json.loads(x.to_json(default_handler=str))
    if isinstance(x, dict):
        return {k: _plain(val) for k, val in x.items()}
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x
