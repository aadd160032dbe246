"""Time parsing shared by every layer: everything becomes int64 UTC nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import overload

import numpy as np
import pandas as pd

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S

_UNITS_NS = {
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3_600 * NS_PER_S,
    "d": NS_PER_DAY,
    "w": 7 * NS_PER_DAY,
}
__all__ = [
    "NS_PER_DAY",
    "NS_PER_S",
    "Instant",
    "TimeLike",
    "days_since_epoch_to_date",
    "interval_ns",
    "ns_to_date",
    "ns_to_iso",
    "to_ns",
]

_INTERVAL_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")

Instant = str | int | float | datetime | date | pd.Timestamp | np.datetime64
"""A point in time in any form ``to_ns`` reads."""
TimeLike = Instant | None
"""A point in time, or ``None`` for an open end."""


@overload
def to_ns(value: None) -> None: ...
@overload
def to_ns(value: Instant) -> int: ...
def to_ns(value: TimeLike) -> int | None:
    """Convert a time-like value to int64 UTC nanoseconds (``None`` stays ``None``).

    Accepts ISO strings (``'2024-08-08'``, ``'2024-08-08 23:55:00'``), datetimes, pandas
    Timestamps, numpy datetime64 and integers (already nanoseconds). Naive values are UTC.
    """
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        raise TypeError("a float is ambiguous as a time; pass int nanoseconds or a date string")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot read {value!r} as a time: {exc}") from None
    if ts is pd.NaT:
        raise ValueError(f"cannot read {value!r} as a time")
    if ts.tzinfo is None:
        ts = ts.tz_localize(UTC)
    return int(ts.tz_convert(UTC).value)


MAX_INTERVAL_NS = 3_660 * NS_PER_DAY
"""The longest interval accepted (about 10 years): longer ones overflow time arithmetic."""


def interval_ns(interval: str) -> int:
    """Length of an interval string such as ``'1s'``, ``'15m'``, ``'4h'``, ``'1d'`` in ns."""
    m = _INTERVAL_RE.match(interval) if isinstance(interval, str) else None
    if not m or int(m.group(1)) <= 0:
        if isinstance(interval, str) and _MONTH_RE.match(interval):
            raise ValueError(
                f"interval {interval!r} is a calendar month: it has no fixed length here"
            )
        raise ValueError(
            f"bad interval {interval!r}: use a positive count and a unit, e.g. 1s, 5m, 1h, 1d"
        )
    ns = int(m.group(1)) * _UNITS_NS[m.group(2)]
    if ns > MAX_INTERVAL_NS:
        days = MAX_INTERVAL_NS // NS_PER_DAY
        raise ValueError(f"interval {interval!r} is too long: at most {days}d")
    return ns


_MONTH_RE = re.compile(r"^\s*(\d+)\s*M\s*$")
WEEK_ANCHOR_NS = 4 * NS_PER_DAY
"""1970-01-05 00:00 UTC, a Monday: weekly candles open on Mondays (Binance), not on the epoch's
Thursday."""


def is_candle_interval(interval: str) -> bool:
    """Whether ``interval`` is a valid candle interval (fixed units, or ``NM`` months)."""
    if isinstance(interval, str) and _MONTH_RE.match(interval):
        return int(_MONTH_RE.match(interval).group(1)) > 0  # type: ignore[union-attr]
    try:
        interval_ns(interval)
    except ValueError:
        return False
    return True


def candle_slots(ts: np.ndarray, interval: str) -> tuple[np.ndarray, np.ndarray]:
    """Grid slot of each candle open time and whether it is on the exchange's grid.

    The grid follows Binance: fixed intervals up to a day are aligned to the epoch, weeks open
    on Monday 00:00 UTC, months (``1M``) on the 1st at 00:00 UTC. Consecutive slots differ by 1,
    so ``diff(slots) - 1`` counts missing candles.
    """
    ts = np.asarray(ts, dtype=np.int64)
    m = _MONTH_RE.match(interval) if isinstance(interval, str) else None
    if m:
        n = int(m.group(1))
        if n <= 0:
            raise ValueError(f"bad interval {interval!r}")
        months = ts.astype("datetime64[ns]").astype("datetime64[M]")
        start = months.astype("datetime64[ns]").astype(np.int64)
        idx = months.astype(np.int64)
        return idx // n, (start == ts) & (idx % n == 0)
    step = interval_ns(interval)
    offset = WEEK_ANCHOR_NS if interval.strip().endswith("w") else 0
    rel = ts - offset
    return rel // step, rel % step == 0


def ns_to_date(ns: int) -> str:
    """The UTC date (YYYY-MM-DD) of a nanosecond timestamp."""
    return datetime.fromtimestamp(ns // NS_PER_S, tz=UTC).strftime("%Y-%m-%d")


def ns_to_iso(ns: int | None) -> str | None:
    """ISO-8601 UTC text of a nanosecond timestamp, millisecond precision."""
    if ns is None:
        return None
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat(timespec="milliseconds")


def days_since_epoch_to_date(days: np.ndarray | list[int]) -> list[str]:
    """Vector of day numbers (ns // NS_PER_DAY) to YYYY-MM-DD strings."""
    return [str(d) for d in np.asarray(days, dtype="int64").astype("datetime64[D]")]
