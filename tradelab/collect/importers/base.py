"""What every importer shares: per-file reports, the reject log and the import manifest.

Each import run writes ``<store>/_imports/<run_id>.json`` (sources with their sha256, counts per
table and per message kind, rejects by reason, gaps, status) and, when anything was rejected,
``<store>/_imports/<run_id>.rejects.jsonl`` with one line per rejected input (file, line, reason,
the start of the text). Nothing is dropped silently: every input line ends up stored, counted as
deliberately skipped (with a named reason), or rejected.

Each file is one store transaction (:meth:`ImportRun.commit`): its parts become visible together
with the manifest that records it, under the store's commit lock. Rows the store already holds
(same content key, see ``tradelab.store.schema.ROW_KEYS``) are not stored again and are counted
as ``already_stored_<table>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from tradelab.store import txn
from tradelab.store.paths import new_run_id, resolve_root
from tradelab.store.writer import StoreWriter

MANIFEST_DIR = "_imports"
_REJECT_TEXT_MAX = 300
REJECT_LOG_MAX = 1000
"""Rejected lines logged in full per (file, reason); beyond that they are only counted."""


@dataclass
class FileReport:
    """Outcome of importing one source file."""

    path: str
    sha256: str = ""
    status: str = "pending"  # committed | skipped | failed
    detail: str = ""
    market: str | None = None
    exchange: str | None = None
    symbols: list[str] = field(default_factory=list)
    lines: int = 0
    messages: Counter = field(default_factory=Counter)
    rows: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    rejects: Counter = field(default_factory=Counter)
    gaps: int = 0
    resyncs: int = 0
    elapsed_s: float = 0.0
    txn: str | None = None
    book_unsynced: list[str] = field(default_factory=list)
    """Symbols whose book this file never synced: its deltas were not stored, so the file does
    not count as imported (a later import of it can resume the stored book)."""

    @property
    def n_rejects(self) -> int:
        return sum(self.rejects.values())

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("messages", "rows", "skipped", "rejects"):
            d[key] = dict(getattr(self, key))
        if self.status == "failed":
            d["rows"] = {}  # nothing of a failed file is stored: it lists no row counts
        return d


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ImportRun:
    """One invocation of an importer: owns the run id, the reject log and the manifest."""

    def __init__(self, kind: str, store: str | os.PathLike | None, argv: dict[str, Any]) -> None:
        self.kind = kind
        self.root = resolve_root(store, create=True)
        self.run_id = new_run_id()
        self.argv = argv
        self.files: list[FileReport] = []
        self.started = time.time()
        self.dir = self.root / MANIFEST_DIR
        self.dir.mkdir(exist_ok=True)
        self._reject_fh: IO[str] | None = None
        self.txns: list[str] = []
        self.reject_path = self.dir / f"{self.run_id}.rejects.jsonl"

    def reject(
        self, report: FileReport, line: int | None, reason: str, text: bytes | str = b""
    ) -> None:
        """Count a rejected input and log it with file, line and reason."""
        key = reason.split(":", 1)[0]
        report.rejects[key] += 1
        if report.rejects[key] > REJECT_LOG_MAX:
            return
        if self._reject_fh is None:
            self._reject_fh = open(self.reject_path, "a", encoding="utf-8")
        if isinstance(text, bytes):
            text = text[:_REJECT_TEXT_MAX].decode("utf-8", "replace")
        self._reject_fh.write(
            json.dumps(
                {
                    "file": report.path,
                    "line": line,
                    "reason": reason,
                    "text": text[:_REJECT_TEXT_MAX],
                }
            )
            + "\n"
        )

    def already_imported(self, sha: str) -> str | None:
        """Run id of an earlier committed, complete import of a file with this sha256, if any
        (a file whose book never synced is not complete: see ``FileReport.book_unsynced``).

        A manifest lists a file as committed a moment before its transaction's marker goes (both
        under the store's commit lock). A run killed in between leaves a record whose rows are
        still hidden; so the manifests are read under that lock, after dead transactions are
        recovered (such a commit is finished): "already imported" then means "visible".
        """
        with txn.commit_lock(self.root):
            txn.recover_locked(self.root)
            return self._committed_run_of(sha)

    def _committed_run_of(self, sha: str) -> str | None:
        for mf in self.dir.glob("*.json"):
            try:
                doc = json.loads(mf.read_text())
            except (OSError, ValueError):
                continue
            for f in doc.get("files", []):
                if (
                    f.get("sha256") == sha
                    and f.get("status") == "committed"
                    and not f.get("book_unsynced")
                ):
                    return doc.get("run_id")
        return None

    def commit(self, report: FileReport, writer: StoreWriter) -> None:
        """Commit ``writer`` as ``report``'s transaction: its parts become visible together with
        this run's manifest recording the file as committed (with the rows actually stored)."""
        writer.record_path = f"{MANIFEST_DIR}/{self.run_id}.json"

        def record(txn_id: str) -> None:
            report.status = "committed"
            report.txn = txn_id
            report.rows = Counter({t: n for t, n in writer.stats.rows.items() if n})
            for table, n in writer.stats.duplicates.items():
                if n:
                    report.skipped[f"already_stored_{table}"] = n
            self.txns.append(txn_id)
            self._write_manifest([*self.files, *([] if report in self.files else [report])],
                                 finished=None)

        writer.commit(record)

    def finish(self) -> Path:
        """Write the manifest (atomically) and close the reject log."""
        if self._reject_fh is not None:
            self._reject_fh.close()
            self._reject_fh = None
        return self._write_manifest(self.files, finished=time.time())

    def _write_manifest(self, files: list[FileReport], finished: float | None) -> Path:
        if self._reject_fh is not None:
            self._reject_fh.flush()
        doc = {
            "run_id": self.run_id,
            "kind": self.kind,
            "args": self.argv,
            "started": self.started,
            "finished": finished,
            "files": [f.as_dict() for f in files],
            "txns": list(self.txns),
            "rejects_file": str(self.reject_path) if self.reject_path.exists() else None,
        }
        path = self.dir / f"{self.run_id}.json"
        tmp = self.dir / f".{self.run_id}.json.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, indent=2, default=str))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path
