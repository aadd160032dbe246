"""The venue broker: orders to a Binance-protocol venue through ccxt (testnet or the local venue).

``place`` and ``cancel`` are called by the runner core at its decision and return at once; the
request runs as a task on the same event loop and its outcome comes back to the core:

- an answer: the ack and, in the ``FULL`` response, the fills of a taking order;
- a refusal the venue states (insufficient balance, a filter, post-only would take ...): the
  order is rejected for certain;
- no usable answer (timeout, 5xx, dropped connection): the outcome is **unknown**, and the order
  is resolved by querying it by client id, never by assuming (placed and filled, placed and
  open, or never arrived);
- a retry of a submit reuses its client id (Binance refuses a duplicate open client id, so a
  retry can never place the order twice).

Fills of resting orders arrive through the user-data stream when the caller runs one; when it
is silent for ``stream_silence_s`` (or absent), :meth:`VenueBroker.poll` queries the open
orders and the account's trades instead (the user-stream fallback).
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any, Protocol

from tradelab.adapters.binance.symbols import raw_of_store_symbol, store_symbol_of_ccxt
from tradelab.live.orders import Execution, ManagedOrder, OrderManager, StatusReport

log = logging.getLogger("tradelab.live")
_STATUS = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED",
           "rejected": "REJECTED"}


class Sink(Protocol):
    """What the broker reports to (the runner core)."""

    oms: OrderManager

    def on_ack(self, client_id: str, venue_id: str | None, status: str, ts_ns: int) -> None: ...
    def on_rejected(self, client_id: str, why: str, ts_ns: int,
                    expected: bool = False) -> None: ...
    def on_unknown(self, client_id: str, why: str, ts_ns: int) -> None: ...
    def on_status(self, report: StatusReport) -> None: ...
    def on_not_found(self, client_id: str, ts_ns: int) -> None: ...
    def on_execution(self, client_id: str, ex: Execution, side: str) -> None: ...


def execution_of(trade: dict, default_ts_ns: int | None = None) -> Execution:
    """A ccxt trade as an :class:`Execution` (a ``FULL`` order answer's fills carry no time:
    ``default_ts_ns``, else now)."""
    fee = trade.get("fee") or {}
    maker = trade.get("takerOrMaker")
    ts = trade.get("timestamp")
    # no time, or a placeholder (Binance's -1 "not working yet"): the answer's, else now
    ts_ns = int(ts) * 1_000_000 if ts is not None and ts > 0 else \
        (default_ts_ns if default_ts_ns and default_ts_ns > 0 else time.time_ns())
    return Execution(str(trade["id"]), Decimal(str(trade["amount"])),
                     Decimal(str(trade["price"])), Decimal(str(fee.get("cost") or 0)),
                     str(fee.get("currency") or ""), ts_ns,
                     None if maker is None else maker == "maker")


class VenueBroker:
    """Orders of one symbol through a ccxt client (async support). Several brokers (one per
    symbol of a run) may share one client and one order manager: each looks only at orders of
    its own ``raw_symbol`` (Binance's order ids are per symbol)."""

    name = "venue"

    def __init__(self, client: Any, ccxt_symbol: str, stream_silence_s: float = 5.0,
                 retries: int = 2, raw_symbol: str | None = None) -> None:
        self.client = client
        self.symbol = ccxt_symbol
        self.raw_symbol = raw_symbol or raw_of_store_symbol(store_symbol_of_ccxt(ccxt_symbol))
        self.sink: Sink | None = None
        self.stream_silence_s = stream_silence_s
        self.retries = retries
        self.last_stream_ns = 0
        self.tasks: set[asyncio.Task] = set()
        self.errors: dict[str, int] = {}
        self.place_rtt_us: list[float] = []
        self.cancel_rtt_us: list[float] = []
        self.stream_messages = 0
        self.on_rtt: Any = None  # callable(kind, microseconds), e.g. the run recorder's

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._count(f"internal {type(exc).__name__}")
            log.error("venue broker task failed: %r", exc, exc_info=exc)

    def _rtt(self, kind: str, us: float) -> None:
        (self.place_rtt_us if kind == "place" else self.cancel_rtt_us).append(us)
        if self.on_rtt is not None:
            self.on_rtt(kind, us)

    def _count(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    # -- orders --------------------------------------------------------------------------------

    def place(self, order: ManagedOrder, now_ns: int) -> None:
        self._spawn(self._place(order))

    def cancel(self, order: ManagedOrder, now_ns: int) -> None:
        self._spawn(self._cancel(order))

    async def _place(self, order: ManagedOrder) -> None:
        import ccxt.async_support as ccxt

        assert self.sink is not None
        # spot's FULL answer carries the fills; USD-M has RESULT at most (fills come from the
        # stream or the order's trades)
        params: dict[str, Any] = {"newClientOrderId": order.client_id,
                  "newOrderRespType": "RESULT" if self.symbol.endswith(":USDT") else "FULL"}
        if order.type == "LIMIT" and order.tif == "GTX":
            params["postOnly"] = True  # ccxt: LIMIT_MAKER on spot, timeInForce GTX on USD-M
        elif order.type == "LIMIT":
            params["timeInForce"] = order.tif
        kind = "market" if order.type == "MARKET" else "limit"
        price = float(order.price) if order.price is not None else None
        for attempt in range(self.retries + 1):
            t0 = time.perf_counter()
            try:
                resp = await self.client.create_order(self.symbol, kind, order.side.lower(),
                                                      float(order.qty), price, params)
            except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as exc:
                # refused for load (429 / 418: too many requests or orders): not placed
                self._count(type(exc).__name__)
                self.sink.on_rejected(order.client_id, f"{type(exc).__name__}: {exc}",
                                      time.time_ns())
                return
            except ccxt.OperationFailed as exc:
                # no answer we can trust (timeout, 5xx, a dropped connection): the order may or
                # may not be on the venue
                self._count(type(exc).__name__)
                self.sink.on_unknown(order.client_id, f"{type(exc).__name__}: {exc}",
                                     time.time_ns())
                found = await self._query(order)
                if found == "absent" and attempt < self.retries:
                    continue  # it never arrived: send it again under the same client id
                if found == "absent":
                    self.sink.on_not_found(order.client_id, time.time_ns())
                return  # found and settled, or the query failed: poll() asks again
            except ccxt.ExchangeError as exc:
                self._count(type(exc).__name__)
                self.sink.on_rejected(order.client_id, f"{type(exc).__name__}: {exc}",
                                      time.time_ns())
                return
            self._rtt("place", (time.perf_counter() - t0) * 1e6)
            if resp.get("filled") and not resp.get("trades"):
                # an answer with fills but without them (USD-M's RESULT): read the order's own
                # trades first, so its executions are the real ones, not inferred
                await self._trades_of(order, str(resp.get("id")))
            self._on_order(order, resp)
            return

    async def _cancel(self, order: ManagedOrder) -> None:
        import ccxt.async_support as ccxt

        assert self.sink is not None
        t0 = time.perf_counter()
        try:
            resp = await self.client.cancel_order(order.venue_id, self.symbol,
                                                  {"origClientOrderId": order.client_id})
        except ccxt.OrderNotFound:
            self.sink.oms.on_cancel_failed(order.client_id)  # it may have filled: query it
            await self.resolve(order)
            return
        except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
            self._count(type(exc).__name__)
            self.sink.oms.on_cancel_failed(order.client_id)
            await self.resolve(order)
            return
        self._rtt("cancel", (time.perf_counter() - t0) * 1e6)
        self._on_order(order, resp)

    def _on_order(self, order: ManagedOrder, resp: dict) -> None:
        """A ccxt order structure (a place/cancel answer or a query)."""
        assert self.sink is not None
        now = time.time_ns()
        status = _STATUS.get(str(resp.get("status")), "NEW")
        ts = resp.get("timestamp") or resp.get("lastTradeTimestamp")
        at = int(ts) * 1_000_000 if ts is not None and ts > 0 else now
        for t in resp.get("trades") or []:
            if t.get("id") is not None and t.get("amount"):
                self.sink.on_execution(order.client_id, execution_of(t, at), order.side)
        if order.state.value == "PENDING_NEW":
            self.sink.on_ack(order.client_id, str(resp.get("id")), "NEW", now)
        filled = resp.get("filled")
        cost = resp.get("cost")
        info = resp.get("info") or {}
        if status == "FILLED" or status in ("CANCELED", "EXPIRED", "REJECTED") or filled:
            if info.get("status") == "PARTIALLY_FILLED":
                status = "PARTIALLY_FILLED"
            self.sink.on_status(StatusReport(
                order.client_id, status, str(resp.get("id")),
                Decimal(str(filled)) if filled is not None else None,
                Decimal(str(cost)) if cost is not None else None, now))

    # -- queries -------------------------------------------------------------------------------

    async def resolve(self, order: ManagedOrder) -> None:
        """Ask the venue for one order by client id and settle what is unknown about it."""
        assert self.sink is not None
        if await self._query(order) == "absent":
            self.sink.on_not_found(order.client_id, time.time_ns())

    async def _query(self, order: ManagedOrder) -> str:
        """``found`` (and settled), ``absent`` (the venue never had it) or ``failed``."""
        import ccxt.async_support as ccxt

        try:
            resp = await self.client.fetch_order(None, self.symbol,
                                                 {"origClientOrderId": order.client_id})
        except ccxt.OrderNotFound:
            return "absent"
        except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
            self._count(f"query {type(exc).__name__}")
            log.warning("query of %s failed (%s); will try again", order.client_id, exc)
            return "failed"
        await self._trades_of(order, str(resp.get("id")))
        self._on_order(order, resp)
        return "found"

    async def _trades_of(self, order: ManagedOrder, venue_id: str) -> None:
        """The order's own fills (exact prices and fees, better than inferring them)."""
        import ccxt.async_support as ccxt

        assert self.sink is not None
        try:
            trades = await self.client.fetch_my_trades(self.symbol, None, None,
                                                       {"orderId": venue_id})
        except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
            self._count(f"trades {type(exc).__name__}")
            return
        for t in trades:
            if str(t.get("order")) == venue_id:
                self.sink.on_execution(order.client_id, execution_of(t), order.side)

    async def poll(self) -> None:
        """The user-stream fallback: query orders still open or unknown."""
        assert self.sink is not None
        oms = self.sink.oms
        for order in oms.open_orders(self.raw_symbol) + oms.to_query():
            if order.symbol != self.raw_symbol:
                continue
            if order.venue_id is not None or order.outcome_unknown:
                await self.resolve(order)

    async def watch(self, pro: Any, on_reconnect: Any = None) -> None:
        """Follow the user-data stream (ccxt.pro ``watch_my_trades`` and ``watch_orders``):
        fills and statuses as they happen. A dropped stream is reopened after a pause and
        ``on_reconnect`` (reconciliation) runs; meanwhile :meth:`poll` covers the gap."""
        trades = asyncio.get_running_loop().create_task(self._watch(pro, "trades",
                                                                    on_reconnect))
        orders = asyncio.get_running_loop().create_task(self._watch(pro, "orders", None))
        try:
            await asyncio.gather(trades, orders)
        finally:
            trades.cancel()
            orders.cancel()

    async def _watch(self, pro: Any, what: str, on_reconnect: Any) -> None:
        import ccxt.async_support as ccxt

        assert self.sink is not None
        failed = False
        while True:
            try:
                if what == "trades":
                    items = await pro.watch_my_trades(self.symbol)
                else:
                    items = await pro.watch_orders(self.symbol)
            except asyncio.CancelledError:
                raise
            except (ccxt.OperationFailed, ccxt.ExchangeError, OSError) as exc:
                self._count(f"stream {type(exc).__name__}")
                log.warning("user-data stream (%s) dropped: %s; polling until it is back",
                            what, exc)
                failed = True
                self.last_stream_ns = 0
                await asyncio.sleep(1.0)
                continue
            self.last_stream_ns = time.time_ns()
            self.stream_messages += 1
            if failed and on_reconnect is not None:
                failed = False
                await on_reconnect()
            failed = False
            by_cid = self.mine()
            by_venue = {o.venue_id: o for o in by_cid.values() if o.venue_id}
            for item in items:
                if what == "trades":
                    order = by_venue.get(str(item.get("order")))
                    if order is not None:
                        self.sink.on_execution(order.client_id, execution_of(item),
                                               order.side)
                else:
                    order = by_cid.get(str(item.get("clientOrderId") or ""))
                    if order is not None and order.state.value != "PENDING_NEW":
                        self._on_order(order, {**item, "trades": []})

    def mine(self) -> dict[str, ManagedOrder]:
        """This broker's orders (its symbol's) by client id."""
        assert self.sink is not None
        return {cid: o for cid, o in self.sink.oms.orders.items()
                if o.symbol == self.raw_symbol}

    def stream_silent(self, now_ns: int) -> bool:
        return now_ns - self.last_stream_ns > self.stream_silence_s * 1e9

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for requests in flight (at exit)."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout_s)


__all__ = ["Sink", "VenueBroker", "execution_of"]
