"""The runners' asyncio shell: feeds in, the runner cores, timers, metrics, and the exit.

One event loop owns everything. cryptofeed's callbacks turn book and trade messages into event
rows and hand them to the runner core of their symbol (:class:`~tradelab.live.core.BarRunnerCore`
and its quote and book kinds, which decide, check risk, journal and send); the symbols of a run
share its order manager, risk engine, portfolio, journal and metrics. A one-second timer checks
stale data, the kill file and the run's duration, snapshots PnL into the journal and refreshes
the metrics. The run ends on its duration, SIGINT /
SIGTERM, the kill switch (signal, file or ``POST /kill`` on the metrics port) or an error, and
always writes its summary (and the journal's tables into the store when one is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.adapters.binance.filters import SymbolFilters
from tradelab.adapters.binance.schema import REST_PREFIX
from tradelab.adapters.binance.symbols import (
    EXCHANGE,
    ccxt_symbol_of_raw,
    split_raw,
    store_symbol_of_raw,
)
from tradelab.core.events import event_dt
from tradelab.errors import TradelabError
from tradelab.live.alerts import AlertConfig, Alerter
from tradelab.live.book import BookRunnerCore
from tradelab.live.core import BarRunnerCore, BarSetup, Broker, PaperBroker
from tradelab.live.events import RowStamper
from tradelab.live.journal import RunJournal, rehydrate
from tradelab.live.metrics import RunnerMetrics, serve_metrics
from tradelab.live.orders import OrderManager
from tradelab.live.paper import PaperExchange
from tradelab.live.portfolio import Portfolio
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
    symbol: str  # raw Binance symbol, e.g. BTCUSDT (the first, when the run trades several)
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
    request_timeout_s: float = 10.0  # a REST request without an answer by then: outcome unknown
    dump_rows: bool = False  # keep every symbol's received event rows: run_dir/rows-SYM.npy
    sizing: str = "fixed"  # fixed | vol_target
    symbols: tuple[str, ...] = ()  # every symbol the run trades (empty: ``symbol`` alone)
    # paper fills: a latency model (code, params, table) instead of entry_ms / response_ms,
    # and what the summary says the fill model was
    latency_model: tuple[int, np.ndarray, np.ndarray] | None = None
    fill_model: dict[str, Any] = field(default_factory=dict)

    @property
    def all_symbols(self) -> tuple[str, ...]:
        """The run's symbols, ``symbol`` first."""
        rest = tuple(s for s in self.symbols if s != self.symbol)
        return (self.symbol, *rest)


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


@dataclass
class Leg:
    """One symbol of a run: its simulated exchange, runner core, broker, recorder and feed
    state. The run's order manager, risk engine, portfolio, journal and metrics are shared."""

    symbol: str
    filters: SymbolFilters
    engine: PaperExchange
    core: BarRunnerCore
    recorder: RunRecorder
    stamper: RowStamper
    venue_broker: VenueBroker | None = None
    messages: int = 0
    last_event_wall: float = 0.0
    connected_at: float | None = None
    polling: bool = False
    reconciled: dict[str, Any] | None = None
    rate_mark: tuple[float, int] = (0.0, 0)  # (monotonic time, messages) at the last refresh
    received: list[np.ndarray] = field(default_factory=list)  # rows kept for --dump-rows


