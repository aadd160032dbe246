"""Provenance stamp for reports and promotions: what produced a result, from what.

A stamp holds the git commit of the checkout (and whether the tree had uncommitted changes),
the config as run, the versions of the packages that shape results, and the store partitions a
job read with a content hash.

The partition hash is cheap by design: it is the SHA-256 of every part file's relative path,
size and modification time (nanoseconds), sorted, not of the bytes. Part files in the store are
immutable once visible (write, then rename), so a changed partition always shows up as a new or
removed file name, a new size or a new mtime; hashing names+sizes+mtimes costs one ``stat`` per
file however large the store is. :func:`stale` recomputes it to tell whether a report is stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "tradelab",
    "numpy",
    "pandas",
    "numba",
    "vectorbt",
    "scipy",
    "duckdb",
    "pyarrow",
    "plotly",
    "quantstats",
    "papermill",
    "nbconvert",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def git_state(cwd: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout at ``cwd``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": bool(status.strip())}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def partitions_read(
    store: Path,
    tables: list[str] | None = None,
    exchange: str | None = None,
    symbols: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The store's partitions (table, exchange, symbol, date) matching the filters, each with
    its part count and content hash (see the module docstring)."""
    store = Path(store)
    out = []
    for table_dir in sorted(p for p in store.iterdir() if p.is_dir()) if store.is_dir() else []:
        table = table_dir.name
        if table == "runs" or table.startswith((".", "_")) or (tables and table not in tables):
            continue
        for part_dir in sorted(table_dir.glob("exchange=*/symbol=*/date=*")):
            ex = part_dir.parent.parent.name.split("=", 1)[1]
            sym = part_dir.parent.name.split("=", 1)[1]
            if (exchange and ex != exchange) or (symbols and sym not in symbols):
                continue
            files = sorted(f for f in part_dir.glob("*.parquet") if not f.name.startswith("."))
            out.append(
                {
                    "table": table,
                    "exchange": ex,
                    "symbol": sym,
                    "date": part_dir.name.split("=", 1)[1],
                    "parts": len(files),
                    "hash": _files_hash(files, part_dir),
                }
            )
    return out


def _files_hash(files: list[Path], base: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def store_hash(partitions: list[dict[str, Any]]) -> str:
    """One hash over a list of partition hashes (order-independent)."""
    h = hashlib.sha256()
    for p in sorted(partitions, key=lambda p: (p["table"], p["exchange"], p["symbol"], p["date"])):
        h.update(f"{p['table']}/{p['exchange']}/{p['symbol']}/{p['date']}={p['hash']}\n".encode())
    return h.hexdigest()[:16]


def stamp(
    config: dict[str, Any] | None = None,
    store: Path | None = None,
    tables: list[str] | None = None,
    exchange: str | None = None,
    symbols: list[str] | None = None,
) -> dict[str, Any]:
    """The full provenance stamp of a job or a promotion."""
    parts = partitions_read(store, tables, exchange, symbols) if store is not None else []
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "config": config or {},
        "packages": package_versions(),
        "store": str(store) if store is not None else None,
        "partitions": parts,
        "store_hash": store_hash(parts),
    }


def stale(prov: dict[str, Any]) -> bool:
    """True when the store partitions a stamp records have changed since (or are gone)."""
    if not prov.get("store"):
        return False
    parts = prov.get("partitions") or []
    tables = sorted({p["table"] for p in parts}) or None
    now = {
        (p["table"], p["exchange"], p["symbol"], p["date"]): p["hash"]
        for p in partitions_read(Path(prov["store"]), tables)
    }
    return any(
        now.get((p["table"], p["exchange"], p["symbol"], p["date"])) != p["hash"] for p in parts
    )
