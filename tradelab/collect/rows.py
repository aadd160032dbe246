"""cryptofeed objects to store rows (one tuple per row, in the order of the table's columns).

Times: cryptofeed gives float seconds; they are rounded to the microsecond before becoming int64
ns, which is exact for the millisecond times exchanges send. Prices and sizes are Decimals and
become float64. The book object cryptofeed passes is mutable and reused: rows are built at once.
"""

from __future__ import annotations

import math
from decimal import Decimal

from tradelab.adapters.binance.depth_sync import prev_update_id
from tradelab.net.cryptofeed_feeds import ns
from tradelab.store.schema import BOOK_LAST, BOOK_SNAPSHOT


def _f(x: Decimal | float | None) -> float:
    return math.nan if x is None else float(x)


TRADE_COLS = ("ts", "recv_ts", "price", "qty", "side", "trade_id")
BBO_COLS = ("ts", "recv_ts", "seq", "bid_px", "bid_qty", "ask_px", "ask_qty")
FUNDING_COLS = ("ts", "recv_ts", "rate", "settled", "mark_price", "index_price",
                "next_funding_ts")
OI_COLS = ("ts", "recv_ts", "open_interest", "open_interest_value")
BOOK_COLS = ("ts", "recv_ts", "seq", "prev_seq", "side", "price", "qty", "flags")
QE_COLS = ("ts", "recv_ts", "table_name", "kind", "expected_seq", "got_seq", "source", "detail")
COLUMNS = {"trades": TRADE_COLS, "bbo": BBO_COLS, "funding": FUNDING_COLS,
           "open_interest": OI_COLS, "book": BOOK_COLS, "quality_events": QE_COLS}


def funding_row(f, receipt: float) -> tuple:
    raw = f.raw if isinstance(f.raw, dict) else {}
    index = raw.get("i")
    return (ns(f.timestamp, receipt), ns(receipt), _f(f.rate), False, _f(f.mark_price),
            _f(index) if index is not None else None,
            ns(f.next_funding_time) if f.next_funding_time else None)


def oi_row(o, receipt: float) -> tuple:
    return (ns(o.timestamp, receipt), ns(receipt), float(o.open_interest), None)


def prev_seq_of(raw) -> int | None:
    """The update id a Binance diff follows (``pu`` on USD-M, ``U - 1`` on spot)."""
    if isinstance(raw, dict) and ("pu" in raw or "U" in raw):
        return int(prev_update_id(raw))
    return None


def snapshot_rows(book, ts: int, recv: int, depth: int | None = None) -> list[tuple]:
    """Rows of a full snapshot of cryptofeed's book (flagged; the last also BOOK_LAST)."""
    seq = book.sequence_number
    bids = book.book.bids.to_list()[:depth] if depth else book.book.bids.to_list()
    asks = book.book.asks.to_list()[:depth] if depth else book.book.asks.to_list()
    rows = [(ts, recv, seq, None, "bid", float(p), float(q), BOOK_SNAPSHOT) for p, q in bids]
    rows += [(ts, recv, seq, None, "ask", float(p), float(q), BOOK_SNAPSHOT) for p, q in asks]
    if rows:
        rows[-1] = rows[-1][:7] + (BOOK_SNAPSHOT | BOOK_LAST,)
    return rows


def top_of(book) -> tuple[float | None, float | None]:
    """Best bid and ask of cryptofeed's book."""
    bid = book.book.bids.index(0)[0] if len(book.book.bids) else None
    ask = book.book.asks.index(0)[0] if len(book.book.asks) else None
    return (float(bid) if bid is not None else None, float(ask) if ask is not None else None)


class ColumnBuffer:
    """Rows of one (table, exchange, symbol) kept as column lists, in the table's column order.

    Callbacks append values straight into the columns, so the writer never has to transpose
    row tuples (which, for a book, costs about a microsecond per row under the GIL)."""

    __slots__ = ("names", "cols")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.cols: tuple[list, ...] = tuple([] for _ in names)

    def __len__(self) -> int:
        return len(self.cols[0])

    def extend_rows(self, rows: list[tuple]) -> None:
        """Append row tuples (rare paths: snapshots, quality records)."""
        for col, values in zip(self.cols, zip(*rows)):
            col.extend(values)

    def to_dict(self) -> dict[str, list]:
        return dict(zip(self.names, self.cols))


def append_trade(buf: ColumnBuffer, t, receipt: float) -> None:
    c = buf.cols
    c[0].append(ns(t.timestamp, receipt))
    c[1].append(ns(receipt))
    c[2].append(float(t.price))
    c[3].append(float(t.amount))
    c[4].append(t.side)
    c[5].append(None if t.id is None else str(t.id))


def append_bbo(buf: ColumnBuffer, t, receipt: float) -> None:
    raw = t.raw if isinstance(t.raw, dict) else {}
    bid_qty = raw.get("B", raw.get("bid1Size", raw.get("bidSz")))
    ask_qty = raw.get("A", raw.get("ask1Size", raw.get("askSz")))
    seq = raw.get("u")
    c = buf.cols
    c[0].append(ns(t.timestamp, receipt))
    c[1].append(ns(receipt))
    c[2].append(int(seq) if seq is not None else None)
    c[3].append(float(t.bid))
    c[4].append(_f(bid_qty))
    c[5].append(float(t.ask))
    c[6].append(_f(ask_qty))


def append_delta(buf: ColumnBuffer, book, ts: int, recv: int) -> int:
    """Append one book delta's rows (the last flagged BOOK_LAST); returns the row count."""
    bids, asks = book.delta["bid"], book.delta["ask"]
    n = len(bids) + len(asks)
    if not n:
        return 0
    c = buf.cols
    c[0].extend([ts] * n)
    c[1].extend([recv] * n)
    c[2].extend([book.sequence_number] * n)
    c[3].extend([prev_seq_of(book.raw)] * n)
    c[4].extend(["bid"] * len(bids))
    c[4].extend(["ask"] * len(asks))
    c[5].extend([float(p) for p, _ in bids])
    c[5].extend([float(p) for p, _ in asks])
    c[6].extend([float(q) for _, q in bids])
    c[6].extend([float(q) for _, q in asks])
    c[7].extend([0] * (n - 1))
    c[7].append(BOOK_LAST)
    return n
