"""The venue's journal: its trading state survives a restart.

One append-only file of JSON lines. The first line is a snapshot of every component's state;
each further line is one change: the top-level keys of a component's state that were set or
deleted since the line before (``{"seq", "set": {component: {key: value}}, "del": {component:
[key]}}``). A line is written and fsynced before the REST answer that reports the change goes
out, so an acknowledged order is on disk.

On start the snapshot is loaded, the changes are replayed and each component is restored from
the result; then the file is compacted: the current state is written as a new snapshot to a
temporary file, fsynced and renamed over the journal (atomic), and again whenever
``compact_every`` changes have accumulated. A last line without its newline is a write torn by
a kill: it is logged and dropped (its change was never acknowledged). Any other damage (a line
that is not JSON, a gap in ``seq``, an unknown component) is a :class:`JournalError` naming the
file and line: the venue refuses to start rather than silently starting empty.

A component is anything with ``state() -> dict`` (JSON values) and ``restore(dict)``; a state
keyed by entry (``"order:17"``) keeps each change line small, and an optional
``changed_state()`` (only the entries that may have changed since its last call) keeps the
comparison per change small too (spot trading offers it: finished orders never change).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson

from tradelab.errors import TradelabError

log = logging.getLogger("tradelab.venue")

FORMAT = "tradelab-venue-journal/1"
COMPACT_EVERY = 10_000


class JournalError(TradelabError):
    """The journal cannot be read back (names the file and line)."""


class Durable(Protocol):
    """A part of the venue whose state the journal keeps."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


def read_journal(path: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """The components' states a journal file holds and its last ``seq`` (raises
    :class:`JournalError` naming the file and line for anything but a torn last line)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail:
        log.warning("%s: the last line (%d bytes) is incomplete, a write cut short: ignored",
                    path, len(tail))
    if not lines:
        raise JournalError(f"{path}: empty journal (no snapshot line)")
    states: dict[str, dict[str, Any]] = {}
    seq = -1
    for n, raw in enumerate(lines, start=1):
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise JournalError(f"{path}:{n}: not a JSON record ({exc})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int):
            raise JournalError(f"{path}:{n}: not a journal record (no integer 'seq')")
        if n == 1:
            if rec.get("format") != FORMAT or not isinstance(rec.get("snapshot"), dict):
                raise JournalError(f"{path}:1: expected a {FORMAT} snapshot line")
            states = {k: dict(v) for k, v in rec["snapshot"].items()}
        else:
            if rec["seq"] != seq + 1:
                raise JournalError(f"{path}:{n}: seq {rec['seq']} follows {seq} (a line is "
                                   "missing or out of order)")
            _apply(states, rec, f"{path}:{n}")
        seq = rec["seq"]
    return states, seq


def _apply(states: dict[str, dict[str, Any]], rec: dict, where: str) -> None:
    sets, dels = rec.get("set", {}), rec.get("del", {})
    if not isinstance(sets, dict) or not isinstance(dels, dict):
        raise JournalError(f"{where}: 'set' and 'del' must be objects")
    for comp, values in sets.items():
        if not isinstance(values, dict):
            raise JournalError(f"{where}: 'set' of {comp!r} must be an object")
        states.setdefault(comp, {}).update(values)
    for comp, keys in dels.items():
        if not isinstance(keys, list):
            raise JournalError(f"{where}: 'del' of {comp!r} must be a list")
        for key in keys:
            states.get(comp, {}).pop(key, None)


class Journal:
    """Keeps named components durable in one file (see the module docstring)."""

    def __init__(self, path: str | Path, components: Mapping[str, Durable],
                 compact_every: int = COMPACT_EVERY) -> None:
        if compact_every < 1:
            raise ValueError("compact_every must be at least 1")
        self.path = Path(path)
        self.components = dict(components)
        self.compact_every = compact_every
        self.seq = 0
        self.since_snapshot = 0
        self.written = 0  # change lines written by this process
        self._last: dict[str, dict[str, bytes]] = {}  # the state on disk, values as JSON
        self._fd: int | None = None

    def open(self) -> bool:
        """Restore the components from the journal if it exists (True), then compact it into
        a fresh snapshot of the current state and keep it open for changes."""
        try:
            return self._open()
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot use the journal: {exc}") from None

    def _open(self) -> bool:
        restored = False
        if self.path.exists():
            states, self.seq = read_journal(self.path)
            unknown = sorted(set(states) - set(self.components))
            if unknown:
                raise JournalError(f"{self.path}: holds state of {unknown}, which this venue "
                                   f"does not run (it runs {sorted(self.components)})")
            for name, state in states.items():
                try:
                    self.components[name].restore(state)
                except (KeyError, ValueError, TypeError) as exc:
                    raise JournalError(f"{self.path}: cannot restore {name!r}: {exc}") from exc
            restored = True
            log.info("journal %s: restored %s at seq %d", self.path, sorted(states), self.seq)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.compact()
        return restored

    def _current(self) -> dict[str, dict[str, bytes]]:
        return {name: {k: orjson.dumps(v) for k, v in comp.state().items()}
                for name, comp in self.components.items()}

    def commit(self) -> bool:
        """Write (and fsync) what changed since the last line; False if nothing did.

        A component with ``changed_state()`` (the entries that may have changed since its
        last call; it never drops a key) is compared on those alone, else on its whole
        ``state()``."""
        if self._fd is None:
            raise JournalError(f"{self.path}: the journal is not open")
        sets: dict[str, dict[str, Any]] = {}
        dels: dict[str, list[str]] = {}
        updates: dict[str, tuple[dict[str, bytes], bool]] = {}
        for name, comp in self.components.items():
            partial = getattr(comp, "changed_state", None)
            raw = partial() if partial is not None else comp.state()
            values = {k: orjson.dumps(v) for k, v in raw.items()}
            before = self._last.get(name, {})
            changed = {k: raw[k] for k, v in values.items() if before.get(k) != v}
            gone = [] if partial is not None else [k for k in before if k not in values]
            if changed:
                sets[name] = changed
            if gone:
                dels[name] = gone
            updates[name] = (values, partial is not None)
        if not sets and not dels:
            return False
        self.seq += 1
        rec: dict[str, Any] = {"seq": self.seq, "set": sets}
        if dels:
            rec["del"] = dels
        self._write(orjson.dumps(rec) + b"\n")
        for name, (values, merge) in updates.items():
            if merge:
                self._last.setdefault(name, {}).update(values)
            else:
                self._last[name] = values
        self.written += 1
        self.since_snapshot += 1
        if self.since_snapshot >= self.compact_every:
            self.compact()
        return True

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        view = memoryview(line)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def compact(self) -> None:
        """Replace the file by one snapshot of the current state (write, fsync, rename)."""
        now = self._current()
        snap = {"format": FORMAT, "seq": self.seq,
                "snapshot": {name: {k: orjson.loads(v) for k, v in values.items()}
                             for name, values in now.items()}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(snap) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.close()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._last = now
        self.since_snapshot = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
