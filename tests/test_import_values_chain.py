"""Per-line value checks and the diff chain across files, on hand-built recordings.

Each case is a short spot recording written out line by line, with the book worked out by hand:
which update ids end up stored, where a gap is recorded and which line is rejected for what.
"""

from __future__ import annotations

import json

from tests.conftest import import_ws
from tradelab.adapters.binance.recording import format_line
from tradelab.store import Catalog

E0 = 1723161255000  # ms


def diff(first: int, last: int, bids=(), asks=()) -> bytes:
    """A spot depth diff line (U=first, u=last) sent at E0 + last ms."""
    e = E0 + last
    data = {"e": "depthUpdate", "E": e, "s": "BTCUSDT", "U": first, "u": last,
            "b": [list(b) for b in bids], "a": [list(a) for a in asks]}
    return format_line(e * 1_000_000 + 5, {"stream": "btcusdt@depth@100ms", "data": data})


def snapshot(last_id: int, bids, asks, recv_ms: int) -> bytes:
    return format_line(recv_ms * 1_000_000 + 7, {"lastUpdateId": last_id, "bids": bids,
                                                 "asks": asks})


def trade(tid: int, price: str, qty: str = "0.5") -> bytes:
    e = E0 + tid
    data = {"e": "trade", "E": e, "s": "BTCUSDT", "t": tid, "p": price, "q": qty, "T": e,
            "m": False, "M": True}
    return format_line(e * 1_000_000 + 9, {"stream": "btcusdt@trade", "data": data})


def write(path, lines: list[bytes]):
    path.write_bytes(b"".join(lines))
    return path


def rejects(store) -> dict[int, str]:
    out = {}
    for p in (store / "_imports").glob("*.rejects.jsonl"):
        for ln in p.read_text().splitlines():
            r = json.loads(ln)
            out[r["line"]] = r["reason"]
    return out


def book_messages(store) -> list[tuple[int, bool]]:
    """(seq, is snapshot) per stored book message, in storage order."""
    book = Catalog(store).book("BINANCE", "BTC-USDT")
    last = book[(book["flags"] & 2) != 0]
    return [(int(s), bool(f & 1)) for s, f in zip(last["seq"], last["flags"], strict=True)]


SNAP_BIDS = [["100.00", "1"], ["99.00", "2"]]
SNAP_ASKS = [["101.00", "1"], ["102.00", "3"]]


def test_a_bad_diff_of_a_synced_book_is_a_gap_until_the_next_snapshot(tmp_path):
    lines = [
        diff(101, 102, bids=[("100.00", "1")]),  # 1: before the snapshot, dropped
        snapshot(102, SNAP_BIDS, SNAP_ASKS, E0 + 102),  # 2
        diff(103, 103, bids=[("100.00", "3")]),  # 3: applied on top of snapshot 102
        diff(104, 104, bids=[("nan", "1")]),  # 4: rejected whole: a gap, deltas stop
        diff(105, 105, asks=[("101.00", "0"), ("102.50", "1")]),  # 5: waits, then dropped
        trade(1, "100.50"),  # 6: trades do not depend on the book
        snapshot(105, [["100.00", "3"], ["99.00", "2"]], [["102.00", "3"]], E0 + 105),  # 7
        diff(106, 106, bids=[("99.00", "0")]),  # 8: straddles 105 + 1: resync
    ]
    store = tmp_path / "store"
    (rep,) = import_ws(store, write(tmp_path / "bad_diff.txt", lines))
    assert rep.status == "committed" and rep.gaps == 1 and rep.resyncs == 1
    assert rejects(store) == {
        4: "bad value in depth: bid level 0 price 'nan': a price must be finite and above zero"}
    assert book_messages(store) == [(102, True), (103, False), (105, True), (106, False)]
    ev = Catalog(store).quality_events("BINANCE", "BTC-USDT")
    assert ev["kind"].tolist() == ["sync", "gap", "resync"]
    gap = ev.iloc[1]
    assert gap["expected_seq"] == 104 and "at line 4 rejected" in gap["detail"]
    assert gap["ts"] == (E0 + 104) * 1_000_000
    top = Catalog(store).top_of_book("BINANCE", "BTC-USDT")
    assert top["valid"].tolist() == [True, True, True, True]  # 102, 103 | 105, 106
    assert top["bid_px"].tolist()[-1] == 100.0 and top["ask_px"].tolist()[-1] == 102.0
    assert len(Catalog(store).trades("BINANCE", "BTC-USDT")) == 1


