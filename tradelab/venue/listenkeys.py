"""listenKeys of the older user-data stream: created, kept alive and closed over REST.

A key belongs to one account and one market ("spot": ``/api/v3/userDataStream``, "usdm":
``/fapi/v1/listenKey``). As on Binance, an account has at most one live key per market
(creating again returns it and extends it) and a key expires ``TTL_MS`` after its last
keepalive. Times are the wall clock (clients keep keys alive with their own clock), injectable
for tests.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

TTL_MS = 60 * 60 * 1000
"""A listenKey lives 60 minutes after its last keepalive."""


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ListenKey:
    key: str
    uid: int
    market: str
    expires_ms: int


class ListenKeys:
    """The venue's live listenKeys."""

    def __init__(self, clock_ms: Callable[[], int] = wall_ms, ttl_ms: int = TTL_MS) -> None:
        self.clock_ms = clock_ms
        self.ttl_ms = ttl_ms
        self._keys: dict[str, ListenKey] = {}

    def create(self, uid: int, market: str) -> str:
        """The account's key on ``market`` (a new one if it has none), valid ``ttl_ms`` more."""
        self.sweep()
        for lk in self._keys.values():
            if lk.uid == uid and lk.market == market:
                lk.expires_ms = self.clock_ms() + self.ttl_ms
                return lk.key
        key = secrets.token_hex(32)
        self._keys[key] = ListenKey(key, uid, market, self.clock_ms() + self.ttl_ms)
        return key

    def get(self, key: str, market: str | None = None) -> ListenKey | None:
        """The live key (of ``market`` if given), or None (unknown, closed or expired)."""
        lk = self._keys.get(key)
        if lk is None or (market is not None and lk.market != market):
            return None
        if lk.expires_ms <= self.clock_ms():
            del self._keys[key]
            return None
        return lk

    def key_of(self, uid: int, market: str) -> str | None:
        """The account's live key on ``market``, if it has one."""
        self.sweep()
        return next((lk.key for lk in self._keys.values()
                     if lk.uid == uid and lk.market == market), None)

    def keepalive(self, key: str, uid: int, market: str) -> bool:
        """Extend the account's key; False if it is not a live key of that account."""
        lk = self.get(key, market)
        if lk is None or lk.uid != uid:
            return False
        lk.expires_ms = self.clock_ms() + self.ttl_ms
        return True

    def close(self, key: str, uid: int, market: str) -> bool:
        """Close the account's key; False if it is not a live key of that account."""
        lk = self.get(key, market)
        if lk is None or lk.uid != uid:
            return False
        del self._keys[key]
        return True

    def sweep(self) -> list[ListenKey]:
        """Forget the keys that expired; returns them."""
        now = self.clock_ms()
        gone = [lk for lk in self._keys.values() if lk.expires_ms <= now]
        for lk in gone:
            del self._keys[lk.key]
        return gone
