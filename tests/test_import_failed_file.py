"""A failed file breaks the chain, and a file whose book never synced is imported again.

Built from the real recordings: one recording split into three files whose middle one fails as
a whole; the midnight-split spot files imported in the order a parallel import can meet them.
Truth: the bookTicker stream of the recording (``agreement``), the crossed-book rule (a valid
book never has best bid >= best ask), and a clean import of the same data in one call.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import import_ws
from tests.test_import_binance_ws import agreement
from tradelab.store import Catalog

pytestmark = pytest.mark.data

ROOT = Path(__file__).resolve().parents[1]
EX, SYM = "BINANCE_FUTURES", "BTC-USDT-PERP"
SPOT_TRADE = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161400000,"s":"BTCUSDT",'
              b'"t":3735699999,"p":"61800.00","q":"0.01","T":1723161400000,"m":true,"M":true}}')


def _write(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as fh:
        fh.writelines(lines)
    return path


@pytest.fixture(scope="module")
def three_parts(tmp_path_factory, binance_ws):
    """usdm_btcusdt_20240808 split in three (the REST snapshot is in the first part)."""
    lines = gzip.open(binance_ws / "usdm_btcusdt_20240808.gz", "rb").read().splitlines(True)
    d = tmp_path_factory.mktemp("three")
    a, b, c = lines[:30_000], lines[30_000:60_000], lines[60_000:]
    first_c_diff = next(json.loads(ln.split(b" ", 1)[1])["data"] for ln in c
                        if b"@depth" in ln[:80])
    # the middle file fails as a whole at its last line: a spot trade in a USD-M recording
    recv = b[-1].split(b" ", 1)[0]
    bad_b = [*b, recv + b" " + SPOT_TRADE + b"\n"]
    return {
        "a": _write(d / "part_a.gz", a),
        "b": _write(d / "part_b.gz", bad_b),
        "c": _write(d / "part_c.gz", c),
        "first_c_diff": first_c_diff,
        "b_lines": len(bad_b),
    }


def _crossed_but_valid(store: Path) -> int:
    top = Catalog(store).top_of_book(EX, SYM)
    return int((top["valid"] & (top["bid_px"] >= top["ask_px"])).sum())


def test_a_failed_middle_file_breaks_the_chain_with_a_gap(tmp_path, three_parts):
    p = three_parts
    ra, rb, rc = import_ws(tmp_path, p["c"], p["a"], p["b"])  # put in recording order
    assert (ra.status, rb.status, rc.status) == ("committed", "failed", "committed")
    assert f"line {p['b_lines']}: a spot trade in a usdm recording" in rb.detail
    cat = Catalog(tmp_path)
    ev = cat.quality_events(EX, SYM)
    assert ev["kind"].tolist() == ["sync", "gap"]
    gap = ev.iloc[1]
    assert "the file before, part_b.gz, failed" in gap["detail"]
    d = p["first_c_diff"]
    assert gap["ts"] == d["E"] * 1_000_000 and gap["got_seq"] == d["pu"]
    assert _crossed_but_valid(tmp_path) == 0
    same, top, _ = agreement(tmp_path, EX, SYM)
    assert same.all() and len(same) > 1_000  # every valid row is the recorded best bid/ask
    assert (top["ts"] < gap["ts"]).all()  # nothing valid after the gap: c has no snapshot
    # nothing of b is stored, and c's deltas wait for a snapshot that never comes
    assert rc.book_unsynced == [SYM] and "book" not in rc.rows
    alone = tmp_path / "a_alone"
    (only_a,) = import_ws(alone, p["a"])
    assert ra.rows["book"] == only_a.rows["book"]
    book = cat.book(EX, SYM)
    assert len(book) == only_a.rows["book"] and book["ts"].max() < gap["ts"]
    trades = cat.trades(EX, SYM)
    assert len(trades) == ra.rows["trades"] + rc.rows["trades"]
    assert trades["trade_id"].is_unique


def test_an_unreadable_middle_file_also_leaves_a_gap(tmp_path, three_parts):
    p = three_parts
    broken = tmp_path / "part_b_broken.gz"
    raw = bytearray(p["b"].read_bytes())
    raw[3] = 0xFF  # gzip flags no reader accepts: the file fails before its first line
    broken.write_bytes(bytes(raw))
    reports = import_ws(tmp_path / "s", p["a"], broken, p["c"])
    assert sorted(r.status for r in reports) == ["committed", "committed", "failed"]
    ev = Catalog(tmp_path / "s").quality_events(EX, SYM)
    assert ev["kind"].tolist() == ["sync", "gap"]
    assert _crossed_but_valid(tmp_path / "s") == 0


def test_the_failed_file_imported_later_fills_nothing_wrongly(tmp_path, three_parts):
    """Separate calls: a, then the failing b, then c: c cannot continue a, so no book of it."""
    p = three_parts
    for f in ("a", "b", "c"):
        import_ws(tmp_path, p[f])
    assert _crossed_but_valid(tmp_path) == 0
    same, _, _ = agreement(tmp_path, EX, SYM)
    assert same.all()


# -- the midnight-split spot files, in the order a parallel import can meet them --------------

SPOT = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")


def _same_store(got: Path, want: Path) -> None:
    a, b = Catalog(got), Catalog(want)
    for frame in (lambda c: c.top_of_book("BINANCE", "BTC-USDT"),
                  lambda c: c.trades("BINANCE", "BTC-USDT"),
                  lambda c: c.bbo("BINANCE", "BTC-USDT")):
        x, y = frame(a), frame(b)
        x = x.sort_values(list(x.columns)).reset_index(drop=True)
        y = y.sort_values(list(y.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y)


def test_second_half_first_is_not_imported_until_its_book_is(tmp_path, binance_ws, spot_store):
    """The interleaving that lost 174k book rows: the second file reads the store before the
    first file's import committed. It is committed without its book, not counted as imported,
    and importing it again once the first is stored adds exactly the missing deltas."""
    first, second = (binance_ws / f for f in SPOT)
    (r2,) = import_ws(tmp_path, second)
    assert r2.status == "committed" and r2.book_unsynced == ["BTC-USDT"]
    import_ws(tmp_path, first)
    (again,) = import_ws(tmp_path, second)
    assert again.status == "committed" and again.book_unsynced == []
    assert again.rows["book"] > 170_000 and "trades" not in again.rows  # trades were stored
    assert again.skipped["already_stored_trades"] == r2.rows["trades"]
    (third,) = import_ws(tmp_path, second)
    assert third.status == "skipped"  # now complete: counted as imported
    _same_store(tmp_path, spot_store[0])


@pytest.mark.slow
def test_parallel_imports_of_the_split_files_then_a_rerun_equal_one_call(
    tmp_path, binance_ws, spot_store
):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(*files: Path) -> subprocess.Popen:
        args = [sys.executable, "-m", "tradelab.cli", "import", "binance-ws", *map(str, files),
                "--store", str(tmp_path), "--json"]
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = [cli(binance_ws / f) for f in SPOT]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    # the same command again, as the warning says: whatever the interleaving was, the store
    # then equals one import of both files
    rerun = cli(*(binance_ws / f for f in SPOT))
    out, errs = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, errs[-2000:]
    files = json.loads(out)["files"]
    assert all(f["status"] in ("skipped", "committed") and not f["book_unsynced"] for f in files)
    _same_store(tmp_path, spot_store[0])


# -- a real recording with bad values injected -------------------------------------------------


def _with(line: bytes, change) -> bytes:
    recv, body = line.split(b" ", 1)
    msg = json.loads(body)
    change(msg)
    return recv + b" " + json.dumps(msg).encode() + b"\n"


def _set(path: tuple, value):
    def change(msg):
        node = msg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def test_bad_values_reject_their_lines_and_every_good_line_is_stored(tmp_path, binance_ws):
    src = binance_ws / "spot_btcusdt_20240808.gz"
    lines = gzip.open(src, "rb").read().splitlines(True)
    depth = [i for i, ln in enumerate(lines) if b"@depth" in ln[:60]]
    ticker = [i for i, ln in enumerate(lines) if b"@bookTicker" in ln[:60]]
    trade = [i for i, ln in enumerate(lines) if b"@trade" in ln[:60]]
    snap = next(i for i, ln in enumerate(lines) if b"lastUpdateId" in ln[:60])
    assert depth[0] < snap < depth[-1]
    late = depth[len(depth) // 2]
    # (insert before original line i, the bad line, reason that must be given)
    bad = [
        # the case: a bad diff buffered before the snapshot dropped the whole book
        (depth[0], _with(lines[depth[0]], _set(("data", "b", 0, 0), "NaN")),
         "bad value in depth: bid level 0 price 'NaN'"),
        (snap, _with(lines[snap], _set(("bids", 3, 1), "nan")),
         "bad value in snapshot: snapshot bid level 3 size 'nan'"),
        # stale copies of synced diffs (placed after their original): rejected, chain intact
        (late + 1, _with(lines[late], _set(("data", "a", 0, 1), "-0.5")),
         "bad value in depth: ask level 0 size '-0.5'"),
        (late + 2, _with(lines[late], _set(("data", "a", 0, 0), "0")),
         "bad value in depth: ask level 0 price '0'"),
        (ticker[10], _with(lines[ticker[10]], _set(("data", "b"), "NaN")),
         "bad value in bookTicker: bookTicker bid price 'NaN'"),
        (ticker[20], _with(lines[ticker[20]], _set(("data", "A"), "Infinity")),
         "bad value in bookTicker: bookTicker ask quantity 'Infinity'"),
        (ticker[30], _with(lines[ticker[30]], _set(("data", "a"), "0.00000000")),
         "bad value in bookTicker: bookTicker ask price '0.00000000'"),
        (trade[5], _with(lines[trade[5]], _set(("data", "p"), "inf")),
         "bad value in trade: trade price 'inf'"),
        (trade[6], _with(lines[trade[6]], _set(("data", "p"), "-inf")),
         "bad value in trade: trade price '-inf'"),
        (trade[7], _with(lines[trade[7]], _set(("data", "p"), "-61800.00")),
         "bad value in trade: trade price '-61800.00'"),
        (trade[8], _with(lines[trade[8]], _set(("data", "q"), "0.00000000")),
         "bad value in trade: trade quantity '0.00000000'"),
        (trade[9], _with(lines[trade[9]], _set(("data", "q"), "NaN")),
         "bad value in trade: trade quantity 'NaN'"),
    ]
    out, want = [], {}
    at = {i: [] for i, _l, _r in bad}
    for i, line, reason in bad:
        at[i].append((line, reason))
    for i, line in enumerate(lines):
        for bad_line, reason in at.get(i, []):
            out.append(bad_line)
            want[len(out)] = reason  # 1-based line number in the bad file
        out.append(line)
    path = _write(tmp_path / "bad_values.gz", out)

    (rep,) = import_ws(tmp_path / "bad", path)
    (clean,) = import_ws(tmp_path / "clean", src)
    assert rep.status == "committed" and rep.n_rejects == len(bad) and rep.lines == len(out)
    got = {}
    for p in (tmp_path / "bad" / "_imports").glob("*.rejects.jsonl"):
        for ln in p.read_text().splitlines():
            r = json.loads(ln)
            got[r["line"]] = r["reason"]
    assert {k: v.split(":", 2)[0] + ":" + v.split(":", 2)[1] for k, v in got.items()} == want
    assert rep.rows == clean.rows and rep.gaps == clean.gaps == 0
    a, b = Catalog(tmp_path / "bad"), Catalog(tmp_path / "clean")
    for table in ("trades", "bbo", "book"):  # row for row, in storage order
        x, y = getattr(a, table)("BINANCE", "BTC-USDT"), getattr(b, table)("BINANCE", "BTC-USDT")
        assert len(x) == rep.rows[table] > 0
        pd.testing.assert_frame_equal(x, y)
    qa = a.quality_events("BINANCE", "BTC-USDT").drop(columns=["source"])
    qb = b.quality_events("BINANCE", "BTC-USDT").drop(columns=["source"])
    pd.testing.assert_frame_equal(qa.reset_index(drop=True), qb.reset_index(drop=True))
