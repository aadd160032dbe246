"""Binance stream payloads and REST snapshots read into plain values.

Prices and sizes become floats, exchange times int ms (``*_ms``) or int UTC ns (``*_ns``),
the taker side ``0`` (buy) or ``1`` (sell). A payload that lacks a field or holds a value of the
wrong kind raises ``KeyError``, ``TypeError`` or ``ValueError`` naming it, for the caller to count
as a rejected line.

Values are checked, each message on its own (the caller rejects that one line):

- prices are finite and above zero (trades, bookTicker, depth levels, snapshot levels, mark and
  index prices); a NaN, an infinity, a negative or a zero price raises :class:`BadValue`;
- sizes are finite and above zero, except in a depth *diff*, where a size of 0 removes the level
  (so diff sizes are finite and at least zero);
- a funding rate is finite (it may be negative or zero);
- exchange times are positive and fit int64 nanoseconds.

A depth diff is atomic: one bad level makes the whole message bad (applying the rest of it would
leave the book wrong), and the caller must treat the skipped message as a break in the update-id
chain. A payload of the other market (a USD-M message in a spot recording or the reverse) raises
:class:`OtherMarket`.
"""

from __future__ import annotations

from typing import NamedTuple

MS = 1_000_000
INF = float("inf")
MAX_MS = (2**63 - 1) // MS
"""The latest exchange time (ms) that still fits int64 nanoseconds."""


class BadValue(ValueError):
    """A price, size, rate or time no real message holds (NaN, infinite, negative, zero price)."""


class OtherMarket(ValueError):
    """A payload of the other Binance market than the recording's."""


class Trade(NamedTuple):
    """A ``trade`` or ``aggTrade``: time in ms, taker side 0 buy / 1 sell, the trade id
    (``a<id>`` for an aggregate)."""

    t_ms: int
    price: float
    qty: float
    side: int
    trade_id: int | str


class BookTicker(NamedTuple):
    """A ``bookTicker``: exchange time in ns (the receipt time when it carries none)."""

    ts: int
    seq: int
    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float


class MarkPrice(NamedTuple):
    """A ``markPriceUpdate`` with its current funding rate; times in ns."""

    ts: int
    rate: float
    mark_price: float
    index_price: float | None
    next_funding_ts: int | None


class Snapshot(NamedTuple):
    """A REST depth snapshot: ``lastUpdateId`` and float levels."""

    last_update_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


def _time_ms(value: object, what: str) -> int:
    t = int(value)  # type: ignore[call-overload]
    if 0 < t <= MAX_MS:
        return t
    raise BadValue(f"{what} {value!r} is not a time (ms since the epoch)")


def _bad_price(value: object, what: str) -> BadValue:
    return BadValue(f"{what} {value!r}: a price must be finite and above zero")


def _bad_qty(value: object, what: str, zero_ok: bool = False) -> BadValue:
    rule = "at least zero" if zero_ok else "above zero"
    return BadValue(f"{what} {value!r}: a size must be finite and {rule}")


def _check_market(market: str | None, usdm_marker: bool, kind: str) -> None:
    if market is not None and usdm_marker != (market == "usdm"):
        other = "USD-M" if usdm_marker else "spot"
        raise OtherMarket(f"a {other} {kind} in a {market} recording")


def trade(d: dict, market: str | None = None) -> Trade:
    """A ``trade`` or ``aggTrade`` payload (``m`` true: the buyer is the maker, the taker sold).

    With ``market`` given, a payload of the other market raises :class:`OtherMarket` (spot trades
    carry ``M``, USD-M ones do not)."""
    price = float(d["p"])
    qty = float(d["q"])
    if not (0.0 < price < INF):
        raise _bad_price(d["p"], "trade price")
    if not (0.0 < qty < INF):
        raise _bad_qty(d["q"], "trade quantity")
    if market is not None and ("M" in d) == (market == "usdm"):
        _check_market(market, "M" not in d, "trade")
    t = d.get("T") or d["E"]
    t_ms = int(t)
    if not 0 < t_ms <= MAX_MS:
        _time_ms(t, "trade time")
    side = 1 if d["m"] else 0
    tid = d["t"] if "t" in d else f"a{d['a']}"
    return Trade(t_ms, price, qty, side, tid)


