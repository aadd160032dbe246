"""``tradelab exec-smoke``: order round trips against a venue, measured.

Places a limit buy far below the market (``discount_bps`` under the best bid, post-only, so it
never fills) and cancels it, ``iterations`` times after ``warmup`` iterations that are excluded
from the figures. Per iteration it measures, in microseconds:

- ``place_rtt_us`` / ``cancel_rtt_us``: request sent to answer received (REST through ccxt, or
  the WebSocket API through ccxt.pro with ``transport="ws_api"``);
- ``place_to_ack_us`` / ``cancel_to_ack_us``: request sent to the order's ``NEW`` / ``CANCELED``
  event arriving on the user-data stream (``None`` when the stream is off or the event did not
  come within ``ack_timeout_s``: an ``ack_timeout``).

Errors are counted by kind (with the venue's code), rate-limit answers by their wait. The JSON
report also holds ``latency_table``: rows of ``(request time, venue time, response time)`` in ns,
which :func:`tradelab.matching.latency_nb.recorded` takes as the backtester's recorded latency
model. The venue time is the order's ``transactTime`` when it lies on this machine's clock (a
real exchange); a replaying venue runs on its stream's clock, so there the midpoint of request
and response stands in (counted in ``latency_table_venue_time_replaced``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.adapters.binance.filters import SymbolFilters
from tradelab.live.summary import percentiles

log = logging.getLogger("tradelab.live.smoke")
Q3 = (50, 95, 99)


class _Acks:
    """Arrival times of user-data events per client id and status."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}
        self.waiters: dict[tuple[str, str], asyncio.Event] = {}

    def note(self, cid: str, status: str) -> None:
        key = (cid, status)
        self.seen.setdefault(key, time.perf_counter_ns())
        ev = self.waiters.get(key)
        if ev is not None:
            ev.set()

    async def wait(self, cid: str, status: str, timeout_s: float) -> int | None:
        key = (cid, status)
        if key not in self.seen:
            ev = self.waiters.setdefault(key, asyncio.Event())
            try:
                await asyncio.wait_for(ev.wait(), timeout_s)
            except TimeoutError:
                return None
        return self.seen.get(key)


