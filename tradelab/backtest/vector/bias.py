"""Bias checks reported with every sweep run.

- **Look-ahead**: for sampled parameter sets (the best ones and a seeded random few), targets are
  recomputed on data cut at several points; the targets up to each cut must be identical to the
  full run's. Any difference means the signal at bar t used data after t. The fills are checked
  the same way under the sweep's execution: every fill (bar, price, new target) inside the cut
  data must be the full run's. ``next_open`` fills a decision of bar t at bar t+1's open, one bar
  after the data it used; ``close`` fills at the deciding bar's own close, which the report flags
  as optimistic (``same_bar_fill``).
- **Warm-up**: the same sets are run again with extra history before the start (three times the
  largest window parameter, at least 500 bars); after the warm-up the targets should not depend
  on how much history preceded the start. The share of agreeing bars after the warm-up is
  reported; exponential indicators converge, so it is close to, not always exactly, 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradelab.backtest.vector.simulate import EXECUTIONS, LAG, Execution
from tradelab.core.timeutil import interval_ns
from tradelab.store.catalog import Catalog
from tradelab.strategies.contract import StrategyModule

CUTS = (0.25, 0.5, 0.75, 0.9)
SAMPLE_BEST = 5
SAMPLE_RANDOM = 5
WARMUP_OK = 0.999


def sample_sets(table: pd.DataFrame, names: list[str], select_by: str, seed: int = 7
                ) -> np.ndarray:
    """Parameter rows to check: the best by ``select_by`` and a seeded random few."""
    best = table.sort_values(select_by, ascending=False, na_position="last").head(SAMPLE_BEST)
    rest = table.drop(best.index)
    rng = np.random.default_rng(seed)
    pick = rest.iloc[rng.choice(len(rest), size=min(SAMPLE_RANDOM, len(rest)), replace=False)] \
        if len(rest) else rest
    return pd.concat([best, pick])[names].to_numpy(dtype=np.float64)


def fills(targets: np.ndarray, bars: pd.DataFrame, execution: Execution) -> np.ndarray:
    """Every fill of target positions ``(n_sets, n_bars)`` under ``execution``: rows of
    (set, decision bar, fill bar, fill price, new target), ordered by set then bar. A change
    whose fill bar falls past the last bar is not filled."""
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}, got {execution!r}")
    lag = LAG[execution]
    price = bars["open" if execution == "next_open" else "close"].to_numpy(dtype=np.float64)
    n = targets.shape[1]
    chg = np.zeros(targets.shape, dtype=bool)
    if n:
        chg[:, 0] = targets[:, 0] != 0
        chg[:, 1:] = targets[:, 1:] != targets[:, :-1]
    j, d = np.nonzero(chg)
    ok = d + lag < n
    j, d = j[ok], d[ok]
    return np.column_stack([j, d, d + lag, price[d + lag], targets[j, d]]).astype(np.float64)


def lookahead(module, bars: pd.DataFrame, P: np.ndarray,
              execution: Execution = "close") -> dict:
    """Targets and fills up to each cut equal the full run's (see the module docstring)."""
    full = module.grid(bars, P)
    full_fills = fills(full, bars, execution)
    n = len(bars)
    bad, bad_fills = [], []
    checked = 0
    for frac in CUTS:
        cut = max(2, int(n * frac))
        part = module.grid(bars.iloc[:cut], P)
        diff = np.flatnonzero((part != full[:, :cut]).any(axis=0))
        if diff.size:
            bad.append({"cut": cut, "first_bar": int(diff[0]), "bars": int(diff.size)})
        mine = fills(part, bars.iloc[:cut], execution)
        theirs = full_fills[full_fills[:, 2] < cut]
        checked += len(mine)
        if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
            k = min(len(mine), len(theirs))
            neq = np.flatnonzero((mine[:k] != theirs[:k]).any(axis=1))
            at = mine[neq[0]] if neq.size else (mine[k] if len(mine) > k else theirs[k])
            bad_fills.append({"cut": cut, "first_fill_bar": int(at[2])})
    return {"ok": not bad and not bad_fills, "execution": execution,
            "fill_lag_bars": LAG[execution],
            "same_bar_fill": LAG[execution] == 0, "cuts": [max(2, int(n * f)) for f in CUTS],
            "sets": len(P), "fills_checked": checked, "violations": bad,
            "fill_violations": bad_fills}


def warmup(module: StrategyModule, cat: Catalog, cfg, symbol: str, bars: pd.DataFrame,
           P: np.ndarray) -> dict:
    """Targets after the warm-up are independent of the history before the start."""
    names = list(module.Params.names())
    windows = [i for i, n in enumerate(names) if n.endswith(("period", "window", "lookback",
                                                             "fast", "slow", "n"))]
    longest = int(P[:, windows].max()) if windows else 0
    w = max(500, 3 * longest)
    step = interval_ns(cfg.interval)
    start = int(bars["ts"].iloc[0])
    try:
        longer = cat.bars(cfg.exchange, symbol, cfg.interval, start - w * step, cfg.end,
                          complete_only=True)
    except Exception:  # noqa: BLE001 - no earlier data: nothing to compare
        longer = bars
    extra = int((longer["ts"] < start).sum())
    if extra == 0:
        return {"ok": None, "detail": "no history before the start to compare with",
                "warmup_bars": w}
    a = module.grid(bars, P)[:, w:]
    b = module.grid(longer, P)[:, extra + w:]
    n = min(a.shape[1], b.shape[1])
    agree = float((a[:, :n] == b[:, :n]).mean()) if n else float("nan")
    return {"ok": bool(agree >= WARMUP_OK) if n else None, "agreement_after_warmup": agree,
            "warmup_bars": w, "history_bars_added": extra, "sets": len(P)}


def run_checks(module: StrategyModule, cat: Catalog, cfg, symbol: str, bars: pd.DataFrame,
               table: pd.DataFrame) -> dict:
    """Both checks on sampled sets of a finished sweep."""
    names = list(module.Params.names())
    P = sample_sets(table, names, cfg.select_by)
    return {"lookahead": lookahead(module, bars, P, cfg.execution),
            "warmup": warmup(module, cat, cfg, symbol, bars, P)}
