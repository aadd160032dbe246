"""A sweep's finished chunks on disk, so that an interrupted sweep resumes where it stopped.

Each chunk's metrics, period returns and order count are written, whole or not at all, to
``<store>/runs/_chunks/<key>/<chunk>.npz`` as soon as they arrive. ``key`` is a hash of
everything the results depend on (the sweep config without where it runs, the symbol, the
parameter grid, the chunk size and the bars themselves), so a run of the same sweep on the same
data finds them and a changed sweep or changed data never does. The folder is removed once the
run is saved.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

CHUNKS_DIR = "_chunks"


def sweep_key(config_json: str, symbol: str, params: np.ndarray, chunk_size: int,
              bars: pd.DataFrame) -> str:
    """What a sweep's chunk results depend on, hashed."""
    h = hashlib.sha256()
    for part in (config_json, symbol, str(chunk_size), str(params.shape)):
        h.update(part.encode())
        h.update(b"\0")
    h.update(np.ascontiguousarray(params, dtype=np.float64).tobytes())
    for col in sorted(bars.columns):
        h.update(col.encode())
        h.update(np.ascontiguousarray(bars[col].to_numpy()).tobytes())
    return h.hexdigest()[:24]


class ChunkStore:
    """The written chunks of one sweep (one symbol) in ``folder``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    @classmethod
    def under(cls, runs_root: str | os.PathLike, key: str) -> ChunkStore:
        """The chunk folder of sweep ``key`` under a store's ``runs`` folder."""
        return cls(Path(runs_root) / CHUNKS_DIR / key)

    def _path(self, i: int) -> Path:
        return self.folder / f"{i:08d}.npz"

    def written(self) -> set[int]:
        """Chunk numbers already written."""
        if not self.folder.is_dir():
            return set()
        return {int(p.stem) for p in self.folder.glob("*.npz") if p.stem.isdigit()}

    def write(self, i: int, metrics: np.ndarray, period_returns: np.ndarray,
              n_orders: int) -> None:
        """Write chunk ``i`` (a temporary file renamed into place: never half a chunk)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{i:08d}.tmp.npz"
        np.savez(tmp, metrics=metrics, period_returns=period_returns,
                 n_orders=np.int64(n_orders))
        os.replace(tmp, self._path(i))

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Chunk ``i``: (metrics, period returns, orders)."""
        with np.load(self._path(i)) as z:
            return z["metrics"], z["period_returns"], int(z["n_orders"])

    def clear(self) -> None:
        """Remove the folder (the run is saved)."""
        shutil.rmtree(self.folder, ignore_errors=True)
