"""The venue's order latency: when an order action takes effect and when its answer goes back.

The model is the event backtester's (:mod:`tradelab.matching.latency_nb`): constant, per action
(place / cancel / modify) or a recorded table of ``(request, exchange, response)`` times, all in
nanoseconds. The **venue clock** is the exchange time of the stream position (the ``E``/``T``
of the last message the venue published, :attr:`Venue.now_ms`), the clock fills are stamped
with. An action that reaches the venue when that clock reads ``t``:

- takes effect on the matching core at ``te = t + entry`` (never before an earlier action: the
  queue is first in, first out), immediately before the venue applies the first market message
  stamped *after* ``te``, so every message stamped at or before ``te`` is applied first, as in the
  backtester, where an order arriving at ``t`` does not see a trade stamped ``t``;
- is answered ``response`` later on the same clock (``te + response``, also first in, first out):
  the answer is released before the first message stamped after that time;
- is refused with Binance's -1008 after ``|entry|`` when the entry latency is negative (a
  recorded table's rejection rows).

Replay modes decide how the clock moves when no message comes:

- ``speed > 0`` (real time, accelerated): the clock also runs on the wall clock, so an action
  takes effect at the latest ``entry / speed`` seconds of wall time after it arrived (and its
  answer ``response / speed`` after that), even on a quiet stream. On a recording the replay is
  paced by receipt time, so a message stamped before ``te`` but received after it can be applied
  after the action (by at most the recording's feed latency).
- ``speed == 0`` (as fast as the clients read): the stream is the only clock; pending actions
  wait for it.
- While the replay is not streaming (before it starts, while it pauses for clients, after it
  ended) the clock stands still and an action takes effect at once, stamped ``te``.

With the default zero latency every action takes effect at once: the venue's behaviour before
latencies existed.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tradelab.adapters.binance import trading as wire
from tradelab.matching import latency_nb as L
from tradelab.matching import latency_spec as spec
from tradelab.matching.types import A_CANCEL, A_MODIFY, A_PLACE

MS = 1_000_000
ACTIONS = {"place": A_PLACE, "cancel": A_CANCEL, "modify": A_MODIFY}


@dataclass(frozen=True)
class VenueLatency:
    """A latency model ``(code, params, table)`` as :mod:`tradelab.matching.latency_nb` builds
    it (the backtester's :class:`~tradelab.backtest.event.replay.Latency` holds the same)."""

    code: int = L.LAT_CONSTANT
    params: np.ndarray = field(default_factory=lambda: np.zeros(6, dtype=np.int64))
    table: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))

    @classmethod
    def constant(cls, entry_ns: int, response_ns: int) -> VenueLatency:
        return cls(*L.constant(int(entry_ns), int(response_ns)))

    @classmethod
    def per_action(cls, place: tuple[int, int], cancel: tuple[int, int],
                   modify: tuple[int, int]) -> VenueLatency:
        return cls(*L.per_action(place, cancel, modify))

    @classmethod
    def recorded(cls, table: np.ndarray) -> VenueLatency:
        return cls(*L.recorded(table))

    @property
    def zero(self) -> bool:
        """Every action takes effect at once and is answered at once."""
        return self.code != L.LAT_TABLE and not self.params.any()

    def entry_ns(self, t: int, action: int) -> int:
        return int(L.entry_latency_nb(self.code, self.params, self.table, int(t), action))

    def response_ns(self, t: int, action: int) -> int:
        return int(L.response_latency_nb(self.code, self.params, self.table, int(t), action))


def latency_from_config(cfg: dict, base: Path | None = None) -> VenueLatency:
    """The venue's model from the backtest config's ``latency:`` block (see
    :func:`tradelab.matching.latency_spec.latency_from_config`)."""
    return VenueLatency(*spec.latency_from_config(cfg, base))


def parse_latency(text: str) -> VenueLatency:
    """The CLI's ``--latency`` (see :func:`tradelab.matching.latency_spec.parse_latency`)."""
    from tradelab.yamlconfig import read_yaml

    return VenueLatency(*spec.parse_latency(text, read_yaml))


