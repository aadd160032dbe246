"""Drive a :class:`~tradelab.matching.sim_nb.Sim` over a stream of event chunks with bounded memory.

``Replay`` owns the current chunk: when the numba loop stops for more data it keeps only the
rows not yet seen by both sides, appends the next chunk and shifts the cursors; when the
response log fills up it drains it into Python lists. Chunks are copied into two buffers the
replay owns and reuses (no fresh allocation, so no page faults, per chunk on a long stream), so a
source may reuse its own array for the next chunk once it is asked for it.

A *step* is any numba function ``step(sim, events) -> EL_*`` (``sim_nb.replay_nb`` for a plain
replay, a strategy loop otherwise) that can be called again after it returned for data.

Feed clock: recordings can carry a local clock behind the exchange's (the shared USD-M
recording receives messages about 1.27 s *before* their exchange time). Like hftbacktest's
``correct_local_timestamp``, ``feed_offset="auto"`` shifts every local time by the worst
negative feed latency of the first chunk plus ``base_feed_latency`` so local >= exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from tradelab.core.events import EV_DEPTH, EV_KIND_MASK, EV_TRADE, event_dt
from tradelab.matching import core_nb as cn
from tradelab.matching import sim_nb as sn
from tradelab.matching.types import QUEUE_MODELS

Step = Callable[[sn.Sim, np.ndarray], int]


@dataclass
class Latency:
    """An order latency model ``(code, params, table)``, see ``tradelab.matching.latency_nb``."""

    code: int
    params: np.ndarray
    table: np.ndarray


@dataclass
class Funding:
    """Settlements of a perpetual: times (ns), rates and mark prices at settlement."""

    ts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rate: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mark: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class ReplayResult:
    log: np.ndarray  # msg_dt, everything the local side received, in local time order
    events: int
    dropped_depth: int
    sim: sn.Sim

    @property
    def fills(self) -> np.ndarray:
        return self.log[self.log["what"] == sn.M_FILL]

    @property
    def reports(self) -> np.ndarray:
        return self.log[self.log["what"] == sn.M_REPORT]

    @property
    def funding(self) -> np.ndarray:
        return self.log[self.log["what"] == sn.M_FUNDING]


def _copy_rows(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[:] = src`` for event rows, as one byte copy (numpy copies a structured array field
    by field, ~5x slower on a chunk of events)."""
    if src.flags.c_contiguous and dst.flags.c_contiguous:
        np.copyto(dst.view(np.uint8), src.view(np.uint8))
    else:
        dst[...] = src


def _window(first: np.ndarray, tick: float, window_pct: float) -> tuple[int, int]:
    depth = first[(first["ev"] & EV_KIND_MASK) == EV_DEPTH]
    if len(depth) == 0:  # a trades-only stream (bar strategies): centre on its trades
        depth = first[(first["ev"] & EV_KIND_MASK) == EV_TRADE]
    if len(depth) == 0:
        raise ValueError("the first chunk has no depth or trade rows: cannot place the book "
                         "window")
    mid = float(np.median(depth["px"]))
    lo = int(np.floor(mid * (1 - window_pct) / tick))
    hi = int(np.ceil(mid * (1 + window_pct) / tick))
    return lo, hi - lo + 1


