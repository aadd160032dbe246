"""Helpers shared by the benchmarks: machine description, timing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import psutil


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "pandas", "numba", "pyarrow", "duckdb", "vectorbt", "TA-Lib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "packages": versions}


def best_of(fn: Callable[[], Any], repeat: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs after ``warmup`` runs; returns (seconds, last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(doc: dict[str, Any]) -> None:
    """Print the benchmark document as JSON on stdout."""
    json.dump(doc, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def data_dir() -> str | None:
    """The shared recordings (TRADELAB_TEST_DATA, else ../shared/data beside the checkout)."""
    env = os.environ.get("TRADELAB_TEST_DATA")
    if env and os.path.isdir(env):
        return env
    guess = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
    return os.path.abspath(guess) if os.path.isdir(guess) else None
