"""Order-count limits per account and the 429 -> 418 ban, through the real ccxt client.

The limiters' clocks are frozen (and moved by hand), so window edges are exact: Binance's
intervals are fixed clock intervals (a 10 s window starts at every multiple of 10 s).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import ccxt
import pytest

from tests.venue_helpers import book_source, venue_in_thread
from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.venue.core import Venue
from tradelab.venue.limits import OrderCounts, RateLimiter
from tradelab.venue.sources import VenueMessage

pytestmark = pytest.mark.slow

BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNTS = [{"api_key": "key-a", "secret": "secret-a", "balances": {"USDT": "10000", "BTC": "1"}},
            {"api_key": "key-b", "secret": "secret-b", "balances": {"USDT": "10000"}}]


def client(rest_url: str, key: str = "key-a", secret: str = "secret-a") -> ccxt.binance:
    return make_client("spot", key, secret, rest_url, asynchronous=False, rate_limit=False)


def header(ex: ccxt.binance, name: str) -> str | None:
    return {k.lower(): v for k, v in (ex.last_response_headers or {}).items()}.get(name.lower())


def get(url: str) -> tuple[int, dict, dict[str, str]]:
    try:
        with urllib.request.urlopen(url) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_order_count_limits_per_account():
    def make() -> Venue:
        return Venue(book_source({("spot", "BTCUSDT"): BOOK}), wait_clients=0,
                     accounts=ACCOUNTS, order_limits=[(3, 10), (5, 86_400)])

    now = [1_000_000.0]  # a multiple of 10 s: a window starts here
    with venue_in_thread(make, tls_port=None) as rv:
        rv.venue.order_counts.clock = lambda: now[0]
        ex = client(rv.rest_url)
        ex.load_markets()
        info = ex.public_get_exchangeinfo()
        assert [r for r in info["rateLimits"] if r["rateLimitType"] == "ORDERS"] == [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 3},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 5}]
        for n in (1, 2, 3):
            if n == 3:
                with pytest.raises(ccxt.InsufficientFunds):  # refused orders do not count
                    ex.create_order("BTC/USDT", "limit", "buy", 500, 99.0)
            ex.create_order("BTC/USDT", "limit", "buy", 0.1, 99.0)
            assert (header(ex, "X-MBX-ORDER-COUNT-10S"), header(ex, "X-MBX-ORDER-COUNT-1D")) == (
                str(n), str(n))
        # the 4th order in the window: 429 -1015, which ccxt raises as DDoSProtection
        with pytest.raises(ccxt.DDoSProtection, match="429") as err:
            ex.create_order("BTC/USDT", "limit", "buy", 0.1, 99.0)
        assert '"code":-1015' in str(err.value).replace(" ", "")
        assert "Too many new orders; current limit is 3 orders per 10 SECOND." in str(err.value)
        # the refusal's own headers: no order count, and no Retry-After (Binance sends none)
        assert header(ex, "X-MBX-ORDER-COUNT-10S") is None
        assert header(ex, "Retry-After") is None
        assert len(ex.fetch_open_orders("BTC/USDT")) == 3
        # another account has its own counts
        other = client(rv.rest_url, "key-b", "secret-b")
        other.load_markets()
        other.create_order("BTC/USDT", "limit", "buy", 0.1, 99.0)
        assert header(other, "X-MBX-ORDER-COUNT-10S") == "1"
        # the market sells 0.4 at 99.00: key-a's three bids there (placed first) fill whole;
        # orders that trade stop counting, so key-a is back to 0 in both windows
        trade = VenueMessage(0, "spot", "BTCUSDT", "trade", {
            "e": "trade", "E": 5_000, "s": "BTCUSDT", "t": 5_000, "p": "99.00",
            "q": "0.30000", "T": 5_000, "m": True})
        asyncio.run_coroutine_threadsafe(rv.venue.publish(trade),
                                         rv.replay.get_loop()).result(10)
        assert ex.fetch_open_orders("BTC/USDT") == []
        # an order that trades as it is placed never counts
        ex.create_order("BTC/USDT", "market", "buy", 0.1)
        assert (header(ex, "X-MBX-ORDER-COUNT-10S"), header(ex, "X-MBX-ORDER-COUNT-1D")) == (
            "0", "0")
        for n in (1, 2, 3):
            ex.create_order("BTC/USDT", "limit", "buy", 0.1, 98.0)
            assert header(ex, "X-MBX-ORDER-COUNT-10S") == str(n)
        with pytest.raises(ccxt.DDoSProtection, match="-1015"):
            ex.create_order("BTC/USDT", "limit", "buy", 0.1, 98.0)
        # the next 10 s window: 10S starts over, 1D goes on to its limit of 5
        now[0] += 10
        ex.create_order("BTC/USDT", "limit", "buy", 0.1, 98.0)
        assert (header(ex, "X-MBX-ORDER-COUNT-10S"), header(ex, "X-MBX-ORDER-COUNT-1D")) == (
            "1", "4")
        ex.create_order("BTC/USDT", "limit", "buy", 0.1, 98.0)
        with pytest.raises(ccxt.DDoSProtection,
                           match="current limit is 5 orders per 1 DAY"):
            ex.create_order("BTC/USDT", "limit", "buy", 0.1, 98.0)
        assert len(ex.fetch_open_orders("BTC/USDT")) == 5


def test_ignoring_429s_gets_the_ip_banned_with_418():
    def make() -> Venue:
        return Venue(book_source({("spot", "BTCUSDT"): BOOK}), wait_clients=0,
                     accounts=ACCOUNTS, ban_after=2, ban_seconds=120)

    now = [6_000_000.0]  # a minute starts here
    with venue_in_thread(make, tls_port=None, rate_limit_per_min=30) as rv:
        ex = client(rv.rest_url)
        ex.load_markets()  # on the wall clock: another minute than the frozen one
        limiter = rv.venue.limiter
        assert limiter is not None
        limiter.clock = lambda: now[0]
        depth = f"{rv.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5"  # weight 10
        for used in (10, 20, 30):
            status, _, headers = get(depth)
            assert (status, headers["X-MBX-USED-WEIGHT-1M"]) == (200, str(used))
        now[0] += 1
        with pytest.raises(ccxt.DDoSProtection, match="429"):  # over 30: strike 1
            ex.fetch_order_book("BTC/USDT", 5)
        status, body, headers = get(depth)  # strike 2: still a 429, 59 s to the next minute
        assert (status, body["code"], headers["Retry-After"]) == (429, -1003, "59")
        assert body["msg"].startswith("Too many requests; current limit of IP is 30")
        status, body, headers = get(depth)  # strike 3 > ban_after: banned for 120 s
        until_ms = int((now[0] + 120) * 1000)
        assert (status, body["code"], headers["Retry-After"]) == (418, -1003, "120")
        assert body["msg"].startswith(f"Way too many requests; IP banned until {until_ms}.")
        now[0] += 30  # a new minute, but the ban holds, for signed requests too
        with pytest.raises(ccxt.DDoSProtection, match=f"418.*IP banned until {until_ms}"):
            ex.fetch_balance()
        status, _, headers = get(depth)
        assert (status, headers["Retry-After"]) == (418, "90")
        now[0] += 91  # the ban is over
        assert get(depth)[0] == 200
        assert ex.fetch_balance()["USDT"]["free"] == 10000.0


def test_limiter_settings_are_checked():
    with pytest.raises(ValueError, match="ban_after"):
        RateLimiter(100, ban_after=0)
    with pytest.raises(ValueError, match="order limit 0 per 10 s"):
        OrderCounts([(0, 10)])
