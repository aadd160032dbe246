"""Several instruments (and venues) in one run, merged by local time, for spreads and
cross-venue logic.

Each instrument keeps its own :class:`~.replay.Replay`: its own matching core, book window,
latency model, funding and chunked event stream (so two venues with different latencies are two
replays). :class:`MultiReplay` delivers their local data rows to one strategy callback in local
time order, ``on_event(k, row, now)`` with ``k`` the instrument's index, and the callback may send
orders on any instrument (``sn.submit_*_nb(multi.sims[j], ...)``) at that local time.

Order of delivery: by local receipt time; at equal local times, instruments in the order they
were given, each in its own storage order (stable and deterministic). Before a row of
instrument ``k`` at local time ``t`` is delivered, every other instrument has processed
everything (its exchange events, our orders reaching its exchange, its responses) up to ``t -
1 ns`` and its clock reads ``t``; instrument ``k`` has processed everything before that row
(the two-clock rules of :mod:`tradelab.matching.sim_nb` hold within each instrument).

The merge runs in Python, one numba call per instrument per delivered row: fine for strategies
that need every event of a few instruments over hours; a numba merge would be the next step for
long spans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tradelab.backtest.event.replay import Replay, ReplayResult
from tradelab.matching import sim_nb as sn

OnEvent = Callable[[int, np.void, int], None]


class MultiReplay:
    """Replays of several instruments driven together (see the module docstring)."""

    def __init__(self, replays: Sequence[Replay]) -> None:
        if not replays:
            raise ValueError("MultiReplay needs at least one replay")
        self.replays = list(replays)
        self.sims = [r.sim for r in self.replays]

    def _advance(self, r: Replay, until: int) -> int:
        while True:
            code = sn.elapse_nb(r.sim, r.ev, until)
            if code == sn.EL_NEED_DATA:
                r.refill()
            elif code == sn.EL_LOG_FULL:
                r.drain()
            else:
                return code

    def _next_local(self, r: Replay) -> int:
        sv = r.sim.sv
        while True:
            il = int(sv[sn.S_IL])
            if il < len(r.ev):
                return max(int(r.ev[il]["local_ts"]), int(sv[sn.S_LOCAL_LAST]))
            if sv[sn.S_FINAL] != 0 or not r.refill():
                return sn.INF

    def run(self, on_event: OnEvent) -> list[ReplayResult]:
        """Deliver every local data row to ``on_event(k, row, now)``; then finish every
        instrument's remaining exchange events and responses. Returns one result each."""
        for s in self.sims:
            s.sv[sn.S_STOP_ON_DATA] = 1
        try:
            while True:
                times = [self._next_local(r) for r in self.replays]
                t = min(times)
                if t == sn.INF:
                    break
                k = times.index(t)  # equal times: the first instrument given
                for j, r in enumerate(self.replays):
                    if j != k:
                        self._advance(r, t - 1)
                        r.sim.sv[sn.S_NOW] = t
                r = self.replays[k]
                code = self._advance(r, t)
                if code != sn.EL_DATA:
                    raise RuntimeError(f"instrument {k}: expected a data row at {t}, got {code}")
                # a copy: the replay reuses its chunk buffers, a kept row must not change
                on_event(k, r.ev[int(r.sim.sv[sn.S_IL]) - 1].copy(), t)
        finally:
            for s in self.sims:
                s.sv[sn.S_STOP_ON_DATA] = 0
        for r in self.replays:
            while self._advance(r, sn.INF) != sn.EL_END:
                pass
        return [r.result() for r in self.replays]
