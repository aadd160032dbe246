"""A durable append-only log of JSON records: what a runner (or the venue) writes before it acts.

One record per line, ``<crc32 hex> <json>\\n``; the checksum covers the JSON bytes. Appends are
written with one ``write`` and made durable with ``fsync`` before :meth:`JsonLog.append` returns,
so a record that was acknowledged survives a kill or a power cut. Opening a log reads it back:

- a **torn tail** (the last line without its newline, or whose checksum or JSON does not hold:
  a write cut short by a kill) is reported and cut off, so appends continue on a clean line;
- anything wrong **before** the last line is corruption, never silently skipped: a
  :class:`~tradelab.errors.StoreError` names the file, the line and what is wrong.

Records carry a ``seq`` (1, 2, ...) the log assigns; a gap or a repeat is corruption too.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tradelab.errors import StoreError

log = logging.getLogger("tradelab.store.jsonlog")


def _encode(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), sort_keys=True,
                      allow_nan=False).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode(line: bytes) -> dict[str, Any] | str:
    """The record of one line (without its newline), or why it is not one."""
    crc, sep, body = line.partition(b" ")
    if not sep or len(crc) != 8:
        return "no checksum"
    try:
        want = int(crc, 16)
    except ValueError:
        return "bad checksum field"
    if zlib.crc32(body) != want:
        return "checksum mismatch"
    try:
        rec = json.loads(body)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int):
        return "not a record with a seq"
    return rec


class JsonLog:
    """An open log: :attr:`records` holds what was read at open; :meth:`append` adds."""

    def __init__(self, path: str | os.PathLike, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.torn_tail = 0  # bytes cut off a torn last line at open
        self.records: list[dict[str, Any]] = self._read()
        self.seq = self.records[-1]["seq"] if self.records else 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if new and fsync:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out, tail = parse_log(data, self.path)
        if tail:
            log.warning("%s: cutting off a torn last record (%d bytes; a write cut short)",
                        self.path, tail)
            with open(self.path, "r+b") as fh:
                fh.truncate(len(data) - tail)
                fh.flush()
                os.fsync(fh.fileno())
            self.torn_tail = tail
        return out

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write ``record`` (plus its ``seq``) durably; returns the stored record."""
        return self.append_many([record])[-1]

    def append_many(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write several records with one write and one fsync (all or, after a crash, a prefix
        whose torn last record is cut at the next open)."""
        stored = []
        buf = bytearray()
        seq = self.seq
        for r in records:
            if "seq" in r:
                raise ValueError("a record's seq is assigned by the log; do not set it")
            seq += 1
            rec = {**r, "seq": seq}
            buf += _encode(rec)
            stored.append(rec)
        if not stored:
            return stored
        view = memoryview(bytes(buf))
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        if self.fsync:
            os.fsync(self._fd)
        self.seq = seq
        return stored

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_log(data: bytes, path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a log's bytes and the length of a torn tail to ignore (0 if none);
    corruption before the last line is a StoreError naming ``path`` and the line."""
    lines = data.split(b"\n")
    tail = len(lines.pop())  # 0 when the data ends with a newline
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        rec = _decode(line)
        if isinstance(rec, str):
            if i == len(lines) and not tail:
                # a bad last line that has its newline (e.g. a block zeroed by a crash)
                return out, len(line) + 1
            raise StoreError(f"{path}: line {i} is corrupt ({rec}); the log cannot be "
                             "trusted past it. Move the file aside to start fresh, or repair "
                             "that line")
        if out and rec["seq"] != out[-1]["seq"] + 1:
            raise StoreError(f"{path}: line {i} has seq {rec['seq']}, expected "
                             f"{out[-1]['seq'] + 1} (a record is missing or repeated)")
        out.append(rec)
    return out, tail


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a log, checked, without opening it for appends (a torn tail is
    skipped, not cut)."""
    p = Path(path)
    return parse_log(p.read_bytes(), p)[0]


__all__ = ["JsonLog", "parse_log", "read_log"]
