"""How paper orders fill: fees, queue-position model and order latency, as configured.

The paper broker fills through the event backtester's simulated exchange, so its fill model has
the backtester's three parts. They come from ``configs/paper.yaml`` (or ``--fill-model FILE``),
in either of two forms:

- a fill-model file: ``fees: {maker, taker}``, ``queue: {model, n}``, ``latency:`` (the backtest
  config's latency block: ``constant``, ``per_action`` or a recorded ``table``);
- an event backtest config (``configs/backtests/*.yaml``): its ``instrument`` fees, ``queue`` and
  ``latency`` blocks, so a paper run fills the way the backtest it was validated with did.

Single values can be overridden on the command line (``--maker-fee``, ``--latency-ms`` ...).
Without a file the built-in defaults below apply. Every problem is a ConfigError naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tradelab.errors import ConfigError
from tradelab.matching import latency_nb as L
from tradelab.matching.latency_spec import Model, latency_from_config, parse_latency
from tradelab.matching.types import QUEUE_MODELS
from tradelab.yamlconfig import read_yaml

DEFAULT_PATH = Path("configs/paper.yaml")
MS = 1_000_000
LATENCY_KINDS = {L.LAT_CONSTANT: "constant", L.LAT_PER_ACTION: "per_action",
                 L.LAT_TABLE: "table"}


def _default_latency() -> Model:
    return L.constant(20 * MS, 20 * MS)


@dataclass(frozen=True)
class FillModel:
    """Fees (fractions of notional), the queue model and the latency model of paper fills."""

    maker_fee: float = 0.0002
    taker_fee: float = 0.0004
    queue_model: str = "power"
    queue_n: float = 3.0
    latency: Model = field(default_factory=_default_latency)
    source: str = "built-in defaults"

    def __post_init__(self) -> None:
        for name in ("maker_fee", "taker_fee"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or not -0.01 <= v <= 0.1:
                raise ConfigError(f"fill model ({self.source}): {name} must be a fraction of "
                                  f"the notional between -0.01 and 0.1, got {v!r}")
        if self.queue_model not in QUEUE_MODELS:
            raise ConfigError(f"fill model ({self.source}): unknown queue model "
                              f"{self.queue_model!r}; choose one of {sorted(QUEUE_MODELS)}")
        if not isinstance(self.queue_n, int | float) or not self.queue_n > 0:
            raise ConfigError(f"fill model ({self.source}): queue n must be > 0, "
                              f"got {self.queue_n!r}")

    def describe(self) -> dict[str, Any]:
        """What the summary and the journal record."""
        code, params, table = self.latency
        lat: dict[str, Any] = {"kind": LATENCY_KINDS.get(int(code), str(code))}
        if int(code) == L.LAT_TABLE:
            lat["rows"] = int(len(table))
        else:
            # params: entry of place, cancel, modify; then their responses
            lat["entry_ms"] = float(params[0]) / MS
            lat["response_ms"] = float(params[3]) / MS
            if int(code) == L.LAT_PER_ACTION:
                lat["cancel_entry_ms"] = float(params[1]) / MS
                lat["modify_entry_ms"] = float(params[2]) / MS
        return {"source": self.source, "maker_fee": self.maker_fee,
                "taker_fee": self.taker_fee,
                "queue": {"model": self.queue_model, "n": self.queue_n}, "latency": lat}


def _number(block: dict, key: str, where: str) -> float | None:
    if key not in block:
        return None
    v = block[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{where}: {key} must be a number, got {v!r}")
    return float(v)


def fill_model_from_dict(raw: Any, source: str, base: Path | None = None) -> FillModel:
    """A fill model from a parsed fill-model file or event backtest config."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(raw).__name__}")
    backtest = "instrument" in raw or "strategy" in raw
    if not backtest:
        unknown = set(raw) - {"fees", "queue", "latency"}
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; a fill model has "
                              "fees, queue and latency (or give an event backtest config)")
    fees = raw.get("instrument" if backtest else "fees") or {}
    queue = raw.get("queue") or {}
    if not isinstance(fees, dict) or not isinstance(queue, dict):
        raise ConfigError(f"{source}: fees/instrument and queue must be mappings")
    if not backtest:
        bad = set(fees) - {"maker", "taker"}
        if bad:
            raise ConfigError(f"{source}: fees: unknown keys {sorted(bad)}; use maker, taker")
    bad_q = set(queue) - {"model", "n"}
    if bad_q:
        raise ConfigError(f"{source}: queue: unknown keys {sorted(bad_q)}; use model, n")
    d = FillModel()
    maker = _number(fees, "maker_fee" if backtest else "maker", source)
    taker = _number(fees, "taker_fee" if backtest else "taker", source)
    n = _number(queue, "n", source)
    lat_block = raw.get("latency")
    if lat_block is not None and not isinstance(lat_block, dict):
        raise ConfigError(f"{source}: latency must be a mapping (the backtest config's block)")
    latency = latency_from_config(lat_block, base) if lat_block is not None else d.latency
    return FillModel(d.maker_fee if maker is None else maker,
                     d.taker_fee if taker is None else taker,
                     str(queue.get("model", d.queue_model)), d.queue_n if n is None else n,
                     latency, source)


def load_fill_model(path: Path | None = None) -> FillModel:
    """``path`` (a fill-model file or an event backtest config), else ``configs/paper.yaml``
    when it exists, else the built-in defaults."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return FillModel()
        path = DEFAULT_PATH
    raw = read_yaml(path, "fill model")
    return fill_model_from_dict(raw, str(path), path.parent)


def with_overrides(model: FillModel, maker_fee: float | None = None,
                   taker_fee: float | None = None, queue_model: str | None = None,
                   queue_n: float | None = None, latency: str | None = None) -> FillModel:
    """``model`` with the command line's single values (``latency``: ENTRY_MS[/RESPONSE_MS]
    or a YAML file with a latency block)."""
    changes: dict[str, Any] = {k: v for k, v in (("maker_fee", maker_fee),
                                                  ("taker_fee", taker_fee),
                                                  ("queue_model", queue_model),
                                                  ("queue_n", queue_n)) if v is not None}
    if latency is not None:
        changes["latency"] = parse_latency(latency, read_yaml)
    if not changes:
        return model
    return replace(model, **changes, source=f"{model.source} + command line")


__all__ = ["DEFAULT_PATH", "FillModel", "fill_model_from_dict", "load_fill_model",
           "with_overrides"]
