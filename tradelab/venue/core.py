"""The venue's state and replay loop: what has been published, to whom, and when.

One timeline for all clients, like an exchange. The replay is paced by the source clock times
``speed`` (``speed=0``: as fast as the slowest client reads). It waits for the first subscribed
client before it starts, and pauses while no client is connected, so a reconnecting client misses
nothing. Every published depth diff is applied to the venue's own book, so REST snapshots are
consistent with the stream position; a dropped-diff fault withholds a diff from clients only.
Spot diffs and trades also reach :class:`~tradelab.venue.trading.Trading`, and USD-M ones
:class:`~tradelab.venue.futures.Futures`, where the accounts' orders match on the shared matching
core; the venue clock also drives the futures' funding settlements. Spot order actions take
effect after the venue's latency, released by the replay ahead of each message
(:mod:`tradelab.venue.latency`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson

from tradelab.adapters.binance.encode import agg_trade_of_trade, envelope, mark_price_update
from tradelab.adapters.binance.schema import stream_kind
from tradelab.venue.accounts import Accounts
from tradelab.venue.book import VenueBook
from tradelab.venue.futures import Futures
from tradelab.venue.history import History
from tradelab.venue.instruments import Instrument, instrument
from tradelab.venue.journal import Durable, Journal
from tradelab.venue.latency import OrderGate, VenueLatency
from tradelab.venue.limits import (
    BAN_AFTER,
    BAN_SECONDS,
    SPOT_ORDER_LIMITS,
    OrderCounts,
    RateLimiter,
)
from tradelab.venue.listenkeys import ListenKeys
from tradelab.venue.sources import MarketSource, VenueMessage
from tradelab.venue.trading import Trading
from tradelab.venue.userstream import UserEvents

log = logging.getLogger("tradelab.venue")

MARK_EVERY_MS = 1000
FUNDING_EVERY_MS = 8 * 3600 * 1000
MALFORMED_FRAME = '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":17'


@dataclass
class Faults:
    """Faults waiting to be injected (counts decrease as they fire)."""

    drop_diff: Counter = field(default_factory=Counter)  # symbol -> diffs to withhold
    malformed: int = 0
    rate_limit: int = 0  # REST requests to refuse with 429
    reject_orders: int = 0  # new orders to refuse with -2010
    delay_ack: int = 0  # new orders placed at once but answered after delay_ack_s
    delay_ack_s: float = 0.0
    drop_exec_report: int = 0  # order events to withhold from the user-data stream
    order_5xx: int = 0  # new orders placed but answered with a 500 (-1001)
    fired: Counter = field(default_factory=Counter)

    def take(self, kind: str) -> bool:
        """Use up one pending fault of ``kind`` (False if none is pending)."""
        left = getattr(self, kind)
        if left <= 0:
            return False
        setattr(self, kind, left - 1)
        self.fired[kind] += 1
        return True


ORDER_EVENTS = ("executionReport", "ORDER_TRADE_UPDATE")


class FaultyUserEvents(UserEvents):
    """The user-data bus as trading publishes to it: a pending ``drop_exec_report`` fault
    withholds the next order events (spot ``executionReport``, USD-M ``ORDER_TRADE_UPDATE``);
    everything else goes to ``bus`` unchanged."""

    def __init__(self, bus: UserEvents, faults: Faults) -> None:  # no state of its own
        self.bus = bus
        self.faults = faults

    def publish(self, uid: str | int, market: str, event: dict) -> None:
        if event.get("e") in ORDER_EVENTS and self.faults.take("drop_exec_report"):
            log.info("user data: a %s withheld (drop_exec_report fault)", event.get("e"))
            return
        self.bus.publish(uid, market, event)

    def subscribe(self, uid: str | int, market: str, callback: Callable[[dict], None],
                  on_disconnect: Callable[[], None] | None = None) -> int:
        return self.bus.subscribe(uid, market, callback, on_disconnect)

    def unsubscribe(self, token: int) -> None:
        self.bus.unsubscribe(token)

    def disconnect(self, uid: str | int | None = None) -> int:
        return self.bus.disconnect(uid)

    def subscribers(self, uid: str | int | None = None) -> int:
        return self.bus.subscribers(uid)


class Conn:
    """One websocket client: its subscriptions and an outgoing queue with its own sender."""

    def __init__(self, ws, market: str, combined: bool, maxsize: int) -> None:
        self.ws = ws
        self.market = market
        self.combined = combined
        self.subs: dict[tuple[str, str], list[str]] = {}  # (SYMBOL, kind) -> stream names
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.stall_until = 0.0
        self.sent = 0
        self.closed = False

    def close(self) -> None:
        """Mark closed and empty the queue, releasing a replay waiting to put into it."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()

    def subscribe(self, stream: str) -> None:
        sym = stream.partition("@")[0]
        kind = stream_kind(stream)
        names = self.subs.setdefault((sym.upper(), kind), [])
        if stream not in names:
            names.append(stream)

    def unsubscribe(self, stream: str) -> None:
        for names in self.subs.values():
            if stream in names:
                names.remove(stream)

    async def sender(self) -> None:
        while True:
            frame = await self.queue.get()
            delay = self.stall_until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.ws.send_str(frame)
            self.sent += 1


