"""The raw Binance recording format: one message per line, ``<local receipt time, ns> <json>``.

Messages are combined-stream envelopes (``{"stream": "btcusdt@depth@100ms", "data": {...}}``) and
REST depth snapshots (``{"lastUpdateId": ..., "bids": ..., "asks": ...}``). Files are gzip or
plain text (told apart by their first two bytes).
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import orjson

from tradelab.adapters.binance.schema import market_of_payload

SNIFF_LINES = 2000
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    """Whether the file starts with gzip's magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_recording(path: str | Path) -> io.BufferedIOBase:
    """The recording opened for reading bytes, gzip or plain."""
    if is_gzip(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def split_line(line: bytes) -> tuple[bytes, bytes] | None:
    """``(receipt time text, json text)`` of a line, or None when it has no receipt time."""
    sp = line.find(b" ")
    if sp <= 0:
        return None
    return line[:sp], line[sp + 1 :]


def parse_line(line: bytes) -> tuple[int, dict] | None:
    """``(receipt time ns, message)`` of a line, or None if it is not a valid line."""
    parts = split_line(line)
    if parts is None:
        return None
    try:
        return int(parts[0]), orjson.loads(parts[1])
    except ValueError:
        return None


def format_line(recv_ns: int, message: dict) -> bytes:
    """One recording line (with its newline) for ``message`` received at ``recv_ns``."""
    return b"%d %s\n" % (recv_ns, orjson.dumps(message))


def is_snapshot(message: dict) -> bool:
    """Whether a recorded message is a REST depth snapshot (not a stream message)."""
    return "stream" not in message and "lastUpdateId" in message


def sniff_market(path: str | Path, max_lines: int = SNIFF_LINES) -> str | None:
    """``spot`` or ``usdm`` from the first messages of a recording, or None if undecided."""
    try:
        with open_recording(path) as fh:
            for i, raw in enumerate(fh):
                if i >= max_lines:
                    break
                sp = raw.find(b" ")
                try:
                    msg = orjson.loads(raw[sp + 1 :])
                except orjson.JSONDecodeError:
                    continue
                data = msg.get("data") if isinstance(msg, dict) else None
                if not isinstance(data, dict):
                    continue
                market = market_of_payload(data)
                if market is not None:
                    return market
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return None
    return None


def first_recv_ts(path: str | Path) -> int:
    """Receipt time of the first line (used to order several files), or 0."""
    try:
        with open_recording(path) as fh:
            line = fh.readline()
        return int(line[: line.find(b" ")])
    except (OSError, ValueError, EOFError, zlib.error, gzip.BadGzipFile):
        return 0
