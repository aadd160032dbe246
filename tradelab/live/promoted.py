"""What a runner trades: ``configs/promoted/<NAME>.yaml`` (written by ``tradelab promote``), or,
only with ``--force``, a strategy that was never promoted (its default parameters), which is
logged and recorded in the run's journal and summary.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradelab.adapters.binance.symbols import MARKET_OF_EXCHANGE, raw_of_store_symbol
from tradelab.errors import ConfigError
from tradelab.strategies import get, names
from tradelab.yamlconfig import read_yaml

log = logging.getLogger("tradelab.live")
PROMOTED_DIR = Path("configs/promoted")


@dataclass(frozen=True)
class Promoted:
    """A strategy cleared to trade: its parameters, symbols (raw Binance), market and bars."""

    strategy: str
    params: dict[str, Any]
    symbols: list[str]
    market: str
    interval: str
    run_id: str | None  # the research run it was promoted from (None when forced)
    forced: bool
    path: Path | None


def load_promoted(name: str, directory: Path = PROMOTED_DIR, force: bool = False,
                  symbols: list[str] | None = None, market: str | None = None,
                  interval: str | None = None) -> Promoted:
    """The promoted config of strategy ``name``; without one, refuse unless ``force``."""
    if name not in names():
        raise ConfigError(f"unknown strategy {name!r}; known: {', '.join(names())}")
    path = directory / f"{name}.yaml"
    if not path.exists():
        if not force:
            raise ConfigError(f"{name} was not promoted ({path} does not exist): run "
                              f"'tradelab promote {name} --run RUN_ID' first, or pass --force "
                              "to trade it anyway (recorded in the run)")
        log.warning("FORCED: %s was never promoted; trading its default parameters", name)
        params = dataclasses.asdict(get(name).Params())
        return Promoted(name, params, symbols or ["BTCUSDT"], market or "spot",
                        interval or "1m", None, True, None)
    raw = read_yaml(path, "promoted config")
    if not isinstance(raw, dict) or raw.get("strategy") != name:
        raise ConfigError(f"{path}: not a promoted config of {name} (strategy key is "
                          f"{raw.get('strategy') if isinstance(raw, dict) else None!r})")
    try:
        exchange = raw["exchange"]
        mk = MARKET_OF_EXCHANGE[exchange]
        syms = [raw_of_store_symbol(s) for s in raw["symbols"]]
        params = dict(raw["params"])
        bar = str(raw["interval"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: missing or bad key {exc}") from None
    if market is not None and market != mk:
        raise ConfigError(f"{path}: promoted on {mk}, not {market}")
    if symbols:
        unknown = [s for s in symbols if s not in syms]
        if unknown and not force:
            raise ConfigError(f"{path}: {', '.join(unknown)} not among the promoted symbols "
                              f"{', '.join(syms)} (--force to trade them anyway)")
        syms = symbols
    if interval is not None and interval != bar:
        log.warning("%s: trading %s bars instead of the promoted %s", name, interval, bar)
        bar = interval
    return Promoted(name, params, syms, mk, bar, raw.get("run_id"), force and bool(symbols),
                    path)


__all__ = ["PROMOTED_DIR", "Promoted", "load_promoted"]
