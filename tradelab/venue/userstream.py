"""Per-account user-data events (the bus between the venue's trading and its user streams).

Minimal version with the interface fixed for issue 12 (the user-data helper's version replaces
it): trading publishes Binance payloads per account and market; websocket sessions subscribe.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Sub:
    uid: str
    market: str
    callback: Callable[[dict], None]
    on_disconnect: Callable[[], None] | None


class UserEvents:
    """Per-account user-data events, fanned out to the account's live subscribers."""

    def __init__(self) -> None:
        self._subs: dict[int, _Sub] = {}
        self._tokens = itertools.count(1)

    def publish(self, uid: str, market: str, event: dict) -> None:
        """Deliver ``event`` (a Binance payload, e.g. ``{"e": "executionReport", ...}``) to
        every subscriber of ``uid`` on ``market`` ("spot" | "usdm")."""
        for sub in list(self._subs.values()):
            if sub.uid == str(uid) and sub.market == market:
                sub.callback(event)

    def subscribe(self, uid: str, market: str, callback: Callable[[dict], None],
                  on_disconnect: Callable[[], None] | None = None) -> int:
        """Receive ``uid``'s events of ``market``; returns a token for :meth:`unsubscribe`."""
        token = next(self._tokens)
        self._subs[token] = _Sub(str(uid), market, callback, on_disconnect)
        return token

    def unsubscribe(self, token: int) -> None:
        self._subs.pop(token, None)

    def disconnect(self, uid: str | None = None) -> int:
        """Fault: call ``on_disconnect`` of the live subscribers (all, or one account's) and
        drop them; returns how many."""
        hit = [t for t, s in self._subs.items() if uid is None or s.uid == str(uid)]
        for token in hit:
            sub = self._subs.pop(token)
            if sub.on_disconnect is not None:
                sub.on_disconnect()
        return len(hit)
