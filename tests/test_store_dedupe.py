"""Content keys: which rows (or book messages) count as the same, worked out by hand."""

from __future__ import annotations

import pyarrow as pa

from tradelab.store.dedupe import KeySet, dedupe_batch
from tradelab.store.schema import BOOK_LAST, BOOK_SNAPSHOT
from tradelab.store.writer import conform

S, L = BOOK_SNAPSHOT, BOOK_LAST


def book(rows: list[tuple]) -> pa.Table:
    """rows: (ts, seq, prev_seq, side, price, qty, flags)"""
    cols = list(zip(*rows))
    return conform("book", {"ts": cols[0], "seq": cols[1], "prev_seq": cols[2],
                            "side": cols[3], "price": cols[4], "qty": cols[5],
                            "flags": cols[6]})


def test_a_repeated_book_message_is_dropped_whole_and_nothing_else():
    tbl = book([
        (1, 10, None, "bid", 99.0, 1.0, S), (1, 10, None, "ask", 101.0, 1.0, S | L),  # snapshot
        (2, 11, 10, "bid", 99.0, 2.0, 0), (2, 11, 10, "bid", 98.0, 1.0, L),  # diff 11 (2 rows)
        (2, 11, 10, "bid", 99.0, 2.0, 0), (2, 11, 10, "bid", 98.0, 1.0, L),  # diff 11 again
        (3, 12, 11, "ask", 101.0, 0.0, L),  # diff 12
        (4, 12, None, "bid", 99.0, 2.0, S | L),  # a snapshot at id 12: not the diff 12
    ])
    out, dropped = dedupe_batch("book", tbl)
    assert dropped == 2
    assert out.column("seq").to_pylist() == [10, 10, 11, 11, 12, 12]
    assert out.column("flags").to_pylist() == [S, S | L, 0, L, L, S | L]


def test_book_messages_without_seq_are_never_merged():
    tbl = book([(1, None, None, "bid", 99.0, 1.0, L), (1, None, None, "bid", 99.0, 1.0, L)])
    assert dedupe_batch("book", tbl)[1] == 0


def test_stored_messages_are_recognised_across_batches():
    seen = KeySet("book")
    first = book([(1, 10, None, "bid", 99.0, 1.0, S | L), (2, 11, 10, "bid", 99.0, 2.0, L)])
    assert seen.admit(first) is None
    second = book([(2, 11, 10, "bid", 99.0, 2.0, L), (3, 12, 11, "bid", 99.0, 3.0, L)])
    assert seen.admit(second).tolist() == [False, True]


def test_trades_key_on_id_and_time_and_fall_back_to_content_without_id():
    tbl = conform("trades", {
        "ts": [1, 1, 2, 3, 3, 3], "price": [1.0, 1.0, 1.0, 5.0, 5.0, 6.0],
        "qty": [1.0] * 6, "side": ["buy"] * 6,
        "trade_id": ["7", "7", "7", None, None, None]})
    out, dropped = dedupe_batch("trades", tbl)
    # id 7 at ts 1 twice -> once; id 7 at ts 2 is another trade; without id: same content once
    assert dropped == 2
    assert out.column("ts").to_pylist() == [1, 2, 3, 3]
    assert out.column("price").to_pylist() == [1.0, 1.0, 5.0, 6.0]


def test_candles_key_on_time_interval_and_kind():
    tbl = conform("ohlcv", {
        "ts": [0, 0, 0, 0], "interval": ["1m", "1m", "1h", "1m"],
        "kind": ["trade", "trade", "trade", "mark"], "open": [1.0, 2.0, 1.0, 1.0],
        "high": [1.0, 2.0, 1.0, 1.0], "low": [1.0, 2.0, 1.0, 1.0],
        "close": [1.0, 2.0, 1.0, 1.0], "volume": [1.0] * 4})
    out, dropped = dedupe_batch("ohlcv", tbl)
    assert dropped == 1 and out.column("open").to_pylist() == [1.0, 1.0, 1.0]  # first one wins
