"""Event backtest configuration (``configs/backtests/<name>.yaml``), validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tradelab.compute import ComputeConfig
from tradelab.matching.types import QUEUE_MODELS
from tradelab.yamlconfig import load_model

STRATEGIES = ("market_making",)
"""Quote strategies the event backtester runs; any registered bar strategy runs too (``bar:``)."""


class InstrumentCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tick: float = Field(gt=0)
    lot: float = Field(gt=0)
    min_qty: float = Field(0.0, ge=0)
    min_notional: float = Field(0.0, ge=0)
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    contract_size: float = Field(1.0, gt=0)


class QueueCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "power"
    n: float = 3.0

    @field_validator("model")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in QUEUE_MODELS:
            raise ValueError(f"unknown queue model {v!r}; choose one of {sorted(QUEUE_MODELS)}")
        return v


class LatencyCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["constant", "per_action"] = "constant"
    entry_ms: float = Field(10.0, ge=0)
    response_ms: float = Field(10.0, ge=0)
    cancel_entry_ms: float | None = None
    modify_entry_ms: float | None = None
    feed_base_ms: float = Field(0.0, ge=0, description="added after correcting a local clock "
                                "that is behind the exchange's")


class BarCfg(BaseModel):
    """How a bar strategy runs (see ``tradelab.backtest.event.bars``)."""

    model_config = ConfigDict(extra="forbid")
    interval: str = "1m"
    fill: Literal["book", "bar_price"] = "book"
    execution: Literal["next_open", "close"] = "next_open"
    sizing: Literal["equity"] | float = "equity"
    close_delay_ms: float = Field(default=0.0, ge=0)
    """Local time after a bar's end at which it closes (the grace the feed's latency needs)."""

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        from tradelab.core.timeutil import interval_ns

        interval_ns(v)
        return v


class EventBacktestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    exchange: str
    symbol: str
    start: str | None = None
    end: str | None = None
    strategy: str = "market_making"
    bar: BarCfg = BarCfg()
    params: dict[str, float] = {}
    grid: dict[str, list[float]] = {}
    instrument: InstrumentCfg
    queue: QueueCfg = QueueCfg()
    latency: LatencyCfg = LatencyCfg()
    init_cash: float = Field(10_000.0, gt=0)
    equity_interval: str = "1s"
    period: str = "1m"
    chunk: str = "10m"
    window_pct: float = Field(0.1, gt=0, le=1)
    workers: int = Field(1, ge=1)
    compute: ComputeConfig = ComputeConfig()
    """Where a grid's runs go: the local pool of ``workers`` (default) or a Dask cluster."""
    family: str | None = None


    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        from tradelab import strategies

        if v in STRATEGIES:
            return v
        if v not in strategies.names() or strategies.get(v).KIND != strategies.BAR:
            bars = [n for n in strategies.names() if strategies.get(n).KIND == strategies.BAR]
            raise ValueError(f"the event backtester runs {', '.join(STRATEGIES)} or a bar "
                             f"strategy ({', '.join(bars)}), not {v!r}")
        return v


def load_backtest_config(path: str | Path) -> EventBacktestConfig:
    """Read and validate an event backtest config."""
    return load_model(EventBacktestConfig, path, "event backtest config")
