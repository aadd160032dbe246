"""Sweep runs on disk, the trial registry, and the scores that need every trial.

Layout under the store root::

    runs/<run_id>/config.json        the sweep config as run
    runs/<run_id>/metrics.parquet    one row per parameter set: set_id, parameters, metrics
    runs/<run_id>/period_returns.parquet  every set's per-period returns (long: set_id, ts, ret)
    runs/<run_id>/best.parquet       the top sets by the selection metric
    runs/<run_id>/report.json        scores (PSR, DSR, PBO), bias checks, timings
    runs/trials/family=<family>/<run_id>.parquet   every set evaluated, for the DSR

The Deflated Sharpe Ratio of a run's best set counts *all* trials ever recorded for its family:
a trial is one parameter set on one data slice (symbol, interval, start, end); re-running the
same sweep does not add trials, a new grid or a new slice does. Files are written under a
temporary name and renamed, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RUNS_DIR = "runs"
TRIALS_DIR = "trials"
TRIAL_KEY = ["params", "symbol", "interval", "start", "end"]


def new_run_id(name: str, symbol: str) -> str:
    """``<utc time>-<name>-<symbol>-<random>``, sortable by time."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{stamp}-{name}-{symbol}-{uuid.uuid4().hex[:6]}"


def write_parquet(table: pa.Table | pd.DataFrame, path: Path) -> None:
    """Write a run's table whole or not at all (a temporary file renamed into place)."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_json(doc: dict, path: Path) -> None:
    """Write a run's JSON document whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


class RunStore:
    """Reads and writes runs and trials under ``<root>/runs``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root) / RUNS_DIR

    # -- trials ---------------------------------------------------------------------------

    def record_trials(self, family: str, run_id: str, trials: pd.DataFrame) -> Path:
        """Append this run's trials to the family's registry."""
        folder = self.root / TRIALS_DIR / f"family={family}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run_id}.parquet"
        write_parquet(trials, path)
        return path

    def trials(self, family: str) -> pd.DataFrame:
        """Every distinct trial of a family (the latest record of each)."""
        folder = self.root / TRIALS_DIR / f"family={family}"
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            return pd.DataFrame(columns=[*TRIAL_KEY, "sr_period", "n_obs", "skew", "kurt"])
        df = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
        return df.drop_duplicates(TRIAL_KEY, keep="last").reset_index(drop=True)

    # -- runs -----------------------------------------------------------------------------

    def save(self, result) -> Path:
        folder = self.root / result.run_id
        folder.mkdir(parents=True, exist_ok=True)
        write_json(result.config.model_dump(mode="json"), folder / "config.json")
        write_parquet(result.metrics, folder / "metrics.parquet")
        write_parquet(result.best, folder / "best.parquet")
        pr = result.period_returns
        long = pd.DataFrame({
            "set_id": np.repeat(np.asarray(pr.columns, dtype=np.int64), len(pr)),
            "ts": np.tile(pr.index.asi8, pr.shape[1]),
            "ret": pr.to_numpy().T.ravel()})
        write_parquet(long, folder / "period_returns.parquet")
        write_json({"run_id": result.run_id, "symbol": result.symbol, "scores": result.scores,
                     "bias": result.bias, "timings": result.timings},
                    folder / "report.json")
        return folder

    def list_runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and (p / "report.json").exists())

    def load(self, run_id: str) -> dict:
        """A saved run: report, metrics, and the period-returns matrix (periods x sets)."""
        folder = self.root / run_id
        if not (folder / "report.json").exists():
            raise FileNotFoundError(f"no run {run_id!r} under {self.root}")
        report = json.loads((folder / "report.json").read_text())
        metrics = pq.read_table(folder / "metrics.parquet").to_pandas()
        long = pq.read_table(folder / "period_returns.parquet").to_pandas()
        prets = long.pivot(index="ts", columns="set_id", values="ret")
        prets.index = pd.to_datetime(prets.index, unit="ns", utc=True)
        return {"report": report, "metrics": metrics, "period_returns": prets}


def score_run(runs: RunStore, cfg, symbol: str, run_id: str, table: pd.DataFrame,
              prets: pd.DataFrame, save: bool = True) -> dict:
    """Record the run's trials, then score its best set against every trial of the family."""
    from tradelab import strategies
    from tradelab.validate import deflated_sharpe_ratio, pbo, probabilistic_sharpe_ratio

    names = list(strategies.get(cfg.strategy).Params.names())
    trials = pd.DataFrame({
        "params": [json.dumps(dict(zip(names, row)), sort_keys=True)
                   for row in table[names].to_numpy().tolist()],
        "symbol": symbol, "interval": cfg.interval, "start": cfg.start, "end": cfg.end,
        "run_id": run_id, "sr_period": table["sr_period"].to_numpy(),
        "n_obs": table["n_obs"].to_numpy(), "skew": table["skew"].to_numpy(),
        "kurt": table["kurt"].to_numpy()})
    if save:
        runs.record_trials(cfg.family_name, run_id, trials)
        all_trials = runs.trials(cfg.family_name)
    else:
        all_trials = pd.concat([runs.trials(cfg.family_name), trials]).drop_duplicates(
            TRIAL_KEY, keep="last")
    srs = all_trials["sr_period"].to_numpy(dtype=float)
    srs = srs[np.isfinite(srs)]
    n_trials = int(len(all_trials))
    sr_var = float(np.var(srs, ddof=1)) if len(srs) > 1 else 0.0
    ranked = table.sort_values(cfg.select_by, ascending=False, na_position="last")
    best = ranked.iloc[0]
    scores = {"family": cfg.family_name, "n_trials": n_trials,
              "n_trials_this_run": len(table), "sr_variance": sr_var,
              "select_by": cfg.select_by, "best_set_id": int(best["set_id"]),
              "best_params": {n: float(best[n]) for n in names},
              "best": {k: float(best[k]) for k in ("sharpe", "total_return", "max_drawdown",
                                                    "n_trades", "sr_period", "n_obs", "skew",
                                                    "kurt")}}
    if np.isfinite(best["sr_period"]) and best["n_obs"] > 2 and np.isfinite(best["kurt"]):
        args = (float(best["sr_period"]), int(best["n_obs"]), float(best["skew"]),
                float(best["kurt"]))
        scores["psr"] = float(probabilistic_sharpe_ratio(*args))
        scores["dsr"] = float(deflated_sharpe_ratio(*args, n_trials=max(n_trials, 1),
                                                    sr_variance=sr_var))
    n_periods = len(prets)
    n_splits = min(16, n_periods - n_periods % 2)
    finite = prets.loc[:, np.isfinite(prets.to_numpy()).all(axis=0)]
    if n_splits >= 2 and finite.shape[1] >= 2:
        res = pbo(finite.to_numpy(), n_splits=n_splits)
        scores["pbo"] = float(res.pbo)
        scores["pbo_n_splits"] = n_splits
    return scores