def book_ticker(d: dict, recv_ns: int, market: str | None = None) -> BookTicker:
    """A ``bookTicker`` payload; spot's carries no time, so ``recv_ns`` stands in.

    With ``market`` given, a payload of the other market raises :class:`OtherMarket` (USD-M's
    carries ``e``, spot's does not)."""
    bp, bq, ap, aq = float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])
    if not (0.0 < bp < INF and 0.0 < ap < INF and 0.0 < bq < INF and 0.0 < aq < INF):
        for key, value, what in (("b", bp, "bid price"), ("a", ap, "ask price")):
            if not (0.0 < value < INF):
                raise _bad_price(d[key], f"bookTicker {what}")
        key = "B" if not (0.0 < bq < INF) else "A"
        raise _bad_qty(d[key], f"bookTicker {'bid' if key == 'B' else 'ask'} quantity")
    if market is not None and ("e" in d) != (market == "usdm"):
        _check_market(market, "e" in d, "bookTicker")
    seq = int(d["u"])
    t = d.get("T") or d.get("E")
    if t:
        ts = int(t)
        if not 0 < ts <= MAX_MS:
            _time_ms(t, "bookTicker time")
        ts *= MS
    else:
        ts = recv_ns
    return BookTicker(ts, seq, bp, bq, ap, aq)


def mark_price(d: dict, market: str | None = None) -> MarkPrice | None:
    """A ``markPriceUpdate``; None when it carries no funding rate (``r`` empty). Only USD-M
    sends it: with ``market`` spot it raises :class:`OtherMarket`."""
    if market is not None:
        _check_market(market, True, "markPriceUpdate")
    if d.get("r") in (None, ""):
        return None
    rate = float(d["r"])
    if not (-INF < rate < INF):
        raise BadValue(f"funding rate {d['r']!r}: a rate must be finite")
    ts, mark = _time_ms(d["E"], "markPrice time") * MS, float(d["p"])
    if not (0.0 < mark < INF):
        raise _bad_price(d["p"], "mark price")
    index = float(d["i"]) if "i" in d else None
    if index is not None and not (0.0 < index < INF):
        raise _bad_price(d["i"], "index price")
    nxt = _time_ms(d["T"], "next funding time") * MS if d.get("T") else None
    return MarkPrice(ts, rate, mark, index, nxt)


def check_depth_update(d: dict, market: str) -> None:
    """Raise ``ValueError`` unless ``d`` is a well-formed depth diff of ``market``
    (:class:`OtherMarket` for a diff of the other market: USD-M diffs carry ``pu``)."""
    if not (
        isinstance(d["U"], int)
        and isinstance(d["u"], int)
        and isinstance(d["E"], int)
        and isinstance(d["b"], list)
        and isinstance(d["a"], list)
    ):
        raise ValueError("depthUpdate needs integer U, u, E and lists b, a")
    _check_market(market, "pu" in d, "depthUpdate")
    if market == "usdm" and not isinstance(d["pu"], int):
        raise ValueError("USD-M depthUpdate needs an integer pu")
    if not 0 < d["E"] <= MAX_MS:
        raise BadValue(f"depthUpdate time {d['E']!r} is not a time (ms since the epoch)")


def _side_levels(
    levels: list, side: str, zero_qty_ok: bool, px: list[float], qty: list[float]
) -> None:
    """Append the prices and sizes of one side's ``[[price, size], ...]`` to ``px``/``qty``,
    each value checked (NaN fails every comparison)."""
    qmin = 0.0 if zero_qty_ok else 5e-324  # the smallest float above zero: "size > 0"
    for p, q in levels:
        fp = float(p)
        fq = float(q)
        if not (0.0 < fp < INF and qmin <= fq < INF):
            i = next(k for k, lv in enumerate(levels) if lv[0] is p and lv[1] is q)
            if not (0.0 < fp < INF):
                raise _bad_price(p, f"{side} level {i} price")
            raise _bad_qty(q, f"{side} level {i} size", zero_qty_ok)
        px.append(fp)
        qty.append(fq)


def depth_levels(d: dict) -> tuple[list[float], list[float], int]:
    """``(prices, sizes, number of bid levels)`` of a depth diff, bids first then asks.

    A size of 0 removes a level; a bad price or size anywhere raises :class:`BadValue` for the
    whole diff (it is one atomic update)."""
    px: list[float] = []
    qty: list[float] = []
    _side_levels(d["b"], "bid", True, px, qty)
    nb = len(px)
    _side_levels(d["a"], "ask", True, px, qty)
    return px, qty, nb


def event_ns(d: dict) -> int:
    """The payload's event time ``E`` in ns."""
    return d["E"] * MS


def snapshot(snap: dict) -> Snapshot:
    """A REST depth snapshot body."""
    snap_id = snap["lastUpdateId"]
    if not isinstance(snap_id, int):
        raise ValueError("depth snapshot needs an integer lastUpdateId")
    bp: list[float] = []
    bq: list[float] = []
    ap: list[float] = []
    aq: list[float] = []
    _side_levels(snap["bids"], "snapshot bid", False, bp, bq)
    _side_levels(snap["asks"], "snapshot ask", False, ap, aq)
    return Snapshot(snap_id, list(zip(bp, bq, strict=True)), list(zip(ap, aq, strict=True)))
