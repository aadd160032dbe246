"""Per-account user-data events of the venue (a minimal bus; the user-data stream transports
subscribe to it)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Subscriber:
    uid: str
    market: str
    callback: Callable[[dict], None]
    on_disconnect: Callable[[], None] | None


class UserEvents:
    """Per-account user-data events, fanned out to the account's live subscribers."""

    def __init__(self) -> None:
        self._subs: dict[int, _Subscriber] = {}
        self._tokens = itertools.count(1)

    def publish(self, uid: str, market: str, event: dict) -> None:
        """Hand ``event`` (a Binance payload dict) to every subscriber of ``(uid, market)``."""
        for sub in list(self._subs.values()):
            if sub.uid == uid and sub.market == market:
                sub.callback(event)

    def subscribe(self, uid: str, market: str, callback: Callable[[dict], None],
                  on_disconnect: Callable[[], None] | None = None) -> int:
        """Receive the account's events of ``market``; returns a token for unsubscribe."""
        token = next(self._tokens)
        self._subs[token] = _Subscriber(uid, market, callback, on_disconnect)
        return token

    def unsubscribe(self, token: int) -> None:
        self._subs.pop(token, None)

    def disconnect(self, uid: str | None = None) -> int:
        """Fault: drop the live subscribers (all, or one account's), calling their
        ``on_disconnect``; returns how many."""
        gone = [t for t, s in self._subs.items() if uid is None or s.uid == uid]
        for token in gone:
            sub = self._subs.pop(token)
            if sub.on_disconnect is not None:
                sub.on_disconnect()
        return len(gone)
