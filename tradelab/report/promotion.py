"""The promotion gate: a saved sweep run either earns a promoted config or is refused.

Gates (thresholds in ``configs/promotion.yaml``, :class:`PromotionConfig`):

- ``dsr``: Deflated Sharpe Ratio of the run's chosen (best) set, recomputed against *every*
  trial of the family in the store's trial registry, >= ``dsr_min``;
- ``pbo``: the sweep's probability of backtest overfitting <= ``pbo_max``;
- ``oos_sharpe``: annualised Sharpe of the walk-forward's stitched out-of-sample returns
  >= ``oos_sharpe_min`` (the walk-forward saved beside the run; computed and saved if missing);
- ``trades``: trades of the chosen set >= ``min_trades``;
- ``lookahead`` and ``warmup``: the sweep's bias checks passed;
- ``agreement``: the event backtester agrees with the sweep on the chosen set within
  ``agreement_tolerance`` (``tradelab.backtest.event.agreement``: the sweep's trades for the
  chosen set re-created, the stored trades replayed through the event backtester with the
  same kernel; same trades, all matched, PnL within the tolerance, relative). A check that is
  unavailable or cannot run FAILS the gate; it never passes by default.

Everything is read from the saved run (``runs/<run_id>/``) and the family's trial registry, so
the verdict reproduces from them alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from tradelab.backtest.runs import RunStore
from tradelab.errors import ConfigError, TradelabError
from tradelab.report.provenance import stamp
from tradelab.yamlconfig import load_model

DEFAULT_CONFIG = Path("configs/promotion.yaml")
DEFAULT_OUT = Path("configs/promoted")


class WalkForwardWindows(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train: int = Field(default=48, gt=1)
    test: int = Field(default=12, gt=0)


class PromotionConfig(BaseModel):
    """Thresholds of the promotion gates."""

    model_config = ConfigDict(extra="forbid")
    dsr_min: float = Field(default=0.95, ge=0, le=1)
    pbo_max: float = Field(default=0.2, ge=0, le=1)
    oos_sharpe_min: float = 1.0
    min_trades: int = Field(default=20, ge=0)
    lookahead_required: bool = True
    warmup_required: bool = True
    agreement_tolerance: float = Field(default=0.01, gt=0)
    walkforward: WalkForwardWindows = WalkForwardWindows()


def load_promotion_config(path: str | Path = DEFAULT_CONFIG) -> PromotionConfig:
    """Read and validate ``configs/promotion.yaml``."""
    return load_model(PromotionConfig, path, "promotion config")


@dataclass
class Gate:
    """One gate's outcome: ``value`` compared with ``threshold`` by ``op``."""

    name: str
    passed: bool
    value: Any
    threshold: Any
    op: str
    reason: str = ""

    def line(self) -> str:
        v = f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)
        t = f"{self.threshold:.4g}" if isinstance(self.threshold, float) else str(self.threshold)
        text = f"{self.name}: {v} (needs {self.op} {t})"
        return text + (f": {self.reason}" if self.reason else "")


@dataclass
class Verdict:
    """All gates of one run; ``passed`` only when every gate passed."""

    strategy: str
    run_id: str
    params: dict[str, float]
    symbols: list[str]
    gates: list[Gate] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "run_id": self.run_id,
            "passed": self.passed,
            "params": self.params,
            "symbols": self.symbols,
            "gates": [asdict(g) for g in self.gates],
        }


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _at_least(name: str, value: Any, threshold: float, reason: str = "") -> Gate:
    v = _num(value)
    return Gate(
        name,
        bool(math.isfinite(v) and v >= threshold),
        v,
        threshold,
        ">=",
        reason or ("" if math.isfinite(v) else "not available in the run"),
    )


def _at_most(name: str, value: Any, threshold: float) -> Gate:
    v = _num(value)
    return Gate(
        name,
        bool(math.isfinite(v) and v <= threshold),
        v,
        threshold,
        "<=",
        "" if math.isfinite(v) else "not available in the run",
    )


def family_dsr(runs: RunStore, family: str, best: dict[str, float]) -> tuple[float, int]:
    """DSR of a set's Sharpe statistics against every trial of ``family``; (dsr, n_trials)."""
    from tradelab.validate import deflated_sharpe_ratio

    trials = runs.trials(family)
    srs = trials["sr_period"].to_numpy(dtype=float)
    srs = srs[np.isfinite(srs)]
    n = int(len(trials))
    if not (
        math.isfinite(best.get("sr_period", math.nan))
        and best.get("n_obs", 0) > 2
        and math.isfinite(best.get("kurt", math.nan))
        and n >= 1
    ):
        return float("nan"), n
    dsr = deflated_sharpe_ratio(
        float(best["sr_period"]),
        int(best["n_obs"]),
        float(best["skew"]),
        float(best["kurt"]),
        n_trials=n,
        sr_variance=float(np.var(srs, ddof=1)) if len(srs) > 1 else 0.0,
    )
    return float(dsr), n


AGREEMENT_FILE = "agreement.json"


def agreement_figures(store: Path, run_id: str, params: dict[str, float]) -> dict[str, Any]:
    """The agreement check's figures for the chosen set, saved beside the run
    (``runs/<run_id>/agreement.json``) the first time, so the verdict later reproduces from
    the saved run alone. Raises ImportError when the check is unavailable."""
    from tradelab.backtest.event import agreement
    from tradelab.backtest.runs import write_json

    path = RunStore(store).root / run_id / AGREEMENT_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("params") == params:
            return dict(saved)
    figures = agreement.compare_with_sweep(run_id, params, store).as_dict()
    figures["params"] = params
    write_json(figures, path)
    return dict(json.loads(path.read_text()))


