"""Data-quality report on a hand-made store with planted defects: every count is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tradelab.store import BOOK_LAST, BOOK_SNAPSHOT, StoreWriter
from tradelab.store.quality import quality_report

S = 10**9
T0 = 1_704_067_200 * S  # 2024-01-01 00:00:00 UTC
DATE = "2024-01-01"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    with StoreWriter(root) as w:
        # trades: 6 rows, one step back in time, one duplicate id, two with recv before ts
        w.write(
            "trades",
            "BINANCE",
            "BTC-USDT",
            {
                "ts": [T0, T0 + 2 * S, T0 + S, T0 + 3 * S, T0 + 4 * S],
                "recv_ts": [
                    T0 + 5,
                    T0 + 2 * S - 1000,
                    T0 + S + 5,
                    T0 + 3 * S + 5,
                    T0 + 4 * S - 7,
                ],
                "price": [1.0] * 5,
                "qty": [1.0] * 5,
                "side": ["buy"] * 5,
                "trade_id": ["1", "2", "3", "4", "5"],
            },
        )
        w.flush()
    # the duplicate id comes from another streaming writer: a writer drops repeats within its
    # own batches, only a deferred (import) commit checks what the store already holds
    with StoreWriter(root) as w:
        w.write(
            "trades",
            "BINANCE",
            "BTC-USDT",
            {"ts": [T0 + 4 * S], "recv_ts": [T0 + 4 * S + 5], "price": [1.0], "qty": [1.0],
             "side": ["buy"], "trade_id": ["5"]},
        )
        # bbo: 4 quotes, one crossed, one locked
        w.write(
            "bbo",
            "BINANCE",
            "BTC-USDT",
            {
                "ts": T0 + np.arange(4) * S,
                "seq": [1, 2, 3, 4],
                "bid_px": [99.0, 101.0, 100.0, 99.0],
                "bid_qty": [1.0] * 4,
                "ask_px": [100.0, 100.0, 100.0, 100.0],
                "ask_qty": [1.0] * 4,
            },
        )
        # book: snapshot, a continuous delta, a crossing delta, then one breaking the chain
        # (after the recorded gap the book is invalid, so later crossings would not count)
        f_s, f_l = BOOK_SNAPSHOT, BOOK_LAST
        w.write(
            "book",
            "BINANCE",
            "BTC-USDT",
            {
                "ts": [T0, T0, T0 + S, T0 + 3 * S // 2, T0 + 2 * S],
                "seq": [10, 10, 11, 12, 15],
                "prev_seq": [None, None, 10, 11, 13],
                "side": ["bid", "ask", "bid", "bid", "bid"],
                "price": [99.0, 101.0, 99.5, 102.0, 99.0],
                "qty": [1.0, 1.0, 1.0, 1.0, 2.0],
                "flags": [f_s, f_s | f_l, f_l, f_l, f_l],
            },
        )
        w.write(
            "quality_events",
            "BINANCE",
            "BTC-USDT",
            {
                "ts": [T0 + 2 * S],
                "table_name": ["book"],
                "kind": ["gap"],
                "expected_seq": [12],
                "got_seq": [14],
            },
        )
        # 1m candles with a hole of 3 candles, one off grid, one inconsistent
        mins = [0, 1, 2, 6, 7]
        w.write(
            "ohlcv",
            "BINANCE",
            "BTC-USDT",
            {
                "ts": [T0 + m * 60 * S for m in mins[:-1]] + [T0 + 7 * 60 * S + 5 * S],
                "interval": ["1m"] * 5,
                "kind": ["trade"] * 5,
                "open": [1.0] * 5,
                "high": [2.0, 2.0, 0.5, 2.0, 2.0],
                "low": [0.5] * 5,
                "close": [1.0] * 5,
                "volume": [1.0] * 5,
            },
        )
        # funding: 8h settlements, one 3 ms late, one 2 s late, one missing
        w.write(
            "funding",
            "BINANCE_FUTURES",
            "BTC-USDT-PERP",
            {
                "ts": [T0, T0 + 8 * 3600 * S + 3_000_000, T0 + 24 * 3600 * S + 2 * S],
                "rate": [1e-4] * 3,
                "settled": [True] * 3,
            },
        )
    return quality_report(root)


def part(report, table, exchange="BINANCE", symbol="BTC-USDT", date=DATE):
    (p,) = [
        p
        for p in report["partitions"]
        if (p["table"], p["exchange"], p["symbol"], p["date"]) == (table, exchange, symbol, date)
    ]
    return p


def test_trades_checks(report):
    p = part(report, "trades")
    assert (p["rows"], p["out_of_order"], p["duplicates"], p["negative_latency"]) == (6, 1, 1, 2)
    assert p["span_s"] == 4.0
    assert "1 rows out of time order" in p["issues"] and "1 duplicate rows" in p["issues"]


def test_bbo_crossed_and_locked(report):
    p = part(report, "bbo")
    assert (p["crossed"], p["locked"]) == (1, 1)


def test_book_gap_break_and_crossing(report):
    p = part(report, "book")
    assert (p["messages"], p["snapshots"], p["gaps"], p["seq_breaks"]) == (4, 1, 1, 1)
    assert p["crossed"] == 1  # bid 102 over ask 101 after the third message
    assert "1 sequence gaps" in p["issues"]


def test_ohlcv_gaps_grid_and_consistency(report):
    p = part(report, "ohlcv")
    assert (p["missing_candles"], p["gap_runs"], p["off_grid"], p["bad_ohlc"]) == (3, 1, 1, 1)
    assert p["largest_gap_s"] == 240.0


def test_funding_jitter_and_missed_settlements(report):
    ps = [p for p in report["partitions"] if p["table"] == "funding"]
    assert sum(p["missed_settlements"] for p in ps) == 1
    assert max(p["max_jitter_ms"] for p in ps) == 2000.0
    assert sum(p["jittered"] for p in ps) == 2
    issues = [i for p in ps for i in p["issues"]]
    assert any("off the hour by up to 2.0 s" in i for i in issues)  # 3 ms is normal, 2 s is not


def test_report_is_plain_json_with_the_planted_counts(report):
    # no default= hook: a numpy scalar, a Timestamp or NaN left in the report fails here
    doc = json.loads(json.dumps(report, allow_nan=False))
    assert doc == report
    # six partitions: trades, book, bbo, ohlcv, and funding on two days (2 + 1 settlements)
    assert doc["summary"] == {
        "partitions": 6,
        "rows": {"bbo": 4, "book": 5, "funding": 3, "ohlcv": 5, "trades": 6},
        "partitions_with_issues": 5,  # only the first funding day is clean
        "rejected_lines": 0,
    }
    assert doc["imports"] == {"runs": [], "rejects": {}}
    keys = [(p["table"], p["date"], p["symbol"], p["rows"], bool(p["issues"]))
            for p in doc["partitions"]]
    assert sorted(keys) == [
        ("bbo", DATE, "BTC-USDT", 4, True),
        ("book", DATE, "BTC-USDT", 5, True),
        ("funding", DATE, "BTC-USDT-PERP", 2, False),
        ("funding", "2024-01-02", "BTC-USDT-PERP", 1, True),
        ("ohlcv", DATE, "BTC-USDT", 5, True),
        ("trades", DATE, "BTC-USDT", 6, True),
    ]
    trades = part(doc, "trades")
    # two part files: the planted duplicate trade arrives through a second writer, since one
    # writer refuses a key twice in its own batch
    assert (trades["exchange"], trades["files"]) == ("BINANCE", 2)
    assert (trades["ts_min"], trades["ts_max"], trades["span_s"]) == (T0, T0 + 4 * S, 4.0)
