"""Binance stream payloads and REST snapshots read into plain values.

Prices and sizes become floats, exchange times int ms (``*_ms``) or int UTC ns (``*_ns``),
the taker side ``0`` (buy) or ``1`` (sell). A payload that lacks a field or holds a value of the
wrong kind raises ``KeyError``, ``TypeError`` or ``ValueError`` naming it, for the caller to count
as a rejected line.
"""

from __future__ import annotations

from typing import NamedTuple

MS = 1_000_000


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


def trade(d: dict) -> Trade:
    """A ``trade`` or ``aggTrade`` payload (``m`` true: the buyer is the maker, the taker sold)."""
    price = float(d["p"])
    qty = float(d["q"])
    t_ms = int(d.get("T") or d["E"])
    side = 1 if d["m"] else 0
    tid = d["t"] if "t" in d else f"a{d['a']}"
    return Trade(t_ms, price, qty, side, tid)


def book_ticker(d: dict, recv_ns: int) -> BookTicker:
    """A ``bookTicker`` payload; spot's carries no time, so ``recv_ns`` stands in."""
    bp, bq, ap, aq = float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])
    seq = int(d["u"])
    t = d.get("T") or d.get("E")
    ts = int(t) * MS if t else recv_ns
    return BookTicker(ts, seq, bp, bq, ap, aq)


def mark_price(d: dict) -> MarkPrice | None:
    """A ``markPriceUpdate``; None when it carries no funding rate (``r`` empty)."""
    if d.get("r") in (None, ""):
        return None
    rate = float(d["r"])
    ts, mark = int(d["E"]) * MS, float(d["p"])
    index = float(d["i"]) if "i" in d else None
    nxt = int(d["T"]) * MS if d.get("T") else None
    return MarkPrice(ts, rate, mark, index, nxt)


def check_depth_update(d: dict, market: str) -> None:
    """Raise ``ValueError`` unless ``d`` is a well-formed depth diff of ``market``."""
    if not (
        isinstance(d["U"], int)
        and isinstance(d["u"], int)
        and isinstance(d["E"], int)
        and isinstance(d["b"], list)
        and isinstance(d["a"], list)
    ):
        raise ValueError("depthUpdate needs integer U, u, E and lists b, a")
    if market == "usdm" and not isinstance(d["pu"], int):
        raise ValueError("USD-M depthUpdate needs an integer pu")


def event_ns(d: dict) -> int:
    """The payload's event time ``E`` in ns."""
    return d["E"] * MS


def snapshot(snap: dict) -> Snapshot:
    """A REST depth snapshot body."""
    snap_id = snap["lastUpdateId"]
    if not isinstance(snap_id, int):
        raise ValueError("depth snapshot needs an integer lastUpdateId")
    bids = [(float(p), float(q)) for p, q in snap["bids"]]
    asks = [(float(p), float(q)) for p, q in snap["asks"]]
    return Snapshot(snap_id, bids, asks)