def agreement_gate(store: Path, run_id: str, params: dict[str, float], tolerance: float) -> Gate:
    """Event backtest vs sweep on the chosen set (``tradelab.backtest.event.agreement``): the
    same trades, all matched, and the event PnL within ``tolerance`` (relative) of the sweep's
    (the rule of its ``Agreement.agrees``). FAILS when the check is unavailable or cannot run
    (e.g. no stored trades to replay)."""
    def failed(reason: str) -> Gate:
        return Gate("agreement", False, None, tolerance, "<=", reason)

    try:
        fig = agreement_figures(store, run_id, params)
    except ImportError:
        return failed("agreement check unavailable (tradelab.backtest.event.agreement is missing)")
    except TradelabError as exc:  # the check says why it cannot run (e.g. no stored trades)
        return failed(f"agreement check could not run: {exc}")
    except Exception as exc:  # noqa: BLE001 - any failure of the check is a failed gate
        return failed(f"agreement check could not run: {type(exc).__name__}: {exc}")
    rel = _num(fig.get("rel_pnl_diff"))
    same = fig.get("n_sweep_trades") == fig.get("n_event_trades") == fig.get("n_matched")
    ok = bool(same and math.isfinite(rel) and rel <= tolerance)
    detail = (
        f"relative PnL difference; trades sweep {fig.get('n_sweep_trades')}, event "
        f"{fig.get('n_event_trades')}, matched {fig.get('n_matched')}"
    )
    return Gate(
        "agreement",
        ok,
        rel,
        tolerance,
        "<=",
        detail if ok else "the event backtest disagrees with the sweep: " + detail,
    )


def evaluate(
    run_id: str, store: Path, cfg: PromotionConfig, strategy: str | None = None
) -> Verdict:
    """Every gate on a saved sweep run (see the module docstring)."""
    from tradelab.backtest.vector.walkforward import walk_forward_run

    runs = RunStore(store)
    folder = runs.root / run_id
    if not (folder / "report.json").exists():
        raise FileNotFoundError(f"no run {run_id!r} under {runs.root}")
    report = json.loads((folder / "report.json").read_text())
    if report.get("kind") == "event":
        raise ConfigError(f"run {run_id} is an event backtest; promotion needs a sweep run")
    run_cfg = json.loads((folder / "config.json").read_text())
    if strategy is not None and strategy not in (run_cfg.get("strategy"), run_cfg.get("family")):
        raise ConfigError(f"run {run_id} is a {run_cfg.get('strategy')!r} sweep, not {strategy!r}")
    scores = report["scores"]
    params = {k: float(v) for k, v in scores["best_params"].items()}
    verdict = Verdict(
        strategy or run_cfg["strategy"],
        run_id,
        params,
        [report.get("symbol")] if report.get("symbol") else run_cfg["symbols"],
    )
    dsr, n_trials = family_dsr(runs, scores["family"], scores["best"])
    verdict.gates.append(
        _at_least(
            "dsr",
            dsr,
            cfg.dsr_min,
            f"{n_trials} trials of family {scores['family']!r}"
            if math.isfinite(dsr)
            else "not available in the run",
        )
    )
    verdict.gates.append(_at_most("pbo", scores.get("pbo"), cfg.pbo_max))
    wf_path = folder / "walkforward.json"
    if wf_path.exists():
        wf_scores = json.loads(wf_path.read_text())["scores"]
    else:
        wf_scores = walk_forward_run(
            run_id, cfg.walkforward.train, cfg.walkforward.test, store=store
        )["scores"]
    verdict.gates.append(
        _at_least("oos_sharpe", wf_scores.get("oos_sharpe_annualized"), cfg.oos_sharpe_min)
    )
    verdict.gates.append(_at_least("trades", scores["best"].get("n_trades"), float(cfg.min_trades)))
    bias = report.get("bias") or {}
    for name, required in (("lookahead", cfg.lookahead_required), ("warmup", cfg.warmup_required)):
        ok = (bias.get(name) or {}).get("ok")
        if required:
            verdict.gates.append(
                Gate(
                    name,
                    ok is True,
                    ok,
                    True,
                    "==",
                    "" if ok is True else "check failed or was not run",
                )
            )
    verdict.gates.append(agreement_gate(store, run_id, params, cfg.agreement_tolerance))
    return verdict


def write_promoted(
    verdict: Verdict, store: Path, cfg: PromotionConfig, out_dir: Path = DEFAULT_OUT
) -> Path:
    """``<out_dir>/<strategy>.yaml`` for a passed verdict (refuses a failed one)."""
    if not verdict.passed:
        raise ConfigError(f"run {verdict.run_id} did not pass the promotion gates")
    run_cfg = json.loads((RunStore(store).root / verdict.run_id / "config.json").read_text())
    doc = {
        "strategy": verdict.strategy,
        "run_id": verdict.run_id,
        "params": verdict.params,
        "symbols": verdict.symbols,
        "exchange": run_cfg.get("exchange"),
        "interval": run_cfg.get("interval"),
        "gates": [asdict(g) for g in verdict.gates],
        "thresholds": cfg.model_dump(mode="json"),
        "provenance": stamp(
            run_cfg,
            store,
            ["ohlcv", "trades", "funding"],  # the agreement gate replays the trades
            run_cfg.get("exchange"),
            verdict.symbols,
        ),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{verdict.strategy}.yaml"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False))
    tmp.replace(path)
    return path
