"""The venue's user-data bus: each account's events, fanned out to its live subscribers.

Trading publishes Binance payload dicts (``executionReport``, ``outboundAccountPosition``, ...)
per account and market; the transports (WebSocket API subscriptions, listenKey streams)
subscribe a callback that queues the event for their client. Callbacks run synchronously in the
publisher's call, in publication order, so a client sees an order's events in the order they
happened. A callback that raises is logged and skipped; it never disturbs the order flow.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tradelab.venue")

MARKETS = ("spot", "usdm")


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
        self.published = 0

    def publish(self, uid: str | int, market: str, event: dict) -> None:
        """Deliver ``event`` (a Binance payload dict) to every subscriber of the account on
        ``market`` ("spot" or "usdm")."""
        key = str(uid)
        self.published += 1
        for token, sub in list(self._subs.items()):
            if sub.uid != key or sub.market != market or token not in self._subs:
                continue
            try:
                sub.callback(event)
            except Exception:
                log.exception("user-data subscriber %d failed on a %s event", token,
                              event.get("e"))

    def subscribe(self, uid: str | int, market: str, callback: Callable[[dict], None],
                  on_disconnect: Callable[[], None] | None = None) -> int:
        """Receive the account's events on ``market``; returns the token to unsubscribe with.
        ``on_disconnect`` is called if the venue drops the subscription (a fault)."""
        if market not in MARKETS:
            raise ValueError(f"unknown market {market!r}: use one of {MARKETS}")
        token = next(self._tokens)
        self._subs[token] = _Subscriber(str(uid), market, callback, on_disconnect)
        return token

    def unsubscribe(self, token: int) -> None:
        """Stop a subscription (an unknown or already dropped token is ignored)."""
        self._subs.pop(token, None)

    def disconnect(self, uid: str | int | None = None) -> int:
        """Drop the live subscriptions (all, or one account's), calling their
        ``on_disconnect``; returns how many were dropped."""
        key = None if uid is None else str(uid)
        dropped = [(t, s) for t, s in self._subs.items() if key is None or s.uid == key]
        for token, sub in dropped:
            del self._subs[token]
            if sub.on_disconnect is not None:
                try:
                    sub.on_disconnect()
                except Exception:
                    log.exception("user-data subscriber %d failed to disconnect", token)
        return len(dropped)

    def subscribers(self, uid: str | int | None = None) -> int:
        """Live subscriptions (all, or one account's)."""
        key = None if uid is None else str(uid)
        return sum(1 for s in self._subs.values() if key is None or s.uid == key)


__all__ = ["MARKETS", "UserEvents"]
