"""The one Parquet writer every producer uses (importers, collector, runners).

Rows are buffered per (table, exchange, symbol) and written as part files, one per UTC date, when a
buffer reaches ``batch_rows`` or on :meth:`StoreWriter.flush`. A part file is written under a hidden
temporary name, fsynced, then published under its final name with a hard link, which fails rather
than overwrite: readers see either nothing or a complete file, and an existing part is never
replaced. Several runs may append to the same partition; part names carry the writer's id.

Rows repeating a stored row's content key (:data:`tradelab.store.schema.ROW_KEYS`) are not
stored twice: a batch never holds a key twice, and a deferred writer's commit drops what the
partition already holds.

In ``deferred`` mode (used by importers) the writer is one transaction (:mod:`tradelab.store.txn`):
parts stay hidden until :meth:`StoreWriter.commit`, which, under the store's commit lock, drops
rows already stored, links the parts under their final names, lets the caller record the commit
(the import manifest) and then removes the transaction's marker: all parts become visible to the
catalog at once. :meth:`abort` removes what it wrote; a killed writer's leftovers are removed by
the next writer that starts, and again by each commit (under the same lock, before the dedup), so
a commit never stores rows that a writer dead since it started had already recorded.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tradelab.core.timeutil import NS_PER_DAY, days_since_epoch_to_date
from tradelab.errors import StoreError
from tradelab.store import txn
from tradelab.store.dedupe import KeySet, dedupe_batch, has_key
from tradelab.store.paths import (
    check_exchange,
    check_symbol,
    is_pending,
    new_part_name,
    new_run_id,
    partition_dir,
    resolve_root,
)
from tradelab.store.schema import MESSAGE_TABLES, PARTITION_COLUMNS, ROW_KEYS, schema_for

Columns = Mapping[str, Any]


@dataclass
class WriterStats:
    """What a writer has published so far."""

    rows: dict[str, int] = field(default_factory=dict)
    duplicates: Counter = field(default_factory=Counter)
    files: int = 0
    bytes: int = 0
    paths: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": dict(self.rows), "duplicates": dict(self.duplicates),
                "files": self.files, "bytes": self.bytes}


def conform(table: str, data: pa.Table | pa.RecordBatch | Columns) -> pa.Table:
    """Turn ``data`` into a table with exactly ``table``'s schema, or raise a ``StoreError``.

    Missing nullable columns become nulls; a missing required column, an unknown column, a
    partition column inside the data, a value that cannot be cast, or a null in a required
    column is an error naming the column.
    """
    schema = schema_for(table)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        cols = {name: data.column(name) for name in data.column_names}
        n = data.num_rows
    else:
        cols = dict(data)
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise StoreError(f"{table}: columns have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
    for name in cols:
        if name in PARTITION_COLUMNS:
            raise StoreError(f"{table}: column {name!r} is a partition key; pass it as an argument")
        if schema.get_field_index(name) < 0:
            raise StoreError(f"{table}: unknown column {name!r}; expected {schema.names}")
    arrays = []
    for fld in schema:
        if fld.name in cols:
            value = cols[fld.name]
            try:
                arr = (
                    value
                    if isinstance(value, (pa.Array, pa.ChunkedArray))
                    else pa.array(value, from_pandas=True)
                )
                if arr.type != fld.type:
                    arr = arr.cast(fld.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise StoreError(
                    f"{table}: column {fld.name!r} cannot be stored as {fld.type}: {exc}"
                ) from None
            if not fld.nullable and arr.null_count:
                raise StoreError(
                    f"{table}: column {fld.name!r} has {arr.null_count} null values but is required"
                )
        elif fld.nullable:
            arr = pa.nulls(n, type=fld.type)
        else:
            raise StoreError(f"{table}: required column {fld.name!r} is missing")
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StoreWriter:
    """Buffered, atomic, append-only Parquet writer for the partitioned store."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        batch_rows: int = 500_000,
        deferred: bool = False,
        run_id: str | None = None,
        fsync: bool = True,
        compression: str = "zstd",
        row_group_rows: int = 256_000,
        record_path: str | None = None,
    ) -> None:
        """``record_path``: store-relative path of the JSON document listing committed
        transactions (``txns``), written by ``commit(record=...)``; lets recovery finish a
        commit that was killed after it was recorded."""
        self.root = resolve_root(root, create=True)
        self.batch_rows = int(batch_rows)
        self.deferred = deferred
        self.run_id = run_id or new_run_id()
        self.fsync = fsync
        self.compression = compression
        self.row_group_rows = row_group_rows
        self.record_path = record_path
        self.stats = WriterStats()
        self.writer_id = new_run_id()
        self._buffers: dict[tuple[str, str, str], list[pa.Table]] = {}
        self._buffered_rows: dict[tuple[str, str, str], int] = {}
        # (hidden pending path, final path, table)
        self._pending: list[tuple[Path, Path, str]] = []
        self._marker: txn.Marker | None = None
        self._counter = 0
        self._closed = False
        self.recovered = txn.recover(self.root)

    # -- public API -------------------------------------------------------------------------

    def write(
        self, table: str, exchange: str, symbol: str, data: pa.Table | pa.RecordBatch | Columns
    ) -> int:
        """Buffer rows for one partition key; returns the number of rows accepted."""
        if self._closed:
            raise StoreError("writer is closed")
        check_exchange(exchange)
        check_symbol(symbol)
        tbl = conform(table, data)
        if tbl.num_rows == 0:
            return 0
        key = (table, exchange, symbol)
        self._buffers.setdefault(key, []).append(tbl)
        self._buffered_rows[key] = self._buffered_rows.get(key, 0) + tbl.num_rows
        if self._buffered_rows[key] >= self.batch_rows:
            self._flush_key(key)
        return tbl.num_rows

    @property
    def buffered_rows(self) -> int:
        """Rows accepted but not yet written to a part file."""
        return sum(self._buffered_rows.values())

    def flush(self) -> None:
        """Write every buffered row to part files (published, or pending in deferred mode)."""
        for key in list(self._buffers):
            self._flush_key(key)

    def commit(self, record: Callable[[str], None] | None = None) -> list[Path]:
        """Flush, then publish the pending parts as one transaction (deferred mode).

        Under the store's commit lock: rows whose key the partition already holds are dropped,
        the parts are linked under their final names (still hidden by the transaction marker),
        ``record(writer_id)`` is called (an importer writes its manifest there, listing the id
        in ``txns``) and the marker is removed, which makes every part visible at once.
        Returns the published paths.
        """
        self.flush()
        if not self._pending:
            if record is not None:
                record(self.writer_id)
            self._end_txn()
            return []
        assert self._marker is not None
        if self.record_path:
            self._marker.set_record(self.record_path)
        self._marker.sync()
        published: list[Path] = []
        with txn.commit_lock(self.root):
            # a writer that died since this one started may have recorded its commit without
            # removing its marker: finish (or undo) it first, or its rows, hidden now and
            # visible after a later recovery, would not count as stored and would be doubled
            self._add_recovered(txn.recover_locked(self.root))
            try:
                self._drop_stored()
                for pending, final, _table in self._pending:
                    published.append(self._publish(pending, final))
                self._pending.clear()
                if record is not None:
                    record(self.writer_id)
            except BaseException:
                # not recorded: undo the links before the marker goes, or they would show
                for path in published:
                    path.unlink(missing_ok=True)
                self.abort()
                raise
            self._end_txn()
        return published

    def abort(self) -> None:
        """Drop buffered rows and delete pending parts (deferred mode); published parts stay."""
        self._buffers.clear()
        self._buffered_rows.clear()
        for pending, _final, _table in self._pending:
            pending.unlink(missing_ok=True)
        self._pending.clear()
        self._end_txn()

    def close(self) -> None:
        """Commit everything and refuse further writes."""
        if not self._closed:
            self.commit()
            self._closed = True

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort() if self.deferred else self.close()
            self._closed = True

    # -- internals --------------------------------------------------------------------------

    def _flush_key(self, key: tuple[str, str, str]) -> None:
        parts = self._buffers.pop(key, None)
        self._buffered_rows.pop(key, None)
        if not parts:
            return
        table, exchange, symbol = key
        tbl = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        ts = tbl.column("ts").to_numpy()
        days = ts // NS_PER_DAY
        first, last = int(days.min()), int(days.max())
        if first == last:
            self._write_part(table, exchange, symbol, days_since_epoch_to_date([first])[0], tbl)
            return
        uniq = np.unique(days)
        for day, date in zip(uniq, days_since_epoch_to_date(uniq)):
            mask = pa.array(days == day)
            self._write_part(table, exchange, symbol, date, pc.filter(tbl, mask))

    def _add_recovered(self, counts: dict[str, int]) -> None:
        for key, n in counts.items():
            self.recovered[key] = self.recovered.get(key, 0) + n

    def _begin(self, directory: Path) -> txn.Marker:
        """The transaction marker (made before the first file is written); notes ``directory``."""
        if self._marker is None:
            self._marker = txn.Marker(
                self.root, self.writer_id, self.deferred,
                {"run_id": self.run_id, "record": self.record_path},
                fsync=self.fsync and self.deferred,  # a stream marker only guards temp files
            )
        self._marker.touch_dir(directory)
        return self._marker

    def _end_txn(self) -> None:
        if self._marker is not None:
            self._marker.release()
            self._marker = None
            self.writer_id = new_run_id()

    def _write_part(self, table: str, exchange: str, symbol: str, date: str, tbl: pa.Table) -> None:
        if has_key(table):
            tbl, dropped = dedupe_batch(table, tbl)
            if dropped:
                self.stats.duplicates[table] += dropped
        directory = partition_dir(self.root, table, exchange, symbol, date)
        directory.mkdir(parents=True, exist_ok=True)
        self._begin(directory)
        self._counter += 1
        name = new_part_name(self.writer_id, self._counter)
        tmp = directory / f".{name}.tmp"
        try:
            self._write_file(tbl, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            if not self.deferred:
                self._end_txn()
            raise
        final = directory / name
        self.stats.rows[table] = self.stats.rows.get(table, 0) + tbl.num_rows
        self.stats.bytes += tmp.stat().st_size
        if self.deferred:
            pending = directory / f".{name}.pending"
            os.replace(tmp, pending)
            self._pending.append((pending, final, table))
        else:
            self._publish(tmp, final)
            self._end_txn()

    def _write_file(self, tbl: pa.Table, path: Path) -> None:
        pq.write_table(tbl, path, compression=self.compression, row_group_size=self.row_group_rows)
        if self.fsync:
            _fsync_path(path)

    def _drop_stored(self) -> None:
        """Drop pending rows whose key is already committed in their partition, or repeated
        across this writer's parts (called under the commit lock)."""
        by_dir: dict[Path, list[int]] = {}
        for i, (pending, _final, table) in enumerate(self._pending):
            if has_key(table):
                by_dir.setdefault(pending.parent, []).append(i)
        hidden = set(txn.pending_ids(self.root))
        gone: set[int] = set()
        for directory, idx in by_dir.items():
            table = self._pending[idx[0]][2]
            stored = [
                directory / n
                for n in os.listdir(directory)
                if not n.startswith(".") and n.endswith(".parquet")
                and txn.part_id(n) not in hidden
            ]
            if not stored and len(idx) == 1:
                continue  # the batch was deduplicated when written
            key, fallback = ROW_KEYS[table]
            extra = ("flags",) if table in MESSAGE_TABLES else ()
            cols = sorted({*key, *(fallback or ()), *extra})
            seen = KeySet(table)
            for path in sorted(stored):
                seen.admit(pq.read_table(path, columns=cols))
            for i in idx:
                pending = self._pending[i][0]
                tbl = pq.read_table(pending)
                keep = seen.admit(tbl)
                if keep is None:
                    continue
                dropped = int((~keep).sum())
                self.stats.duplicates[table] += dropped
                self.stats.rows[table] -= dropped
                if dropped == tbl.num_rows:
                    pending.unlink()
                    gone.add(i)
                    continue
                tmp = pending.with_name(pending.name + ".tmp")
                self._write_file(tbl.filter(pa.array(keep)), tmp)
                os.replace(tmp, pending)
        if gone:
            self._pending = [p for i, p in enumerate(self._pending) if i not in gone]

    def _publish(self, hidden: Path, final: Path) -> Path:
        while True:
            try:
                os.link(hidden, final)  # fails instead of overwriting an existing part
                break
            except FileExistsError:
                self._counter += 1
                final = final.with_name(new_part_name(self.writer_id, self._counter))
        hidden.unlink()
        self.stats.files += 1
        self.stats.paths.append(final)
        return final


def stale_hidden_files(root: str | os.PathLike, older_than_s: float = 3600.0) -> list[Path]:
    """Hidden temporary/pending part files left by crashed runs, older than ``older_than_s``."""
    base = resolve_root(root)
    now = time.time()
    found = []
    for dirpath, _dirs, files in os.walk(base):
        for name in files:
            if is_pending(name):
                path = Path(dirpath) / name
                if now - path.stat().st_mtime > older_than_s:
                    found.append(path)
    return found
