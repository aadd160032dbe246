"""``configs/collect.yaml``: what the collector subscribes to and how it writes.

Validated by pydantic when loaded; a bad value is refused with the file, the key and what is
expected. Secrets never live here (the collector only reads public market data).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tradelab.yamlconfig import load_model, parse_model

EXCHANGES = ("BINANCE", "BINANCE_FUTURES", "BYBIT", "OKX")
CHANNELS = ("l2_book", "trades", "bbo", "funding", "open_interest")
_PERP_ONLY = {"funding", "open_interest"}


class Endpoint(BaseModel):
    """Where a feed connects instead of the exchange (e.g. the local venue)."""

    model_config = ConfigDict(extra="forbid")
    websocket: str = Field(description="wss:// base address, e.g. wss://127.0.0.1:9443/spot")
    rest: str = Field(description="http(s):// base address, e.g. http://127.0.0.1:9080")
    verify_tls: bool = False

    @field_validator("websocket")
    @classmethod
    def _wss(cls, v: str) -> str:
        if not v.startswith("wss://"):
            raise ValueError("must start with wss:// (cryptofeed only speaks TLS websockets)")
        return v.rstrip("/")

    @field_validator("rest")
    @classmethod
    def _http(cls, v: str) -> str:
        if not re.match(r"^https?://", v):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class FeedConfig(BaseModel):
    """One exchange connection: symbols and channels."""

    model_config = ConfigDict(extra="forbid")
    exchange: str
    symbols: list[str] = Field(min_length=1)
    channels: list[str] = Field(min_length=1)
    depth: int = Field(1000, ge=5, le=5000, description="levels in the book snapshots")
    endpoint: Endpoint | None = None

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, v: str) -> str:
        if v not in EXCHANGES:
            raise ValueError(f"unknown exchange {v!r}; supported: {', '.join(EXCHANGES)}")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in CHANNELS]
        if bad:
            raise ValueError(f"unknown channels {bad}; supported: {', '.join(CHANNELS)}")
        return v

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not re.match(r"^[A-Z0-9]+(-[A-Z0-9]+)+$", s)]
        if bad:
            raise ValueError(f"symbols must be normalised like BTC-USDT or BTC-USDT-PERP: {bad}")
        return v

    def model_post_init(self, _ctx) -> None:
        perp = [s for s in self.symbols if s.endswith("-PERP")]
        if self.exchange == "BINANCE" and perp:
            raise ValueError(f"BINANCE is spot; perpetuals {perp} belong to BINANCE_FUTURES")
        if self.exchange == "BINANCE_FUTURES" and len(perp) != len(self.symbols):
            raise ValueError("BINANCE_FUTURES lists perpetuals only (symbols ending in -PERP)")
        if _PERP_ONLY & set(self.channels) and not perp:
            raise ValueError(f"channels {sorted(_PERP_ONLY & set(self.channels))} need "
                             "perpetual symbols")


class CollectConfig(BaseModel):
    """The whole collector configuration."""

    model_config = ConfigDict(extra="forbid")
    store: str | None = None
    flush_interval_s: float = Field(5.0, gt=0, le=3600)
    batch_rows: int = Field(200_000, ge=1)
    queue_size: int = Field(1_000_000, ge=10, description="rows waiting for the writer, at "
                            "most; more are dropped and counted")
    stats_interval_s: float = Field(5.0, gt=0)
    snapshot_interval_min: float = Field(15.0, gt=0)
    fsync: bool = True
    feeds: list[FeedConfig] = Field(min_length=1)

    def model_post_init(self, _ctx) -> None:
        if self.queue_size < 2 * self.batch_rows:
            raise ValueError(f"queue_size ({self.queue_size}) must be at least twice batch_rows "
                             f"({self.batch_rows}): rows keep arriving while a batch is written")


def load_config(path: str | Path) -> CollectConfig:
    """Read and validate a collector config; errors name the file and the key."""
    return load_model(CollectConfig, path, "collector config")


def parse_config(raw: object, origin: str = "<collector>") -> CollectConfig:
    """Validate an already-parsed collector config mapping."""
    return parse_model(CollectConfig, raw, origin, "collector config")
