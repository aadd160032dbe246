"""Kernels for the analysis of an event backtest: the mid price through time.

``mid_series_nb`` replays events into a matching core (no orders) and writes, at the end of
every depth message with both sides present, the exchange time, the local time and the mid.
Chunks are processed one after another on the same core, so memory stays bounded by the output.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradelab.core.events import EV_DEPTH, EV_KIND_MASK, EV_LAST
from tradelab.matching import core_nb as cn
from tradelab.matching.types import I_BASE, I_BEST_ASK, I_BEST_BID, I_N


@njit(cache=True, error_model="numpy", _nrt=False)
def mid_series_nb(c: cn.Core, ev: np.ndarray, local_offset: int, ts: np.ndarray,
                  lts: np.ndarray, mid: np.ndarray, k: int) -> int:
    """Append ``(exch_ts, local_ts + local_offset, mid)`` rows from ``ev`` at index ``k`` on;
    returns the new count (stops early, returning -1, when the outputs are full)."""
    for i in range(ev.shape[0]):
        r = ev[i]
        e = np.int64(r.ev)
        cn.on_event_nb(c, e, r.exch_ts, r.px, r.qty)
        if (e & EV_KIND_MASK) == EV_DEPTH and (e & EV_LAST) != 0:
            ib = c.iv[I_BEST_BID]
            ia = c.iv[I_BEST_ASK]
            if ib >= 0 and ia < c.iv[I_N]:
                if k >= ts.shape[0]:
                    return -1
                base = c.iv[I_BASE]
                ts[k] = r.exch_ts
                lts[k] = r.local_ts + local_offset
                mid[k] = 0.5 * (cn.to_px_nb(c, base + ib) + cn.to_px_nb(c, base + ia))
                k += 1
    return k
