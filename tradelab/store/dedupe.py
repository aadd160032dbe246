"""Content keys of stored rows: find rows (or book messages) already stored or repeated.

The keys are declared per table in :data:`tradelab.store.schema.ROW_KEYS`. A :class:`KeySet`
holds the keys seen so far in one partition (exchange/symbol/date); :meth:`KeySet.admit` returns
the mask of rows of a new batch whose key is new (first occurrence wins) and adds them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tradelab.store.schema import BOOK_LAST, BOOK_SNAPSHOT, MESSAGE_TABLES, ROW_KEYS

_INT_NULL = np.iinfo(np.int64).min


def has_key(table: str) -> bool:
    return table in ROW_KEYS


def _column(tbl: pa.Table, name: str, rows: np.ndarray | None) -> np.ndarray:
    col = tbl.column(name)
    if rows is not None:
        col = col.take(pa.array(rows))
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = typ.value_type
    if name == "flags":
        return (pc.bit_wise_and(col, BOOK_SNAPSHOT)).to_numpy().astype(np.int8)
    if pa.types.is_integer(typ):
        return pc.fill_null(col.cast(pa.int64()), _INT_NULL).to_numpy()
    if pa.types.is_boolean(typ):
        return pc.fill_null(col.cast(pa.int8()), -1).to_numpy()
    return col.to_numpy(zero_copy_only=False)


def _units(table: str, tbl: pa.Table) -> tuple[np.ndarray | None, np.ndarray | None]:
    """For message tables: (first row of each message, message index of each row)."""
    if table not in MESSAGE_TABLES:
        return None, None
    starts = _starts(tbl)
    n = tbl.num_rows
    sizes = np.diff(np.append(starts, n))
    return starts, np.repeat(np.arange(len(starts), dtype=np.int64), sizes)


def _starts(tbl: pa.Table) -> np.ndarray:
    """First row of each book message (a message ends at its row flagged ``BOOK_LAST``)."""
    n = tbl.num_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    flags = tbl.column("flags").to_numpy()
    ends = np.flatnonzero(flags & BOOK_LAST)
    nxt = ends + 1
    nxt = nxt[nxt < n]
    return np.concatenate(([0], nxt)).astype(np.int64)


def _frames(table: str, tbl: pa.Table) -> tuple[dict[str, tuple[pd.DataFrame, np.ndarray]],
                                                np.ndarray | None]:
    """Key frames ``{'p': (frame, unit idx), 'f': (...)}`` and the row -> unit map."""
    key, fallback = ROW_KEYS[table]
    starts, msg = _units(table, tbl)
    first = _column(tbl, key[0], starts)
    null = first == _INT_NULL if first.dtype == np.int64 else pd.isna(first)
    out: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}
    idx = np.flatnonzero(~null)
    rows = idx if starts is None else starts[idx]
    out["p"] = (pd.DataFrame({c: _column(tbl, c, rows) for c in key}), idx)
    if fallback is not None and null.any():
        idx_f = np.flatnonzero(null)
        rows_f = idx_f if starts is None else starts[idx_f]
        out["f"] = (pd.DataFrame({c: _column(tbl, c, rows_f) for c in fallback}), idx_f)
    return out, msg


def _fast_unique(table: str, tbl: pa.Table) -> bool:
    """Cheap proof that a batch holds no repeated key (the common case of a clean import)."""
    if table in MESSAGE_TABLES:
        starts = _starts(tbl)
        seq = tbl.column("seq").take(pa.array(starts))
        if seq.null_count:
            return False
        s = seq.to_numpy()
        return bool((np.diff(s) > 0).all())
    key, _fb = ROW_KEYS[table]
    col = tbl.column(key[0])  # a unique first key column makes the whole key unique
    if col.null_count:
        return False
    if pa.types.is_integer(col.type):
        values = col.to_numpy()
        if bool((np.diff(values) > 0).all()):  # ids and times usually arrive increasing
            return True
    return pc.count_distinct(col).as_py() == tbl.num_rows


class KeySet:
    """Keys already present in one partition of one table."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.seen: dict[str, pd.DataFrame] = {}

    def admit(self, tbl: pa.Table, record: bool = True) -> np.ndarray | None:
        """Mask of rows of ``tbl`` to keep (None: keep all). Adds the kept keys when ``record``."""
        if not has_key(self.table) or tbl.num_rows == 0:
            return None
        if not self.seen and not record and _fast_unique(self.table, tbl):
            return None
        frames, msg = _frames(self.table, tbl)
        n_units = (msg[-1] + 1) if msg is not None and len(msg) else tbl.num_rows
        drop_unit = np.zeros(n_units, dtype=bool)
        for kind, (frame, idx) in frames.items():
            if not len(frame):
                continue
            before = self.seen.get(kind)
            if before is None or not len(before):
                dup = frame.duplicated(keep="first").to_numpy()
            else:
                both = pd.concat([before, frame], ignore_index=True)
                dup = both.duplicated(keep="first").to_numpy()[len(before):]
            drop_unit[idx[dup]] = True
            if record:
                kept = frame[~dup] if dup.any() else frame
                self.seen[kind] = (
                    kept if before is None else pd.concat([before, kept], ignore_index=True)
                )
        if not drop_unit.any():
            return None
        return ~(drop_unit[msg] if msg is not None else drop_unit)


def dedupe_batch(table: str, tbl: pa.Table) -> tuple[pa.Table, int]:
    """``tbl`` without rows repeating an earlier row's key; returns (table, rows dropped)."""
    keep = KeySet(table).admit(tbl, record=False)
    if keep is None:
        return tbl, 0
    return tbl.filter(pa.array(keep)), int((~keep).sum())
