"""The Binance adapter on hand-computed cases: exchange filters, depth-sync rules, symbols."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradelab.adapters.binance import depth_sync
from tradelab.adapters.binance.filters import FilterFailure, SymbolFilters, symbol_filters
from tradelab.adapters.binance.recording import format_line, parse_line
from tradelab.adapters.binance.schema import market_of_payload, split_stream, stream_kind
from tradelab.adapters.binance.symbols import (
    raw_of_store_symbol,
    split_raw,
    store_symbol_of_raw,
)
from tradelab.errors import AdapterError
from tradelab.venue.history import History
from tradelab.venue.rest import exchange_info
from tradelab.venue.run import _HistoryOnly

D = Decimal

# -- filters ---------------------------------------------------------------------------------
# USD-M BTCUSDT: tick 0.10 (minPrice 0.10), step 0.001 (minQty 0.001), notional >= 5.
# Spot BTCUSDT: tick 0.01, step 0.00001, 5 <= notional <= 9,000,000.


@pytest.fixture
def perp() -> SymbolFilters:
    return symbol_filters("usdm", "BTCUSDT")


@pytest.fixture
def spot() -> SymbolFilters:
    return symbol_filters("spot", "BTCUSDT")


def test_prices_round_to_the_tick_grid_the_safe_way(perp):
    # (61800.27 - 0.10) / 0.10 = 618001.7 ticks above minPrice
    assert perp.round_price("61800.27", "down") == D("61800.20")  # a buy never pays more
    assert perp.round_price("61800.27", "up") == D("61800.30")  # a sell never sells cheaper
    assert perp.round_price("61800.27") == D("61800.30")  # nearest: 618002 ticks
    # (61800.25 - 0.10) / 0.10 = 618001.5 -> half to even: 618002 -> 0.10 + 61800.20
    assert perp.round_price("61800.25") == D("61800.30")
    assert perp.round_price("61800.35") == D("61800.30")  # 618002.5 -> 618002
    assert perp.round_price(D("61800.20"), "down") == D("61800.20")  # on the grid: unchanged


def test_quantities_are_truncated_never_rounded_up(perp, spot):
    # (0.0157 - 0.001) / 0.001 = 14.7 steps -> 14 -> 0.001 + 0.014
    assert perp.round_qty("0.0157") == D("0.015")
    assert perp.round_qty(0.0199999) == D("0.019")
    assert spot.round_qty("0.123456789") == D("0.12345")
    # a float with binary noise is read through its shortest repr: 0.1 + 0.2 -> 0.3 on the grid
    assert spot.round_price(0.1 + 0.2) == D("0.30")


def test_each_filter_names_itself(perp, spot):
    assert perp.reject_reason("61800.20", "0.001") is None  # notional 61.80
    # 61800.25 - 0.10 = 61800.15, not a multiple of 0.10
    assert perp.reject_reason("61800.25", "0.001").reason == "PRICE_FILTER"
    assert perp.reject_reason("0.05", "1").reason == "PRICE_FILTER"  # below minPrice 0.10
    assert perp.reject_reason("20000000", "0.001").reason == "PRICE_FILTER"  # above maxPrice
    assert perp.reject_reason("61800.20", "0.0015").reason == "LOT_SIZE"  # off the step grid
    assert perp.reject_reason("61800.20", "0.0005").reason == "LOT_SIZE"  # below minQty
    assert perp.reject_reason("61800.20", "9000.001").reason == "LOT_SIZE"  # above maxQty
    assert perp.reject_reason("4000.00", "0.001").reason == "MIN_NOTIONAL"  # 4.00 < 5
    assert perp.reject_reason("5000.00", "0.001") is None  # 5.00: the floor is inclusive
    assert spot.reject_reason("60000.00", "0.00008").reason == "NOTIONAL"  # 4.80 < 5
    assert spot.reject_reason("60000.00", "0.00009") is None  # 5.40
    assert spot.reject_reason("1000000.00", "9.5").reason == "NOTIONAL"  # 9.5M > 9M
    # market orders: MARKET_LOT_SIZE, and the notional floor with the reference price
    assert spot.reject_reason(None, "0.000005", market_order=True).reason == "MARKET_LOT_SIZE"
    assert spot.reject_reason("60000", "0.00008", market_order=True).reason == "NOTIONAL"
    assert spot.reject_reason(None, "0.00008", market_order=True) is None  # no price known
    with pytest.raises(FilterFailure, match="Filter failure: LOT_SIZE") as exc:
        perp.check("61800.20", "0.0015")
    assert exc.value.reason == "LOT_SIZE" and isinstance(exc.value, AdapterError)


def test_rounded_orders_pass(perp):
    price = perp.round_price("61800.27", "down")
    qty = perp.round_qty("0.0157")
    perp.check(price, qty)


def test_the_venue_serves_the_filters_it_validates_with():
    hist = History()
    hist.get("usdm", "BTCUSDT")
    hist.get("spot", "ETHUSDT")

    class _V:  # exchange_info reads only these two attributes of the venue
        instruments = _HistoryOnly(hist).instruments
        now_ms = 0

    (entry,) = exchange_info(_V, "usdm")["symbols"]
    assert entry["filters"] == [
        {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "10000000",
         "tickSize": "0.10"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "9000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "9000",
         "stepSize": "0.001"},
        {"filterType": "MIN_NOTIONAL", "notional": "5"},
    ]
    assert SymbolFilters.from_exchange_info("usdm", entry) == _V.instruments[
        ("usdm", "BTCUSDT")].filters
    (entry,) = exchange_info(_V, "spot")["symbols"]
    assert entry["filters"][-1] == {"filterType": "NOTIONAL", "minNotional": "5",
                                    "applyMinToMarket": True, "maxNotional": "9000000",
                                    "applyMaxToMarket": False, "avgPriceMins": 5}
    assert SymbolFilters.from_exchange_info("spot", entry) == symbol_filters("spot", "ETHUSDT")


# -- depth sync ------------------------------------------------------------------------------


def test_spot_chain_rules():
    # snapshot lastUpdateId 100: a spot diff U..u applies first if U <= 101 <= u
    assert depth_sync.is_before("spot", {"U": 90, "u": 100}, 100)
    assert not depth_sync.is_before("spot", {"U": 95, "u": 101}, 100)
    assert depth_sync.straddles("spot", {"U": 95, "u": 101}, 100)
    assert not depth_sync.straddles("spot", {"U": 102, "u": 110}, 100)  # 101 missing
    assert depth_sync.continues("spot", {"U": 102, "u": 110}, 101)
    assert depth_sync.expected_next("spot", {"U": 104, "u": 110}, 101) == (False, 102, 104)
    assert depth_sync.prev_update_id({"U": 102, "u": 110}) == 101
    assert depth_sync.resumes_after("spot", {"U": 95, "u": 110}, 100) == 94
    assert depth_sync.resumes_after("spot", {"U": 103, "u": 110}, 100) is None


def test_usdm_chain_rules():
    # USD-M: first diff U <= 100 <= u; then pu == last u
    assert depth_sync.is_before("usdm", {"U": 90, "u": 99, "pu": 89}, 100)
    assert not depth_sync.is_before("usdm", {"U": 90, "u": 100, "pu": 89}, 100)
    assert depth_sync.straddles("usdm", {"U": 90, "u": 100, "pu": 89}, 100)
    assert not depth_sync.straddles("usdm", {"U": 101, "u": 105, "pu": 100}, 100)
    assert depth_sync.continues("usdm", {"U": 120, "u": 130, "pu": 100}, 100)  # ids may jump
    assert depth_sync.expected_next("usdm", {"U": 120, "u": 130, "pu": 99}, 100) == (
        False, 100, 99)
    assert depth_sync.prev_update_id({"U": 120, "u": 130, "pu": 100}) == 100
    assert depth_sync.resumes_after("usdm", {"U": 120, "u": 130, "pu": 100}, 100) == 100


# -- names, streams, lines -------------------------------------------------------------------


def test_symbols_and_streams():
    assert split_raw("ETHFDUSD") == ("ETH", "FDUSD")  # the longest quote wins over USD
    assert store_symbol_of_raw("BTCUSDT", "spot") == "BTC-USDT"
    assert store_symbol_of_raw("BTCUSDT", "usdm") == "BTC-USDT-PERP"
    assert store_symbol_of_raw("BTCUSDT_240927", "usdm") == "BTC-USDT-24U27"
    assert raw_of_store_symbol("ETH-USDT-PERP") == "ETHUSDT"
    with pytest.raises(AdapterError, match="unknown quote asset"):
        split_raw("FOOBAR")
    assert split_stream("btcusdt@depth20@100ms") == ("btcusdt", "depth20")
    assert stream_kind("btcusdt@depth@100ms") == "depth"
    assert market_of_payload({"e": "depthUpdate", "U": 1, "u": 2, "pu": 0}) == "usdm"
    assert market_of_payload({"u": 5, "s": "BTCUSDT", "b": "1", "a": "2"}) == "spot"
    line = format_line(1_723_161_510_300_000_001, {"stream": "btcusdt@trade", "data": {"p": "1"}})
    assert line == b'1723161510300000001 {"stream":"btcusdt@trade","data":{"p":"1"}}\n'
    assert parse_line(line) == (1_723_161_510_300_000_001,
                                {"stream": "btcusdt@trade", "data": {"p": "1"}})
    assert parse_line(b"no-time") is None
