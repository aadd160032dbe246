"""``configs/risk.yaml``: the limits a live runner trades under, validated by pydantic.

Amounts are in the quote currency (USDT), fractions are fractions (0.03 = 3 %), times are seconds.
Every section has safe defaults, so a file only names what it changes; an unknown key is an error
(a misspelt limit must never be silently ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradelab.yamlconfig import load_model


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SizingCfg(Strict):
    """Volatility-target sizing: a position's notional is ``equity * target_vol / realized_vol``
    (annualised), at most ``max_leverage * equity``."""

    equity_usdt: float = Field(1000.0, gt=0)
    target_vol: float = Field(0.20, gt=0, le=5)
    vol_lookback: int = Field(60, ge=2, description="returns in the realized-vol estimate")
    periods_per_year: float = Field(525_600.0, gt=0, description="bars per year (1 m bars)")
    max_leverage: float = Field(1.0, gt=0, le=125)


class CapsCfg(Strict):
    """Exposure caps (absolute notional at the mark). A hard cap shrinks or denies an order; the
    soft band above it (``soft_cap_pct``) is allowed for ``soft_cap_grace_s``, then the runner
    either stops adding (``block``) or trades back under the cap (``auto_close``)."""

    per_symbol_usdt: float = Field(500.0, gt=0)
    total_usdt: float = Field(1500.0, gt=0)
    soft_cap_pct: float = Field(0.0, ge=0, le=1)
    soft_cap_grace_s: float = Field(300.0, ge=0)
    auto_close: bool = False

    @model_validator(mode="after")
    def _total_covers_one(self) -> CapsCfg:
        if self.total_usdt < self.per_symbol_usdt:
            raise ValueError(f"total_usdt ({self.total_usdt}) is below per_symbol_usdt "
                             f"({self.per_symbol_usdt})")
        return self


class DailyGuardCfg(Strict):
    """Per UTC day: a loss, a drawdown from the day's peak equity, or a run of losing trades
    beyond these trips the guard (``halt``: no new risk; ``close_all``: also flatten)."""

    max_loss_usdt: float = Field(150.0, gt=0)
    max_drawdown_pct: float = Field(0.03, gt=0, le=1)
    max_consecutive_losses: int = Field(4, ge=1)
    action: Literal["halt", "close_all"] = "halt"


class OrderGuardCfg(Strict):
    """Per-order checks: rate, price band around the mid, stale market data."""

    max_orders_per_s: float = Field(5.0, gt=0)
    price_band_pct: float = Field(0.02, gt=0, le=1)
    stale_after_s: float = Field(10.0, gt=0)


class OcoCfg(Strict):
    """Exits the runner manages for each position: stop-loss and take-profit (fractions of the
    entry price), a trailing stop that only tightens, and take-profit tiers at R multiples
    (``R = |entry - initial stop|``) each closing a fraction of the entry quantity."""

    enabled: bool = True
    sl_pct: float = Field(0.006, gt=0, lt=1)
    tp_pct: float | None = Field(0.012, gt=0)
    trail_pct: float | None = Field(None, gt=0, lt=1)
    tp_tiers: list[tuple[float, float]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tiers(self) -> OcoCfg:
        last = 0.0
        for r, frac in self.tp_tiers:
            if r <= last:
                raise ValueError("tp_tiers: R multiples must be positive and increasing")
            if not 0 < frac <= 1:
                raise ValueError(f"tp_tiers: fraction {frac} must be in (0, 1]")
            last = r
        if sum(f for _, f in self.tp_tiers) > 1 + 1e-9:
            raise ValueError("tp_tiers: fractions add up to more than the position")
        return self


class RiskConfig(Strict):
    """Everything the risk engine enforces."""

    sizing: SizingCfg = SizingCfg()
    caps: CapsCfg = CapsCfg()
    daily: DailyGuardCfg = DailyGuardCfg()
    orders: OrderGuardCfg = OrderGuardCfg()
    oco: OcoCfg = OcoCfg()


def load_risk(path: str | Path) -> RiskConfig:
    """Read and validate a risk file (a ConfigError names each bad key)."""
    return load_model(RiskConfig, path, "risk config")


__all__ = ["CapsCfg", "DailyGuardCfg", "OcoCfg", "OrderGuardCfg", "RiskConfig", "SizingCfg",
           "load_risk"]
