"""Running the collector from the command line: resolve the config, run, summarise."""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path

from rich.console import Console

from tradelab.adapters.binance.symbols import MARKET_OF_EXCHANGE, raw_of_store_symbol
from tradelab.collect.collector import Collector
from tradelab.collect.config import CollectConfig, Endpoint, load_config
from tradelab.errors import ConfigError, StoreError


def venue_status(host_port: str) -> dict:
    """Ask a local venue for its ports."""
    url = f"http://{host_port}/venue/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError as exc:
        raise StoreError(f"no venue answers at {url}: {exc}; start one with "
                         "'tradelab venue --replay FILE...' or --synthetic") from None


def plan(config_path: str | Path, venue: str | None) -> tuple[CollectConfig, list[str]]:
    """The config to run, re-pointed at a local venue when asked; plus notes for the user."""
    cfg = load_config(config_path)
    notes = []
    if venue:
        status = venue_status(venue)
        host = status.get("host", "127.0.0.1")
        listed = {tuple(i.split(":")) for i in status.get("instruments", [])}
        feeds = []
        for feed in cfg.feeds:
            market = MARKET_OF_EXCHANGE.get(feed.exchange)
            if market is None:
                notes.append(f"{feed.exchange} left out: the local venue speaks Binance only")
                continue
            keep = [s for s in feed.symbols
                    if (market, raw_of_store_symbol(s)) in listed]
            if not keep:
                notes.append(f"{feed.exchange} left out: the venue lists none of {feed.symbols}")
                continue
            if len(keep) < len(feed.symbols):
                notes.append(f"{feed.exchange}: the venue lists only {keep}")
            feeds.append(feed.model_copy(update={"symbols": keep, "endpoint": Endpoint(
                websocket=f"wss://{host}:{status['tls_port']}/{market}",
                rest=f"http://{host}:{status['port']}")}))
        if not feeds:
            raise ConfigError("no feed of the config can use the local venue")
        cfg = cfg.model_copy(update={"feeds": feeds})
    return cfg, notes


async def run_collect(cfg: CollectConfig, store, duration_s: float | None,
                      console: Console) -> dict:
    """Run one collection; stats lines go to ``console``."""
    logging.getLogger("feedhandler").setLevel(logging.WARNING)
    collector = Collector(cfg, str(store) if store else None, duration_s,
                          report=lambda line: console.print(line, highlight=False, markup=False))
    return await collector.run()
