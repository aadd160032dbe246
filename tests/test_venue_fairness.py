"""The venue serves everyone fairly: a client that stops reading is dropped with 1008 and does not
slow the replay for the others; streams per connection and frame sizes are bounded; a bad fault
request is a 400."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from tradelab.venue.core import Venue
from tradelab.venue.server import MAX_STREAMS, start_venue
from tradelab.venue.sources import RecordingSource

STREAMS = "btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker"
PATH = f"/usdm/stream?streams={STREAMS}"
SPEED = 10.0  # ~2,700 messages/s from the USD-M recording: fills a stalled socket in ~1 s
N = 12_000  # messages the reader counts (about 4.5 s of replay)
QUEUE = 4_000  # per-connection send queue: ~1.5 s of slack, so only a stalled client fills it
# (with 1,000 a reader on a busy CI core could itself fall 0.4 s behind and be dropped)


def _raw_connect(port: int) -> socket.socket:
    """A websocket client that completes the handshake and then never reads (tiny buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _read_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def _close_code(sock: socket.socket) -> int | None:
    """Read (late) every frame the server sent until its close frame; return the close code."""
    sock.settimeout(20)
    try:
        while True:
            b0, b1 = _read_exact(sock, 2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(_read_exact(sock, 2), "big")
            elif n == 127:
                n = int.from_bytes(_read_exact(sock, 8), "big")
            payload = _read_exact(sock, n)
            if b0 & 0x0F == 8:
                return int.from_bytes(payload[:2], "big")
    except (EOFError, OSError):
        return None
    finally:
        sock.close()


async def _replay(path, with_slow_client: bool) -> tuple[float, int | None, dict]:
    venue = Venue(RecordingSource([path]), speed=SPEED, wait_clients=2 if with_slow_client else 1,
                  slow_client="disconnect", queue_size=QUEUE)
    rv = await start_venue(venue, tls_port=None)
    slow = await asyncio.to_thread(_raw_connect, rv.port) if with_slow_client else None
    try:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(f"ws://127.0.0.1:{rv.port}{PATH}") as ws:
            n, t_first = 0, 0.0
            async for _msg in ws:
                n += 1
                if n == 1:
                    t_first = time.monotonic()
                if n == N:
                    break
            rate = (N - 1) / (time.monotonic() - t_first)
        code = await asyncio.to_thread(_close_code, slow) if slow else None
    finally:
        await rv.stop()
    return rate, code, dict(venue.faults.fired)


@pytest.mark.slow
def test_a_client_that_never_reads_is_dropped_without_slowing_the_reader(binance_ws):
    src = binance_ws / "usdm_btcusdt_20240808.gz"
    alone, _, _ = asyncio.run(_replay(src, with_slow_client=False))
    shared, code, fired = asyncio.run(_replay(src, with_slow_client=True))
    print(f"\nreader alone {alone:,.0f} msg/s, beside a stalled client {shared:,.0f} msg/s")
    assert abs(shared / alone - 1) <= 0.10, (alone, shared)
    assert code == 1008, fired
    assert fired.get("slow_client_disconnected") == 1, fired


async def _small_venue(binance_ws):
    venue = Venue(RecordingSource([binance_ws / "usdm_btcusdt_20240808.gz"]), speed=1.0,
                  wait_clients=1)
    return venue, await start_venue(venue, tls_port=None)


def test_streams_per_connection_and_frame_size_are_bounded(binance_ws):
    async def go():
        venue, rv = await _small_venue(binance_ws)
        url = f"ws://127.0.0.1:{rv.port}/usdm/ws"
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(url) as ws:
                    many = [f"s{i}usdt@trade" for i in range(MAX_STREAMS + 1)]
                    await ws.send_json({"method": "SUBSCRIBE", "params": many, "id": 1})
                    reply = await ws.receive_json(timeout=5)
                    assert reply["id"] == 1 and "at most 1024" in reply["error"]["msg"]
                    await ws.send_json({"method": "SUBSCRIBE", "params": many[:MAX_STREAMS],
                                        "id": 2})
                    assert (await ws.receive_json(timeout=5)) == {"result": None, "id": 2}
                    await ws.send_json({"method": "SUBSCRIBE", "params": ["x@trade"], "id": 3})
                    assert "at most" in (await ws.receive_json(timeout=5))["error"]["msg"]
                    await ws.send_json({"method": "SUBSCRIBE", "params": "btcusdt@trade",
                                        "id": 4})
                    assert "list" in (await ws.receive_json(timeout=5))["error"]["msg"]
                async with session.ws_connect(url) as ws:
                    await ws.send_str("x" * (1 << 20))  # a 1 MiB frame
                    msg = await ws.receive(timeout=5)
                    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                    assert ws.close_code == 1009  # message too big
                too_many = "/".join(f"{i}@t" for i in range(MAX_STREAMS + 1))  # short: fits a URL
                async with session.get(f"http://127.0.0.1:{rv.port}/usdm/stream",
                                       params={"streams": too_many}) as resp:
                    assert resp.status == 400 and "at most" in (await resp.json())["msg"]
        finally:
            await rv.stop()

    asyncio.run(go())


def test_a_bad_fault_request_is_a_400(binance_ws):
    async def go():
        venue, rv = await _small_venue(binance_ws)
        url = f"http://127.0.0.1:{rv.port}/venue/fault"
        try:
            async with aiohttp.ClientSession() as session:
                for body in ("not json", "[1, 2]", '{"symbol": "BTCUSDT"}', '{"kind": "melt"}',
                             '{"kind": "stall", "seconds": "soon"}',
                             '{"kind": "drop_diff", "symbol": 5}', '{"kind": "drop_diff"}',
                             '{"kind": "stall", "count": null}'):
                    async with session.post(url, data=body) as resp:
                        assert resp.status == 400, body
                        assert (await resp.json())["error"], body
                async with session.post(url, json={"kind": "malformed"}) as resp:
                    assert resp.status == 200
        finally:
            await rv.stop()

    asyncio.run(go())
