"""The runners' asyncio shell: feeds in, the runner core, timers, metrics, and the exit.

One event loop owns everything. cryptofeed's callbacks turn book and trade messages into event
rows and hand them to :class:`~tradelab.live.core.BarRunnerCore` (which decides, checks risk,
journals and sends); a one-second timer checks stale data, the kill file and the run's duration,
snapshots PnL into the journal and refreshes the metrics. The run ends on its duration, SIGINT /
SIGTERM, the kill switch (signal, file or ``POST /kill`` on the metrics port) or an error, and
always writes its summary (and the journal's tables into the store when one is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.adapters.binance.filters import SymbolFilters
from tradelab.adapters.binance.schema import REST_PREFIX
from tradelab.adapters.binance.symbols import EXCHANGE, split_raw, store_symbol_of_raw
from tradelab.errors import TradelabError
from tradelab.live.alerts import AlertConfig, Alerter
from tradelab.live.book import BookRunnerCore
from tradelab.live.core import BarRunnerCore, BarSetup, Broker, PaperBroker
from tradelab.live.events import RowStamper
from tradelab.live.journal import RunJournal
from tradelab.live.metrics import RunnerMetrics, serve_metrics
from tradelab.live.orders import OrderManager
from tradelab.live.paper import PaperExchange
from tradelab.live.quote import QuoteRunnerCore
from tradelab.live.reconcile import reconcile
from tradelab.live.risk import RiskEngine, RiskEvent
from tradelab.live.risk_config import RiskConfig
from tradelab.live.summary import RunRecorder
from tradelab.live.venue_broker import VenueBroker
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.net.cryptofeed_feeds import prefetch_symbols, repointed_feed_class
from tradelab.strategies import get
from tradelab.strategies import market_making as mm
from tradelab.strategies.bar_driver import BarDriver
from tradelab.strategies.params import as_vector
from tradelab.strategies.types import BAR, BOOK, QUOTE

log = logging.getLogger("tradelab.live")
NS = 1_000_000_000
PNL_EVERY_S = 5.0


@dataclass
class RunConfig:
    """Everything a run needs (the runner commands build it from the promoted config)."""

    run_id: str
    strategy: str
    params: dict[str, Any]
    symbol: str  # raw Binance symbol, e.g. BTCUSDT
    market: str  # spot | usdm
    interval_ns: int
    units: float  # base quantity per unit of target; 0: from ``notional``
    venue_rest: str  # http://127.0.0.1:9080 (or Binance's REST base)
    venue_ws: str  # wss://127.0.0.1:9081/spot ("": the exchange's own websocket)
    run_dir: Path
    risk: RiskConfig = field(default_factory=RiskConfig)
    duration_s: float | None = None
    entry_ms: float = 20.0
    response_ms: float = 20.0
    maker_fee: float = 0.0002
    taker_fee: float = 0.0004
    queue_model: str = "power"
    queue_n: float = 3.0
    clock: str = "receipt"
    close_delay_ms: float = 250.0
    start_cash: float = 10_000.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    kill_file: Path | None = None
    alerts: AlertConfig = field(default_factory=AlertConfig)
    verify_tls: bool = False
    forced: bool = False
    notional: float = 0.0
    store: Path | None = None  # where the journal's tables go at the end (None: nowhere)
    broker: str = "paper"  # paper | venue
    api_key: str = field(default="", repr=False)
    api_secret: str = field(default="", repr=False)
    ccxt_rest: str | None = None  # the venue's REST base for ccxt (None: Binance's testnet)
    user_stream: bool = True  # follow fills on the user-data stream (else polling only)
    poll_s: float = 1.0
    sizing: str = "fixed"  # fixed | vol_target


async def fetch_filters(rest: str, market: str, symbol: str) -> SymbolFilters:
    """The symbol's exchange filters from the venue's exchangeInfo."""
    url = f"{rest}{REST_PREFIX[market]}/exchangeInfo"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as s, \
            s.get(url) as r:
        r.raise_for_status()
        info = await r.json(content_type=None)
    for entry in info.get("symbols", []):
        if entry.get("symbol") == symbol:
            return SymbolFilters.from_exchange_info(market, entry)
    raise TradelabError(f"the venue at {rest} does not list {market} {symbol}")


PaperConfig = RunConfig


class LiveRun:
    """One run of one strategy on one symbol (then :meth:`run`)."""

    def __init__(self, cfg: RunConfig, filters: SymbolFilters) -> None:
        self.cfg = cfg
        self.filters = filters
        inst = instrument(float(filters.tick_size), float(filters.step_size),
                          float(filters.min_qty), float(filters.min_notional),
                          cfg.maker_fee, cfg.taker_fee)
        lat = L.constant(int(cfg.entry_ms * 1e6), int(cfg.response_ms * 1e6))
        self.engine = PaperExchange(inst, lat, cfg.queue_model, cfg.queue_n)
        self.oms = OrderManager({cfg.symbol: filters}, self._now, "tl")
        self.risk = RiskEngine(cfg.risk)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.journal = RunJournal(cfg.run_dir / "journal.log")
        self.recorder = RunRecorder(time.time_ns())
        self.metrics = RunnerMetrics(cfg.run_id, cfg.strategy)
        self.alerter = Alerter(cfg.alerts, cfg.run_id)
        self.client: Any = None
        self.venue_broker: VenueBroker | None = None
        broker: Broker
        if cfg.broker == "paper":
            broker = PaperBroker(self.engine)
        elif cfg.broker == "venue":
            if not cfg.api_key or not cfg.api_secret:
                raise TradelabError("the venue broker needs an API key and secret (set "
                                    "TRADELAB_API_KEY and TRADELAB_API_SECRET, or a .env file)")
            self.client = make_client(cfg.market, cfg.api_key, cfg.api_secret, cfg.ccxt_rest)
            base, quote = split_raw(cfg.symbol)
            ccxt_sym = f"{base}/{quote}" + (f":{quote}" if cfg.market == "usdm" else "")
            self.venue_broker = broker = VenueBroker(self.client, ccxt_sym)
        else:
            raise TradelabError(f"unknown broker {cfg.broker!r}: paper or venue")
        module = get(cfg.strategy)
        setup = BarSetup(cfg.run_id, cfg.strategy, cfg.symbol, cfg.interval_ns, cfg.units,
                         int(cfg.close_delay_ms * 1e6), cfg.notional, cfg.start_cash,
                         cfg.sizing)
        self.core: BarRunnerCore
        if module.KIND == QUOTE:  # quotes every requote_ms (the bar interval is unused)
            p = as_vector(module.Params, module.Params(**cfg.params))
            setup = dataclasses.replace(setup, interval_ns=int(p[mm.REQUOTE_MS] * 1e6))
            self.core = QuoteRunnerCore(setup, None, self.engine, self.oms, self.risk, broker,
                                        self.journal, self.recorder, on_risk=self._on_risk,
                                        params=p)
        elif module.KIND == BAR:
            self.core = BarRunnerCore(setup, BarDriver(module, cfg.params), self.engine,
                                      self.oms, self.risk, broker, self.journal,
                                      self.recorder, on_risk=self._on_risk)
        elif module.KIND == BOOK:  # decides on every book update
            p = as_vector(module.Params, module.Params(**cfg.params))
            self.core = BookRunnerCore(setup, None, self.engine, self.oms, self.risk, broker,
                                       self.journal, self.recorder, on_risk=self._on_risk,
                                       params=p)
        else:
            raise TradelabError(f"{cfg.strategy} is a {module.KIND} strategy: the runners "
                                "trade bar, quote and book strategies")
        if self.venue_broker is not None:
            self.venue_broker.sink = self.core
            self.venue_broker.on_rtt = lambda kind, us: self.recorder.round_trip(
                time.time_ns(), kind, us)
        self.reconciled: dict[str, Any] | None = None
        self.stop = asyncio.Event()
        self.exit_reason = "timeout"
        self.messages = 0
        self.last_event_wall = 0.0
        self.connected_at: float | None = None
        self._polling = False
        self.stamper = RowStamper(cfg.clock)

    def _now(self) -> int:
        return self.engine.now or time.time_ns()

    # -- feed callbacks ------------------------------------------------------------------------

    async def on_book(self, book: Any, receipt: float) -> None:
        self._feed(self.stamper.book(book, receipt), "book")

    async def on_trade(self, trade: Any, receipt: float) -> None:
        self._feed(self.stamper.trade(trade, receipt), "trade")

    def _feed(self, rows: Any, kind: str) -> None:
        wall = time.time()
        if self.connected_at is None:
            self.connected_at = wall
        self.last_event_wall = wall
        self.messages += 1
        self.metrics.messages.labels(self.cfg.symbol, kind).inc()
        t0 = time.perf_counter_ns()
        n_orders = len(self.oms.orders)
        try:
            self.core.on_rows(rows)
        except Exception:
            log.exception("runner core failed on a %s message", kind)
            self.exit_reason = "error"
            self.stop.set()
            return
        if len(self.oms.orders) > n_orders:
            self.metrics.tick_to_order.observe((time.perf_counter_ns() - t0) / 1e9)

    # -- risk and kill switch ------------------------------------------------------------------

    def _on_risk(self, ev: RiskEvent) -> None:
        if ev.kind == "deny":
            self.metrics.rejects.labels(ev.symbol or self.cfg.symbol, "risk").inc()
        if ev.kind in ("halt", "close_all", "kill", "stale"):
            self.metrics.guard_trips.labels(ev.kind).inc()
        if ev.kind == "close_all":
            self.core.cancel_all(self.engine.now, "daily guard")
            self.core.flatten(self.engine.now, "daily guard")
        if ev.kind == "stale":
            self.core.cancel_all(self.engine.now, "stale data")
            self.alerter.on_stale(ev.ts_ns, ev.reason)
        if ev.kind in ("halt", "close_all"):
            self.alerter.alert(ev.ts_ns, "daily_guard", ev.reason)

    def kill(self, source: str) -> None:
        """The kill switch: no new orders, cancel everything, stop."""
        ev = self.risk.kill(time.time_ns(), source)
        self.core._risk_event(ev)
        self.core.cancel_all(self.engine.now, "kill")
        self.exit_reason = "kill_switch"
        self.stop.set()

    # -- timers --------------------------------------------------------------------------------

    async def _tick(self) -> None:
        last_pnl = 0.0
        started = time.monotonic()
        while not self.stop.is_set():
            await asyncio.sleep(1.0)
            now_ns = time.time_ns()
            if self.cfg.kill_file is not None and self.cfg.kill_file.exists():
                self.kill(f"file {self.cfg.kill_file}")
                break
            if self.last_event_wall:
                for ev in self.risk.check_stale(self._stale_clock(now_ns)):
                    self.core._risk_event(ev)  # reaches _on_risk through the core
            self._refresh_metrics()
            vb = self.venue_broker
            if vb is not None and vb.stream_silent(now_ns) and not self._polling:
                self._polling = True
                task = asyncio.get_running_loop().create_task(self._poll())
                vb.tasks.add(task)
                task.add_done_callback(vb.tasks.discard)
            if time.monotonic() - last_pnl >= PNL_EVERY_S:
                last_pnl = time.monotonic()
                self._snapshot_pnl()
            if self.cfg.duration_s is not None and time.monotonic() - started \
                    >= self.cfg.duration_s:
                self.exit_reason = "timeout"
                self.stop.set()

    async def _reconnected(self) -> None:
        """The user-data stream is back: settle what may have happened while it was down."""
        assert self.venue_broker is not None
        await self.venue_broker.poll()
        await reconcile(self.venue_broker, self.core, self.cfg.market,
                        split_raw(self.cfg.symbol)[0], None, Decimal(0), balances=False)
        self.core._risk_event(RiskEvent(self.engine.now, "resume",
                                        "user-data stream reconnected; reconciled"))

    async def _poll(self) -> None:
        try:
            assert self.venue_broker is not None
            await self.venue_broker.poll()
        finally:
            self._polling = False

    async def _resume_and_reconcile(self) -> None:
        """Resume from an existing journal, then (venue broker) reconcile with the venue."""
        cfg = self.cfg
        records = self.journal.records
        start = next((r for r in records if r["type"] == "start"), None)
        if records:
            self.core.restore(records)
            log.info("resumed run %s from its journal (%d records, %d orders)", cfg.run_id,
                     len(records), len(self.oms.orders))
        start_base: Decimal | None = None
        base = split_raw(cfg.symbol)[0]
        if self.venue_broker is not None and start is not None and start.get("base_balance"):
            start_base = Decimal(start["base_balance"])
        elif self.venue_broker is not None and cfg.market == "spot":
            bal = await self.client.fetch_balance()
            start_base = Decimal(str((bal.get(base) or {}).get("total") or 0))
        if start is None:
            self.journal.start(cfg.run_id, time.time_ns(), strategy=cfg.strategy,
                               params=cfg.params, symbol=cfg.symbol, market=cfg.market,
                               broker=cfg.broker, forced=cfg.forced,
                               base_balance=None if start_base is None else str(start_base))
        else:
            self.journal.state(time.time_ns(), restarted=True)
        if self.venue_broker is not None:
            await self.client.load_markets()  # now, not inside the first order's round trip
            rep = await reconcile(self.venue_broker, self.core, cfg.market, base, start_base,
                                  Decimal(str(self.filters.step_size)))
            self.reconciled = rep.as_dict()

    def _stale_clock(self, now_ns: int) -> int:
        """Now on the runner's event clock (the rows' local time): the last event's time plus
        the wall time since it arrived."""
        if self.risk.last_market_ns is None:
            return now_ns
        return self.risk.last_market_ns + int((time.time() - self.last_event_wall) * NS)

    def _snapshot_pnl(self) -> None:
        sym = self.cfg.symbol
        eq = self.core.equity(self.cfg.start_cash)
        self.journal.pnl(self.engine.now, sym, self.core.positions.get(sym, 0.0),
                         self.core.marks.get(sym), self.core.realized, self.core.unrealized(),
                         self.core.fees, eq)
        self.alerter.on_equity(self.engine.now, eq)

    def _refresh_metrics(self) -> None:
        m, sym = self.metrics, self.cfg.symbol
        now = time.time()
        m.feed_up.labels(sym).set(1 if self.connected_at and now - self.last_event_wall < 30
                                  else 0)
        m.feed_uptime.labels(sym).set(now - self.connected_at if self.connected_at else 0)
        m.last_event_age.labels(sym).set(now - self.last_event_wall if self.last_event_wall
                                         else float("nan"))
        m.position.labels(sym).set(self.core.positions.get(sym, 0.0))
        m.realized_pnl.labels(sym).set(self.core.realized)
        m.unrealized_pnl.labels(sym).set(self.core.unrealized())
        m.risk_state.set(1 if self.risk.halted else 0)
        by_status: dict[str, int] = {}
        for o in self.oms.orders.values():
            by_status[o.state.value] = by_status.get(o.state.value, 0) + 1
        for status, n in by_status.items():
            m.orders.labels(sym, status).set(n)
        recent = [o for o in self.oms.orders.values()
                  if o.created_ns >= self.engine.now - 60 * NS]
        m.reject_rate.set(sum(o.state.value == "REJECTED" for o in recent) / len(recent)
                          if recent else 0.0)

    def health(self) -> dict:
        return {"run_id": self.cfg.run_id, "strategy": self.cfg.strategy,
                "messages": self.messages, "halted": self.risk.halted,
                "position": self.core.positions.get(self.cfg.symbol, 0.0)}

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> dict:
        """Run until the duration, a signal, the kill switch or an error; return the summary."""
        from cryptofeed import FeedHandler
        from cryptofeed.defines import L2_BOOK, TRADES

        cfg = self.cfg
        import ccxt.async_support as ccxt

        try:
            try:
                await self._resume_and_reconcile()
            except ccxt.AuthenticationError as exc:
                raise TradelabError(f"authentication failed: the venue refused the API key "
                                    f"({type(exc).__name__}: {exc}); check TRADELAB_API_KEY "
                                    "and TRADELAB_API_SECRET") from None
            except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
                raise TradelabError(f"cannot reach the venue's trading API: {exc}") from None
        except BaseException:
            if self.client is not None:
                await self.client.close()
            self.journal.close()
            raise
        exchange = EXCHANGE[cfg.market]
        if cfg.venue_ws:
            cls = repointed_feed_class(exchange, cfg.venue_ws, cfg.venue_rest, cfg.verify_tls)
        else:
            from cryptofeed.exchanges import EXCHANGE_MAP

            cls = EXCHANGE_MAP[exchange]
        await prefetch_symbols(cls)
        feed = cls(symbols=[store_symbol_of_raw(cfg.symbol, cfg.market)],
                   channels=[L2_BOOK, TRADES],
                   callbacks={L2_BOOK: self.on_book, TRADES: self.on_trade},
                   depth_interval="100ms",
                   config={"uvloop": False, "log": {"disabled": True}})
        fh = FeedHandler(config={"uvloop": False, "log": {"disabled": True}})
        fh.add_feed(feed)
        server = await serve_metrics(self.metrics, self.kill, self.health,
                                     cfg.metrics_host, cfg.metrics_port)
        self.metrics_url = server.url
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal)
        fh.run(start_loop=False, install_signal_handlers=False)
        ticker = asyncio.create_task(self._tick())
        watcher = None
        if self.venue_broker is not None and cfg.user_stream:
            self.pro = make_client(cfg.market, cfg.api_key, cfg.api_secret, cfg.ccxt_rest,
                                   pro=True)
            watcher = asyncio.create_task(self.venue_broker.watch(self.pro, self._reconnected))
        try:
            await self.stop.wait()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
                with contextlib.suppress(Exception):
                    await self.pro.close()
            await fh.stop_async()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            self._snapshot_pnl()
            self._refresh_metrics()
            n = self.core.cancel_all(self.engine.now, "exit")  # no quote left behind
            if n:
                log.info("exit: cancelling %d open order(s)", n)
            if self.venue_broker is not None:
                await self.venue_broker.drain()
                await self.client.close()
            await server.stop()
            await self.alerter.close()
            self.journal.close()
        summary = self.summary()
        if cfg.store is not None:
            from tradelab.live.persist import persist_journal

            summary["stored"] = persist_journal(cfg.run_dir / "journal.log", cfg.store,
                                                cfg.run_id, cfg.market, cfg.symbol)
            summary["store"] = str(cfg.store)
        return summary

    def _on_signal(self) -> None:
        self.exit_reason = "sigint"
        self.stop.set()

    def summary(self) -> dict:
        cfg = self.cfg
        s = self.recorder.summary(time.time_ns(), self.exit_reason, cfg.duration_s)
        sym = cfg.symbol
        fills = [e for o in self.oms.orders.values() for e in o.executions]
        s.update({
            "run_id": cfg.run_id, "strategy": cfg.strategy, "params": cfg.params,
            "symbol": sym, "market": cfg.market, "broker": cfg.broker, "forced": cfg.forced,
            "reconciled": self.reconciled,
            "messages": self.messages, "bars": len(self.core.bars),
            "orders": len(self.oms.orders),
            "fills_detail": [{"trade_id": e.trade_id, "qty": str(e.qty),
                              "price": str(e.price), "fee": str(e.fee)} for e in fills],
            "position": self.core.positions.get(sym, 0.0),
            "realized_pnl": self.core.realized, "unrealized_pnl": self.core.unrealized(),
            "fees": self.core.fees, "equity": self.core.equity(cfg.start_cash),
            "risk": {"halted": self.risk.halted, "trips": dict(self.risk.trips)},
            "metrics_url": getattr(self, "metrics_url", None),
            "broker_errors": dict(self.venue_broker.errors) if self.venue_broker else {},
            "user_stream_messages": (self.venue_broker.stream_messages
                                     if self.venue_broker else None),
            "journal": str(cfg.run_dir / "journal.log"),
            "filters": {"tick": str(self.filters.tick_size), "step": str(self.filters.step_size),
                        "min_notional": str(self.filters.min_notional)},
        })
        return s


PaperRun = LiveRun

__all__ = ["LiveRun", "PaperConfig", "PaperRun", "RunConfig", "fetch_filters"]
