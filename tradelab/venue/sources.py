"""What the venue replays: raw Binance recordings, or a synthetic zero-intelligence market.

A source yields :class:`VenueMessage` batches in stream order. ``at`` is the source's own clock
(receipt time for recordings, exchange time for the synthetic market) and paces the replay.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tradelab.adapters.binance.filters import KNOWN_SIZES, format_size, infer_tick
from tradelab.adapters.binance.recording import (
    first_recv_ts,
    open_recording,
    parse_line,
    sniff_market,
)
from tradelab.adapters.binance.schema import STREAM_KINDS, stream_kind, stream_symbol
from tradelab.venue.instruments import Instrument, instrument


@dataclass(slots=True)
class VenueMessage:
    """One stream message: pacing time (ns), market, raw symbol, kind and Binance payload."""

    at: int
    market: str
    symbol: str
    kind: str
    data: dict


class MarketSource(Protocol):
    """What the venue replays: instruments, initial books, and market messages in time order."""

    instruments: dict[tuple[str, str], Instrument]
    initial: dict
    snapshots: list
    exhausted: bool
    lines: int
    skipped: int

    def start_at(self) -> int:
        """Exchange time (ms) of the first message."""
        ...

    def peek(self) -> Any:
        """The next message without taking it (``None`` at the end)."""
        ...

    def take(self, until: int | None, max_n: int = 2000) -> list:
        """Messages up to exchange time ``until`` (ms; ``None``: no limit), at most ``max_n``."""
        ...

    def provides(self, kind: str) -> bool:
        """Whether the source carries a stream kind itself (else the venue derives it)."""
        ...


class StaticSource:
    """A source with no stream of its own: instruments and (optionally) starting books only.

    The venue serves REST history over it (``provides=()``), or a test publishes the market's
    messages itself over a hand-made book (``provides=("depth", "trade")``)."""

    def __init__(self, keys: Iterable[tuple[str, str]], books: dict | None = None,
                 provides: Sequence[str] = ()) -> None:
        self.instruments = {key: instrument(*key) for key in keys}
        self.initial: dict = dict(books or {})
        self.snapshots: list = [(m, s, snap) for (m, s), snap in self.initial.items()]
        self.exhausted = True
        self.lines = 0
        self.skipped = 0
        self._provides = tuple(provides)

    def start_at(self) -> int:
        return 0

    def peek(self) -> Any:
        return None

    def take(self, until: int | None, max_n: int = 2000) -> list:
        return []

    def provides(self, kind: str) -> bool:
        return kind in self._provides


class RecordingSource:
    """Replays raw recordings (``<recv ns> <json>`` lines, gzip or plain) by receipt time.

    Files are merged by receipt time into one stream. REST snapshot lines are
    not stream messages: they are handed to the venue (``snapshots``) to sync its own book. The
    first snapshot of each file is also known up front (``initial_snapshot``) so the venue can
    answer depth requests before its book is synced, as Binance would.
    """

    def __init__(self, files: Sequence[str | Path], market: str | None = None) -> None:
        self.files = sorted((Path(f) for f in files), key=first_recv_ts)
        if not self.files:
            raise ValueError("no recording files given")
        self.markets: dict[Path, str] = {}
        for f in self.files:
            if not f.exists():
                raise FileNotFoundError(f"no such recording: {f}")
            m = market or sniff_market(f)
            if m is None:
                raise ValueError(f"{f}: cannot tell spot from usdm; pass --market")
            self.markets[f] = m
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.initial: dict[tuple[str, str], dict] = {}
        self._scan_heads()
        self._it = self._messages()
        self._peeked: VenueMessage | None = None
        self.snapshots: list[tuple[str, str, dict]] = []
        self.exhausted = False
        self.lines = 0
        self.skipped = 0

    def _scan_heads(self, max_lines: int = 5000) -> None:
        for f in self.files:
            market = self.markets[f]
            depth_symbol = None
            with open_recording(f) as fh:
                for i, line in enumerate(fh):
                    if i >= max_lines:
                        break
                    msg = parse_line(line)
                    if msg is None:
                        continue
                    _at, body = msg
                    if "stream" in body:
                        sym = stream_symbol(body["stream"], body["data"])
                        key = (market, sym)
                        if key not in self.instruments:
                            self.instruments[key] = instrument(market, sym)
                        if stream_kind(body["stream"]) == "depth":
                            depth_symbol = depth_symbol or sym
                    elif "lastUpdateId" in body and depth_symbol:
                        key = (market, depth_symbol)
                        self.initial.setdefault(key, body)
                        if (market, depth_symbol) not in KNOWN_SIZES:
                            inst = self.instruments[key]
                            tick = infer_tick([p for p, _ in body["bids"][:200]])
                            self.instruments[key] = Instrument(inst.symbol, market, inst.base,
                                                               inst.quote, tick, inst.step)

    def _file_messages(self, f: Path) -> Iterator[VenueMessage]:
        market = self.markets[f]
        depth_symbol = None
        with open_recording(f) as fh:
            for line in fh:
                self.lines += 1
                msg = parse_line(line)
                if msg is None:
                    self.skipped += 1
                    continue
                at, body = msg
                stream = body.get("stream")
                if stream is None:
                    if "lastUpdateId" in body and depth_symbol:
                        self.snapshots.append((market, depth_symbol, body))
                    continue
                data = body["data"]
                sym = stream_symbol(stream, data)
                kind = stream_kind(stream)
                if kind == "depth":
                    depth_symbol = depth_symbol or sym
                if kind not in STREAM_KINDS:
                    self.skipped += 1
                    continue
                yield VenueMessage(at, market, sym, kind, data)

    def _messages(self) -> Iterator[VenueMessage]:
        """All files merged by receipt time: recordings of different markets play together,
        the parts of a split recording one after the other."""
        yield from heapq.merge(*(self._file_messages(f) for f in self.files),
                               key=lambda m: m.at)
        self.exhausted = True

    def start_at(self) -> int:
        first = self.peek()
        return first.at if first else 0

    def peek(self) -> VenueMessage | None:
        if self._peeked is None:
            self._peeked = next(self._it, None)
        return self._peeked

    def take(self, until: int | None, max_n: int = 2000) -> list[VenueMessage]:
        """Messages with ``at <= until`` (``None``: the next ``max_n`` regardless of time)."""
        out: list[VenueMessage] = []
        while len(out) < max_n:
            m = self.peek()
            if m is None or (until is not None and m.at > until):
                break
            out.append(m)
            self._peeked = None
        return out

    def provides(self, kind: str) -> bool:
        return kind in ("depth", "trade", "bookTicker")


class ZISource:
    """A zero-intelligence limit-order market (``tradelab.synth.zi``) as an endless stream."""

    def __init__(self, cfgs) -> None:
        from tradelab.synth.zi import ZIMarket

        self.markets = [ZIMarket(c) for c in cfgs]
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.initial: dict[tuple[str, str], dict] = {}
        self.snapshots: list[tuple[str, str, dict]] = []
        for zi, cfg in zip(self.markets, cfgs):
            inst = instrument(cfg.market, cfg.symbol, format_size(cfg.tick), format_size(cfg.lot))
            self.instruments[inst.key] = inst
            snap = zi.snapshot()
            self.initial[inst.key] = snap
            self.snapshots.append((cfg.market, inst.symbol, snap))
        self._buffer: list[VenueMessage] = []
        self._clock = min(zi.now_ns for zi in self.markets)
        self.exhausted = False
        self.lines = 0
        self.skipped = 0

    def start_at(self) -> int:
        return self._clock

    def _fill(self, until: int) -> None:
        batch = []
        for zi, inst in zip(self.markets, self.instruments.values()):
            for body in zi.advance(until):
                kind = stream_kind(body["stream"])
                data = body["data"]
                t_ms = data.get("T") or data.get("E")
                at = int(t_ms) * 1_000_000 if t_ms else until
                batch.append(VenueMessage(at, inst.market, inst.symbol, kind, data))
        batch.sort(key=lambda m: m.at)
        self._buffer.extend(batch)
        self._clock = until

    def peek(self) -> VenueMessage | None:
        # endless: a quiet stretch (no message for 100 ms of market time) is not the end
        while not self._buffer:
            self._fill(self._clock + 100_000_000)
        return self._buffer[0]

    def take(self, until: int | None, max_n: int = 2000) -> list[VenueMessage]:
        target = until if until is not None else self._clock + 1_000_000_000
        if target > self._clock:
            self._fill(target)
        n = 0
        buf = self._buffer
        while n < len(buf) and n < max_n and (until is None or buf[n].at <= until):
            n += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        self.lines += n
        return out

    def provides(self, kind: str) -> bool:
        return kind in ("depth", "trade", "aggTrade", "bookTicker")
