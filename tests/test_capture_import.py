"""Bybit and OKX (and Binance) through cryptofeed's own parsers, from its recorder captures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.cryptofeed_capture import import_captures, read_capture
from tradelab.store import Catalog

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def captures(tmp_path_factory, test_data):
    store = tmp_path_factory.mktemp("captures")
    run = ImportRun("cryptofeed-capture", store, {})
    folder = test_data / "cryptofeed_capture"
    reports = import_captures([folder / f"{n}.jsonl.zst" for n in
                               ("BYBIT", "OKX", "BINANCE_FUTURES", "COINBASE")], run)
    run.finish()
    return store, {r.exchange or r.path: r for r in reports}, folder


def frames(folder, name, topic_prefix):
    out = []
    for r in read_capture(folder / f"{name}.jsonl.zst"):
        if r["t"] == "recv" and r["data"].startswith("{") and topic_prefix in r["data"][:60]:
            out.append(json.loads(r["data"]))
    return out


def test_bybit_trades_book_ticker_funding(captures):
    store, reps, folder = captures
    rep = reps["BYBIT"]
    assert rep.status == "committed" and rep.n_rejects == 0
    assert rep.messages["l2_book"] == 2148 and rep.messages["trades"] == 347
    trade_frames = frames(folder, "BYBIT", '"topic":"publicTrade')
    ids = sorted(t["i"] for f in trade_frames for t in f["data"])
    got = Catalog(store).sql("SELECT trade_id FROM trades WHERE exchange = 'BYBIT'")
    assert sorted(got["trade_id"]) == ids  # every Bybit trade, one for one
    fund = Catalog(store).funding("BYBIT", "BTC-USDT-PERP")
    assert len(fund) > 100 and np.allclose(fund["rate"], 1e-4)
    oi = Catalog(store).open_interest("BYBIT", "BTC-USDT-PERP")
    assert oi["open_interest"].between(1e4, 1e6).all()
    # Bybit book times come from cryptofeed in ms: stored as the right ns, within the capture
    book = Catalog(store).book("BYBIT", "BTC-USDT-PERP")
    assert book["ts"].between(1786310700 * 10**9, 1786311000 * 10**9).all()


def test_bybit_rebuilt_book_is_sane_and_matches_its_tickers(captures):
    store, _reps, _folder = captures
    cat = Catalog(store)
    top = cat.top_of_book("BYBIT", "BTC-USDT-PERP")
    top = top[top.valid]
    assert len(top) > 100 and (top.bid_px < top.ask_px).all()
    bbo = cat.bbo("BYBIT", "BTC-USDT-PERP")
    # the ticker's best bid/ask is the book's: compare at the nearest earlier book message
    idx = np.searchsorted(top["ts"].to_numpy(), bbo["ts"].to_numpy(), side="right") - 1
    ok = idx >= 0
    agree = (top["bid_px"].to_numpy()[idx[ok]] == bbo["bid_px"].to_numpy()[ok]).mean()
    assert agree > 0.8


def test_okx_counts_and_checksummed_book(captures):
    store, reps, folder = captures
    rep = reps["OKX"]
    assert (rep.messages["l2_book"], rep.messages["trades"], rep.messages["bbo"]) == (290, 74, 28)
    trade_frames = frames(folder, "OKX", '"channel":"trades"')
    ids = sorted(t["tradeId"] for f in trade_frames if "data" in f for t in f["data"])
    got = Catalog(store).sql("SELECT trade_id FROM trades WHERE exchange = 'OKX'")
    assert sorted(got["trade_id"]) == ids
    top = Catalog(store).top_of_book("OKX", "BTC-USDT")
    assert (top[top.valid].bid_px < top[top.valid].ask_px).all()


def test_binance_futures_capture_syncs_from_its_recorded_snapshots(captures):
    store, reps, _ = captures
    rep = reps["BINANCE_FUTURES"]
    assert rep.status == "committed" and rep.n_rejects == 0
    kinds = Catalog(store).quality_events("BINANCE_FUTURES", "SUSHI-USDT-PERP")["kind"]
    assert kinds.tolist() == ["sync"]


def test_unsupported_exchange_is_refused_by_name(captures):
    _store, reps, _ = captures
    rep = next(r for k, r in reps.items() if "COINBASE" in k)
    assert rep.status == "failed" and "COINBASE is not collected by tradelab" in rep.detail
