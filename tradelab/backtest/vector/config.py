"""``configs/sweeps/<name>.yaml``: one parameter sweep, validated by pydantic.

A grid value is a list (``[10, 20, 40]``) or a range (``{start: 10, stop: 100, step: 10}``, stop
included when it falls on the step). Fees and slippage are fractions (0.0004 = 4 bps). Funding is
charged on perpetual positions when ``funding`` is true and the store holds settled rates.

Costs are honest about what a bar backtest can do: every target change is a market order, so
``fees.taker`` is charged on every fill and a ``fees.maker`` is refused (it could never apply;
the event-driven backtester, which rests orders, is where a maker fee belongs). ``execution``
says where orders fill: ``next_open`` (default: the next bar's open, the decision having used
this bar's close) or ``close`` (the deciding bar's own close: optimistic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tradelab.compute import ComputeConfig
from tradelab.core.timeutil import interval_ns
from tradelab.yamlconfig import load_model, parse_model


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: float
    stop: float
    step: float = Field(gt=0)

    def values(self) -> list[float]:
        n = int(np.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        if n < 1:
            raise ValueError(f"empty range {self.start}..{self.stop} step {self.step}")
        return [self.start + i * self.step for i in range(n)]


MAKER_REFUSED = ("a vectorized sweep fills every order as a market order, which pays the taker "
                 "fee; a maker fee can never apply here. Remove fees.maker (fees.taker is "
                 "charged on every fill)")


class FeesConfig(BaseModel):
    """Trading fees as fractions of notional. Only ``taker`` is charged (see the module)."""

    model_config = ConfigDict(extra="forbid")
    taker: float = Field(0.0004, ge=0, lt=0.05)
    maker: float | None = Field(None, description="refused: see MAKER_REFUSED")

    @field_validator("maker")
    @classmethod
    def _no_maker(cls, v: float | None) -> None:
        if v is not None:
            raise ValueError(MAKER_REFUSED)
        return None


class SweepConfig(BaseModel):
    """A sweep: strategy, data, grid, costs, and how to run it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    strategy: str
    exchange: str
    symbols: list[str] = Field(min_length=1)
    start: str
    end: str
    interval: str = "1m"
    grid: dict[str, list[float] | Range] = Field(min_length=1)
    fees: FeesConfig = FeesConfig()
    slippage: float = Field(0.0, ge=0, lt=0.05)
    execution: Literal["next_open", "close"] = "next_open"
    funding: bool = True
    init_cash: float = Field(10_000.0, gt=0)
    period: str = "1d"
    chunk_size: int = Field(64, ge=1, le=20_000)
    workers: int = Field(2, ge=1, le=64)
    compute: ComputeConfig = ComputeConfig()
    """Where the chunks run: the local pool of ``workers`` (default) or a Dask cluster."""
    top_n: int = Field(20, ge=1)
    family: str | None = None
    select_by: str = "sharpe"
    bias_checks: bool = True

    @field_validator("interval", "period")
    @classmethod
    def _interval(cls, v: str) -> str:
        interval_ns(v)
        return v

    @field_validator("select_by")
    @classmethod
    def _select_by(cls, v: str) -> str:
        from tradelab.backtest.metrics_nb import METRICS

        if v not in METRICS:
            raise ValueError(f"unknown select_by {v!r}; choose one of: {', '.join(METRICS)}")
        return v

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        from tradelab import strategies

        if v not in strategies.names():
            raise ValueError(f"unknown strategy {v!r}; known: {', '.join(strategies.names())}")
        return v

    def grid_values(self) -> dict[str, list[float]]:
        """Each parameter's values (ranges expanded)."""
        return {k: (v.values() if isinstance(v, Range) else list(v)) for k, v in self.grid.items()}

    @property
    def family_name(self) -> str:
        """The trial-registry family: every set ever evaluated in it counts for the DSR."""
        return self.family or self.strategy


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep config; errors name the file and the key."""
    return load_model(SweepConfig, path, "sweep config")


def parse_sweep_config(raw: object, origin: str = "<sweep>") -> SweepConfig:
    """Validate an already-parsed sweep config mapping."""
    return parse_model(SweepConfig, raw, origin, "sweep config")
