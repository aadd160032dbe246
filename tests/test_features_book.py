"""Book features: the event-driven book, OFI, depth features, liquidity events, funding.

Hand-made books with every expected number written out, then the real recordings: the book
rebuilt one event at a time must equal the store's own replay (``top_of_book``,
``book_snapshots``), and streaming must equal vectorized."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.features_helpers import same
from tradelab import features
from tradelab.core.events import (
    EV_ASK,
    EV_BID,
    EV_DEPTH,
    EV_LAST,
    EV_SNAPSHOT,
    EV_TRADE,
    empty_events,
)
from tradelab.features import depth_nb, funding_nb, lob_nb, ofi_nb
from tradelab.store import Catalog

NAN = np.nan
S = 10**9


def book_rows(*rows):
    """Book frame rows from ``(bids, asks)`` with ``[(px, qty), ...]`` best first."""
    L = max(max(len(b), len(a)) for b, a in rows)
    out = np.full((len(rows), 4 * L), NAN)
    for i, (bids, asks) in enumerate(rows):
        for k, (p, q) in enumerate(bids):
            out[i, k], out[i, L + k] = p, q
        for k, (p, q) in enumerate(asks):
            out[i, 2 * L + k], out[i, 3 * L + k] = p, q
    return out


def make_events(rows):
    """``(ts, kind/flags, px, qty)`` tuples to an ``event_dt`` array."""
    ev = empty_events(len(rows))
    for i, (t, e, p, q) in enumerate(rows):
        ev[i] = (e, t, t, p, q, i)
    return ev


D, BID, ASK, SNAP, LAST = EV_DEPTH, EV_BID, EV_ASK, EV_SNAPSHOT, EV_LAST


# -- the book from events ----------------------------------------------------------------------


def test_book_from_events_by_hand():
    ev = make_events(
        [
            (1 * S, D | BID, 99.0, 1.0),  # a delta before any snapshot: book not valid yet
            (1 * S, D | BID | LAST, 98.0, 1.0),
            (2 * S, D | BID | SNAP, 100.0, 1.0),  # snapshot clears the book first
            (2 * S, D | BID | SNAP, 99.0, 2.0),
            (2 * S, D | ASK | SNAP, 101.0, 1.5),
            (2 * S, D | ASK | SNAP | LAST, 102.0, 3.0),
            (3 * S, EV_TRADE | BID | LAST, 101.0, 0.1),  # trades leave the book alone
            (4 * S, D | BID, 100.0, 0.0),  # best bid removed
            (4 * S, D | ASK, 100.5, 0.7),  # new best ask
            (4 * S, D | ASK | LAST, 102.0, 2.0),  # size change two levels down
        ]
    )
    frame = features.book_frame_from_events(ev, levels=3)
    assert frame.ts.tolist() == [2 * S, 4 * S]
    assert same(frame.book, book_rows(
        ([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.5), (102.0, 3.0)]),
        ([(99.0, 2.0)], [(100.5, 0.7), (101.0, 1.5), (102.0, 2.0)]),
    ))
    # streaming, one event at a time, says when a message completes
    s = lob_nb.lob_new(16)
    done = [lob_nb.lob_step(s, 0, int(e["ev"]), e["px"], e["qty"]) for e in ev]
    assert done == [False, False, False, False, False, True, False, False, False, True]


def test_book_capacity_drops_the_worst_level_and_counts_it():
    ev = make_events([
        (S, D | BID | SNAP, 100.0, 1.0),
        (S, D | BID | SNAP, 99.0, 1.0),
        (S, D | BID | SNAP, 98.0, 1.0),  # capacity 2: 98 is dropped
        (S, D | ASK | SNAP | LAST, 101.0, 1.0),
        (2 * S, D | BID | LAST, 99.5, 4.0),  # full again: 99 goes, 99.5 stays
    ])
    ts, book, idx, dropped = lob_nb.book_from_events_nb(
        ev["ev"], ev["exch_ts"], ev["px"], ev["qty"], 2, 2
    )
    assert dropped == 2 and idx.tolist() == [3, 4]
    assert same(book[1], book_rows(([(100.0, 1.0), (99.5, 4.0)], [(101.0, 1.0)]))[0])


@pytest.mark.data
@pytest.mark.parametrize("which", ["usdm", "spot"])
def test_book_from_events_equals_the_store_replay(which, usdm_store, spot_store):
    store, ex, sym = {
        "usdm": (usdm_store[0], "BINANCE_FUTURES", "BTC-USDT-PERP"),
        "spot": (spot_store[0], "BINANCE", "BTC-USDT"),
    }[which]
    cat = Catalog(store)
    frame = features.book_frame_from_events(cat.events(ex, sym), levels=10)
    top = cat.top_of_book(ex, sym)
    top = top[top["valid"]]
    assert len(top) == len(frame) > 6000
    assert same(frame.ts, top["ts"])
    for col, k in (("bid_px", 0), ("bid_qty", 10), ("ask_px", 20), ("ask_qty", 30)):
        assert same(frame.book[:, k], top[col]), col
    # all ten levels against the store's sampled book
    snaps = cat.book_snapshots(ex, sym, levels=10, every="100ms")
    j = np.searchsorted(frame.ts, snaps["ts"].to_numpy(), side="right") - 1
    ok = snaps["bid_px_0"].notna().to_numpy() & (j >= 0)
    ref = features.book_frame_from_snapshots(snaps).book[ok]
    assert ok.sum() > 3000 and same(frame.book[j[ok]], ref)
    cat.close()


# -- OFI -----------------------------------------------------------------------------------------

OFI_ROWS = book_rows(
    ([(100.0, 5.0)], [(101.0, 4.0)]),  # first row: nothing to compare with -> 0
    ([(100.0, 7.0)], [(101.0, 4.0)]),  # bid size +2 at the same price -> +2
    ([(100.5, 1.0)], [(101.0, 3.0)]),  # bid up: +1 (new size); ask size -1 -> +1; total 2
    ([(100.0, 6.0)], [(100.5, 2.0)]),  # bid down: -1 (old size); ask down: -2 (new) -> -3
    ([(100.0, 6.0)], [(101.0, 5.0)]),  # bid unchanged: 0; ask up: +2 (old size) -> +2
)


def test_ofi_by_hand_and_not_the_naive_size_difference():
    assert same(ofi_nb.ofi_nb(OFI_ROWS), [0.0, 2.0, 2.0, -3.0, 2.0])
    # the naive (qb_n - qb_n-1) - (qa_n - qa_n-1) reads row 2 as -5: the wrong sign
    naive = (OFI_ROWS[2, 1] - OFI_ROWS[1, 1]) - (OFI_ROWS[2, 3] - OFI_ROWS[1, 3])
    assert naive == -5.0


def test_ofi_invalid_rows_and_multilevel_by_hand():
    rows = np.vstack([OFI_ROWS[:2], np.full((1, 4), NAN), OFI_ROWS[2:3]])
    # the invalid row is NaN and forgets the book: the row after it contributes 0
    assert same(ofi_nb.ofi_nb(rows), [0.0, 2.0, NAN, 0.0])
    two = book_rows(
        ([(100.0, 5.0), (99.0, 3.0)], [(101.0, 4.0), (102.0, 1.0)]),
        ([(100.0, 5.0), (99.5, 2.0)], [(101.0, 4.0), (101.5, 6.0)]),
    )
    # level 1: bid 99 -> 99.5 moved up: +2; ask 102 -> 101.5 moved down: -6 -> -4
    assert same(ofi_nb.multilevel_ofi_nb(two, 2), [[0.0, 0.0], [0.0, -4.0]])
    s = np.empty(ofi_nb.ofi_size(2))
    ofi_nb.ofi_init(s, 0, 2)
    assert [ofi_nb.ofi_step(s, 0, two, i) for i in range(2)] == [0.0, -4.0]


def test_window_sums_by_hand():
    ts = np.array([100_000_000, 500_000_000, 1_200_000_000, 3_000_000_000])
    x = np.array([1.0, 2.0, NAN, 4.0])
    start, total, count = ofi_nb.bucket_sum_nb(ts, x, S)
    assert start.tolist() == [0, S, 3 * S]
    assert total.tolist() == [3.0, 0.0, 4.0] and count.tolist() == [2, 0, 1]
    s = np.empty(ofi_nb.BUCKET_SIZE)
    ofi_nb.bucket_init(s, 0, S)
    closed = [ofi_nb.bucket_sum_step(s, 0, int(t), v) for t, v in zip(ts, x)]
    assert [c[0] for c in closed] == [False, False, True, True]
    assert closed[2][1:] == (0, 3.0, 2) and closed[3][1:] == (S, 0.0, 0)


# -- depth features ------------------------------------------------------------------------------

DEPTH = book_rows(([(100.0, 1.0), (99.0, 3.0)], [(101.0, 3.0), (102.0, 1.0)]))


def test_depth_features_by_hand():
    assert depth_nb.mid_price(DEPTH, 0) == 100.5
    assert depth_nb.spread_bps(DEPTH, 0) == pytest.approx(1.0 / 100.5 * 1e4, rel=1e-15)
    assert depth_nb.depth_imbalance(DEPTH, 0, 1) == -0.5  # (1 - 3) / 4
    assert depth_nb.depth_imbalance(DEPTH, 0, 2) == 0.0  # (4 - 4) / 8
    # I = 1/4: 0.25 * 101 + 0.75 * 100, leaning towards the thin bid
    assert depth_nb.weighted_mid(DEPTH, 0) == 100.25
    assert depth_nb.microprice(DEPTH, 0, 1) == 100.25
    # vwap bid = (100 + 3 * 99) / 4 = 99.25, vwap ask = (3 * 101 + 102) / 4 = 101.25, I = 0.5
    assert depth_nb.microprice(DEPTH, 0, 2) == 100.25
    assert depth_nb.tilt_bps(DEPTH, 0, 2) == pytest.approx(-0.25 / 100.5 * 1e4, rel=1e-14)
    out = depth_nb.book_features_nb(np.vstack([DEPTH, np.full((1, 8), NAN)]), 2)
    assert same(out[1], [NAN] * 6)


def test_liquidity_events_by_hand():
    rows = book_rows(
        ([(100.0, 1.0), (99.0, 2.0), (98.0, 1.0)], [(101.0, 1.0), (102.0, 2.0), (103.0, 1.0)]),
        # bid 100 taken (still inside the shown range, now gone); asks thin 4 -> 1 (-75%)
        ([(99.0, 2.0), (98.0, 1.0), (97.0, 5.0)], [(101.0, 0.2), (102.0, 0.3), (103.0, 0.5)]),
        # a better bid pushes 97 out of the top three: not "emptied"
        ([(99.5, 1.0), (99.0, 2.0), (98.0, 1.0)], [(101.0, 0.2), (102.0, 0.3), (103.0, 0.5)]),
        # 103 is gone (emptied) and leaves a hole on the ask side: 102 -> 110, ~800 bps apart
        ([(99.5, 1.0), (99.0, 2.0), (98.0, 1.0)], [(101.0, 0.2), (102.0, 0.3), (110.0, 0.5)]),
        ([(NAN, NAN)] * 3, [(101.0, 0.2)] * 3),
    )
    flags = depth_nb.liquidity_events_nb(rows, 3, 0.5, 200.0)
    L = depth_nb
    assert flags.tolist() == [0, L.LIQ_BID_EMPTIED | L.LIQ_ASK_DROP, 0,
                              L.LIQ_ASK_EMPTIED | L.LIQ_ASK_GAP, L.LIQ_INVALID]
    frame = features.BookFrame(np.arange(5, dtype=np.int64) * S, rows)
    df = features.liquidity_events(frame, 3, 0.5, 200.0)
    assert df["bid_emptied"].tolist() == [False, True, False, False, False]
    assert df["ask_gap"].sum() == 1 and df["invalid"].iloc[-1]


@pytest.mark.data
def test_book_features_streaming_equals_vectorized_on_real_data(usdm_store):
    cat = Catalog(usdm_store[0])
    events = cat.events("BINANCE_FUTURES", "BTC-USDT-PERP")
    cat.close()
    frame = features.book_frame_from_events(events, levels=10)
    # the book itself, one event at a time from Python (a live runner's loop)
    s = lob_nb.lob_new()
    row = np.empty((1, 40))
    rows = []
    for e in events[:150_000]:
        if lob_nb.lob_step(s, 0, int(e["ev"]), e["px"], e["qty"]):
            lob_nb.lob_write_top(s, 0, row, 0)
            rows.append(row[0].copy())
    assert len(rows) > 1000 and same(np.array(rows), frame.book[: len(rows)])

    book = frame.book
    s = np.empty(ofi_nb.ofi_size(5))
    ofi_nb.ofi_init(s, 0, 5)
    streamed = [ofi_nb.ofi_step(s, 0, book, i) for i in range(len(book))]
    assert same(streamed, ofi_nb.multilevel_ofi_nb(book, 5).sum(axis=1))
    s = np.empty(ofi_nb.ofi_size(1))
    ofi_nb.ofi_init(s, 0, 1)
    assert same([ofi_nb.ofi_step(s, 0, book, i) for i in range(len(book))], ofi_nb.ofi_nb(book))
    s = np.empty(depth_nb.liquidity_size(5))
    depth_nb.liquidity_init(s, 0, 5)
    streamed = [depth_nb.liquidity_step(s, 0, book, i, 0.5, 1.0) for i in range(len(book))]
    assert same(streamed, depth_nb.liquidity_events_nb(book, 5, 0.5, 1.0))
    feats = depth_nb.book_features_nb(book, 5)
    assert same([depth_nb.tilt_bps(book, i, 5) for i in range(len(book))], feats[:, 5])
    # OFI summed per second: pandas groupby on the per-update contributions (pandas sums with
    # compensation, the kernel left to right)
    w = features.ofi_windows(frame, "1s")
    e = pd.Series(ofi_nb.ofi_nb(book))
    ref = e.groupby(frame.ts // S).sum()
    assert same(w.index.asi8, ref.index.to_numpy() * S)
    assert np.allclose(w["ofi"].to_numpy(), ref.to_numpy(), rtol=0, atol=1e-9)
    assert w["updates"].sum() == e.notna().sum()


# -- funding -------------------------------------------------------------------------------------


def test_funding_features_by_hand():
    assert funding_nb.annualized_funding(0.0001, 8.0) == pytest.approx(0.1095, rel=1e-15)
    assert funding_nb.basis(100.0, 100.5) == pytest.approx(0.005, rel=1e-12)
    # 21 periods of 0.0002 = 0.42%, minus 2 * (0.1% + 0.05%) = 0.3% -> 0.12%
    assert funding_nb.expected_carry(0.0002, 21.0, 0.001, 0.0005) == pytest.approx(0.0012)
    # span 3 -> alpha 0.5: seeded 0.0001, then 0.0001 + 0.5 * (0.0003 - 0.0001) = 0.0002
    out = funding_nb.forecast_nb(np.array([NAN, 0.0001, NAN, 0.0003, NAN]), 3.0)
    assert same(out[:3], [NAN, 0.0001, 0.0001])
    assert out[3:] == pytest.approx([0.0002, 0.0002], rel=1e-15)
    rates = pd.Series([0.0001, 0.0003])
    assert features.annualized_funding(rates, "8h").iloc[1] == pytest.approx(0.3285)


@pytest.mark.data
def test_funding_on_real_rates_matches_pandas(ohlcv_store):
    cat = Catalog(ohlcv_store[0])
    fund = cat.funding("BINANCE_FUTURES", "BTC-USDT-PERP")
    cat.close()
    rate = fund["rate"]
    assert len(rate) > 100
    ref = rate.ewm(span=3, adjust=False).mean()
    ours = features.funding_forecast(rate, 3)
    assert np.max(np.abs(ours.to_numpy() - ref.to_numpy())) < 1e-18
    s = np.empty(funding_nb.FORECAST_SIZE)
    funding_nb.forecast_init(s, 0, 3.0)
    assert same([funding_nb.forecast_step(s, 0, r) for r in rate], ours)
    apr = features.annualized_funding(rate, "8h")
    assert same(apr, rate * 1095.0)
    assert math.isclose(float(apr.mean()), float(rate.mean()) * 1095.0, rel_tol=1e-12)
