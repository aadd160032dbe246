"""The DuckDB catalog on hand-made stores where every expected number is written out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.core.events import EV_ASK, EV_BID, EV_DEPTH, EV_LAST, EV_SNAPSHOT, EV_TRADE
from tradelab.store import BOOK_LAST, BOOK_SNAPSHOT, Catalog, StoreError, StoreWriter, book_nb

S = 10**9
T0 = 1_700_000_000 * S  # 2023-11-14 22:13:20 UTC, a whole second


@pytest.fixture()
def store(tmp_path):
    return tmp_path


def write(store, table, data, exchange="BINANCE", symbol="BTC-USDT"):
    with StoreWriter(store) as w:
        w.write(table, exchange, symbol, data)


# -- bars -------------------------------------------------------------------------------------


def test_bars_from_trades_hand_computed(store):
    # second 0: 100 @1, 103 @2, 101 @1 ; second 1: nothing ; second 2: 99 @0.5, 98 @0.5
    write(
        store,
        "trades",
        {
            "ts": [T0 + 100, T0 + 500_000_000, T0 + 900_000_000, T0 + 2 * S, T0 + 2 * S + 1],
            "price": [100.0, 103.0, 101.0, 99.0, 98.0],
            "qty": [1.0, 2.0, 1.0, 0.5, 0.5],
            "side": ["buy", "buy", "sell", "sell", "sell"],
            "trade_id": list("abcde"),
        },
    )
    cat = Catalog(store)
    b = cat.bars("BINANCE", "BTC-USDT", "1s")
    assert b.attrs["source"] == "trades"
    assert b["ts"].tolist() == [T0, T0 + 2 * S]
    assert b[["open", "high", "low", "close", "volume"]].values.tolist() == [
        [100.0, 103.0, 100.0, 101.0, 4.0],
        [99.0, 99.0, 98.0, 98.0, 1.0],
    ]
    assert b["n_trades"].tolist() == [3, 2]
    assert str(b.index[0]) == "2023-11-14 22:13:20+00:00"
    filled = cat.bars("BINANCE", "BTC-USDT", "1s", fill=True)
    assert filled["ts"].tolist() == [T0, T0 + S, T0 + 2 * S]
    assert filled.iloc[1][["open", "high", "low", "close", "volume"]].tolist() == [
        101.0,
        101.0,
        101.0,
        101.0,
        0.0,
    ]
    # a 1-minute bar aligned on the epoch covers all of it
    m = cat.bars("BINANCE", "BTC-USDT", "1m")
    assert m["ts"].tolist() == [T0 - 20 * S]  # 22:13:00
    assert m[["open", "high", "low", "close", "volume"]].values.tolist() == [
        [100.0, 103.0, 98.0, 98.0, 5.0]
    ]


def test_bars_ties_keep_arrival_order(store):
    # equal timestamps: open is the first written, close the last written
    write(
        store,
        "trades",
        {
            "ts": [T0, T0, T0],
            "price": [5.0, 7.0, 6.0],
            "qty": [1.0] * 3,
            "side": ["buy"] * 3,
            "trade_id": ["1", "2", "3"],
        },
    )
    b = Catalog(store).bars("BINANCE", "BTC-USDT", "1s")
    assert (b.open.iloc[0], b.close.iloc[0]) == (5.0, 6.0)


def ohlcv_rows(ts, interval, o, h, lo, c, v, kind="trade"):
    n = len(ts)
    return {
        "ts": ts,
        "interval": [interval] * n,
        "kind": [kind] * n,
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "volume": v,
    }


def test_bars_prefer_stored_then_finer_then_trades(store):
    minute = 60 * S
    start = T0 - 20 * S  # 22:13:00: minute aligned, odd minute (2m buckets: 22:12, 22:14, 22:16)
    ts = [start + i * minute for i in range(4)]
    write(
        store,
        "ohlcv",
        ohlcv_rows(
            ts, "1m", [1.0, 2, 3, 4], [2.0, 5, 4, 6], [0.5, 1, 2, 3], [2.0, 3, 4, 5], [1.0, 1, 1, 1]
        ),
    )
    write(
        store,
        "trades",
        {"ts": [start], "price": [999.0], "qty": [1.0], "side": ["buy"], "trade_id": ["x"]},
    )
    cat = Catalog(store)
    one = cat.bars("BINANCE", "BTC-USDT", "1m")
    assert one.attrs["source"] == "ohlcv:1m" and len(one) == 4
    two = cat.bars("BINANCE", "BTC-USDT", "2m")
    assert two.attrs["source"] == "ohlcv:1m"
    assert two["ts"].tolist() == [start - minute, start + minute, start + 3 * minute]
    assert two[["open", "high", "low", "close", "volume"]].values.tolist() == [
        [1.0, 2.0, 0.5, 2.0, 1.0],
        [2.0, 5.0, 1.0, 4.0, 2.0],
        [4.0, 6.0, 3.0, 5.0, 1.0],
    ]
    # 7s is not a multiple of 1m: aggregated from trades instead
    assert cat.bars("BINANCE", "BTC-USDT", "7s").attrs["source"] == "trades"
    # a stored interval is used as is where it covers the range as well as a finer one (on a
    # tie the coarser candles win) ...
    write(store, "ohlcv", ohlcv_rows([start], "2m", [9.0], [9.0], [9.0], [9.0], [9.0]))
    assert cat.bars("BINANCE", "BTC-USDT", "2m", end=start + 2 * minute).open.tolist() == [9.0]
    # ... but not where it covers less: the one 2m candle spans 2 minutes, the 1m candles 4
    wider = cat.bars("BINANCE", "BTC-USDT", "2m")
    assert wider.attrs["source"] == "ohlcv:1m" and wider.open.tolist() == [1.0, 2.0, 4.0]
    # time range [start, end)
    assert len(cat.bars("BINANCE", "BTC-USDT", "1m", start=ts[1], end=ts[3])) == 2


def test_bars_errors_name_the_problem(store):
    write(store, "ohlcv", ohlcv_rows([T0], "1h", [1.0], [1.0], [1.0], [1.0], [1.0], kind="mark"))
    cat = Catalog(store)
    with pytest.raises(ValueError, match="outside 1s..1d"):
        cat.bars("BINANCE", "BTC-USDT", "2d")
    with pytest.raises(ValueError, match="bad interval"):
        cat.bars("BINANCE", "BTC-USDT", "1x")
    with pytest.raises(StoreError, match="cannot make 1m bars"):
        cat.bars("BINANCE", "BTC-USDT", "1m")
    assert cat.bars("BINANCE", "BTC-USDT", "1h", kind="mark").open.tolist() == [1.0]
    with pytest.raises(ValueError, match="must be after start"):
        cat.bars("BINANCE", "BTC-USDT", "1h", start="2024-01-02", end="2024-01-01", kind="mark")


def test_unknown_symbol_lists_what_is_there(store):
    write(
        store,
        "trades",
        {"ts": [T0], "price": [1.0], "qty": [1.0], "side": ["buy"], "trade_id": ["1"]},
    )
    with pytest.raises(StoreError, match="no trades for BINANCE ETH-USDT.*BINANCE BTC-USDT"):
        Catalog(store).trades("BINANCE", "ETH-USDT")


def test_time_arguments_accept_strings_timestamps_and_ns(store):
    write(
        store,
        "trades",
        {
            "ts": [T0, T0 + S, T0 + 2 * S],
            "price": [1.0, 2.0, 3.0],
            "qty": [1.0] * 3,
            "side": ["buy"] * 3,
            "trade_id": ["1", "2", "3"],
        },
    )
    cat = Catalog(store)
    for start in (
        "2023-11-14 22:13:21",
        pd.Timestamp("2023-11-14 22:13:21", tz="UTC"),
        T0 + S,
        np.datetime64("2023-11-14T22:13:21"),
    ):
        assert cat.trades("BINANCE", "BTC-USDT", start=start).price.tolist() == [2.0, 3.0]


def test_sql_views_and_partitions(store):
    write(
        store,
        "trades",
        {
            "ts": [T0, T0 + 86_400 * S],
            "price": [1.0, 2.0],
            "qty": [1.0, 1.0],
            "side": ["buy", "sell"],
            "trade_id": ["1", "2"],
        },
    )
    cat = Catalog(store)
    df = cat.sql("SELECT date, count(*) AS n FROM trades GROUP BY date ORDER BY date")
    assert [str(d.date()) if hasattr(d, "date") else str(d) for d in df.date] == [
        "2023-11-14",
        "2023-11-15",
    ]
    assert cat.sql("SELECT count(*) AS n FROM bbo").n.tolist() == [0]  # empty table, no error
    parts = cat.partitions()
    assert parts[["table", "date", "files"]].values.tolist() == [
        ["trades", "2023-11-14", 1],
        ["trades", "2023-11-15", 1],
    ]
    with pytest.raises(StoreError, match="query failed"):
        cat.sql("SELECT nope FROM trades")


# -- the book ---------------------------------------------------------------------------------


def book_msg(ts, seq, rows, snapshot=False, prev=None):
    """rows: [(side, price, qty)] -> column dict of one message."""
    n = len(rows)
    flags = [BOOK_SNAPSHOT if snapshot else 0] * n
    flags[-1] |= BOOK_LAST
    return {
        "ts": [ts] * n,
        "seq": [seq] * n,
        "prev_seq": [prev] * n,
        "side": [r[0] for r in rows],
        "price": [float(r[1]) for r in rows],
        "qty": [float(r[2]) for r in rows],
        "flags": flags,
    }


def cat_msgs(*msgs):
    return {k: sum((m[k] for m in msgs), []) for k in msgs[0]}


@pytest.fixture()
def book_store(store):
    """Snapshot at t0, deltas at t0+0.5s and t0+1.5s, a gap at t0+2.2s, a delta at t0+3s,
    a new snapshot (resync) at t0+3.5s."""
    msgs = [
        book_msg(
            T0,
            10,
            [("bid", 99, 1), ("bid", 98, 2), ("ask", 101, 3), ("ask", 102, 4)],
            snapshot=True,
        ),
        book_msg(T0 + S // 2, 11, [("bid", 99, 0), ("ask", 100.5, 5)], prev=10),
        book_msg(T0 + 3 * S // 2, 12, [("bid", 100, 7)], prev=11),
        book_msg(T0 + 3 * S, 16, [("bid", 97, 1)], prev=15),  # after the gap: not trustworthy
        book_msg(T0 + 7 * S // 2, 20, [("bid", 90, 1), ("ask", 91, 1)], snapshot=True),
    ]
    write(store, "book", cat_msgs(*msgs))
    write(
        store,
        "quality_events",
        {
            "ts": [T0 + 22 * S // 10],
            "table_name": ["book"],
            "kind": ["gap"],
            "expected_seq": [13],
            "got_seq": [15],
        },
    )
    return store


def test_book_snapshots_hand_computed(book_store):
    snaps = Catalog(book_store).book_snapshots("BINANCE", "BTC-USDT", levels=2, every="1s")
    assert snaps.columns.tolist() == [
        "ts",
        "bid_px_0",
        "bid_px_1",
        "bid_qty_0",
        "bid_qty_1",
        "ask_px_0",
        "ask_px_1",
        "ask_qty_0",
        "ask_qty_1",
    ]
    assert snaps["ts"].tolist() == [T0, T0 + S, T0 + 2 * S, T0 + 3 * S]
    cols = [
        "bid_px_0",
        "bid_qty_0",
        "bid_px_1",
        "bid_qty_1",
        "ask_px_0",
        "ask_qty_0",
        "ask_px_1",
        "ask_qty_1",
    ]
    expected = [
        [99, 1, 98, 2, 101, 3, 102, 4],  # the snapshot itself
        [98, 2, np.nan, np.nan, 100.5, 5, 101, 3],  # 99 removed, 100.5 ask added
        [100, 7, 98, 2, 100.5, 5, 101, 3],  # after the 1.5 s delta
        [np.nan] * 8,  # after the gap: invalid until resync
    ]
    np.testing.assert_array_equal(snaps[cols].values, np.array(expected, dtype=float))


def test_book_snapshots_start_replays_from_the_last_snapshot(book_store):
    cat = Catalog(book_store)
    s = cat.book_snapshots("BINANCE", "BTC-USDT", levels=1, every="1s", start=T0 + 2 * S - 1)
    assert s["ts"].tolist() == [T0 + 2 * S, T0 + 3 * S]
    assert (s.bid_px_0.iloc[0], s.ask_px_0.iloc[0]) == (100.0, 100.5)
    after = cat.book_snapshots(
        "BINANCE", "BTC-USDT", levels=1, every="500ms", start=T0 + 7 * S // 2
    )
    assert after[["bid_px_0", "ask_px_0"]].values.tolist() == [[90.0, 91.0]]


def test_top_of_book_per_message(book_store):
    top = Catalog(book_store).top_of_book("BINANCE", "BTC-USDT")
    assert top["seq"].tolist() == [10, 11, 12, 16, 20]
    assert top["valid"].tolist() == [True, True, True, False, True]
    assert top[["bid_px", "bid_qty", "ask_px", "ask_qty"]].values.tolist()[:3] == [
        [99, 1, 101, 3],
        [98, 2, 100.5, 5],
        [100, 7, 100.5, 5],
    ]
    assert top[["bid_px", "ask_px"]].values.tolist()[4] == [90, 91]


def test_book_without_snapshot_is_refused(store):
    write(store, "book", book_msg(T0, 11, [("bid", 99, 0)], prev=10))
    with pytest.raises(StoreError, match="no book snapshot"):
        Catalog(store).book_snapshots("BINANCE", "BTC-USDT")


def test_events_merge_book_and_trades_in_exchange_time(book_store):
    write(
        book_store,
        "trades",
        {
            "ts": [T0 + S // 2, T0 + S],
            "recv_ts": [T0 + S, None],
            "price": [100.5, 100.5],
            "qty": [0.1, 0.2],
            "side": ["buy", "sell"],
            "trade_id": ["77", "x"],
        },
    )
    ev = Catalog(book_store).events("BINANCE", "BTC-USDT", end=T0 + 2 * S)
    kinds = [(int(e["ev"]) & 0xFF, int(e["exch_ts"] - T0)) for e in ev]
    assert kinds == [(EV_DEPTH, 0)] * 4 + [(EV_DEPTH, S // 2)] * 2 + [
        (EV_TRADE, S // 2),
        (EV_TRADE, S),
        (EV_DEPTH, 3 * S // 2),
    ]
    assert ev["ev"][0] == EV_DEPTH | EV_BID | EV_SNAPSHOT
    assert ev["ev"][3] == EV_DEPTH | EV_ASK | EV_SNAPSHOT | EV_LAST
    assert ev["ev"][6] == EV_TRADE | EV_BID | EV_LAST and ev["seq"][6] == 77
    assert ev["ev"][7] == EV_TRADE | EV_ASK | EV_LAST and ev["seq"][7] == -1
    assert ev["local_ts"][6] == T0 + S and ev["local_ts"][7] == T0 + S  # falls back to exch_ts
    assert (np.diff(ev["exch_ts"]) >= 0).all()
    # a start inside the data still delivers the book from the last snapshot before it
    late = Catalog(book_store).events("BINANCE", "BTC-USDT", start=T0 + S)
    assert late["exch_ts"][0] == T0 and (late["ev"][0] & EV_SNAPSHOT)
    assert not any(
        (int(e) & 0xFF) == EV_TRADE and t < T0 + S for e, t in zip(late["ev"], late["exch_ts"])
    )


# -- the kernel against an independent, naive book -------------------------------------------


def naive_tops(ts, side, price, qty, flags):
    """Dict-of-levels book, rebuilt message by message, the obvious way."""
    bids, asks, out = {}, {}, []
    for i in range(len(ts)):
        if flags[i] & BOOK_SNAPSHOT and (i == 0 or flags[i - 1] & BOOK_LAST):
            bids, asks = {}, {}
        book = bids if side[i] > 0 else asks
        if qty[i] == 0:
            book.pop(price[i], None)
        else:
            book[price[i]] = qty[i]
        if flags[i] & BOOK_LAST:
            bb = max(bids) if bids else np.nan
            ba = min(asks) if asks else np.nan
            out.append((bb, bids.get(bb, np.nan), ba, asks.get(ba, np.nan)))
    return np.array(out)


def random_book_stream(rng, n_msgs):
    ts, side, price, qty, flags = [], [], [], [], []
    t = 0
    for m in range(n_msgs):
        snap = m == 0 or rng.random() < 0.02
        k = 12 if snap else int(rng.integers(1, 6))
        mid = 100 + int(rng.integers(-3, 4))
        for j in range(k):
            s = 1 if rng.random() < 0.5 else -1
            p = (
                mid - int(rng.integers(1, 15)) * 0.5
                if s > 0
                else mid + int(rng.integers(1, 15)) * 0.5
            )
            q = 0.0 if (not snap and rng.random() < 0.4) else float(rng.integers(1, 9))
            ts.append(t)
            side.append(s)
            price.append(p)
            qty.append(q)
            flags.append((BOOK_SNAPSHOT if snap else 0) | (BOOK_LAST if j == k - 1 else 0))
        t += int(rng.integers(1, 3))
    return (
        np.array(ts, dtype=np.int64),
        np.array(side, dtype=np.int8),
        np.array(price),
        np.array(qty),
        np.array(flags, dtype=np.uint8),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("chunk", [7, 1000, 10**9])
def test_top_of_book_kernel_matches_naive_book(seed, chunk):
    ts, side, price, qty, flags = random_book_stream(np.random.default_rng(seed), 800)
    prices, pidx = np.unique(price, return_inverse=True)
    st = book_nb.new_state(len(prices))
    parts = []
    for a in range(0, len(ts), chunk):  # chunk boundaries may fall inside a message
        b = a + chunk
        _rows, _ok, *top = book_nb.top_of_book_chunk_nb(
            ts[a:b],
            side[a:b],
            pidx[a:b].astype(np.int64),
            qty[a:b],
            flags[a:b],
            prices,
            np.empty(0, np.int64),
            st.bid_q,
            st.ask_q,
            st.ivec,
        )
        parts.append(np.column_stack(top))
    got = np.concatenate(parts)
    want = naive_tops(ts, side, price, qty, flags)
    np.testing.assert_array_equal(got, want)


# -- bars: which source, and whether each bucket is complete -----------------------------------


def test_bars_choose_the_source_that_covers_the_range_and_mark_partial_buckets(store):
    minute = 60 * S
    t10 = 1_700_042_400 * S  # 2023-11-15 10:00:00 UTC, on the 5m grid
    # 1m candles 10:00 .. 10:07 (closes 1..8), one stored 5m candle at 10:00 (close 50)
    ts = [t10 + i * minute for i in range(8)]
    c = [float(i + 1) for i in range(8)]
    write(store, "ohlcv", ohlcv_rows(ts, "1m", c, c, c, c, [1.0] * 8))
    write(store, "ohlcv", ohlcv_rows([t10], "5m", [1.0], [50.0], [1.0], [50.0], [5.0]))
    cat = Catalog(store)
    # the 5m candles cover 10:00-10:05, the 1m candles 10:00-10:08: 5m bars come from 1m
    b = cat.bars("BINANCE", "BTC-USDT", "5m")
    assert b.attrs["source"] == "ohlcv:1m"
    assert b["ts"].tolist() == [t10, t10 + 5 * minute]
    assert b["close"].tolist() == [5.0, 8.0]
    # 10:05 holds 10:05, 10:06, 10:07 only: the bucket runs to 10:10
    assert b["complete"].tolist() == [True, False]
    full = cat.bars("BINANCE", "BTC-USDT", "5m", complete_only=True)
    assert full["ts"].tolist() == [t10] and full["complete"].all()
    # a start inside a bucket cuts it: 10:02 .. 10:04 is not the 10:00 bucket
    cut = cat.bars("BINANCE", "BTC-USDT", "5m", start=t10 + 2 * minute)
    assert cut["open"].tolist() == [3.0, 6.0] and cut["complete"].tolist() == [False, False]
    # where both cover the range alike, the coarser stored candle is used as is
    same = cat.bars("BINANCE", "BTC-USDT", "5m", end=t10 + 5 * minute)
    assert same.attrs["source"] == "ohlcv:5m" and same["close"].tolist() == [50.0]
    assert same["complete"].tolist() == [True]
    # fill: a missing candle inside the range is missing data, not a quiet bucket
    write(store, "ohlcv", ohlcv_rows([t10 + 15 * minute], "1m", [9.0], [9.0], [9.0], [9.0],
                                     [1.0]))
    filled = cat.bars("BINANCE", "BTC-USDT", "5m", fill=True)
    assert filled["ts"].tolist() == [t10 + i * 5 * minute for i in range(4)]
    assert filled["complete"].tolist() == [True, False, False, False]


def test_bars_from_trades_are_complete_inside_the_span_the_trades_cover(store):
    # trades at 0.2 s, 1.5 s, 2.7 s and 3.1 s: the recording starts after second 0 began and
    # ends before second 3 is over
    write(store, "trades", {
        "ts": [T0 + 200_000_000, T0 + 1_500_000_000, T0 + 2_700_000_000, T0 + 3_100_000_000],
        "price": [1.0, 2.0, 3.0, 4.0], "qty": [1.0] * 4, "side": ["buy"] * 4,
        "trade_id": list("abcd")})
    cat = Catalog(store)
    b = cat.bars("BINANCE", "BTC-USDT", "1s")
    assert b.attrs["source"] == "trades"
    assert b["complete"].tolist() == [False, True, True, False]
    assert cat.bars("BINANCE", "BTC-USDT", "1s", complete_only=True)["close"].tolist() == [
        2.0, 3.0]
    # inside the recording, a range's edges are covered: trades exist before and after it
    inner = cat.bars("BINANCE", "BTC-USDT", "1s", start=T0 + S, end=T0 + 3 * S)
    assert inner["complete"].tolist() == [True, True]
    # trade_bars marks them the same way
    q = cat.trade_bars("BINANCE", "BTC-USDT", "1s")
    assert q["complete"].tolist() == [False, True, True, False]
    # a quiet second inside the covered span, inserted by fill, is complete (nothing traded)
    write(store, "trades", {"ts": [T0 + 5 * S + 1], "price": [5.0], "qty": [1.0],
                            "side": ["buy"], "trade_id": ["e"]})
    f = cat.bars("BINANCE", "BTC-USDT", "1s", start=T0 + S, end=T0 + 5 * S, fill=True)
    assert f["ts"].tolist() == [T0 + S, T0 + 2 * S, T0 + 3 * S]  # 4 s is empty: after the last
    g = cat.bars("BINANCE", "BTC-USDT", "1s", start=T0 + S, end=T0 + 6 * S, fill=True)
    assert g["volume"].tolist() == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert g["complete"].tolist() == [True, True, True, True, False]


@pytest.mark.data
def test_real_hourly_bars_end_with_a_marked_partial_hour(ohlcv_store):
    # BTC/USDT spot: 1m candles run to 18:27 on 2025-08-18, 5m candles to 18:20 (last candle
    # 18:20-18:25), so the 1m ones cover more of the day and the 18:00 hour is partial
    cat = Catalog(ohlcv_store[0])
    h = cat.bars("BINANCE", "BTC-USDT", "1h", "2025-08-18", "2025-08-19")
    assert h.attrs["source"] == "ohlcv:1m"
    assert len(h) == 19 and str(h.index[-1]) == "2025-08-18 18:00:00+00:00"
    assert h["close"].iloc[-1] == 116400.0  # the 18:27 candle's close (the README's last close)
    assert h["complete"].tolist() == [True] * 18 + [False]
    done = cat.bars("BINANCE", "BTC-USDT", "1h", "2025-08-18", "2025-08-19", complete_only=True)
    assert str(done.index[-1]) == "2025-08-18 17:00:00+00:00" and len(done) == 18
    # up to 18:00 both cover the range: the coarser 5m candles serve, and agree with the 1m
    five = cat.bars("BINANCE", "BTC-USDT", "1h", "2025-08-18", "2025-08-18 18:00")
    assert five.attrs["source"] == "ohlcv:5m" and five["complete"].all()
    pd.testing.assert_frame_equal(five[["open", "high", "low", "close"]],
                                  h[["open", "high", "low", "close"]].iloc[:18])
    # the first 3 months hold 130,708 complete 1m candles; the 2017-2024 1h file does not
    # reach into them
    m = cat.bars("BINANCE", "BTC-USDT", "1m", "2025-05-20", "2025-08-19", complete_only=True)
    assert len(m) == 130_708 and m.attrs["source"] == "ohlcv:1m"
    cat.close()
