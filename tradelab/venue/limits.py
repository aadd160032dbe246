"""The venue's rate limits, Binance's way.

Request weight per IP and minute (``X-MBX-USED-WEIGHT-1M``): beyond the limit every request of
that minute gets a 429 (-1003) with ``Retry-After`` (seconds to the next minute). A client that
ignores it and keeps sending collects strikes; after ``ban_after`` 429s in one minute the IP is
banned for ``ban_seconds`` (Binance: 2 minutes for a first offence) and every request gets a
418 "Way too many requests; IP banned until <ms>." with ``Retry-After`` (seconds left).

Order counts per account (``X-MBX-ORDER-COUNT-10S`` / ``-1D`` on each accepted order): Binance
spot allows 50 new orders per 10 s and 160,000 per day; beyond, a 429 with -1015 "Too many new
orders; current limit is 50 orders per 10 SECOND." and no ``Retry-After``. Intervals are fixed
clock intervals (a 10 s window starts at every multiple of 10 s). As on Binance, an order that
trades stops counting: its first fill lowers the account's count in every current window by
one (an order filled as it was placed never counts). Binance's extra decrements for large or
maker fills are not modelled.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from tradelab.adapters.binance import trading as wire

SPOT_ORDER_LIMITS: tuple[tuple[int, int], ...] = ((50, 10), (160_000, 86_400))
"""(orders, seconds) per account on Binance spot."""
BAN_AFTER = 3
"""429s in one minute after which the IP is banned (the venue's choice: Binance does not
publish its threshold)."""
BAN_SECONDS = 120


class RateLimiter:
    """Request weight per minute and the 418 ban for clients that ignore 429s."""

    def __init__(self, per_minute: int, ban_after: int = BAN_AFTER,
                 ban_seconds: float = BAN_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        if per_minute < 1 or ban_after < 1 or ban_seconds <= 0:
            raise ValueError("per_minute and ban_after must be >= 1, ban_seconds > 0")
        self.per_minute = per_minute
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.clock = clock
        self.minute = 0
        self.used = 0
        self.strikes = 0  # 429s answered this minute
        self.banned_until = 0.0
        self.bans = 0

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self.minute:
            self.minute, self.used, self.strikes = minute, 0, 0

    def charge(self, weight: int) -> tuple[bool, int]:
        """Count ``weight``; (within the limit?, weight used this minute)."""
        now = self.clock()
        self._roll(now)
        self.used += weight
        return self.used <= self.per_minute, self.used

    def admit(self, weight: int) -> tuple[dict[str, str], wire.BinanceError | None]:
        """Headers for the answer and the error refusing the request (None: go ahead)."""
        now = self.clock()
        if now < self.banned_until:
            return ({"Retry-After": str(math.ceil(self.banned_until - now))},
                    wire.banned(int(self.banned_until * 1000)))
        ok, used = self.charge(weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if ok:
            return headers, None
        self.strikes += 1
        if self.strikes > self.ban_after:
            self.banned_until = now + self.ban_seconds
            self.bans += 1
            return ({**headers, "Retry-After": str(math.ceil(self.ban_seconds))},
                    wire.banned(int(self.banned_until * 1000)))
        retry = max(1, math.ceil((self.minute + 1) * 60 - now))
        return {**headers, "Retry-After": str(retry)}, wire.too_many_requests(self.per_minute)


class OrderCounts:
    """New orders per account in fixed clock windows (see the module docstring)."""

    def __init__(self, limits: Sequence[tuple[int, int]] = SPOT_ORDER_LIMITS,
                 clock: Callable[[], float] = time.time) -> None:
        for n, seconds in limits:
            if n < 1 or seconds < 1:
                raise ValueError(f"order limit {n} per {seconds} s: both must be >= 1")
        self.limits = tuple((int(n), int(s)) for n, s in limits)
        self.clock = clock
        self._counts: dict[tuple[int, int], tuple[int, int]] = {}  # (uid, s) -> (window, n)
        self._unfilled: dict[int, int] = {}  # order id -> uid of counted, not yet traded
        self._day = -1

    def _count(self, uid: int, seconds: int, now: float) -> int:
        window, n = self._counts.get((uid, seconds), (-1, 0))
        return n if window == int(now // seconds) else 0

    def check(self, uid: int) -> None:
        """Raise -1015 (HTTP 429) if one more order would exceed a window."""
        now = self.clock()
        for limit, seconds in self.limits:
            if self._count(uid, seconds, now) >= limit:
                raise wire.too_many_orders(limit, seconds)

    def add(self, uid: int, order_id: int, traded: bool) -> dict[str, str]:
        """Count an accepted order (unless it ``traded`` already as it was placed); its
        ``X-MBX-ORDER-COUNT-*`` headers."""
        now = self.clock()
        day = int(now // 86_400)
        if day != self._day:  # orders of past days no longer count anywhere
            self._day, self._unfilled = day, {}
        headers = {}
        for _limit, seconds in self.limits:
            n = self._count(uid, seconds, now) + (0 if traded else 1)
            self._counts[(uid, seconds)] = (int(now // seconds), n)
            headers[f"X-MBX-ORDER-COUNT-{wire.interval_letter(seconds)}"] = str(n)
        if not traded:
            self._unfilled[order_id] = uid
        return headers

    def traded(self, order_id: int) -> None:
        """An order's first fill: it stops counting (in every current window, not below 0)."""
        uid = self._unfilled.pop(order_id, None)
        if uid is None:
            return
        now = self.clock()
        for _limit, seconds in self.limits:
            n = self._count(uid, seconds, now)
            if n > 0:
                self._counts[(uid, seconds)] = (int(now // seconds), n - 1)

    def rate_limits(self) -> list[dict]:
        """exchangeInfo's ``ORDERS`` entries."""
        out = []
        for limit, seconds in self.limits:
            interval, num = wire.interval_name(seconds)
            out.append({"rateLimitType": "ORDERS", "interval": interval, "intervalNum": num,
                        "limit": limit})
        return out
