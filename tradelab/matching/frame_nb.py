"""The local book's top levels as a row of a book frame (``tradelab.features.lob_nb`` layout),
for book strategies: the event backtester's loop and the live book runner write the same rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradelab.matching import core_nb as cn
from tradelab.matching.types import I_BASE, I_BEST_ASK, I_BEST_BID, I_N


@njit(cache=True, error_model="numpy", _nrt=False)
def write_frame_row_nb(lb: cn.Core, frame: np.ndarray, i: int) -> None:
    """Top ``L = frame.shape[1] // 4`` levels of the local book into row ``i`` of a book frame
    (``tradelab.features.lob_nb`` layout: bid prices, bid sizes, ask prices, ask sizes)."""
    levels = frame.shape[1] // 4
    base = lb.iv[I_BASE]
    n = lb.iv[I_N]
    j = lb.iv[I_BEST_BID]
    for k in range(levels):
        while j >= 0 and lb.bid_q[j] <= 0.0:
            j -= 1
        if j >= 0:
            frame[i, k] = cn.to_px_nb(lb, base + j)
            frame[i, levels + k] = lb.bid_q[j]
            j -= 1
        else:
            frame[i, k] = np.nan
            frame[i, levels + k] = np.nan
    j = lb.iv[I_BEST_ASK]
    for k in range(levels):
        while j < n and lb.ask_q[j] <= 0.0:
            j += 1
        if j < n:
            frame[i, 2 * levels + k] = cn.to_px_nb(lb, base + j)
            frame[i, 3 * levels + k] = lb.ask_q[j]
            j += 1
        else:
            frame[i, 2 * levels + k] = np.nan
            frame[i, 3 * levels + k] = np.nan


__all__ = ["write_frame_row_nb"]
