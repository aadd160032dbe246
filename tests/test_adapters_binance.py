"""The Binance adapter on hand-computed cases: exchange filters, depth-sync rules, symbols."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradelab.adapters.binance import depth_sync, parse
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
from tradelab.venue.limits import OrderCounts
from tradelab.venue.rest import exchange_info
from tradelab.venue.sources import StaticSource

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

    class _V:  # exchange_info reads only these attributes of the venue
        instruments = StaticSource(hist.by_key).instruments
        now_ms = 0
        order_counts = OrderCounts()

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


# -- values, one message at a time (hand-built payloads) -------------------------------------

SPOT_TRADE = {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259,
              "p": "61837.63", "q": "0.02", "T": 1723161255342, "m": True, "M": True}
USDM_TRADE = {"e": "trade", "E": 1723161256322, "T": 1723161256322, "s": "BTCUSDT",
              "t": 5266583935, "p": "61800.30", "q": "0.006", "X": "MARKET", "m": False}
SPOT_TICKER = {"u": 50093239212, "s": "BTCUSDT", "b": "61837.63", "B": "3.78826",
               "a": "61837.64", "A": "1.54698"}
USDM_TICKER = {"e": "bookTicker", "u": 5123107839020, "s": "BTCUSDT", "b": "61800.20",
               "B": "2.507", "a": "61800.30", "A": "2.510", "T": 1723161256313,
               "E": 1723161256313}


def _diff(bids, asks, **extra):
    return {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT", "U": 10, "u": 12,
            "b": bids, "a": asks, **extra}


def test_good_payloads_read_into_values():
    t = parse.trade(SPOT_TRADE, "spot")
    assert t == (1723161255342, 61837.63, 0.02, 1, 3735683259)
    assert parse.trade(USDM_TRADE, "usdm").side == 0
    bt = parse.book_ticker(SPOT_TICKER, 7, "spot")
    assert bt == (7, 50093239212, 61837.63, 3.78826, 61837.64, 1.54698)  # spot: receipt time
    assert parse.book_ticker(USDM_TICKER, 7, "usdm").ts == 1723161256313 * 1_000_000
    px, qty, nb = parse.depth_levels(_diff([["100.5", "0"], ["100.4", "2"]], [["100.6", "1.5"]]))
    assert (px, qty, nb) == ([100.5, 100.4, 100.6], [0.0, 2.0, 1.5], 2)  # size 0 removes a level
    assert parse.depth_levels(_diff([], [])) == ([], [], 0)
    snap = parse.snapshot({"lastUpdateId": 9, "bids": [["100", "1"]], "asks": [["101", "2"]]})
    assert snap == (9, [(100.0, 1.0)], [(101.0, 2.0)])
    mark = parse.mark_price({"e": "markPriceUpdate", "E": 1000, "s": "BTCUSDT", "p": "61800.1",
                             "i": "61790.5", "r": "-0.00012", "T": 2000})
    assert mark == (1000 * 1_000_000, -0.00012, 61800.1, 61790.5, 2000 * 1_000_000)


@pytest.mark.parametrize("field, value", [
    ("p", "NaN"), ("p", "inf"), ("p", "-inf"), ("p", "-61837.63"), ("p", "0"),
    ("q", "nan"), ("q", "Infinity"), ("q", "-0.02"), ("q", "0"), ("q", "0.0"),
])
def test_a_trade_needs_a_finite_price_and_size_above_zero(field, value):
    with pytest.raises(parse.BadValue, match=f"'{value}'"):
        parse.trade({**SPOT_TRADE, field: value}, "spot")


@pytest.mark.parametrize("t", [0, -5, 2**62])
def test_a_trade_time_must_be_a_time(t):
    with pytest.raises(parse.BadValue, match="not a time"):
        parse.trade({**SPOT_TRADE, "T": t, "E": t}, "spot")


@pytest.mark.parametrize("field, value, what", [
    ("b", "nan", "bid price"), ("a", "inf", "ask price"), ("b", "0", "bid price"),
    ("a", "-1", "ask price"), ("B", "0", "bid quantity"), ("A", "nan", "ask quantity"),
    ("B", "-3", "bid quantity"), ("A", "inf", "ask quantity"),
])
def test_a_book_ticker_needs_finite_prices_and_sizes_above_zero(field, value, what):
    with pytest.raises(parse.BadValue, match=f"bookTicker {what} '{value}'"):
        parse.book_ticker({**SPOT_TICKER, field: value}, 7, "spot")


@pytest.mark.parametrize("bids, asks, named", [
    ([["100.5", "1"], ["nan", "1"]], [], "bid level 1 price 'nan'"),
    ([["100.5", "1"]], [["0", "1"]], "ask level 0 price '0'"),
    ([["100.5", "1"]], [["-100.6", "1"]], "ask level 0 price '-100.6'"),
    ([["inf", "1"]], [], "bid level 0 price 'inf'"),
    ([["100.5", "-1"]], [], "bid level 0 size '-1'"),
    ([["100.5", "NaN"]], [], "bid level 0 size 'NaN'"),
    ([], [["100.6", "1"], ["100.7", "inf"]], "ask level 1 size 'inf'"),
])
def test_one_bad_level_makes_the_whole_diff_bad(bids, asks, named):
    with pytest.raises(parse.BadValue, match=named.replace("(", r"\(")):
        parse.depth_levels(_diff(bids, asks))


@pytest.mark.parametrize("bids, asks, named", [
    ([["100", "0"]], [["101", "1"]], "snapshot bid level 0 size '0'"),  # a snapshot has no 0s
    ([["100", "1"]], [["nan", "1"]], "snapshot ask level 0 price 'nan'"),
    ([["100", "1"]], [["101", "-inf"]], "snapshot ask level 0 size '-inf'"),
])
def test_a_snapshot_with_a_bad_level_is_bad(bids, asks, named):
    with pytest.raises(parse.BadValue, match=named):
        parse.snapshot({"lastUpdateId": 9, "bids": bids, "asks": asks})


@pytest.mark.parametrize("field, value", [("r", "nan"), ("r", "inf"), ("p", "0"),
                                          ("p", "nan"), ("i", "-1")])
def test_a_mark_price_needs_a_finite_rate_and_prices_above_zero(field, value):
    good = {"e": "markPriceUpdate", "E": 1000, "s": "BTCUSDT", "p": "61800.1", "i": "61790.5",
            "r": "0.0001", "T": 2000}
    with pytest.raises(parse.BadValue):
        parse.mark_price({**good, field: value})


def test_a_payload_of_the_other_market_is_named():
    with pytest.raises(parse.OtherMarket, match="a USD-M trade in a spot recording"):
        parse.trade(USDM_TRADE, "spot")
    with pytest.raises(parse.OtherMarket, match="a spot trade in a usdm recording"):
        parse.trade(SPOT_TRADE, "usdm")
    with pytest.raises(parse.OtherMarket, match="a USD-M bookTicker in a spot recording"):
        parse.book_ticker(USDM_TICKER, 7, "spot")
    with pytest.raises(parse.OtherMarket, match="a spot bookTicker"):
        parse.book_ticker(SPOT_TICKER, 7, "usdm")
    with pytest.raises(parse.OtherMarket, match="a USD-M depthUpdate in a spot recording"):
        parse.check_depth_update(_diff([], [], pu=9), "spot")
    with pytest.raises(parse.OtherMarket, match="a spot depthUpdate in a usdm recording"):
        parse.check_depth_update(_diff([], []), "usdm")
    mark = {"e": "markPriceUpdate", "E": 1000, "s": "BTCUSDT", "p": "61800.1", "r": "0.0001"}
    with pytest.raises(parse.OtherMarket, match="a USD-M markPriceUpdate in a spot recording"):
        parse.mark_price(mark, "spot")
    assert parse.mark_price(mark, "usdm") is not None
