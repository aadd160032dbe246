"""The one Parquet writer every producer uses (importers, collector, runners).

Rows are buffered per (table, exchange, symbol) and written as part files, one per UTC date, when a
buffer reaches ``batch_rows`` or on :meth:`StoreWriter.flush`. A part file is written under a hidden
temporary name, fsynced, then published under its final name with a hard link, which fails rather
than overwrite: readers see either nothing or a complete file, and an existing part is never
replaced. Several runs may append to the same partition; each run's parts carry its run id.

In ``deferred`` mode (used by importers) published parts stay hidden as ``.pending`` files until
:meth:`StoreWriter.commit`, so an import that fails half way leaves no visible trace; :meth:`abort`
removes what it wrote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tradelab.store.errors import StoreError
from tradelab.store.paths import (
    check_exchange,
    check_symbol,
    is_pending,
    new_part_name,
    new_run_id,
    partition_dir,
    resolve_root,
)
from tradelab.store.schema import PARTITION_COLUMNS, schema_for
from tradelab.store.timeutil import NS_PER_DAY, days_since_epoch_to_date

Columns = Mapping[str, Any]


@dataclass
class WriterStats:
    """What a writer has published so far."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    paths: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": dict(self.rows), "files": self.files, "bytes": self.bytes}


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
    ) -> None:
        self.root = resolve_root(root, create=True)
        self.batch_rows = int(batch_rows)
        self.deferred = deferred
        self.run_id = run_id or new_run_id()
        self.fsync = fsync
        self.compression = compression
        self.row_group_rows = row_group_rows
        self.stats = WriterStats()
        self._buffers: dict[tuple[str, str, str], list[pa.Table]] = {}
        self._buffered_rows: dict[tuple[str, str, str], int] = {}
        self._pending: list[tuple[Path, Path]] = []  # (hidden pending path, final path)
        self._counter = 0
        self._closed = False

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

    def commit(self) -> list[Path]:
        """Flush, then publish pending parts (deferred mode). Returns the published paths."""
        self.flush()
        published = []
        for pending, final in self._pending:
            self._publish(pending, final)
            published.append(final)
        self._pending.clear()
        return published

    def abort(self) -> None:
        """Drop buffered rows and delete pending parts (deferred mode); published parts stay."""
        self._buffers.clear()
        self._buffered_rows.clear()
        for pending, _final in self._pending:
            pending.unlink(missing_ok=True)
        self._pending.clear()

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

    def _write_part(self, table: str, exchange: str, symbol: str, date: str, tbl: pa.Table) -> None:
        directory = partition_dir(self.root, table, exchange, symbol, date)
        directory.mkdir(parents=True, exist_ok=True)
        self._counter += 1
        name = new_part_name(self.run_id, self._counter)
        tmp = directory / f".{name}.tmp"
        try:
            pq.write_table(
                tbl, tmp, compression=self.compression, row_group_size=self.row_group_rows
            )
            if self.fsync:
                _fsync_path(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        final = directory / name
        self.stats.rows[table] = self.stats.rows.get(table, 0) + tbl.num_rows
        self.stats.bytes += tmp.stat().st_size
        if self.deferred:
            pending = directory / f".{name}.pending-{self.run_id}"
            os.replace(tmp, pending)
            self._pending.append((pending, final))
        else:
            self._publish(tmp, final)

    def _publish(self, hidden: Path, final: Path) -> None:
        while True:
            try:
                os.link(hidden, final)  # fails instead of overwriting an existing part
                break
            except FileExistsError:
                self._counter += 1
                final = final.with_name(new_part_name(self.run_id, self._counter))
        hidden.unlink()
        self.stats.files += 1
        self.stats.paths.append(final)


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
