#!/usr/bin/env python
"""Zero-intelligence market benchmark: one simulated hour of a busy market; prints JSON.

- ``kernel``: ``ZIMarket.simulate_raw`` (the numba event kernel alone) for one hour;
- ``messages``: ``ZIMarket.advance`` (kernel plus Binance message encoding) for one hour.

The reference is the wall clock itself: ``speedup_vs_real_time`` is simulated seconds per
second of work. Targets (formerly timing asserts in ``tests/test_synth_zi.py``): the kernel
under 1.5 s and the messages under 6 s for the hour, i.e. at least 2,400x and 600x real time.
Usage: ``python benchmarks/synth_zi.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, log, machine  # noqa: E402

S = 1_000_000_000
HOUR_S = 3600
KERNEL_TARGET_S = 1.5
MESSAGES_TARGET_S = 6.0


def main() -> None:
    from tradelab.synth.zi import ZIConfig, ZIMarket

    cfg = ZIConfig(seed=3)
    log("warming up the kernels ...")
    ZIMarket(cfg).advance(cfg.start_ns + 10 * S)  # compile / load the numba cache
    raw, msg = ZIMarket(cfg), ZIMarket(cfg)
    t = time.perf_counter()
    ev, _, _ = raw.simulate_raw(cfg.start_ns + HOUR_S * S)
    kernel_s = time.perf_counter() - t
    t = time.perf_counter()
    out = msg.advance(cfg.start_ns + HOUR_S * S)
    messages_s = time.perf_counter() - t
    emit({
        "benchmark": "synth_zi", "machine": machine(), "simulated_s": HOUR_S,
        "events": len(ev), "events_per_simulated_s": len(ev) / HOUR_S, "messages": len(out),
        "kernel": {"seconds": kernel_s, "speedup_vs_real_time": HOUR_S / kernel_s,
                   "target_s": KERNEL_TARGET_S, "meets_target": kernel_s < KERNEL_TARGET_S},
        "messages_encoded": {"seconds": messages_s,
                             "speedup_vs_real_time": HOUR_S / messages_s,
                             "target_s": MESSAGES_TARGET_S,
                             "meets_target": messages_s < MESSAGES_TARGET_S},
    })


if __name__ == "__main__":
    main()
