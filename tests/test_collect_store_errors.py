"""The collector never fails silently: rows the store refuses are rejected, the rest is stored."""

from __future__ import annotations

import asyncio
import gzip
import json
import math

import orjson
import pytest

from tests.test_collect_venue import recorded_trade_ids
from tests.venue_helpers import replay_and_collect
from tradelab.collect import rows as R
from tradelab.collect.collector import Collector
from tradelab.collect.config import parse_config
from tradelab.store import Catalog

T0 = 1_704_067_200 * 10**9


def _collector(store) -> Collector:
    cfg = parse_config({"feeds": [{"exchange": "BINANCE", "symbols": ["BTC-USDT"],
                                   "channels": ["trades"]}]})
    return Collector(cfg, store=str(store), report=lambda line: None)


def _trades(prices: list[float], first_id: int = 0) -> R.ColumnBuffer:
    buf = R.ColumnBuffer(R.TRADE_COLS)
    buf.extend_rows([(T0 + i, T0 + i + 5, p, 1.0, "buy", str(first_id + i))
                     for i, p in enumerate(prices)])
    return buf


def test_writer_thread_rejects_refused_rows_and_keeps_going(tmp_path, caplog):
    col = _collector(tmp_path)
    col._seen("BINANCE", "trades", 1.0)
    prices = [100.0, math.nan, 101.0, 102.0, math.nan, 103.0, 104.0]
    with caplog.at_level("ERROR", logger="tradelab.collect"):
        col._write({("trades", "BINANCE", "BTC-USDT"): _trades(prices)}, [])
    # the cause is logged at once
    assert any("store refused trades rows" in r.getMessage() and "price" in r.getMessage()
               for r in caplog.records)
    # the writer keeps going: a later batch is stored too
    col._write({("trades", "BINANCE", "BTC-USDT"): _trades([105.0, 106.0], first_id=100)}, [])
    col.writer.close()
    stored = Catalog(tmp_path).trades("BINANCE", "BTC-USDT")
    assert sorted(stored["trade_id"], key=int) == ["0", "2", "3", "5", "6", "100", "101"]
    assert col.rejected[("BINANCE", "trades")] == 2
    (line,) = col.stats_lines(1.0)
    assert "STORE ERRORS 1 (rows rejected 2)" in line
    rejects = [json.loads(x) for x in col.reject_path.read_text().splitlines()]
    assert [r["row"]["trade_id"] for r in rejects] == ["1", "4"]
    assert all("'price'" in r["reason"] and r["row"]["price"] == "nan" for r in rejects)
    summary = col.summary()
    assert summary["rejected"] == {"BINANCE:trades": 2}
    assert summary["rejects_file"] == str(col.reject_path)


@pytest.mark.slow
@pytest.mark.data
def test_nan_prices_from_the_feed_are_rejected_and_the_rest_lands(tmp_path, binance_ws):
    """Real cryptofeed against the local venue; three trades carry a NaN price."""
    src = binance_ws / "usdm_btcusdt_20240808.gz"
    out = tmp_path / "nan.gz"
    bad_ids = []
    with gzip.open(src, "rb") as fh, gzip.open(out, "wb") as dst:
        for line in fh:
            if b"@trade" in line[:80] and len(bad_ids) < 3 and b'"p":"' in line:
                recv, raw = line.split(b" ", 1)
                msg = orjson.loads(raw)
                if len(bad_ids) == 0 or int(msg["data"]["t"]) % 97 == 0:
                    msg["data"]["p"] = "NaN"
                    bad_ids.append(str(msg["data"]["t"]))
                    line = recv + b" " + orjson.dumps(msg) + b"\n"
            dst.write(line)
    assert len(bad_ids) == 3
    summary, _ = asyncio.run(replay_and_collect(
        [out], tmp_path / "store", {"BINANCE_FUTURES": ["BTC-USDT-PERP"]}, speed=0))
    assert summary["rejected"] == {"BINANCE_FUTURES:trades": 3}
    stored = Catalog(tmp_path / "store").trades("BINANCE_FUTURES", "BTC-USDT-PERP")
    want = sorted(set(recorded_trade_ids(src)) - set(bad_ids))
    assert sorted(stored["trade_id"]) == want
    rejects = [json.loads(x) for x in open(summary["rejects_file"])]
    assert sorted(r["row"]["trade_id"] for r in rejects) == sorted(bad_ids)
