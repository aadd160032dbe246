"""The venue's journal: its trading state survives a restart, and a damaged journal is named.

Truth: the hand-made book of the trading tests (bids 100.00 x 2, 99.99 x 3; asks 100.02 x 1,
100.03 x 4; maker fee 0.1 %, taker 0.2 %), with the fills and balances worked out by hand.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from tests.venue_helpers import book_source, venue_in_thread
from tradelab.adapters.binance import trading as wire
from tradelab.adapters.binance.ccxt_client import make_client
from tradelab.venue.core import Venue
from tradelab.venue.journal import Journal, JournalError
from tradelab.venue.sources import VenueMessage

D = Decimal
KEY = ("spot", "BTCUSDT")
BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNT = {"api_key": "k1", "secret": "s1", "balances": {"USDT": "10000", "BTC": "1"},
           "maker_fee": "0.001", "taker_fee": "0.002"}


def _order(**kw: str) -> wire.OrderRequest:
    return wire.parse_order({"symbol": "BTCUSDT", **kw})


def _venue(path: Path, **kw) -> Venue:
    return Venue(book_source({KEY: BOOK}), wait_clients=0, accounts=[ACCOUNT], journal=path,
                 **kw)


def _trade(t_ms: int, px: str, qty: str, buyer_maker: bool) -> VenueMessage:
    return VenueMessage(0, "spot", "BTCUSDT", "trade", {
        "e": "trade", "E": t_ms, "s": "BTCUSDT", "t": t_ms, "p": px, "q": qty, "T": t_ms,
        "m": buyer_maker})


def test_restart_restores_orders_balances_and_counters_and_requeues_at_the_back(tmp_path):
    """A partly filled resting buy survives a restart and re-enters the queue behind the
    2.0 visible at its price (a fresh core: it lost its place)."""
    path = tmp_path / "venue.journal"

    async def before() -> None:
        venue = _venue(path)
        t, acc = venue.trading, venue.accounts.get("k1")
        assert acc is not None
        o1 = t.new_order(acc, _order(side="BUY", type="LIMIT", timeInForce="GTC",
                                     quantity="0.5", price="100.00", newClientOrderId="bid-1"))
        assert o1 is not None and o1.order_id == 1
        # 2.2 sold at 100.00 with 2.0 ahead of us: 0.2 fills (maker fee 0.0002 BTC)
        await venue.publish(_trade(1_000, "100.00", "2.20000", True))
        assert o1.executed == D("0.2")
        o2 = t.new_order(acc, _order(side="BUY", type="MARKET", quantity="0.5"))
        assert o2 is not None and o2.status == "FILLED"
        assert acc.balances()["USDT"] == (D("9899.99"), D("30"))  # 10000 - 50 - 50.01 (+ lock)
        assert acc.balances()["BTC"] == (D("1.6988"), D(0))  # 1 + 0.2 - 0.0002 + 0.5 - 0.001
        venue.journal.close()
        return venue.trading.state()

    state_before = asyncio.run(before())
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "tradelab-venue-journal/1"
    assert [json.loads(x)["seq"] for x in lines[1:]] == [1, 2, 3]

    async def after() -> dict:
        venue = _venue(path)
        t, acc = venue.trading, venue.accounts.get("k1")
        assert acc is not None
        assert t.state() == state_before  # every entry came back as it was
        assert acc.balances()["USDT"] == (D("9899.99"), D("30"))
        assert acc.balances()["BTC"] == (D("1.6988"), D(0))
        o1 = t.query(acc, "BTCUSDT", None, "bid-1")
        assert (o1.order_id, o1.status, o1.executed, o1.locked) == (
            1, "PARTIALLY_FILLED", D("0.2"), D("30"))
        assert [(x.order_id, x.trade_id, x.qty) for x in t.my_trades(acc, "BTCUSDT")] == [
            (1, 1, D("0.20000")), (2, 2, D("0.50000"))]
        # back of the queue: 2.0 visible at 100.00 is ahead again, so of 2.2 sold only 0.2
        # reaches us (at its old place, with nobody ahead, 0.3 would have filled it whole)
        await venue.publish(_trade(2_000, "100.00", "2.20000", True))
        assert o1.executed == D("0.4") and o1.status == "PARTIALLY_FILLED"
        assert o1.fills[-1].trade_id == 3  # trade ids continue
        o3 = t.new_order(acc, _order(side="SELL", type="LIMIT", timeInForce="GTC",
                                     quantity="0.1", price="101.00"))
        assert o3 is not None and o3.order_id == 3  # order ids continue, none reused
        assert t.cancel(acc, "BTCUSDT", 1, None).status == "CANCELED"
        assert acc.balances()["USDT"] == (D("9899.99") + D("30") - D("20"), D(0))
        venue.journal.close()
        return venue.trading.state()

    state_after = asyncio.run(after())
    venue = _venue(path)
    assert venue.trading.state() == state_after
    acc = venue.accounts.get("k1")
    assert acc is not None
    assert venue.trading.query(acc, "BTCUSDT", 1, None).status == "CANCELED"
    assert [o.order_id for o in venue.trading.open_orders(acc, None)] == [3]
    venue.journal.close()


def _client(rest_url: str) -> ccxt.binance:
    return make_client("spot", "k1", "s1", rest_url, asynchronous=False, rate_limit=False)


@pytest.mark.slow
def test_restart_mid_session_through_ccxt(tmp_path):
    path = tmp_path / "venue.journal"
    with venue_in_thread(lambda: _venue(path), tls_port=None) as rv:
        ex = _client(rv.rest_url)
        ex.load_markets()
        bid = ex.create_order("BTC/USDT", "limit", "buy", 0.5, 99.99, {"clientOrderId": "b1"})
        ask = ex.create_order("BTC/USDT", "limit", "sell", 0.4, 100.10)
        taken = ex.create_order("BTC/USDT", "market", "buy", 0.2)  # 0.2 @ 100.02
        before = ex.fetch_balance()
        trades_before = ex.fetch_my_trades("BTC/USDT")
        rv.venue.journal.close()
    assert before["USDT"]["used"] == pytest.approx(49.995)  # 0.5 x 99.99
    assert before["BTC"]["used"] == pytest.approx(0.4)

    with venue_in_thread(lambda: _venue(path), tls_port=None) as rv:
        ex = _client(rv.rest_url)
        ex.load_markets()
        open_now = ex.fetch_open_orders("BTC/USDT")
        assert [(o["id"], o["clientOrderId"], o["price"], o["amount"]) for o in open_now] == [
            (bid["id"], "b1", 99.99, 0.5), (ask["id"], ask["clientOrderId"], 100.10, 0.4)]
        after = ex.fetch_balance()
        for asset in ("USDT", "BTC"):
            assert (after[asset]["free"], after[asset]["used"]) == (
                before[asset]["free"], before[asset]["used"])
        assert [(t["id"], t["order"], t["price"]) for t in ex.fetch_my_trades("BTC/USDT")] == [
            (t["id"], t["order"], t["price"]) for t in trades_before]
        assert ex.fetch_order(taken["id"], "BTC/USDT")["status"] == "closed"
        assert ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "b1"})["id"] == bid["id"]
        new = ex.create_order("BTC/USDT", "limit", "buy", 0.1, 99.00)
        assert int(new["id"]) == int(taken["id"]) + 1  # the id counter continued
        ex.cancel_order(bid["id"], "BTC/USDT")  # a restored order cancels like any other
        assert ex.fetch_balance()["USDT"]["used"] == pytest.approx(9.9)  # only the new one
        rv.venue.journal.close()


class _Box:
    """A minimal durable component: its state is whatever the test puts in it."""

    def __init__(self) -> None:
        self.data: dict = {}

    def state(self) -> dict:
        return dict(self.data)

    def restore(self, state: dict) -> None:
        self.data = dict(state)


def _filled_journal(path: Path) -> None:
    box = _Box()
    j = Journal(path, {"box": box})
    j.open()
    for i in range(3):
        box.data[f"k{i}"] = i
        assert j.commit()
    assert not j.commit()  # nothing changed: no line
    del box.data["k0"]
    assert j.commit()
    j.close()


def test_journal_replays_changes_and_deletions(tmp_path):
    path = tmp_path / "j"
    _filled_journal(path)
    assert len(path.read_text().splitlines()) == 5  # snapshot + 4 changes
    box = _Box()
    j = Journal(path, {"box": box})
    assert j.open() is True
    assert box.data == {"k1": 1, "k2": 2}
    assert len(path.read_text().splitlines()) == 1  # compacted into one snapshot
    j.close()


def test_compaction_every_n_changes(tmp_path):
    box = _Box()
    j = Journal(tmp_path / "j", {"box": box}, compact_every=2)
    j.open()
    for i in range(5):
        box.data["n"] = i
        j.commit()
    j.close()
    # 5 changes, compacted after the 2nd and 4th: one snapshot and the 5th change
    assert len((tmp_path / "j").read_text().splitlines()) == 2
    other = _Box()
    Journal(tmp_path / "j", {"box": other}).open()
    assert other.data == {"n": 4}


def test_a_torn_last_line_is_logged_and_ignored(tmp_path, caplog):
    path = tmp_path / "j"
    _filled_journal(path)
    with open(path, "ab") as f:
        f.write(b'{"seq": 5, "set": {"box": {"k9"')  # killed mid-write: no newline
    box = _Box()
    with caplog.at_level(logging.WARNING, logger="tradelab.venue"):
        Journal(path, {"box": box}).open()
    assert box.data == {"k1": 1, "k2": 2}
    assert any("incomplete" in r.getMessage() for r in caplog.records)
    assert path.read_bytes().endswith(b"\n")  # the torn bytes are gone after compaction


@pytest.mark.parametrize(("damage", "message"), [
    (lambda lines: lines[:2] + [b"{not json"] + lines[3:], r"j:3: not a JSON record"),
    (lambda lines: lines[:2] + lines[3:], r"j:3: seq 3 follows 1"),
    (lambda lines: [lines[1]] + lines[1:], r"j:1: expected a tradelab-venue-journal/1 snapshot"),
    (lambda lines: lines[:2] + [b'{"seq": 2, "set": {"other": {"a": 1}}}'] + lines[3:],
     r"holds state of \['other'\]"),
])
def test_corruption_before_the_last_line_is_an_error_naming_file_and_line(tmp_path, damage,
                                                                        message):
    path = tmp_path / "j"
    _filled_journal(path)
    lines = path.read_bytes().split(b"\n")[:-1]
    path.write_bytes(b"\n".join(damage(lines)) + b"\n")
    kept = path.read_bytes()
    with pytest.raises(JournalError, match=message):
        Journal(path, {"box": _Box()}).open()
    assert path.read_bytes() == kept  # never reset: the damaged file is left for a human


def test_a_journal_path_that_cannot_be_used_is_named(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(JournalError, match="dir: cannot use the journal"):
        Journal(tmp_path / "dir", {"box": _Box()}).open()


def test_a_journal_of_other_accounts_is_refused(tmp_path):
    path = tmp_path / "j"
    _venue(path).journal.close()
    with pytest.raises(JournalError, match="account #1 of the journal is not the configured"):
        Venue(book_source({KEY: BOOK}), wait_clients=0, journal=path,
              accounts=[{**ACCOUNT, "api_key": "another-key"}])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signed(base: str, method: str, path: str, params: dict[str, str]) -> dict:
    qs = "&".join(f"{k}={v}" for k, v in
                  {**params, "timestamp": str(int(time.time() * 1000))}.items())
    sig = wire.sign("tradelab-demo-secret", qs)
    req = urllib.request.Request(f"{base}/api/v3/{path}?{qs}&signature={sig}", method=method,
                                 headers={"X-MBX-APIKEY": "tradelab-demo-api-key"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _start(journal: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-m", "tradelab.cli", "venue", "--synthetic", "--market", "spot",
         "--wait-clients", "0", "--port", str(port), "--tls-port", str(_free_port()),
         "--journal", str(journal)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_book(base: str, proc: subprocess.Popen) -> float:
    """The best bid once the venue serves a synced book."""
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"venue exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/v3/depth?symbol=BTCUSDT&limit=5",
                                        timeout=2) as resp:
                book = json.loads(resp.read())
            if book["bids"] and book["asks"]:
                return float(book["bids"][0][0])
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the venue never served a book")


@pytest.mark.slow
def test_sigkill_after_an_ack_keeps_the_order(tmp_path):
    """A real ``tradelab venue --journal`` process is killed (SIGKILL, no shutdown) right
    after acknowledging an order; the restarted venue has it."""
    journal = tmp_path / "venue.journal"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(journal, port)
    try:
        bid = _wait_book(base, proc)
        price = f"{bid * 0.95:.2f}"  # far below the market: rests
        ack = _signed(base, "POST", "order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01", "price": price, "newClientOrderId": "kept-1",
            "newOrderRespType": "ACK"})
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    proc = _start(journal, port)
    try:
        _wait_book(base, proc)
        got = _signed(base, "GET", "order", {"symbol": "BTCUSDT",
                                             "origClientOrderId": "kept-1"})
        assert (got["orderId"], got["status"], got["price"]) == (
            ack["orderId"], "NEW", f"{Decimal(price):.8f}")
        usdt = [b for b in _signed(base, "GET", "account", {})["balances"]
                if b["asset"] == "USDT"][0]
        assert Decimal(usdt["locked"]) == Decimal(price) * Decimal("0.01")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