class Replay:
    """One instrument's two-clock replay over ``chunks`` (iterables of ``event_dt`` arrays)."""

    def __init__(
        self,
        chunks: Iterable[np.ndarray],
        inst: np.ndarray,
        latency: Latency,
        queue_model: str = "risk_averse",
        queue_n: float = 2.0,
        funding: Funding | None = None,
        window_pct: float = 0.1,
        feed_offset: str | int = "auto",
        base_feed_latency: int = 0,
        max_orders: int = 16,
        log_cap: int = 1 << 16,
    ) -> None:
        if queue_model not in QUEUE_MODELS:
            raise ValueError(f"unknown queue model {queue_model!r}")
        self._it: Iterator[np.ndarray] = iter(chunks)
        first = next(self._it, None)
        if first is None:
            raise ValueError("no events to replay")
        if first.dtype != event_dt:
            raise ValueError("chunks must be event_dt arrays")
        if feed_offset == "auto":
            lat = first["local_ts"] - first["exch_ts"]
            self.feed_offset = max(0, -int(lat.min())) + int(base_feed_latency)
        else:
            self.feed_offset = int(feed_offset)
        tick = float(inst[0]["tick"])
        base, n = _window(first, tick, window_pct)
        qm = QUEUE_MODELS[queue_model]
        ex = cn.new_core(inst, base, n, qm, queue_n, max_orders)
        lb = cn.new_core(inst, base, n, qm, queue_n, 1)
        f = funding or Funding()
        self.sim = sn.new_sim(ex, lb, latency.code, latency.params, latency.table, f.ts, f.rate,
                              f.mark, log_cap=log_cap)
        self._spare: np.ndarray | None = None
        self.ev = self._load(np.zeros(0, dtype=event_dt), first)
        self._logs: list[np.ndarray] = []
        self._more = True

    def _load(self, keep: np.ndarray, chunk: np.ndarray) -> np.ndarray:
        """``keep`` then ``chunk`` (local times shifted by the feed offset) in the spare buffer,
        which becomes current; the buffer ``keep`` lives in becomes the spare."""
        if chunk.dtype != event_dt:
            raise ValueError("chunks must be event_dt arrays")
        k, need = len(keep), len(keep) + len(chunk)
        buf = self._spare
        if buf is None or len(buf) < need:
            buf = np.empty(need + need // 4, dtype=event_dt)
        _copy_rows(buf[:k], keep)
        part = buf[k:need]
        _copy_rows(part, chunk)
        if self.feed_offset:
            part["local_ts"] += self.feed_offset
        self._spare = keep.base if keep.base is not None and len(keep.base) > 0 else None
        return buf[:need]

    def refill(self) -> bool:
        """Append the next chunk (False when there is none: the current one is the last)."""
        self._refill()
        return self._more

    def drain(self) -> None:
        """Move the messages received so far out of the sim's log (see :meth:`result`)."""
        self._drain()

    def result(self) -> ReplayResult:
        """Everything received locally so far, after a last drain."""
        self._drain()
        log = np.concatenate(self._logs) if self._logs else np.zeros(0, dtype=sn.msg_dt)
        return ReplayResult(log, int(self.sim.sv[sn.S_EVENTS]),
                            int(self.sim.ex.iv[cn.I_DROPPED]), self.sim)

    def _refill(self) -> None:
        sv = self.sim.sv
        lo = int(min(sv[sn.S_IE], sv[sn.S_IL]))
        nxt = next(self._it, None)
        if nxt is None:
            sv[sn.S_FINAL] = 1
            self._more = False
            return
        self.ev = self._load(self.ev[lo:], nxt)
        sv[sn.S_IE] -= lo
        sv[sn.S_IL] -= lo

    def _drain(self) -> None:
        sv = self.sim.sv
        k = int(sv[sn.S_LOG_N])
        if k:
            self._logs.append(self.sim.log[:k].copy())
            sv[sn.S_LOG_N] = 0

    def run(self, step: Step = sn.replay_nb,
            on_stop: Callable[[int], None] | None = None) -> ReplayResult:
        """Run ``step`` to the end of the data. Any other code ``step`` returns (``EL_BOOK``,
        ``EL_TRADE``, a loop's own) is handed to ``on_stop`` before ``step`` is called again."""
        while True:
            r = step(self.sim, self.ev)
            if r == sn.EL_NEED_DATA:
                self._refill()
            elif r == sn.EL_LOG_FULL:
                self._drain()
            elif r == sn.EL_END:
                break
            elif on_stop is not None:
                on_stop(r)
        return self.result()
