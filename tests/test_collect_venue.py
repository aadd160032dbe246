"""Real cryptofeed -> collector -> store, fed by the local venue replaying the recordings.

Truth comes from outside the path under test: the trades in the recording files themselves,
and the recorded bookTicker stream against the book rebuilt from what the collector stored.
"""

from __future__ import annotations

import asyncio
import gzip

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from tests.test_import_binance_ws import agreement
from tests.venue_helpers import book_synced, replay_and_collect
from tradelab.store import Catalog

pytestmark = [pytest.mark.data, pytest.mark.slow]


def recorded_trade_ids(*paths) -> list[str]:
    ids = []
    for path in paths:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                if b"@trade" in line[:80]:
                    ids.append(str(orjson.loads(line.split(b" ", 1)[1])["data"]["t"]))
    return ids


def test_usdm_recording_lands_one_for_one(tmp_path, binance_ws):
    src = binance_ws / "usdm_btcusdt_20240808.gz"
    summary, venue = asyncio.run(replay_and_collect(
        [src], tmp_path, {"BINANCE_FUTURES": ["BTC-USDT-PERP"]}, speed=0))
    assert summary["dropped"] == {}
    cat = Catalog(tmp_path)
    trades = cat.trades("BINANCE_FUTURES", "BTC-USDT-PERP")
    assert sorted(trades["trade_id"]) == sorted(recorded_trade_ids(src))
    assert len(cat.bbo("BINANCE_FUTURES", "BTC-USDT-PERP")) == 66_089
    same, top, _ = agreement(tmp_path, "BINANCE_FUTURES", "BTC-USDT-PERP")
    print(f"\ncollected USD-M book vs bookTicker: {same.mean():.4%} of {len(same)}")
    # as fast as the client reads: it syncs once its snapshot request is answered, later than
    # the recording's own snapshot, so somewhat fewer messages are compared than when imported
    assert len(same) > 4_000 and same.all()
    assert cat.quality_events("BINANCE_FUTURES", "BTC-USDT-PERP")["kind"].tolist() == ["sync"]
    funding = cat.funding("BINANCE_FUTURES", "BTC-USDT-PERP")
    assert len(funding) > 300 and funding["rate"].notna().all()
    assert len(cat.open_interest("BINANCE_FUTURES", "BTC-USDT-PERP")) >= 1


def test_spot_recording_split_at_midnight_lands_one_for_one(tmp_path, binance_ws):
    files = [binance_ws / "spot_btcusdt_20240808.gz", binance_ws / "spot_btcusdt_20240809.gz"]
    summary, _ = asyncio.run(replay_and_collect(files, tmp_path, {"BINANCE": ["BTC-USDT"]},
                                                speed=0))
    cat = Catalog(tmp_path)
    assert sorted(cat.trades("BINANCE", "BTC-USDT")["trade_id"]) == sorted(
        recorded_trade_ids(*files))
    same, _, _ = agreement(tmp_path, "BINANCE", "BTC-USDT")
    print(f"\ncollected spot book vs bookTicker: {same.mean():.4%} of {len(same)}")
    assert len(same) > 4_000 and same.mean() > 0.999  # the 2 diff-stream omissions, as imported
    assert {p.parent.name for p in (tmp_path / "trades").rglob("*.parquet")} == {
        "date=2024-08-08", "date=2024-08-09"}


def test_dropped_diff_gives_a_gap_a_new_snapshot_and_a_correct_book(tmp_path, binance_ws):
    async def drop(venue, rv, collector):
        # not after a fixed delay: a diff withheld before the client's snapshot is inside it
        await book_synced(collector, "BINANCE_FUTURES", "BTC-USDT-PERP")
        await venue.inject("drop_diff", "BTCUSDT")

    summary, venue = asyncio.run(replay_and_collect(
        [binance_ws / "usdm_btcusdt_20240808.gz"], tmp_path,
        {"BINANCE_FUTURES": ["BTC-USDT-PERP"]}, speed=0, during=drop))
    assert venue.faults.fired["drop_diff"] == 1
    assert summary["events"].get("BINANCE_FUTURES:gap_detected") == 1
    cat = Catalog(tmp_path)
    kinds = cat.quality_events("BINANCE_FUTURES", "BTC-USDT-PERP")["kind"].tolist()
    assert kinds == ["sync", "gap", "resync"]
    same, top, _ = agreement(tmp_path, "BINANCE_FUTURES", "BTC-USDT-PERP")
    ev = cat.quality_events("BINANCE_FUTURES", "BTC-USDT-PERP")
    resync_ts = ev["ts"].iloc[2]
    assert same.all() and (top["ts"] >= resync_ts).sum() > 1000  # correct after the resync
    snaps = cat.book_snapshots("BINANCE_FUTURES", "BTC-USDT-PERP", levels=1, every="100ms")
    gap_ts = ev["ts"].iloc[1]
    assert snaps[(snaps.ts >= gap_ts) & (snaps.ts < resync_ts)].bid_px_0.isna().all()


def test_disconnect_reconnects_without_duplicates(tmp_path, binance_ws):
    async def cut(venue, rv, _collector):
        await asyncio.sleep(2)
        await venue.inject("disconnect")

    summary, venue = asyncio.run(replay_and_collect(
        [binance_ws / "usdm_btcusdt_20240808.gz"], tmp_path,
        {"BINANCE_FUTURES": ["BTC-USDT-PERP"]}, speed=0, during=cut))
    assert venue.faults.fired["disconnect"] == 1
    assert venue.connections == 2  # cryptofeed reconnected (a clean close is not logged)
    cat = Catalog(tmp_path)
    trades = cat.trades("BINANCE_FUTURES", "BTC-USDT-PERP")
    assert trades["trade_id"].is_unique and len(trades) > 15_000
    bbo = cat.bbo("BINANCE_FUTURES", "BTC-USDT-PERP")
    assert bbo["seq"].is_unique
    book = cat.book("BINANCE_FUTURES", "BTC-USDT-PERP")
    deltas = book[(book["flags"] & 1) == 0]
    assert not deltas.duplicated(["seq", "side", "price"]).any()
    kinds = cat.quality_events("BINANCE_FUTURES", "BTC-USDT-PERP")["kind"].tolist()
    assert kinds[0] == "sync" and "resync" in kinds  # a fresh snapshot after the reconnect
    same, _, _ = agreement(tmp_path, "BINANCE_FUTURES", "BTC-USDT-PERP")
    assert same.all()


def test_malformed_frame_and_stall_are_survived(tmp_path, binance_ws):
    async def faults(venue, rv, _collector):
        await asyncio.sleep(1.5)
        await venue.inject("malformed")
        await asyncio.sleep(1.5)
        await venue.inject("stall", seconds=2)

    summary, venue = asyncio.run(replay_and_collect(
        [binance_ws / "usdm_btcusdt_20240808.gz"], tmp_path,
        {"BINANCE_FUTURES": ["BTC-USDT-PERP"]}, speed=0, during=faults))
    assert venue.faults.fired["malformed"] == 1 and venue.faults.fired["stall"] == 1
    assert summary["events"].get("BINANCE_FUTURES:error", 0) >= 1  # cryptofeed logged it
    same, _, _ = agreement(tmp_path, "BINANCE_FUTURES", "BTC-USDT-PERP")
    assert same.all()
    for part in tmp_path.rglob("*.parquet"):
        pq.read_metadata(part)
    assert np.isfinite(Catalog(tmp_path).trades("BINANCE_FUTURES", "BTC-USDT-PERP").price).all()
