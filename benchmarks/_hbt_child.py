"""hftbacktest side of benchmarks/event_engine.py (runs in its own venv: it pins numpy 2.2).

Reads the benchmark's base stream (tradelab ``event_dt`` rows, local times already corrected),
converts it to hftbacktest's event format (snapshot rows preceded by a depth-clear per side, as
its Binance converter does; ``correct_event_order`` for rows whose two clocks disagree), writes
``copies`` time-shifted copies as .npz files (the engine streams them one by one) and runs a plain
replay or the market-making loop with the same models as tradelab's run. Prints one JSON line.

hftbacktest 2.4.4's ``partial_fill_exchange`` stops a market-making run with InvalidOrderStatus
(code 14) after a few hundred fills (hftbacktest issues #301 and #312: an order whose partial fill
exactly equals its remainder is never removed) and does not book partial fills into the position
(#316), so this side uses ``no_partial_fill_exchange``: a resting order fills whole once a trade
reaches it through the queue model, a crossing order fills whole at the best price.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from hftbacktest import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    GTX,
    LIMIT,
    SELL_EVENT,
    TRADE_EVENT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
    event_dtype,
)
from hftbacktest.data.validation import correct_event_order, validate_event_order
from numba import njit

# tradelab event flags (tradelab/core/events.py)
T_DEPTH, T_TRADE, T_SNAPSHOT, T_BID = 1, 2, 1 << 8, 1 << 10


def convert(base: np.ndarray) -> np.ndarray:
    kind = base["ev"] & 0xFF
    snap = (base["ev"] & T_SNAPSHOT) != 0
    bid = (base["ev"] & T_BID) != 0
    rows = []
    i = 0
    n = len(base)
    while i < n:
        if kind[i] == T_DEPTH and snap[i] and (i == 0 or not snap[i - 1]):
            j = i
            while j < n and snap[j] and kind[j] == T_DEPTH:
                j += 1
            seg = base[i:j]
            for side_bid, flag in ((True, BUY_EVENT), (False, SELL_EVENT)):
                s = seg[((seg["ev"] & T_BID) != 0) == side_bid]
                if len(s):
                    worst = s["px"].min() if side_bid else s["px"].max()
                    rows.append((DEPTH_CLEAR_EVENT | flag, s["exch_ts"][0], s["local_ts"][0],
                                 worst, 0.0, 0, 0, 0.0))
                    for r in s:
                        rows.append((DEPTH_SNAPSHOT_EVENT | flag, r["exch_ts"], r["local_ts"],
                                     r["px"], r["qty"], 0, 0, 0.0))
            i = j
            continue
        side = BUY_EVENT if bid[i] else SELL_EVENT
        if kind[i] == T_DEPTH:
            rows.append((DEPTH_EVENT | side, base["exch_ts"][i], base["local_ts"][i],
                         base["px"][i], base["qty"][i], 0, 0, 0.0))
        elif kind[i] == T_TRADE:
            rows.append((TRADE_EVENT | side, base["exch_ts"][i], base["local_ts"][i],
                         base["px"][i], base["qty"][i], 0, 0, 0.0))
        i += 1
    data = np.array(rows, dtype=event_dtype)
    ex = np.argsort(data["exch_ts"], kind="stable")
    lo = np.argsort(data["local_ts"], kind="stable")
    data = correct_event_order(data, ex, lo)
    validate_event_order(data)
    return data


@njit
def replay_loop(hbt):
    while hbt.elapse(1_000_000_000) == 0:
        pass
    return 0


@njit
def mm_loop(hbt, half_spread_bps, skew_bps, max_pos, qty, interval):
    next_id = 1
    decisions = 0
    while True:
        rc = hbt.elapse(interval)
        if rc != 0:
            if rc != 1:
                print("hftbacktest elapse returned", rc, "at", hbt.current_timestamp)
            break
        decisions += 1
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        tick = depth.tick_size
        bb = depth.best_bid_tick
        ba = depth.best_ask_tick
        bq = depth.best_bid_qty
        aq = depth.best_ask_qty
        orders = hbt.orders(0)
        pos = hbt.position(0)
        wb = -1
        wa = -1
        if bq > 0.0 and aq > 0.0 and bb < ba:
            bid = bb * tick
            ask = ba * tick
            micro = (bid * aq + ask * bq) / (bq + aq)
            r = micro * (1.0 - skew_bps * 1e-4 * pos / max_pos)
            qb = r * (1.0 - half_spread_bps * 1e-4)
            qa = r * (1.0 + half_spread_bps * 1e-4)
            if not pos + qty > max_pos + 1e-9:
                wb = min(int(np.floor(qb / tick + 1e-9)), ba - 1)
            if not pos - qty < -max_pos - 1e-9:
                wa = max(int(np.ceil(qa / tick - 1e-9)), bb + 1)
        have_b = False
        have_a = False
        vals = orders.values()
        while vals.has_next():
            o = vals.get()
            if o.cancellable:
                if o.side == 1:
                    if o.price_tick == wb and not have_b:
                        have_b = True
                    else:
                        hbt.cancel(0, o.order_id, False)
                else:
                    if o.price_tick == wa and not have_a:
                        have_a = True
                    else:
                        hbt.cancel(0, o.order_id, False)
        if wb >= 0 and not have_b:
            hbt.submit_buy_order(0, next_id, wb * tick, qty, GTX, LIMIT, False)
            next_id += 1
        if wa >= 0 and not have_a:
            hbt.submit_sell_order(0, next_id, wa * tick, qty, GTX, LIMIT, False)
            next_id += 1
    return decisions


def peak_rss_mib() -> float:
    """VmHWM of this process (``ru_maxrss`` would carry the parent's peak across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build(files, maker, taker):
    asset = (
        BacktestAsset()
        .data(files)
        .linear_asset(1.0)
        .constant_order_latency(10_000_000, 10_000_000)
        .power_prob_queue_model(3.0)
        .no_partial_fill_exchange()
        .trading_value_fee_model(maker, taker)
        .tick_size(0.1)
        .lot_size(0.001)
        .last_trades_capacity(0)
    )
    return HashMapMarketDepthBacktest([asset])


def main() -> None:
    base_path, copies, mode, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cfg = json.loads(sys.argv[5])
    base = np.load(base_path)
    data = convert(base)
    span = int(base["exch_ts"][-1] - base["exch_ts"][0]) + 1_000_000_000
    files = []
    for k in range(copies):
        path = os.path.join(workdir, f"hbt_copy_{k}.npz")
        if not os.path.exists(path):
            c = data.copy()
            c["exch_ts"] += k * span
            c["local_ts"] += k * span
            np.savez(path, data=c)
        files.append(path)
    del data
    # warm-up on the first copy (numba compiles the loops)
    hbt = build(files[:1], cfg["maker"], cfg["taker"])
    if mode == "replay":
        replay_loop(hbt)
    else:
        mm_loop(hbt, cfg["half_spread_bps"], cfg["skew_bps"], cfg["max_position"], cfg["qty"],
                cfg["interval_ns"])
    hbt.close()
    hbt = build(files, cfg["maker"], cfg["taker"])
    t = time.perf_counter()
    if mode == "replay":
        decisions = replay_loop(hbt)
    else:
        decisions = mm_loop(hbt, cfg["half_spread_bps"], cfg["skew_bps"], cfg["max_position"],
                            cfg["qty"], cfg["interval_ns"])
    secs = time.perf_counter() - t
    sv = hbt.state_values(0)
    out = {
        "seconds": secs,
        "peak_rss_mib": peak_rss_mib(),
        "decisions": int(decisions),
        "fills": int(sv.num_trades),
        "volume": float(sv.trading_volume),
        "position": float(sv.position),
        "balance": float(sv.balance),
        "fees": float(sv.fee),
    }
    hbt.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
