"""Keep numba's on-disk cache honest across modules.

Numba stamps a cached kernel with a hash of its *own* source file only. A strategy's kernels
inline the feature steps they call, and read module constants (state layouts, ``EV_*`` flags)
as compile-time values, so after an edit of ``ta_nb.py`` the cached ``keltner_breakout.run_nb``
would still hold the old step: silently wrong numbers, or writes past a state vector whose
layout changed. :func:`clear_if_stale` closes that hole: at package import it hashes every
source the package's kernels can inline, and when that hash differs from the one stored beside
the cache it deletes the package's cache files, so numba recompiles them once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

STAMP = "tradelab-kernel-sources.sha256"


def sources_digest(dirs: Iterable[Path]) -> str:
    """SHA-256 over the names and bytes of every ``*.py`` file in ``dirs`` (sorted)."""
    h = hashlib.sha256()
    for d in sorted({Path(p).resolve() for p in dirs}):
        for f in sorted(d.glob("*.py")):
            h.update(f"{d.name}/{f.name}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _cache_dir(package_dir: Path) -> Path | None:
    """Where numba caches the kernels of ``package_dir``, asking numba's own locators."""
    try:
        from numba.core.caching import _CacheImpl
    except ImportError:  # pragma: no cover - numba internals moved
        return Path(package_dir) / "__pycache__"
    py_file = str(Path(package_dir) / "__init__.py")
    for cls in _CacheImpl._locator_classes:
        try:
            locator = cls.from_function(_cache_dir, py_file)
        except Exception:  # a locator that does not apply here
            continue
        if locator is not None:
            return Path(locator.get_cache_path())
    return None


def clear_if_stale(package_dir: Path, depends_on: Iterable[Path]) -> bool:
    """Delete the package's numba cache files when any source in ``depends_on`` changed since
    they were written; returns True when it cleared them."""
    cache = _cache_dir(Path(package_dir))
    if cache is None:
        return False
    digest = sources_digest([package_dir, *depends_on])
    stamp = cache / STAMP
    try:
        if stamp.read_text().strip() == digest:
            return False
    except OSError:
        pass
    modules = {f.stem for f in Path(package_dir).glob("*.py")}
    try:
        for f in cache.iterdir():
            if f.suffix in (".nbi", ".nbc") and f.name.split(".", 1)[0] in modules:
                f.unlink(missing_ok=True)
        stamp.write_text(digest + "\n")
    except OSError:
        return False
    return True
