"""Write transactions of the store: markers, the commit lock and crash recovery.

Every writer registers itself in ``<store>/_txn/`` before it writes its first part file:

- ``<id>.pending``: a deferred writer (an import). Its part files carry ``<id>`` in their name
  and are invisible to the catalog for as long as this marker exists, even once they are linked
  under their final names. Removing the marker is the commit point: every part of the
  transaction becomes visible at once.
- ``<id>.stream``: a streaming writer (the collector, backfills): each part is visible as soon
  as it is published; the marker exists only while a part is being written and says who owns
  the hidden temporary file.

The owner holds an ``fcntl`` lock on its marker for as long as it lives, so liveness does not
depend on pids (which are reused). The first line of a marker is a JSON header (pid, run id,
the record that proves a commit); each later line is a partition directory the writer touched.

:func:`recover` (run under the store's commit lock by every writer when it starts, by every
commit before it drops already-stored rows, and by an importer before it trusts a manifest's
"committed") rolls back dead transactions: a dead ``.pending`` writer's parts are deleted
unless its record (an import manifest) lists the transaction as committed, in which case the
commit is completed; a dead writer's hidden temporary files are deleted. A live writer's files
are never touched. A child process that inherits a marker's open file (``fork`` without
``exec``) keeps its lock, so its writer looks alive until the child exits too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TXN_DIR = "_txn"
PENDING = ".pending"
STREAM = ".stream"


def txn_dir(root: Path) -> Path:
    return root / TXN_DIR


@contextlib.contextmanager
def commit_lock(root: Path) -> Iterator[None]:
    """The store-wide lock around every commit and recovery (``fcntl.flock`` on ``_txn/``)."""
    d = txn_dir(root)
    d.mkdir(exist_ok=True)
    fd = os.open(d, os.O_RDONLY)  # flock on the directory itself: no lock file to leave behind
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def pending_ids(root: Path) -> list[str]:
    """Ids of transactions not committed (live or dead): their parts are not visible."""
    d = txn_dir(root)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    return sorted(n[: -len(PENDING)] for n in names if n.endswith(PENDING))


def part_id(name: str) -> str | None:
    """The writer id inside a part-file name ``part-<ns>-<id>-<n>.parquet`` (hidden or not)."""
    base = name.lstrip(".")
    if not base.startswith("part-"):
        return None
    fields = base.split("-")
    return fields[2] if len(fields) >= 4 else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_locked(path: Path) -> IO[str]:
    """Create ``path`` and lock it. Between the two steps the new file is unlocked, and a
    recovery running in another process may lock it (so this waits instead of failing) and
    remove it as the leftover of a dead writer: a file found unlinked once locked is made
    again."""
    while True:
        fh: IO[str] = open(path, "x", encoding="utf-8")  # noqa: SIM115 - held open
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        if os.fstat(fh.fileno()).st_nlink > 0:
            return fh  # locked and still in place: recovery leaves it alone from now on
        fh.close()


class Marker:
    """A writer's registration in ``_txn/``; holds its liveness lock until closed."""

    def __init__(self, root: Path, writer_id: str, deferred: bool, header: dict[str, Any],
                 fsync: bool = True) -> None:
        self.root = root
        self.id = writer_id
        self.path = txn_dir(root) / f"{writer_id}{PENDING if deferred else STREAM}"
        self.dirs: set[str] = set()
        self.path.parent.mkdir(exist_ok=True)
        # locked under a hidden name, then renamed into place: recovery never sees an unlocked
        # marker of a live writer, so creating one needs no store-wide lock
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fh = _open_locked(tmp)
        fh.write(json.dumps({"pid": os.getpid(), **header}) + "\n")
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
        os.rename(tmp, self.path)
        if fsync:
            _fsync_dir(self.path.parent)
        self._fh: IO[str] | None = fh
        self.fsync = fsync

    def touch_dir(self, directory: Path) -> None:
        """Record a partition directory before the first file is written into it."""
        rel = str(directory.relative_to(self.root))
        if rel in self.dirs or self._fh is None:
            return
        self.dirs.add(rel)
        self._fh.write(rel + "\n")
        self._fh.flush()

    def set_record(self, record: str) -> None:
        """Name the JSON document (store-relative) whose ``txns`` will list this commit."""
        if self._fh is not None:
            self._fh.write(f"#record {record}\n")
            self._fh.flush()

    def sync(self) -> None:
        if self._fh is not None and self.fsync:
            os.fsync(self._fh.fileno())

    def release(self) -> None:
        """The commit point of a deferred writer: remove the marker, then drop the lock."""
        if self._fh is None:
            return
        self.path.unlink(missing_ok=True)
        if self.fsync:
            _fsync_dir(self.path.parent)
        self._fh.close()
        self._fh = None


def _read_marker(path: Path) -> tuple[dict[str, Any], list[str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}, []
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    for ln in lines[1:]:
        if ln.startswith("#record "):
            header["record"] = ln[len("#record "):]
    return header, [ln for ln in lines[1:] if ln and not ln.startswith("#")]


def _committed_by_record(root: Path, header: dict[str, Any], writer_id: str) -> bool:
    record = header.get("record")
    if not record:
        return False
    try:
        doc = json.loads((root / record).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return writer_id in doc.get("txns", [])


def _remove_files_of(root: Path, dirs: list[str], writer_id: str, visible_too: bool) -> int:
    removed = 0
    for rel in dirs:
        d = root / rel
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for name in names:
            if part_id(name) != writer_id:
                continue
            if name.startswith(".") or visible_too:
                (d / name).unlink(missing_ok=True)
                removed += 1
    return removed


def _remove_if_unlocked(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def recover(root: Path) -> dict[str, int]:
    """Roll back (or finish committing) the transactions of dead writers; see the module doc.

    Takes the store's commit lock. Returns counts: ``rolled_back``, ``rolled_forward``,
    ``files_removed``.
    """
    if not txn_dir(root).is_dir():
        return {"rolled_back": 0, "rolled_forward": 0, "files_removed": 0}
    with commit_lock(root):
        return recover_locked(root)


def recover_locked(root: Path) -> dict[str, int]:
    """:func:`recover` for a caller that already holds :func:`commit_lock` (``flock`` is per
    open file: taking it again from the same process would wait forever)."""
    d = txn_dir(root)
    out = {"rolled_back": 0, "rolled_forward": 0, "files_removed": 0}
    if not d.is_dir():
        return out
    for name in sorted(os.listdir(d)):
        if name.startswith(".") and name.endswith(".tmp"):
            _remove_if_unlocked(d / name)  # a marker whose writer died while creating it
            continue
        if not (name.endswith(PENDING) or name.endswith(STREAM)):
            continue
        path = d / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer
            header, dirs = _read_marker(path)
            writer_id = name.rsplit(".", 1)[0]
            deferred = name.endswith(PENDING)
            if deferred and _committed_by_record(root, header, writer_id):
                out["files_removed"] += _remove_files_of(root, dirs, writer_id, False)
                out["rolled_forward"] += 1
            else:
                out["files_removed"] += _remove_files_of(root, dirs, writer_id, deferred)
                out["rolled_back"] += int(deferred)
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return out
