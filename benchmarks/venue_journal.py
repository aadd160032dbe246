#!/usr/bin/env python
"""What the venue's journal costs an order: place + cancel latency with and without it; prints
JSON.

In-process (no HTTP): a hand-made book, one account, limit buys far from the market placed and
cancelled one after the other, so each action is one journal line written and fsynced. The
reference, measured in the same run, is the same loop without a journal; the cost is measured
again after the venue has taken ``HISTORY`` orders (finished orders stay in the state the
journal compares). The floor is one fsynced append of a line of the same size.
Usage: ``python benchmarks/venue_journal.py [--pairs 300] [--history 5000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import emit, log, machine  # noqa: E402

BOOK = {"lastUpdateId": 100, "bids": [["100.00", "2.00000"], ["99.99", "3.00000"]],
        "asks": [["100.02", "1.00000"], ["100.03", "4.00000"]]}
ACCOUNT = {"api_key": "k", "secret": "s", "balances": {"USDT": "100000000", "BTC": "1"}}


def _venue(journal: Path | None):
    from tests.venue_helpers import book_source
    from tradelab.venue.core import Venue

    return Venue(book_source({("spot", "BTCUSDT"): BOOK}), wait_clients=0, accounts=[ACCOUNT],
                 journal=journal, order_limits=())


def _pairs(venue, n: int) -> np.ndarray:
    """Seconds per place + cancel pair, ``n`` pairs."""
    from tradelab.adapters.binance import trading as wire

    acc = venue.accounts.get("k")
    req = wire.parse_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                            "timeInForce": "GTC", "quantity": "0.1", "price": "95.00"})
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        order = venue.trading.new_order(acc, req)
        venue.trading.cancel(acc, "BTCUSDT", order.order_id, None)
        out[i] = time.perf_counter() - t
    return out


def _stats(x: np.ndarray) -> dict:
    return {"pairs": len(x), "p50_us": float(np.percentile(x, 50) * 1e6),
            "p99_us": float(np.percentile(x, 99) * 1e6), "pairs_per_s": float(len(x) / x.sum())}


def _fsync_floor(folder: Path, n: int, size: int) -> dict:
    path = folder / "floor"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    line = b"x" * (size - 1) + b"\n"
    out = np.empty(n)
    try:
        for i in range(n):
            t = time.perf_counter()
            os.write(fd, line)
            os.fsync(fd)
            out[i] = time.perf_counter() - t
    finally:
        os.close(fd)
    return {"appends": n, "line_bytes": size, "p50_us": float(np.percentile(out, 50) * 1e6),
            "p99_us": float(np.percentile(out, 99) * 1e6)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--history", type=int, default=5000)
    args = ap.parse_args()

    async def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            log("reference: no journal ...")
            plain = _venue(None)
            _pairs(plain, 20)  # warm up (numba cache, first core)
            ref = _stats(_pairs(plain, args.pairs))
            log("journal, fresh ...")
            durable = _venue(folder / "venue.journal")
            _pairs(durable, 20)
            fresh = _stats(_pairs(durable, args.pairs))
            lines = (folder / "venue.journal").read_bytes().split(b"\n")
            line_bytes = int(np.median([len(x) for x in lines[1:] if x]))
            log(f"both, after {args.history} more orders ...")
            _pairs(plain, args.history)
            ref_late = _stats(_pairs(plain, args.pairs))
            _pairs(durable, args.history)
            late = _stats(_pairs(durable, args.pairs))
            floor = _fsync_floor(folder, args.pairs, line_bytes)
            size = (folder / "venue.journal").stat().st_size
            durable.journal.close()
        return {"benchmark": "venue_journal", "machine": machine(),
                "no_journal": ref, "journal": fresh,
                f"no_journal_after_{args.history}_orders": ref_late,
                f"journal_after_{args.history}_orders": late,
                "journal_cost_ratio_p50": fresh["p50_us"] / ref["p50_us"],
                f"journal_cost_ratio_p50_after_{args.history}_orders":
                    late["p50_us"] / ref_late["p50_us"],
                "fsync_append_floor": floor, "journal_bytes_at_end": size,
                "median_change_line_bytes": line_bytes}

    emit(asyncio.run(run()))


if __name__ == "__main__":
    main()
