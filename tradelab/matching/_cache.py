"""Drop numba cache files of this package when any source they may inline changed.

Same rule as ``tradelab.features.numba_cache`` (kept separate so the matching core imports no
other tradelab package; the two should move to ``tradelab.core`` together).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

STAMP = "tradelab-matching-sources.sha256"


def _digest(files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted({Path(p).resolve() for p in files}):
        h.update(f.name.encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def clear_if_stale(package_dir: Path, extra_files: Iterable[Path]) -> bool:
    """Delete ``package_dir``'s ``.nbi``/``.nbc`` files when the sources' digest changed."""
    cache = Path(package_dir) / "__pycache__"
    files = [*Path(package_dir).glob("*.py"), *extra_files]
    digest = _digest(files)
    stamp = cache / STAMP
    try:
        if stamp.read_text().strip() == digest:
            return False
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in cache.iterdir():
            if f.suffix in (".nbi", ".nbc"):
                f.unlink(missing_ok=True)
        stamp.write_text(digest + "\n")
    except OSError:
        return False
    return True
