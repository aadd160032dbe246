"""Command lines of the runners (``python -m runners.paper``; see ``--help``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tradelab.adapters.binance.symbols import split_raw
from tradelab.core.timeutil import interval_ns
from tradelab.errors import TradelabError
from tradelab.live.alerts import AlertConfig
from tradelab.live.app import LiveRun, RunConfig, fetch_filters
from tradelab.live.fill_model import load_fill_model, with_overrides
from tradelab.live.promoted import PROMOTED_DIR, load_promoted
from tradelab.live.risk_config import RiskConfig, load_risk
from tradelab.store.paths import resolve_root
from tradelab.strategies import get

log = logging.getLogger("tradelab.live")
BINANCE_REST = {"spot": "https://api.binance.com", "usdm": "https://fapi.binance.com"}


def _parser(prog: str, what: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=what, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit: the run stops at --duration-s, on SIGINT/SIGTERM, on the kill switch "
               "(--kill-file appearing, or POST /kill on the metrics port) or on an error, and "
               "always prints (and with --out-json writes) its JSON summary; a run that "
               "stopped on an error has exit_reason error and the reason under error.")
    p.add_argument("--strategy", required=True, help="strategy name; its promoted config "
                   "configs/promoted/NAME.yaml says parameters, symbols and bar interval")
    p.add_argument("--symbols", help="comma-separated raw symbols (default: the promoted ones); "
                   "one run trades them all, with one order manager, journal and metrics "
                   "endpoint, and risk limits (total cap, daily guard, kill switch) across them")
    p.add_argument("--market", choices=["spot", "usdm"], default=None,
                   help="spot or usdm (default: the promoted config's; spot when forced)")
    p.add_argument("--venue", default="local", choices=["local", "binance"],
                   help="market data from the local venue (tradelab venue) or Binance")
    p.add_argument("--venue-address", default="127.0.0.1:9080",
                   help="HOST:PORT of the local venue's plain HTTP port (default %(default)s)")
    p.add_argument("--duration-s", type=float, help="stop after this many seconds")
    p.add_argument("--out-json", type=Path, help="write the run summary here")
    p.add_argument("--force", action="store_true", help="trade a strategy (or symbols) that "
                   "were not promoted: logged and recorded in the journal and summary")
    p.add_argument("--promoted-dir", type=Path, default=PROMOTED_DIR)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a strategy parameter (needs --force: it is no longer what "
                        "was promoted)")
    p.add_argument("--interval", help="bar interval instead of the promoted one (e.g. 1s)")
    p.add_argument("--units", type=float, default=0.0, help="base quantity per unit of "
                   "target (default: --notional-usdt at the first decision's price)")
    p.add_argument("--notional-usdt", type=float, default=None,
                   help="position size when --units is not given (default: the risk "
                        "config's per-symbol cap)")
    p.add_argument("--sizing", choices=["fixed", "vol_target"], default="fixed",
                   help="fixed: --units or --notional-usdt; vol_target: equity x target_vol / "
                        "realized vol of the last bars (the risk config's sizing section)")
    fm = p.add_argument_group("paper fills (python -m runners.paper)")
    fm.add_argument("--fill-model", type=Path, default=None, metavar="FILE",
                    help="fees, queue model and latency of paper fills: a fill-model file "
                         "(fees/queue/latency) or an event backtest config "
                         "(configs/backtests/*.yaml: its instrument fees, queue and latency) "
                         "[default: configs/paper.yaml, else built-in]")
    fm.add_argument("--maker-fee", type=float, help="maker fee, a fraction of the notional")
    fm.add_argument("--taker-fee", type=float, help="taker fee, a fraction of the notional")
    fm.add_argument("--queue-model", help="queue-position model of resting orders "
                    "(risk_averse, power, power2, power3, log, log2)")
    fm.add_argument("--queue-n", type=float, help="exponent of the power queue models")
    fm.add_argument("--latency-ms", metavar="SPEC", help="order latency: ENTRY_MS[/RESPONSE_MS] "
                    "or a YAML file with a backtest config's latency: block (a recorded "
                    "table, e.g. from tradelab exec-smoke)")
    p.add_argument("--request-timeout-s", type=float, default=10.0,
                   help="testnet: a REST request unanswered this long has an unknown outcome "
                        "(an order is then queried by client id) [default %(default)s]")
    p.add_argument("--risk", type=Path, default=Path("configs/risk.yaml"),
                   help="risk limits (default %(default)s; built-in defaults if missing)")
    p.add_argument("--run-dir", type=Path, help="journal and outputs (default data/runs/RUN_ID)")
    p.add_argument("--store", type=Path, default=None, help="store the journal's orders, "
                   "fills, positions, pnl and risk_events tables here at the end (default: the "
                   "project store, $TRADELAB_STORE or data/parquet)")
    p.add_argument("--no-store", action="store_true", help="keep the journal only")
    p.add_argument("--metrics-port", type=int, default=0,
                   help="Prometheus endpoint port on 127.0.0.1 (0: a free one, printed)")
    p.add_argument("--kill-file", type=Path, help="the kill switch: stop when this file appears")
    p.add_argument("--clock", default="receipt", choices=["receipt", "exchange"],
                   help="decision clock: receipt time (live) or the exchange's message time "
                        "(a replay decides the same however fast it is served)")
    p.add_argument("--webhook-url", help="POST alerts (stale feed, drawdown, reject bursts) here")
    p.add_argument("--telegram-chat-id", help="also send alerts to this Telegram chat "
                   "(bot token from TRADELAB_TELEGRAM_TOKEN)")
    p.add_argument("--run-id", help="resume this run (its --run-dir journal) instead of "
                   "starting a new one")
    p.add_argument("--dump-rows", action="store_true", help="keep the event rows each symbol's "
                   "runner core received and write them to RUN_DIR/rows-SYMBOL.npy at the end "
                   "(replayed through the event backtester they give the run's decisions; "
                   "memory grows with the run: for verification runs)")
    p.add_argument("--log-level", default="INFO")
    return p


def read_keys(env_file: Path = Path(".env")) -> tuple[str, str]:
    """API key and secret from TRADELAB_API_KEY / TRADELAB_API_SECRET, else from a .env file
    (KEY=VALUE lines). Never logged."""
    key, secret = os.environ.get("TRADELAB_API_KEY", ""), os.environ.get("TRADELAB_API_SECRET",
                                                                           "")
    if (not key or not secret) and env_file.exists():
        for line in env_file.read_text().splitlines():
            name, sep, value = line.strip().partition("=")
            value = value.strip().strip("'\"")
            if sep and name.strip() == "TRADELAB_API_KEY" and not key:
                key = value
            elif sep and name.strip() == "TRADELAB_API_SECRET" and not secret:
                secret = value
    return key, secret


def _venue_endpoints(address: str, market: str) -> tuple[str, str]:
    """(REST base, wss base) of a local venue, from its status endpoint."""
    url = f"http://{address}/venue/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            status = json.load(r)
    except (urllib.error.URLError, OSError) as exc:
        raise TradelabError(f"no venue answers at {url}: {exc}; start one with 'tradelab "
                            "venue --synthetic' (or --replay FILE)") from None
    host = status.get("host", address.split(":")[0])
    tls = status.get("tls_port")
    if not tls:
        raise TradelabError(f"the venue at {address} has no TLS port (cryptofeed needs wss://)")
    return f"http://{address}", f"wss://{host}:{tls}/{market}"


def run_config(args: argparse.Namespace, broker: str) -> RunConfig:
    symbols = [s.strip().upper() for s in args.symbols.split(",")] if args.symbols else None
    prom = load_promoted(args.strategy, args.promoted_dir, args.force, symbols,
                         market=args.market, interval=args.interval)
    if args.param:
        if not args.force:
            raise TradelabError("--param changes what was promoted: add --force")
        for item in args.param:
            name, sep, value = item.partition("=")
            if not sep or name not in prom.params:
                raise TradelabError(f"--param {item!r}: expected NAME=VALUE with NAME one of "
                                    f"{', '.join(prom.params)}")
            prom.params[name] = float(value)
        get(prom.strategy).Params(**prom.params)  # validated now, not at the first bar
    if len(set(prom.symbols)) != len(prom.symbols):
        raise TradelabError(f"--symbols names a symbol twice: {', '.join(prom.symbols)}")
    if len(prom.symbols) > 1 and args.units:
        raise TradelabError("--units is a base quantity, which means something else on each "
                            "symbol: with several symbols give --notional-usdt (per symbol)")
    if len(prom.symbols) > 1 and broker == "venue" and prom.market == "spot":
        bases = [split_raw(s)[0] for s in prom.symbols]
        shared = sorted({b for b in bases if bases.count(b) > 1})
        if shared:
            raise TradelabError(f"{', '.join(shared)} is the base asset of more than one of "
                                f"{', '.join(prom.symbols)}: spot reconciliation checks each "
                                "base asset's balance against one symbol's fills; run those "
                                "symbols in separate runs")
    risk = load_risk(args.risk) if args.risk.exists() else RiskConfig()
    if not args.request_timeout_s > 0:
        raise TradelabError(f"--request-timeout-s must be > 0, got {args.request_timeout_s}")
    fills = with_overrides(load_fill_model(args.fill_model), args.maker_fee, args.taker_fee,
                           args.queue_model, args.queue_n, args.latency_ms)
    run_id = args.run_id or (f"{'paper' if broker == 'paper' else 'testnet'}-{args.strategy}-"
                             f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    if args.venue == "local":
        rest, ws = _venue_endpoints(args.venue_address, prom.market)
    else:
        rest, ws = BINANCE_REST[prom.market], ""
    notional = args.notional_usdt or min(risk.caps.per_symbol_usdt,
                                         risk.sizing.equity_usdt * risk.sizing.max_leverage)
    key, secret = read_keys() if broker == "venue" else ("", "")
    cfg = RunConfig(
        run_id=run_id, strategy=prom.strategy, params=prom.params, symbol=prom.symbols[0],
        symbols=tuple(prom.symbols),
        market=prom.market, interval_ns=interval_ns(prom.interval), units=args.units,
        venue_rest=rest, venue_ws=ws, run_dir=args.run_dir or Path("data/runs") / run_id,
        risk=risk, duration_s=args.duration_s, clock=args.clock,
        metrics_port=args.metrics_port, kill_file=args.kill_file,
        forced=prom.forced or bool(args.param),
        start_cash=risk.sizing.equity_usdt,
        alerts=AlertConfig(webhook_url=args.webhook_url,
                           telegram_chat_id=args.telegram_chat_id), notional=notional,
        store=None if args.no_store else resolve_root(args.store, create=True),
        broker=broker, api_key=key, api_secret=secret, sizing=args.sizing,
        ccxt_rest=rest if args.venue == "local" else None,
        request_timeout_s=args.request_timeout_s, dump_rows=args.dump_rows,
        maker_fee=fills.maker_fee, taker_fee=fills.taker_fee, queue_model=fills.queue_model,
        queue_n=fills.queue_n, latency_model=fills.latency, fill_model=fills.describe())
    return cfg


class RunFailed(TradelabError):
    """A run that stopped on an error, with its summary (exit reason ``error``)."""

    def __init__(self, message: str, summary: dict) -> None:
        super().__init__(message)
        self.summary = summary


async def _run(cfg: RunConfig) -> dict:
    filters = {s: await fetch_filters(cfg.venue_rest, cfg.market, s) for s in cfg.all_symbols}
    run = LiveRun(cfg, filters)
    try:
        return await run.run()
    except TradelabError as exc:  # e.g. a refused key, a reconciliation it cannot explain
        run.exit_reason, run.error = "error", str(exc)
        raise RunFailed(str(exc), run.summary()) from None


def main_paper(argv: list[str] | None = None) -> int:
    """``python -m runners.paper``."""
    return _main("python -m runners.paper", "Trade a promoted strategy on paper: fills from "
                 "the matching core against the live book (queue, latency, fees).", "paper",
                 argv)


def main_testnet(argv: list[str] | None = None) -> int:
    """``python -m runners.testnet``."""
    return _main("python -m runners.testnet", "Trade a promoted strategy on Binance's testnet "
                 "(or the local venue with --venue local) through ccxt; keys from "
                 "TRADELAB_API_KEY / TRADELAB_API_SECRET or .env.", "venue", argv)


def _main(prog: str, what: str, broker: str, argv: list[str] | None) -> int:
    args = _parser(prog, what).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("feedhandler").setLevel(logging.WARNING)
    cfg: RunConfig | None = None
    try:
        cfg = run_config(args, broker)
        print(f"{broker} run {cfg.run_id}: {cfg.strategy} {', '.join(cfg.all_symbols)} "
              f"({cfg.market}), "
              f"journal {cfg.run_dir / 'journal.log'}", flush=True)
        summary = asyncio.run(_run(cfg))
    except TradelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if cfg is None:  # the command line itself was wrong: no run to summarise
            return 1
        summary = exc.summary if isinstance(exc, RunFailed) else {
            "exit_reason": "error", "error": str(exc), "run_id": cfg.run_id,
            "strategy": cfg.strategy, "symbols": list(cfg.all_symbols)}
    text = json.dumps(summary, indent=2, default=str)
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(text)
    print(text)
    return 0 if summary["exit_reason"] != "error" else 1


__all__ = ["main_paper", "main_testnet", "read_keys", "run_config"]