class LiveRun:
    """One run of one strategy on one or more symbols (then :meth:`run`).

    Each symbol has its own runner core (bar clock, strategy state, simulated exchange); they
    share the run's order manager (one client-id sequence), risk engine (the total cap, the
    daily guard and the kill switch are the run's), portfolio, journal, metrics endpoint and,
    for the venue broker, one ccxt client."""

    def __init__(self, cfg: RunConfig,
                 filters: SymbolFilters | dict[str, SymbolFilters]) -> None:
        self.cfg = cfg
        symbols = cfg.all_symbols
        by_symbol = filters if isinstance(filters, dict) else {cfg.symbol: filters}
        missing = [s for s in symbols if s not in by_symbol]
        if missing:
            raise TradelabError(f"no exchange filters for {', '.join(missing)}")
        self.legs: list[Leg] = []  # (built below; the order manager's clock reads them)
        self.oms = OrderManager({s: by_symbol[s] for s in symbols}, self._now, "tl")
        self.risk = RiskEngine(cfg.risk)
        self.portfolio = Portfolio()
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.journal = RunJournal(cfg.run_dir / "journal.log")
        self.started_ns = time.time_ns()
        self.metrics = RunnerMetrics(cfg.run_id, cfg.strategy)
        self.alerter = Alerter(cfg.alerts, cfg.run_id)
        self.client: Any = None
        if cfg.broker == "venue":
            if not cfg.api_key or not cfg.api_secret:
                raise TradelabError("the venue broker needs an API key and secret (set "
                                    "TRADELAB_API_KEY and TRADELAB_API_SECRET, or a .env file)")
            self.client = make_client(cfg.market, cfg.api_key, cfg.api_secret, cfg.ccxt_rest,
                                      timeout_ms=int(cfg.request_timeout_s * 1000))
        elif cfg.broker != "paper":
            raise TradelabError(f"unknown broker {cfg.broker!r}: paper or venue")
        self.module = get(cfg.strategy)
        if self.module.KIND not in (BAR, QUOTE, BOOK):
            raise TradelabError(f"{cfg.strategy} is a {self.module.KIND} strategy: the runners "
                                "trade bar, quote and book strategies")
        self.legs.extend(self._leg(s, by_symbol[s]) for s in symbols)
        self.by_feed_symbol = {store_symbol_of_raw(leg.symbol, cfg.market): leg
                               for leg in self.legs}
        self.stop = asyncio.Event()
        self.exit_reason = "timeout"
        self.error: str | None = None  # what stopped the run, when an error did
        self.state = "running"  # running | halted | stale | killed
        self.metrics_url: str | None = None

    def _leg(self, sym: str, filters: SymbolFilters) -> Leg:
        cfg = self.cfg
        inst = instrument(float(filters.tick_size), float(filters.step_size),
                          float(filters.min_qty), float(filters.min_notional),
                          cfg.maker_fee, cfg.taker_fee)
        lat = cfg.latency_model or L.constant(int(cfg.entry_ms * 1e6), int(cfg.response_ms * 1e6))
        engine = PaperExchange(inst, lat, cfg.queue_model, cfg.queue_n)
        recorder = RunRecorder(self.started_ns)
        venue_broker: VenueBroker | None = None
        broker: Broker
        if cfg.broker == "venue":
            venue_broker = broker = VenueBroker(self.client,
                                                ccxt_symbol_of_raw(sym, cfg.market),
                                                raw_symbol=sym)
        else:
            broker = PaperBroker(engine)
        setup = BarSetup(cfg.run_id, cfg.strategy, sym, cfg.interval_ns, cfg.units,
                         int(cfg.close_delay_ms * 1e6), cfg.notional, cfg.start_cash,
                         cfg.sizing)
        common: dict[str, Any] = {"journal": self.journal, "recorder": recorder,
                                  "on_risk": self._on_risk, "portfolio": self.portfolio}
        module = self.module
        core: BarRunnerCore
        if module.KIND == QUOTE:  # quotes every requote_ms (the bar interval is unused)
            p = as_vector(module.Params, module.Params(**cfg.params))
            setup = dataclasses.replace(setup, interval_ns=int(p[mm.REQUOTE_MS] * 1e6))
            core = QuoteRunnerCore(setup, None, engine, self.oms, self.risk, broker, params=p,
                                   **common)
        elif module.KIND == BAR:
            core = BarRunnerCore(setup, BarDriver(module, cfg.params), engine, self.oms,
                                 self.risk, broker, **common)
        else:  # BOOK: decides on every book update
            p = as_vector(module.Params, module.Params(**cfg.params))
            core = BookRunnerCore(setup, None, engine, self.oms, self.risk, broker, params=p,
                                  **common)
        core.on_reject = self._on_reject
        if venue_broker is not None:
            venue_broker.sink = core
            venue_broker.on_rtt = lambda kind, us: recorder.round_trip(time.time_ns(), kind, us)
        return Leg(sym, filters, engine, core, recorder, RowStamper(cfg.clock), venue_broker)

    # -- the first symbol's pieces (a run of one symbol: the run's) ----------------------------

    @property
    def core(self) -> BarRunnerCore:
        return self.legs[0].core

    @property
    def engine(self) -> PaperExchange:
        return self.legs[0].engine

    @property
    def filters(self) -> SymbolFilters:
        return self.legs[0].filters

    @property
    def venue_broker(self) -> VenueBroker | None:
        return self.legs[0].venue_broker

    @property
    def messages(self) -> int:
        return sum(leg.messages for leg in self.legs)

    @property
    def last_event_wall(self) -> float:
        return max(leg.last_event_wall for leg in self.legs)

    def _now(self) -> int:
        """The run's event clock: the newest of its simulated exchanges' (wall time before any
        event)."""
        return max((leg.engine.now for leg in self.legs), default=0) or time.time_ns()

    # -- feed callbacks ------------------------------------------------------------------------

    async def on_book(self, book: Any, receipt: float) -> None:
        leg = self.by_feed_symbol.get(book.symbol)
        if leg is not None:
            self._feed(leg, leg.stamper.book(book, receipt), "book")

    async def on_trade(self, trade: Any, receipt: float) -> None:
        leg = self.by_feed_symbol.get(trade.symbol)
        if leg is not None:
            self._feed(leg, leg.stamper.trade(trade, receipt), "trade")

    def _feed(self, leg: Leg, rows: Any, kind: str) -> None:
        wall = time.time()
        if leg.connected_at is None:
            leg.connected_at = wall
        leg.last_event_wall = wall
        leg.messages += 1
        self.metrics.messages.labels(leg.symbol, kind).inc()
        if self.cfg.dump_rows and len(rows):
            leg.received.append(rows.copy())
        t0 = time.perf_counter_ns()
        n_orders = len(self.oms.orders)
        try:
            leg.core.on_rows(rows)
        except Exception as exc:
            log.exception("runner core failed on a %s %s message", leg.symbol, kind)
            self.exit_reason = "error"
            self.error = f"the runner core failed on a {leg.symbol} {kind} message: {exc!r}"
            self.stop.set()
            return
        if len(self.oms.orders) > n_orders:
            self.metrics.tick_to_order.observe((time.perf_counter_ns() - t0) / 1e9)

    # -- risk and kill switch ------------------------------------------------------------------

    def _on_risk(self, ev: RiskEvent) -> None:
        state = {"halt": "halted", "close_all": "halted", "kill": "killed",
                 "stale": "stale"}.get(ev.kind)
        if ev.kind == "resume" and self.state in ("stale", "halted") and not self.risk.halted \
                and not self.risk.stale:
            state = "running"
        if state is not None and state != self.state:
            self.legs[0].recorder.transition(ev.ts_ns, self.state, state, ev.reason)
            self.state = state
        if ev.kind == "deny":
            self.metrics.rejects.labels(ev.symbol or self.cfg.symbol, "risk").inc()
        if ev.kind in ("halt", "close_all", "kill", "stale"):
            self.metrics.guard_trips.labels(ev.kind).inc()
        if ev.kind == "close_all":  # the daily guard is the run's: every symbol closes
            for leg in self.legs:
                leg.core.cancel_all(self._now(), "daily guard")
                leg.core.flatten(self._now(), "daily guard")
        if ev.kind == "stale":
            for leg in self.legs:
                leg.core.cancel_all(self._now(), "stale data")
            self.alerter.on_stale(ev.ts_ns, ev.reason)
        if ev.kind in ("halt", "close_all"):
            self.alerter.alert(ev.ts_ns, "daily_guard", ev.reason)

    def _on_reject(self, symbol: str, why: str, ts_ns: int, expected: bool) -> None:
        """The venue refused an order: counted; a burst of unexpected refusals alerts (a
        post-only quote that would have taken is routine, counted apart)."""
        self.metrics.rejects.labels(symbol, "post_only" if expected else "venue").inc()
        if not expected:
            self.alerter.on_reject(ts_ns, symbol, why)

    def kill(self, source: str) -> None:
        """The kill switch: no new orders, cancel everything, stop."""
        ev = self.risk.kill(time.time_ns(), source)
        self.core._risk_event(ev)
        for leg in self.legs:
            leg.core.cancel_all(self._now(), "kill")
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
            for leg in self.legs:
                vb = leg.venue_broker
                if vb is not None and vb.stream_silent(now_ns) and not leg.polling:
                    leg.polling = True
                    task = asyncio.get_running_loop().create_task(self._poll(leg))
                    vb.tasks.add(task)
                    task.add_done_callback(vb.tasks.discard)
            if time.monotonic() - last_pnl >= PNL_EVERY_S:
                last_pnl = time.monotonic()
                self._snapshot_pnl()
            if self.cfg.duration_s is not None and time.monotonic() - started \
                    >= self.cfg.duration_s:
                self.exit_reason = "timeout"
                self.stop.set()

    async def _reconnected(self, leg: Leg) -> None:
        """The user-data stream is back: settle what may have happened while it was down."""
        assert leg.venue_broker is not None
        await leg.venue_broker.poll()
        await reconcile(leg.venue_broker, leg.core, self.cfg.market,
                        split_raw(leg.symbol)[0], None, Decimal(0), balances=False)
        leg.core._risk_event(RiskEvent(self._now(), "resume",
                                       "user-data stream reconnected; reconciled", leg.symbol))

    async def _poll(self, leg: Leg) -> None:
        try:
            assert leg.venue_broker is not None
            await leg.venue_broker.poll()
        finally:
            leg.polling = False

    async def _resume_and_reconcile(self) -> None:
        """Resume from an existing journal, then (venue broker) reconcile with the venue."""
        cfg = self.cfg
        records = self.journal.records
        start = next((r for r in records if r["type"] == "start"), None)
        if start is not None:
            before = start.get("symbols") or [start.get("symbol")]
            if list(before) != list(cfg.all_symbols):
                raise TradelabError(f"run {cfg.run_id} traded {', '.join(map(str, before))}; "
                                    f"it cannot resume on {', '.join(cfg.all_symbols)} (start "
                                    "a new run for other symbols)")
            # the journal's strategy state and positions belong to what the run traded
            for what, was, now in (("strategy", start.get("strategy"), cfg.strategy),
                                   ("market", start.get("market"), cfg.market),
                                   ("broker", start.get("broker"), cfg.broker),
                                   ("parameters", start.get("params"), cfg.params)):
                if was is not None and was != now:
                    raise TradelabError(f"run {cfg.run_id} traded with {what} {was}; it cannot "
                                        f"resume with {now} (start a new run)")
        if records:
            rehydrate(records, self.oms)  # once: the run's orders, whatever their symbol
            for leg in self.legs:
                leg.core.restore(records, orders=False)
            log.info("resumed run %s from its journal (%d records, %d orders)", cfg.run_id,
                     len(records), len(self.oms.orders))
        start_base: dict[str, Decimal | None] = {leg.symbol: None for leg in self.legs}
        if self.client is not None:
            saved = (start or {}).get("base_balances") or {}
            if start is not None and not saved and start.get("base_balance"):
                saved = {cfg.symbol: start["base_balance"]}  # a journal of one symbol
            if saved:
                start_base.update({s: Decimal(v) for s, v in saved.items() if v is not None})
            elif cfg.market == "spot":
                bal = await self.client.fetch_balance()
                for leg in self.legs:
                    base = split_raw(leg.symbol)[0]
                    start_base[leg.symbol] = Decimal(str((bal.get(base) or {}).get("total")
                                                         or 0))
        if start is None:
            bases = {s: None if b is None else str(b) for s, b in start_base.items()}
            self.journal.start(cfg.run_id, time.time_ns(), strategy=cfg.strategy,
                               params=cfg.params, symbol=cfg.symbol,
                               symbols=list(cfg.all_symbols), market=cfg.market,
                               broker=cfg.broker, forced=cfg.forced,
                               base_balance=bases[cfg.symbol], base_balances=bases,
                               fill_model=cfg.fill_model if cfg.broker == "paper" else None)
        else:
            self.journal.state(time.time_ns(), restarted=True)
        if self.client is not None:
            await self.client.load_markets()  # now, not inside the first order's round trip
            for leg in self.legs:
                assert leg.venue_broker is not None
                rep = await reconcile(leg.venue_broker, leg.core, cfg.market,
                                      split_raw(leg.symbol)[0], start_base[leg.symbol],
                                      Decimal(str(leg.filters.step_size)))
                leg.reconciled = rep.as_dict()

    def _stale_clock(self, now_ns: int) -> int:
        """Now on the runner's event clock (the rows' local time): the last event's time plus
        the wall time since it arrived."""
        if self.risk.last_market_ns is None:
            return now_ns
        return self.risk.last_market_ns + int((time.time() - self.last_event_wall) * NS)

    def _snapshot_pnl(self) -> None:
        now = self._now()
        eq = self.portfolio.equity(self.cfg.start_cash)
        for leg in self.legs:
            sym = leg.symbol
            self.journal.pnl(now, sym, self.portfolio.positions.get(sym, 0.0),
                             self.portfolio.marks.get(sym), leg.core.realized,
                             leg.core.unrealized(), leg.core.fees, eq)
        self.alerter.on_equity(now, eq)

    def _refresh_metrics(self) -> None:
        m = self.metrics
        now = time.time()
        by_status: dict[tuple[str, str], int] = {}
        for o in self.oms.orders.values():
            key = (o.symbol, o.state.value)
            by_status[key] = by_status.get(key, 0) + 1
        for leg in self.legs:
            sym = leg.symbol
            m.feed_up.labels(sym).set(1 if leg.connected_at and now - leg.last_event_wall < 30
                                      else 0)
            m.feed_uptime.labels(sym).set(now - leg.connected_at if leg.connected_at else 0)
            t0, n0 = leg.rate_mark
            mono = time.monotonic()
            if t0 and mono > t0:
                m.message_rate.labels(sym).set((leg.messages - n0) / (mono - t0))
            leg.rate_mark = (mono, leg.messages)
            m.last_event_age.labels(sym).set(now - leg.last_event_wall if leg.last_event_wall
                                             else float("nan"))
            m.position.labels(sym).set(self.portfolio.positions.get(sym, 0.0))
            m.realized_pnl.labels(sym).set(leg.core.realized)
            m.unrealized_pnl.labels(sym).set(leg.core.unrealized())
        for (sym, status), n in by_status.items():
            m.orders.labels(sym, status).set(n)
        m.equity.set(self.portfolio.equity(self.cfg.start_cash))
        m.exposure.set(self.portfolio.exposure())
        m.risk_state.set(1 if self.risk.halted else 0)
        recent = [o for o in self.oms.orders.values()
                  if o.created_ns >= self._now() - 60 * NS]
        m.reject_rate.set(sum(o.state.value == "REJECTED" for o in recent) / len(recent)
                          if recent else 0.0)

    def health(self) -> dict:
        return {"run_id": self.cfg.run_id, "strategy": self.cfg.strategy,
                "messages": self.messages, "halted": self.risk.halted,
                "positions": dict(self.portfolio.positions),
                "position": self.portfolio.positions.get(self.cfg.symbol, 0.0)}

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
        feed = cls(symbols=list(self.by_feed_symbol), channels=[L2_BOOK, TRADES],
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
        watchers: list[asyncio.Task] = []
        self.pro: Any = None
        if self.client is not None and cfg.user_stream:
            self.pro = make_client(cfg.market, cfg.api_key, cfg.api_secret, cfg.ccxt_rest,
                                   pro=True)
            for leg in self.legs:
                assert leg.venue_broker is not None
                watchers.append(asyncio.create_task(leg.venue_broker.watch(
                    self.pro, functools.partial(self._reconnected, leg))))
        try:
            await self.stop.wait()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for watcher in watchers:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            if self.pro is not None:
                with contextlib.suppress(Exception):
                    await self.pro.close()
            await fh.stop_async()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            self._snapshot_pnl()
            self._refresh_metrics()
            for leg in self.legs:
                n = leg.core.cancel_all(self._now(), "exit")  # no quote left behind
                if n:
                    log.info("exit: cancelling %d open %s order(s)", n, leg.symbol)
            for leg in self.legs:
                if leg.venue_broker is not None:
                    await leg.venue_broker.drain()
            if self.client is not None:
                await self.client.close()
            await server.stop()
            await self.alerter.close()
            self.journal.close()
            if cfg.dump_rows:
                self._dump_rows()
        summary = self.summary()
        if cfg.store is not None:
            from tradelab.live.persist import persist_journal

            stored = persist_journal(cfg.run_dir / "journal.log", cfg.store, cfg.run_id,
                                     cfg.market, list(cfg.all_symbols))
            summary["stored"] = stored[cfg.symbol] if len(self.legs) == 1 else stored
            summary["store"] = str(cfg.store)
        return summary

    def _dump_rows(self) -> None:
        """Each symbol's received rows, as its runner core got them (event_dt), for replaying
        through the event backtester: the same rows must give the same decisions."""
        for leg in self.legs:
            rows = np.concatenate(leg.received) if leg.received else np.zeros(0, event_dt)
            np.save(self.cfg.run_dir / f"rows-{leg.symbol}.npy", rows)

    def _on_signal(self) -> None:
        self.exit_reason = "sigint"
        self.stop.set()

    def _leg_summary(self, leg: Leg) -> dict[str, Any]:
        sym = leg.symbol
        orders = [o for o in self.oms.orders.values() if o.symbol == sym]
        fills = [e for o in orders for e in o.executions]
        vb = leg.venue_broker
        return {
            "messages": leg.messages, "bars": len(leg.core.bars), "orders": len(orders),
            "fills": len(fills),
            "fills_detail": [{"trade_id": e.trade_id, "qty": str(e.qty),
                              "price": str(e.price), "fee": str(e.fee)} for e in fills],
            "position": self.portfolio.positions.get(sym, 0.0),
            "mark": self.portfolio.marks.get(sym),
            "realized_pnl": leg.core.realized, "unrealized_pnl": leg.core.unrealized(),
            "fees": leg.core.fees, "reconciled": leg.reconciled,
            "broker_errors": dict(vb.errors) if vb else {},
            "user_stream_messages": vb.stream_messages if vb else None,
            "filters": {"tick": str(leg.filters.tick_size), "step": str(leg.filters.step_size),
                        "min_notional": str(leg.filters.min_notional)},
        }

    def summary(self) -> dict:
        """The run's JSON summary: the whole run's figures, then each symbol's under ``legs``
        (a run of one symbol also has that symbol's ``position`` and ``reconciled`` on top)."""
        cfg = self.cfg
        recorder = RunRecorder.combine([leg.recorder for leg in self.legs])
        s = recorder.summary(time.time_ns(), self.exit_reason, cfg.duration_s)
        legs = {leg.symbol: self._leg_summary(leg) for leg in self.legs}
        first = legs[cfg.symbol]
        errors: dict[str, int] = {}
        for leg_s in legs.values():
            for k, v in leg_s["broker_errors"].items():
                errors[k] = errors.get(k, 0) + v
        s.update({
            "error": self.error,
            "run_id": cfg.run_id, "strategy": cfg.strategy, "params": cfg.params,
            "symbol": cfg.symbol, "symbols": list(cfg.all_symbols), "market": cfg.market,
            "broker": cfg.broker, "forced": cfg.forced,
            "fill_model": cfg.fill_model if cfg.broker == "paper" else None,
            "messages": self.messages, "bars": sum(v["bars"] for v in legs.values()),
            "orders": len(self.oms.orders),
            "fills_detail": [f for v in legs.values() for f in v["fills_detail"]],
            "positions": dict(self.portfolio.positions),
            "realized_pnl": self.portfolio.realized,
            "unrealized_pnl": self.portfolio.unrealized(),
            "fees": self.portfolio.fees, "equity": self.portfolio.equity(cfg.start_cash),
            "risk": {"halted": self.risk.halted, "trips": dict(self.risk.trips)},
            "metrics_url": self.metrics_url,
            "broker_errors": errors,
            "user_stream_messages": (sum(v["user_stream_messages"] for v in legs.values())
                                     if self.client is not None else None),
            "journal": str(cfg.run_dir / "journal.log"),
            "legs": legs,
        })
        if len(self.legs) == 1:
            s.update({"position": first["position"], "reconciled": first["reconciled"],
                      "filters": first["filters"]})
        return s


PaperRun = LiveRun

__all__ = ["Leg", "LiveRun", "PaperConfig", "PaperRun", "RunConfig", "fetch_filters"]
