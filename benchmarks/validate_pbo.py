#!/usr/bin/env python
"""PBO (CSCV) benchmark at sweep size; prints JSON.

``tradelab``: :func:`tradelab.validate.pbo` on N = 10,000 configurations, T = 90 daily returns,
S = 16 blocks (12,870 splits). ``reference``: a plain transcription of the paper's steps (a loop
over the splits, block means, scipy ranks) on the same matrix, timed on the first
``--reference-splits`` splits and scaled to all of them. Target (formerly a timing assert in
``tests/test_validate_pbo.py``): under 15 s.
Usage: ``python benchmarks/validate_pbo.py [--reference-splits 500]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from itertools import combinations, islice
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, log, machine  # noqa: E402

T, N, S = 90, 10_000, 16
TARGET_S = 15.0


def reference(m: np.ndarray, s: int, n_splits: int) -> float:
    """Seconds per split of the plain procedure (mean metric)."""
    from scipy.stats import rankdata

    n = m.shape[1]
    blocks = np.array_split(np.arange(m.shape[0]), s)
    t0 = time.perf_counter()
    done = 0
    for combo in islice(combinations(range(s), s // 2), n_splits):
        is_rows = np.concatenate([blocks[b] for b in combo])
        oos_rows = np.concatenate([blocks[b] for b in range(s) if b not in combo])
        is_perf, oos_perf = m[is_rows].mean(axis=0), m[oos_rows].mean(axis=0)
        best = int(np.argmax(is_perf))
        w = rankdata(oos_perf)[best] / (n + 1)
        math.log(w / (1 - w))
        done += 1
    return (time.perf_counter() - t0) / done


def main() -> None:
    from tradelab.validate import pbo

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-splits", type=int, default=500)
    args = ap.parse_args()
    m = np.random.default_rng(3).normal(0, 0.01, (T, N))
    pbo(m[:, :50], n_splits=4)  # compile / load the numba cache
    log("pbo, 10,000 configurations ...")
    t0 = time.perf_counter()
    r = pbo(m, n_splits=S)
    seconds = time.perf_counter() - t0
    log("plain reference ...")
    per_split = reference(m, S, args.reference_splits)
    ref_s = per_split * r.n_combinations
    emit({"benchmark": "validate_pbo", "machine": machine(), "rows": T, "configurations": N,
          "n_splits": S, "combinations": r.n_combinations,
          "tradelab": {"seconds": seconds, "pbo": r.pbo},
          "reference": {"seconds_estimated": ref_s, "splits_timed": args.reference_splits},
          "speedup_vs_reference": ref_s / seconds, "target_s": TARGET_S,
          "meets_target": seconds < TARGET_S})


if __name__ == "__main__":
    main()
