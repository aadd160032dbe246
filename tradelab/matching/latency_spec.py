"""Latency models from configuration: the backtest config's ``latency:`` block, a recorded
table file, or a command line's ``ENTRY_MS[/RESPONSE_MS]``, as the ``(code, params, table)``
triple :mod:`tradelab.matching.latency_nb` defines (the event backtester, the local venue and
the paper broker all take it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tradelab.errors import ConfigError
from tradelab.matching import latency_nb as L

MS = 1_000_000
Model = tuple[int, np.ndarray, np.ndarray]


def latency_from_config(cfg: dict, base: Path | None = None) -> Model:
    """A model from the keys of the backtest config's ``latency:`` block: ``kind`` (``constant``,
    ``per_action`` or ``table``), ``entry_ms``, ``response_ms``, ``cancel_entry_ms``,
    ``modify_entry_ms``; ``table`` names a CSV or ``.npy`` file of ``req_ts, exch_ts, resp_ts``
    rows in ns (relative to ``base``). Raises ConfigError naming the problem."""
    known = {"kind", "entry_ms", "response_ms", "cancel_entry_ms", "modify_entry_ms", "table",
             "feed_base_ms"}
    unknown = set(cfg) - known
    if unknown:
        raise ConfigError(f"latency: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    kind = cfg.get("kind", "constant")

    def ms(key: str, default: float | None) -> int:
        v = cfg.get(key, default)
        try:
            f = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"latency: {key} must be a number of ms, got {v!r}") from None
        if not f >= 0:
            raise ConfigError(f"latency: {key} must be >= 0, got {v!r}")
        return int(round(f * MS))

    if kind == "constant":
        return L.constant(ms("entry_ms", 0.0), ms("response_ms", 0.0))
    if kind == "per_action":
        entry, resp = ms("entry_ms", 0.0), ms("response_ms", 0.0)
        cancel = ms("cancel_entry_ms", cfg.get("entry_ms", 0.0))
        modify = ms("modify_entry_ms", cfg.get("entry_ms", 0.0))
        return L.per_action((entry, resp), (cancel, resp), (modify, resp))
    if kind == "table":
        if "table" not in cfg:
            raise ConfigError("latency: kind 'table' needs table: <file of req_ts,exch_ts,resp_ts>")
        path = Path(str(cfg["table"]))
        if base is not None and not path.is_absolute():
            path = base / path
        return L.recorded(read_table(path))
    raise ConfigError(f"latency: unknown kind {kind!r}; use constant, per_action or table")


def read_table(path: Path) -> np.ndarray:
    """A recorded latency table (``.npy``, or CSV with an optional header line)."""
    if not path.exists():
        raise ConfigError(f"latency table {path} does not exist")
    try:
        if path.suffix == ".npy":
            t = np.load(path)
        else:
            t = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2,
                           skiprows=1 if not path.read_text()[:1].isdigit() else 0)
        return L.recorded(t)[2]
    except ValueError as exc:
        raise ConfigError(f"latency table {path}: {exc}") from None


def parse_latency(spec: str, read_yaml: Callable[[Path, str], object] | None = None
                  ) -> Model:
    """A command line's latency: ``ENTRY_MS[/RESPONSE_MS]`` (constant; the response defaults
    to the entry), or (given a YAML reader) a YAML file holding the backtest config's
    ``latency:`` block (or one at its top level)."""
    spec = spec.strip()
    if spec.endswith((".yaml", ".yml")):
        if read_yaml is None:
            raise ConfigError(f"latency {spec!r}: a YAML file is not accepted here")
        path = Path(spec)
        raw = read_yaml(path, "latency file")
        block = raw.get("latency", raw) if isinstance(raw, dict) else None
        if not isinstance(block, dict):
            raise ConfigError(f"{path}: expected a mapping (the latency: block)")
        return latency_from_config(block, path.parent)
    entry, _, resp = spec.partition("/")
    return latency_from_config({"entry_ms": entry, "response_ms": resp or entry})


__all__ = ["Model", "latency_from_config", "parse_latency", "read_table"]