def test_a_bad_diff_before_the_snapshot_is_not_needed_and_costs_nothing(tmp_path):
    """The issue's case: one bad buffered diff used to drop the file's whole book."""
    lines = [
        diff(99, 100, bids=[("100.00", "1")]),
        diff(101, 102, bids=[("100.00", "-1")]),  # 2: rejected; older than the snapshot anyway
        snapshot(102, SNAP_BIDS, SNAP_ASKS, E0 + 102),
        diff(103, 103, bids=[("100.00", "3")]),
        diff(104, 104, asks=[("101.00", "0")]),
    ]
    store = tmp_path / "store"
    (rep,) = import_ws(store, write(tmp_path / "early.txt", lines))
    assert rep.status == "committed" and rep.gaps == 0
    assert list(rejects(store)) == [2] and "bid level 0 size '-1'" in rejects(store)[2]
    assert book_messages(store) == [(102, True), (103, False), (104, False)]
    assert Catalog(store).quality_events("BINANCE", "BTC-USDT")["kind"].tolist() == ["sync"]


def test_a_bad_diff_the_snapshot_needs_is_named_by_the_gap(tmp_path):
    lines = [
        diff(101, 102, bids=[("100.00", "1")]),
        diff(103, 103, bids=[("0", "1")]),  # 2: price 0 never exists: rejected
        diff(104, 104, bids=[("100.00", "4")]),
        snapshot(101, SNAP_BIDS, SNAP_ASKS, E0 + 104),  # synced by diff 101-102, then a hole
    ]
    store = tmp_path / "store"
    (rep,) = import_ws(store, write(tmp_path / "needed.txt", lines))
    assert rep.status == "committed" and rep.gaps == 1
    assert "bid level 0 price '0'" in rejects(store)[2]
    assert book_messages(store) == [(101, True), (102, False)]
    ev = Catalog(store).quality_events("BINANCE", "BTC-USDT")
    assert ev["kind"].tolist() == ["sync", "gap"]
    assert "the diff at line 2 was rejected" in ev["detail"].iloc[1]
    # the book did sync (then broke): the file counts as imported, the gap is the fact
    assert rep.book_unsynced == []


def test_a_bad_snapshot_is_rejected_whole_and_the_book_waits_for_a_good_one(tmp_path):
    lines = [
        diff(101, 102, bids=[("100.00", "1")]),
        snapshot(102, [["100.00", "0"]], SNAP_ASKS, E0 + 102),  # 2: a 0 size in a snapshot
        snapshot(102, SNAP_BIDS, [["inf", "1"]], E0 + 102),  # 3
        diff(103, 103, bids=[("100.00", "3")]),
        snapshot(103, SNAP_BIDS, SNAP_ASKS, E0 + 103),  # 5: good
        diff(104, 104, bids=[("100.00", "4")]),
    ]
    store = tmp_path / "store"
    (rep,) = import_ws(store, write(tmp_path / "snap.txt", lines))
    assert rep.status == "committed"
    rej = rejects(store)
    assert sorted(rej) == [2, 3]
    assert rej[2].startswith("bad value in snapshot: snapshot bid level 0 size '0'")
    assert rej[3].startswith("bad value in snapshot: snapshot ask level 0 price 'inf'")
    assert book_messages(store) == [(103, True), (104, False)]


def test_a_line_of_the_other_market_refuses_the_file(tmp_path):
    usdm_trade = format_line((E0 + 5) * 1_000_000, {"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": E0 + 5, "T": E0 + 5, "s": "BTCUSDT", "t": 77, "p": "61800.30",
        "q": "0.006", "X": "MARKET", "m": False}})
    lines = [trade(1, "100.5"), trade(2, "100.6"), usdm_trade, trade(3, "100.7")]
    store = tmp_path / "store"
    (rep,) = import_ws(store, write(tmp_path / "mixed.txt", lines))
    assert rep.status == "failed"
    assert "line 3: a USD-M trade in a spot recording" in rep.detail
    assert not list(store.rglob("*.parquet"))