class Ticket:
    """One order action on its way: its times, then its result or error once answered."""

    def __init__(self, action: int, fn: Callable[[], Any], sent_ns: int) -> None:
        self.action = action
        self.fn = fn
        self.sent_ns = sent_ns
        self.effective_ns: int | None = None  # when it took effect (None: refused on entry)
        self.respond_ns = 0  # when its answer is released
        self.applied = False
        self.answered = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._waiter: asyncio.Future | None = None

    def outcome(self) -> Any:
        """The result (raises the action's error); only once answered."""
        if not self.answered:
            raise RuntimeError("the action has not been answered yet")
        if self.error is not None:
            raise self.error
        return self.result

    async def wait(self) -> Any:
        """Wait for the answer and return the result (or raise the action's error)."""
        if not self.answered:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self.outcome()

    def _answer(self) -> None:
        self.answered = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class OrderGate:
    """Holds order actions until the venue clock reaches their effective time (module docstring).

    ``clock_ns`` reads the venue clock; ``stamp(t)`` tells the matching side the time an action
    takes effect at (``None`` afterwards). The replay calls :meth:`release_before` ahead of each
    message and :meth:`set_streaming` as it starts, pauses and ends.
    """

    def __init__(self, latency: VenueLatency, clock_ns: Callable[[], int],
                 stamp: Callable[[int | None], None], speed: float = 0.0) -> None:
        self.latency = latency
        self.clock_ns = clock_ns
        self.stamp = stamp
        self.speed = speed
        self.streaming = False
        self._actions: deque[Ticket] = deque()
        self._answers: list[tuple[int, int, Ticket]] = []  # heap by release time
        self._seq = 0
        self._last_entry = np.iinfo(np.int64).min
        self._last_answer = np.iinfo(np.int64).min
        self.applied = 0
        self.refused = 0

    @property
    def pending(self) -> int:
        """Actions waiting to take effect."""
        return len(self._actions)

    def submit(self, action: int, fn: Callable[[], Any], sent_ns: int | None = None) -> Ticket:
        """An action reaches the venue now (or at ``sent_ns`` on the venue clock, for a driver
        that scripts a timeline); ``fn`` runs when it takes effect."""
        t = self.clock_ns() if sent_ns is None else int(sent_ns)
        tk = Ticket(action, fn, t)
        lat = self.latency.entry_ns(t, action) if not self.latency.zero else 0
        if lat < 0:
            self.refused += 1
            tk.error = wire.overloaded()
            self._schedule_answer(tk, t - lat, -lat)
            return tk
        te = max(t + lat, self._last_entry)
        self._last_entry = te
        tk.effective_ns = te
        if not self._actions and (not self.streaming or te <= self.clock_ns()):
            self._apply(tk)
        else:
            self._actions.append(tk)
            self._timer(te - t, lambda: self._release_through(tk))
        return tk

    async def call(self, action: int | None, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` through the gate (directly when ``action`` is None: not an order action)
        and return its result once answered."""
        if action is None:
            return fn()
        return await self.submit(action, fn).wait()

    def release_before(self, t_ns: int) -> None:
        """The venue is about to apply a message stamped ``t_ns``: everything due before it."""
        while self._actions and self._actions[0].effective_ns < t_ns:  # type: ignore[operator]
            self._apply(self._actions.popleft())
        while self._answers and self._answers[0][0] < t_ns:
            heapq.heappop(self._answers)[2]._answer()

    def set_streaming(self, on: bool) -> None:
        """The replay starts or resumes (True), or pauses or ends (False: the clock stands
        still, so everything pending takes effect and is answered now)."""
        self.streaming = on
        if not on:
            while self._actions:
                self._apply(self._actions.popleft())
            while self._answers:
                heapq.heappop(self._answers)[2]._answer()

    # -- internals ------------------------------------------------------------------------

    def _apply(self, tk: Ticket) -> None:
        assert tk.effective_ns is not None
        te = tk.effective_ns
        self.stamp(te)
        try:
            tk.result = tk.fn()
        except Exception as exc:  # the client gets it as the answer (BinanceError or a 500)
            tk.error = exc
        finally:
            self.stamp(None)
        tk.applied = True
        self.applied += 1
        resp = self.latency.response_ns(te, tk.action) if not self.latency.zero else 0
        self._schedule_answer(tk, te + resp, resp)

    def _schedule_answer(self, tk: Ticket, at: int, wait_ns: int) -> None:
        at = max(at, self._last_answer)
        self._last_answer = at
        tk.respond_ns = at
        if not self.streaming or (not self._answers and at <= self.clock_ns()):
            tk._answer()
            return
        self._seq += 1
        heapq.heappush(self._answers, (at, self._seq, tk))
        self._timer(wait_ns, lambda: self._answer_through(tk))

    def _timer(self, wait_ns: int, fn: Callable[[], None]) -> None:
        """Paced replays: ``fn`` after ``wait_ns`` of venue time in wall time."""
        if self.speed <= 0:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(max(wait_ns, 0) / 1e9 / self.speed, fn)

    def _release_through(self, tk: Ticket) -> None:
        while self._actions and not tk.applied:
            self._apply(self._actions.popleft())

    def _answer_through(self, tk: Ticket) -> None:
        while self._answers and not tk.answered:
            heapq.heappop(self._answers)[2]._answer()