class Venue:
    """State shared by the replay loop, the websocket handlers and the REST handlers.

    ``speed`` paces the replay (0: as fast as clients read). When a client cannot keep up,
    ``slow_client`` decides: ``'wait'`` slows the replay to it (nothing is lost; the default for
    rehearsals and tests) or ``'disconnect'`` drops it with close code 1008, as Binance does.

    ``journal`` (a file path) keeps the trading state durable across restarts
    (:mod:`tradelab.venue.journal`); ``order_limits`` are ``(orders, seconds)`` windows per
    account (Binance spot's by default, ``()`` for none); ``ban_after`` 429s in a minute ban
    the IP for ``ban_seconds`` (418).
    """

    def __init__(self, source: MarketSource, history: History | None = None, *, speed: float = 1.0,
                 wait_clients: int = 1, pause_when_idle: bool | None = None,
                 queue_size: int = 5000,
                 default_funding_rate: float = 1e-4, stop_at_end: bool = False,
                 slow_client: str = "wait", accounts: list[dict] | None = None,
                 latency: VenueLatency | None = None, queue_model: str = "risk_averse",
                 queue_n: float = 2.0, journal: str | Path | None = None,
                 order_limits: Sequence[tuple[int, int]] = SPOT_ORDER_LIMITS,
                 ban_after: int = BAN_AFTER, ban_seconds: float = BAN_SECONDS) -> None:
        if slow_client not in ("wait", "disconnect"):
            raise ValueError("slow_client must be 'wait' or 'disconnect'")
        self.source = source
        self.history = history or History()
        self.speed = speed
        self.wait_clients = wait_clients
        # by default the replay pauses while nobody listens only if it waited for listeners
        self.pause_when_idle = wait_clients > 0 if pause_when_idle is None else pause_when_idle
        self.queue_size = queue_size
        self.default_funding_rate = default_funding_rate
        self.stop_at_end = stop_at_end
        self.slow_client = slow_client
        self.instruments: dict[tuple[str, str], Instrument] = dict(source.instruments)
        for key in self.history.by_key:  # instruments known only from history (REST only)
            self.instruments.setdefault(key, instrument(*key))
        self.books = {k: VenueBook(usdm=k[0] == "usdm") for k in self.instruments}
        self.accounts = Accounts(accounts)
        self._now_ms: int | None = None  # exchange time of the latest published message
        self._last_trade_px: dict[tuple[str, str], str] = {}
        self.faults = Faults()
        self.user_events = UserEvents()
        self.listen_keys = ListenKeys()
        events = FaultyUserEvents(self.user_events, self.faults)  # drop_exec_report applies
        self.trading = Trading(self.accounts, self.instruments, self.books, lambda: self.now_ms,
                               events)
        self.trading.queue_model, self.trading.queue_n = queue_model, queue_n
        self.futures = Futures(self.accounts, self.instruments, self.books, lambda: self.now_ms,
                               events, self.mark_price, self.funding_rate,
                               self.next_funding_ms)
        self.gate = OrderGate(latency or VenueLatency(), lambda: self.now_ms * 1_000_000,
                              self._stamp, speed)  # order latency (tradelab.venue.latency)
        self.conns: set[Conn] = set()
        self.connections = 0  # websocket connections accepted so far
        self.trading.on_change = self.persist
        self.futures.on_change = self.persist
        self.order_counts = OrderCounts(order_limits)
        self.trading.on_first_fill = lambda order: self.order_counts.traded(order.order_id)
        self.ban_after, self.ban_seconds = ban_after, ban_seconds
        self.limiter: RateLimiter | None = None  # the request-weight limiter the server made
        self.journal: Journal | None = None
        if journal is not None:
            self.journal = Journal(journal, self.durable_components())
            self.journal.open()
        self.published: Counter[str] = Counter()
        self.ports: dict = {}
        self.finished = asyncio.Event()
        self.started = asyncio.Event()
        self._clients_changed = asyncio.Event()
        self._agg_id: Counter = Counter()
        self._next_mark: dict[tuple[str, str], int] = {}
        self._oi: dict[tuple[str, str], float] = {}
        self._sync_from_source_snapshots()

    # -- durability ------------------------------------------------------------------------

    def durable_components(self) -> dict[str, Durable]:
        """The parts of the venue whose state the journal keeps, by name."""
        return {"spot": self.trading, "usdm": self.futures}

    def persist(self) -> None:
        """Journal what changed (fsynced) before anyone is told about it."""
        self.trading.dirty = False
        self.futures.dirty = False
        if self.journal is not None:
            self.journal.commit()

    # -- clients ---------------------------------------------------------------------------

    def add_conn(self, conn: Conn) -> None:
        if conn not in self.conns:
            self.connections += 1
        self.conns.add(conn)
        self._clients_changed.set()

    def drop_conn(self, conn: Conn) -> None:
        conn.close()
        self.conns.discard(conn)
        self._clients_changed.set()

    def _subscribed(self) -> int:
        return sum(1 for c in self.conns if any(c.subs.values()))

    async def _wait_for_clients(self, n: int) -> None:
        while self._subscribed() < n:
            self._clients_changed.clear()
            await self._clients_changed.wait()

    # -- replay ----------------------------------------------------------------------------

    async def replay(self) -> None:
        """Publish the source's messages, paced; returns when the source is exhausted."""
        await self._wait_for_clients(self.wait_clients)
        self.started.set()
        self.gate.set_streaming(True)
        src = self.source
        t0_wall, t0_at = time.monotonic(), src.start_at()
        log.info("replay started (speed %s)", self.speed or "max")
        while True:
            if self.pause_when_idle and not self.conns:
                paused_at = time.monotonic()
                self.gate.set_streaming(False)
                await self._wait_for_clients(1)
                self.gate.set_streaming(True)
                t0_wall += time.monotonic() - paused_at
            if self.speed > 0:
                target = t0_at + int((time.monotonic() - t0_wall) * self.speed * 1e9)
                batch = src.take(target)
                if not batch:
                    nxt = src.peek()
                    if nxt is None:
                        break
                    wait = (nxt.at - t0_at) / (self.speed * 1e9) - (time.monotonic() - t0_wall)
                    await asyncio.sleep(min(max(wait, 0.0005), 0.25))
                    continue
            else:
                batch = src.take(None)
                if not batch:
                    break
            for msg in batch:
                await self.publish(msg)
            if self.speed <= 0:
                await asyncio.sleep(0)  # let senders and REST handlers run
        self.gate.set_streaming(False)
        log.info("replay finished: %s", dict(self.published))
        self.finished.set()

    def _stamp(self, t_ns: int | None) -> None:
        self.trading.at_ns = t_ns

    def _sync_from_source_snapshots(self) -> None:
        while self.source.snapshots:
            market, symbol, snap = self.source.snapshots.pop(0)
            book = self.books.get((market, symbol))
            if book is not None and not book.synced:
                book.load_snapshot(snap)
                if market == "spot":
                    self.trading.on_snapshot(symbol)
                else:
                    self.futures.on_snapshot(symbol)
                log.info("%s %s: venue book synced from snapshot %s", market, symbol,
                         snap["lastUpdateId"])

    async def publish(self, msg: VenueMessage) -> None:
        """Apply a message to the venue state and send it to every subscriber."""
        key = (msg.market, msg.symbol)
        data = msg.data
        e_ms = data.get("E") or data.get("T")
        if e_ms:
            self.gate.release_before(int(e_ms) * 1_000_000)  # order actions due before it
        if e_ms and (self._now_ms is None or int(e_ms) > self._now_ms):
            self._now_ms = int(e_ms)
        self._sync_from_source_snapshots()
        self.futures.on_time(self.now_ms)  # funding settles at the mark before this message
        if msg.kind == "depth":
            book = self.books[key]
            applied = book.apply(data, msg.market == "usdm")
            if applied == "applied":
                book_side = self.trading if msg.market == "spot" else self.futures
                book_side.on_depth(msg.symbol, data)
                if book_side.dirty:
                    self.persist()
            if applied == "gap":
                log.warning("%s %s: the source itself has a gap at U=%s; REST snapshots are "
                            "stale until the next snapshot in the source", *key, data["U"])
            if self.faults.drop_diff[msg.symbol] > 0:
                self.faults.drop_diff[msg.symbol] -= 1
                self.faults.fired["drop_diff"] += 1
                return
        elif msg.kind in ("trade", "aggTrade"):
            self._record_trade(key, msg)
            if msg.kind == "trade" or not self.source.provides("trade"):  # each trade once
                book_side = self.trading if msg.market == "spot" else self.futures
                book_side.on_trade(msg.symbol, data)
                if book_side.dirty:
                    self.persist()
        if self.faults.malformed > 0:
            self.faults.malformed -= 1
            self.faults.fired["malformed"] += 1
            await self._fanout_raw(msg.market, MALFORMED_FRAME)
        await self._fanout(msg.market, msg.symbol, msg.kind, data)
        if msg.kind == "trade" and not self.source.provides("aggTrade"):
            await self._fanout(msg.market, msg.symbol, "aggTrade", self._as_agg(msg))
        self.published[msg.kind] += 1
        if msg.market == "usdm":
            await self._maybe_mark(key)

    def _record_trade(self, key: tuple[str, str], msg: VenueMessage) -> None:
        d = msg.data
        agg = d["a"] if "a" in d else d["t"]
        hist = self.history.get(*key)
        if not hist.trades.ids or agg > hist.trades.ids[-1]:
            hist.trades.add(int(agg), int(d["T"]), d["p"], d["q"], bool(d["m"]))
        self._last_trade_px[key] = d["p"]
        if key[0] == "usdm":
            q = float(d["q"])
            oi = self._oi.get(key, 25_000.0) + (0.3 * q if not d["m"] else -0.25 * q)
            self._oi[key] = max(oi, 1.0)

    def _as_agg(self, msg: VenueMessage) -> dict:
        return agg_trade_of_trade(msg.market == "spot", msg.data)

    async def _maybe_mark(self, key: tuple[str, str]) -> None:
        nxt = self._next_mark.get(key)
        if nxt is None:
            self._next_mark[key] = (self.now_ms // MARK_EVERY_MS + 1) * MARK_EVERY_MS
            return
        if self.now_ms < nxt:
            return
        self._next_mark[key] = (self.now_ms // MARK_EVERY_MS + 1) * MARK_EVERY_MS
        mark = self.mark_price(key)
        if mark is None:
            return
        inst = self.instruments[key]
        data = mark_price_update(self.now_ms, inst.symbol, mark, mark * (1 - 2e-5),
                                 self.funding_rate(key, self.now_ms),
                                 self.next_funding_ms(self.now_ms))
        await self._fanout(key[0], inst.symbol, "markPrice", data)
        self.published["markPrice"] += 1

    # -- derived values ------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The venue's clock: exchange time of the stream position (wall clock before it)."""
        return self._now_ms if self._now_ms is not None else int(time.time() * 1000)

    def mark_price(self, key: tuple[str, str]) -> float | None:
        bid, ask = self.books[key].best()
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        last = self._last_trade_px.get(key)
        return float(Decimal(last)) if last else None

    def funding_rate(self, key: tuple[str, str], t_ms: int) -> float:
        hist = self.history.by_key.get(key)
        if hist is not None and len(hist.funding_t):
            i = int(hist.funding_t.searchsorted(t_ms, side="right")) - 1
            if i >= 0:
                return float(hist.funding_r[i])
        return self.default_funding_rate

    @staticmethod
    def next_funding_ms(t_ms: int) -> int:
        return (t_ms // FUNDING_EVERY_MS + 1) * FUNDING_EVERY_MS

    def open_interest(self, key: tuple[str, str]) -> float:
        return self._oi.get(key, 25_000.0)

    def depth_snapshot(self, key: tuple[str, str], limit: int) -> dict:
        """REST depth: the venue's book once synced, before that the source's first snapshot."""
        book = self.books[key]
        log.debug("depth snapshot of %s:%s at stream time %s (venue book %s)", *key,
                  self.now_ms, "synced" if book.synced else "not synced yet")
        extra = {"E": self.now_ms, "T": self.now_ms} if key[0] == "usdm" else None
        if book.synced:
            return book.snapshot(limit, extra)
        initial = self.source.initial.get(key)
        if initial is None:
            return {"lastUpdateId": 0, **(extra or {}), "bids": [], "asks": []}
        snap = VenueBook()
        snap.load_snapshot(initial)
        return snap.snapshot(limit, extra)

    # -- fan-out -------------------------------------------------------------------------

    async def _fanout(self, market: str, symbol: str, kind: str, data: dict) -> None:
        frames: dict[tuple[str, bool], str] = {}
        for conn in list(self.conns):
            if conn.market != market:
                continue
            for stream in conn.subs.get((symbol, kind), ()):
                fkey = (stream, conn.combined)
                frame = frames.get(fkey)
                if frame is None:
                    body = envelope(stream, data) if conn.combined else data
                    frame = frames[fkey] = orjson.dumps(body).decode()
                await self._put(conn, frame)

    async def _fanout_raw(self, market: str, frame: str) -> None:
        for conn in list(self.conns):
            if conn.market == market and any(conn.subs.values()):
                await self._put(conn, frame)

    async def _put(self, conn: Conn, frame: str) -> None:
        """Queue a frame for a client. A full queue means the client is behind: either the
        replay waits for it (``slow_client='wait'``: the pace drops to what the client reads)
        or the client is disconnected, as Binance does (``'disconnect'``)."""
        if conn.closed:
            return
        try:
            conn.queue.put_nowait(frame)
            return
        except asyncio.QueueFull:
            pass
        if self.speed <= 0 or self.slow_client == "wait":
            if self.speed > 0:
                self.faults.fired["replay_waited_for_client"] += 1
            while not conn.closed:
                try:
                    await asyncio.wait_for(conn.queue.put(frame), timeout=1.0)
                    return
                except TimeoutError:
                    continue
        else:
            log.warning("client too slow: disconnecting it (queue of %d full)",
                        conn.queue.maxsize)
            self.faults.fired["slow_client_disconnected"] += 1
            await conn.ws.close(code=1008, message=b"slow consumer")

    # -- faults --------------------------------------------------------------------------

    async def inject(self, kind: str, symbol: str | None = None, count: int = 1,
                     seconds: float = 0.0) -> dict:
        """Inject a fault now. Market data: drop_diff, disconnect, stall (slow consumer),
        malformed, rate_limit. Orders (the next ``count`` new orders on ``POST order``):
        reject_orders (-2010), delay_ack (placed at once, answered after ``seconds``),
        order_5xx (placed, answered 500 -1001: the client cannot know), drop_exec_report (the
        next ``count`` order events withheld from the user-data stream) and
        disconnect_user_stream (every user-data subscriber dropped now). Returns what was
        scheduled."""
        if count < 1 or seconds < 0:
            raise ValueError(f"count must be >= 1 and seconds >= 0 (got {count}, {seconds})")
        out: dict = {"fault": kind, "symbol": symbol, "count": count, "seconds": seconds}
        if kind == "drop_diff":
            if not symbol:
                raise ValueError("drop_diff needs a symbol")
            self.faults.drop_diff[symbol.upper()] += count
        elif kind == "disconnect":
            for conn in list(self.conns):
                conn.close()
                await conn.ws.close(code=1001, message=b"venue fault: disconnect")
            self.faults.fired["disconnect"] += 1
        elif kind == "stall":
            until = time.monotonic() + (seconds or 2.0)
            for conn in self.conns:
                conn.stall_until = until
            self.faults.fired["stall"] += 1
        elif kind == "delay_ack":
            if seconds <= 0:
                raise ValueError("delay_ack needs seconds > 0")
            self.faults.delay_ack += count
            self.faults.delay_ack_s = seconds
        elif kind in ("malformed", "rate_limit", "reject_orders", "drop_exec_report",
                      "order_5xx"):
            setattr(self.faults, kind, getattr(self.faults, kind) + count)
        elif kind == "disconnect_user_stream":
            out["disconnected"] = self.user_events.disconnect()
            self.faults.fired[kind] += 1
        else:
            raise ValueError(f"unknown fault {kind!r}: use drop_diff, disconnect, stall, "
                             "malformed, rate_limit, reject_orders, delay_ack, "
                             "drop_exec_report, order_5xx or disconnect_user_stream")
        return out

    def status(self) -> dict:
        journal = ({"path": str(self.journal.path), "seq": self.journal.seq}
                   if self.journal is not None else None)
        return {**self.ports, "journal": journal, "now_ms": self.now_ms,
                "started": self.started.is_set(),
                "finished": self.finished.is_set(), "speed": self.speed,
                "clients": len(self.conns), "connections": self.connections,
                "published": dict(self.published),
                "source_lines": self.source.lines, "faults_fired": dict(self.faults.fired),
                "instruments": [f"{m}:{s}" for m, s in self.instruments],
                "books": {f"{m}:{s}": b.last_update_id for (m, s), b in self.books.items()}}