async def _follow(pro: Any, symbol: str, acks: _Acks, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            orders = await pro.watch_orders(symbol)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dropped stream: keep trying, acks will time out
            log.warning("user-data stream: %s", exc)
            await asyncio.sleep(0.5)
            continue
        for o in orders:
            status = {"open": "NEW", "canceled": "CANCELED"}.get(str(o.get("status")))
            cid = o.get("clientOrderId")
            if status and cid:
                acks.note(str(cid), status)


async def exec_smoke(*, rest: str | None, market: str, symbol: str, ccxt_symbol: str,
                     api_key: str, api_secret: str, filters: SymbolFilters,
                     iterations: int = 50, warmup: int = 5, transport: str = "rest",
                     discount_bps: float = 500.0, user_stream: bool = True,
                     ack_timeout_s: float = 2.0, qty: float | None = None) -> dict[str, Any]:
    """Run the smoke (see the module docstring) and return its JSON-able report."""
    import ccxt.async_support as ccxt

    if transport not in ("rest", "ws_api"):
        raise ValueError(f"transport must be rest or ws_api, got {transport!r}")
    client = make_client(market, api_key, api_secret, rest, rate_limit=False)
    pro = make_client(market, api_key, api_secret, rest, pro=True, rate_limit=False) \
        if (user_stream or transport == "ws_api") else None
    acks, stop = _Acks(), asyncio.Event()
    follower = None
    stats: dict[str, list[float]] = {k: [] for k in ("place_rtt_us", "cancel_rtt_us",
                                                      "place_to_ack_us", "cancel_to_ack_us")}
    errors: dict[str, int] = {}
    failed: list[dict[str, Any]] = []
    table: list[tuple[int, int, int]] = []
    rate_limit_waits, rate_limit_wait_s = 0, 0.0
    ok = 0
    venue_off = 0  # answers whose venue time was not on this machine's clock
    try:
        await client.load_markets()
        if pro is not None:
            await pro.load_markets()
        if user_stream and pro is not None:
            follower = asyncio.create_task(_follow(pro, ccxt_symbol, acks, stop))
            await asyncio.sleep(0.5)  # let the subscription settle
        book = await client.fetch_order_book(ccxt_symbol, 5)
        bid = Decimal(str(book["bids"][0][0]))
        price = filters.round_price(bid * (1 - Decimal(repr(discount_bps)) / 10_000), "down")
        amount = Decimal(repr(qty)) if qty else filters.round_qty(
            filters.min_notional * Decimal("1.5") / price + filters.step_size)
        amount = max(amount, filters.min_qty)
        for i in range(warmup + iterations):
            measured = i >= warmup
            cid = f"smoke-{int(time.time() * 1000)}-{i}"
            params = {"newClientOrderId": cid, "timeInForce": "GTC"}
            t0, w0 = time.perf_counter_ns(), time.time_ns()
            try:
                if transport == "ws_api":
                    assert pro is not None
                    placed = await pro.create_order_ws(ccxt_symbol, "limit", "buy",
                                                       float(amount), float(price), params)
                else:
                    placed = await client.create_order(ccxt_symbol, "limit", "buy",
                                                       float(amount), float(price), params)
            except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
                rate_limit_waits += 1
                rate_limit_wait_s += 1.0
                errors["place_rate_limited"] = errors.get("place_rate_limited", 0) + 1
                failed.append({"iteration": i, "step": "place", "error": str(exc)[:200]})
                await asyncio.sleep(1.0)
                continue
            except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
                kind = f"place_{type(exc).__name__}"
                errors[kind] = errors.get(kind, 0) + 1
                failed.append({"iteration": i, "step": "place", "error": str(exc)[:200]})
                continue
            t1, w1 = time.perf_counter_ns(), time.time_ns()
            venue_ms = placed.get("timestamp")
            if measured:
                stats["place_rtt_us"].append((t1 - t0) / 1e3)
                venue_ns = int(venue_ms) * 1_000_000 if venue_ms else None
                if venue_ns is None or not w0 - 1_000_000_000 <= venue_ns <= w1 + 1_000_000_000:
                    # no venue time, or a venue on another clock (a replay): the midpoint
                    venue_off += venue_ns is not None
                    venue_ns = (w0 + w1) // 2
                # transactTime has millisecond resolution: keep it inside the round trip
                table.append((w0, min(max(venue_ns, w0), w1), w1))
            if user_stream:
                at = await acks.wait(cid, "NEW", ack_timeout_s)
                if at is None:
                    errors["ack_timeouts"] = errors.get("ack_timeouts", 0) + 1
                elif measured:
                    stats["place_to_ack_us"].append((at - t0) / 1e3)
            c0 = time.perf_counter_ns()
            try:
                if transport == "ws_api":
                    assert pro is not None
                    await pro.cancel_order_ws(placed["id"], ccxt_symbol)
                else:
                    await client.cancel_order(placed["id"], ccxt_symbol)
            except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
                kind = f"cancel_{type(exc).__name__}"
                errors[kind] = errors.get(kind, 0) + 1
                failed.append({"iteration": i, "step": "cancel", "error": str(exc)[:200]})
                continue
            c1 = time.perf_counter_ns()
            if measured:
                stats["cancel_rtt_us"].append((c1 - c0) / 1e3)
            if user_stream:
                at = await acks.wait(cid, "CANCELED", ack_timeout_s)
                if at is None:
                    errors["ack_timeouts"] = errors.get("ack_timeouts", 0) + 1
                elif measured:
                    stats["cancel_to_ack_us"].append((at - c0) / 1e3)
            if measured:
                ok += 1
    finally:
        stop.set()
        if follower is not None:
            follower.cancel()
            try:
                await follower
            except (asyncio.CancelledError, Exception):
                pass
        await client.close()
        if pro is not None:
            await pro.close()
    return {
        "transport": transport, "symbol": symbol, "market": market,
        "iterations": iterations, "warmup_iterations_excluded": warmup,
        "succeeded_measured": ok, "price": str(price), "qty": str(amount),
        "stats_global": {k: percentiles(v, Q3) for k, v in stats.items()},
        "samples": {k: len(v) for k, v in stats.items()},
        "errors": errors, "failed_iterations": failed[:50],
        "rate_limit_waits": rate_limit_waits, "rate_limit_wait_s": rate_limit_wait_s,
        "latency_table": [list(r) for r in table],
        "latency_table_venue_time_replaced": venue_off,
    }


__all__ = ["exec_smoke"]
