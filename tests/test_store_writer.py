"""The one Parquet writer: schemas, partition paths, atomic publish, append, deferred commit."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from tradelab.store import Catalog, StoreError, StoreWriter
from tradelab.store.paths import partition_dir, resolve_root
from tradelab.store.writer import conform, stale_hidden_files

DAY = 86_400 * 10**9
T0 = 1_723_161_255_000_000_000  # 2024-08-08 23:54:15 UTC


def trades(n: int, t0: int = T0, step: int = 10**9) -> dict:
    return {
        "ts": t0 + np.arange(n, dtype=np.int64) * step,
        "price": np.full(n, 100.0),
        "qty": np.ones(n),
        "side": ["buy"] * n,
        "trade_id": [str(i) for i in range(n)],
    }


def visible_parts(root, table="trades"):
    return sorted(p for p in (root / table).rglob("*.parquet"))


def test_partition_layout_and_hive_names(tmp_path):
    with StoreWriter(tmp_path) as w:
        w.write("trades", "BINANCE", "BTC-USDT", trades(3))
    (part,) = visible_parts(tmp_path)
    rel = part.relative_to(tmp_path).parts
    assert rel[:4] == ("trades", "exchange=BINANCE", "symbol=BTC-USDT", "date=2024-08-08")
    assert rel[4].startswith("part-") and rel[4].endswith(".parquet")
    # partition columns live only in the path
    assert pq.read_schema(part).names == ["ts", "recv_ts", "price", "qty", "side", "trade_id"]


def test_rows_are_split_by_utc_date_of_ts(tmp_path):
    # 10 trades one hour apart starting 23:54 -> 1 on the 8th, the rest on the 9th
    with StoreWriter(tmp_path) as w:
        w.write("trades", "BINANCE", "BTC-USDT", trades(10, step=3600 * 10**9))
    dates = sorted(p.parent.name for p in visible_parts(tmp_path))
    assert dates == ["date=2024-08-08", "date=2024-08-09"]
    counts = {p.parent.name: pq.read_metadata(p).num_rows for p in visible_parts(tmp_path)}
    assert counts == {"date=2024-08-08": 1, "date=2024-08-09": 9}


def test_batches_flush_at_batch_rows_and_on_close(tmp_path):
    w = StoreWriter(tmp_path, batch_rows=5)
    w.write("trades", "BINANCE", "BTC-USDT", trades(3))
    assert visible_parts(tmp_path) == [] and w.buffered_rows == 3
    w.write("trades", "BINANCE", "BTC-USDT", trades(3, t0=T0 + 10 * 10**9))
    assert len(visible_parts(tmp_path)) == 1 and w.buffered_rows == 0
    w.write("trades", "BINANCE", "BTC-USDT", trades(1, t0=T0 + 20 * 10**9))
    w.close()
    assert len(visible_parts(tmp_path)) == 2
    assert w.stats.rows == {"trades": 7}
    with pytest.raises(StoreError, match="closed"):
        w.write("trades", "BINANCE", "BTC-USDT", trades(1))


def test_append_from_several_runs_never_overwrites(tmp_path):
    for _ in range(3):
        with StoreWriter(tmp_path) as w:
            w.write("trades", "BINANCE", "BTC-USDT", trades(2))
    parts = visible_parts(tmp_path)
    assert len(parts) == 3 and len({p.name for p in parts}) == 3
    assert len(Catalog(tmp_path).trades("BINANCE", "BTC-USDT")) == 6


def test_publish_refuses_to_overwrite_an_existing_part(tmp_path, monkeypatch):
    """Even if a name collides, the existing part survives byte for byte."""
    import tradelab.store.writer as writer_mod

    with StoreWriter(tmp_path) as w:
        w.write("trades", "BINANCE", "BTC-USDT", trades(2))
    (first,) = visible_parts(tmp_path)
    before = first.read_bytes()
    names = iter([first.name, "part-99999999999999999999-x-00001.parquet"])
    monkeypatch.setattr(writer_mod, "new_part_name", lambda run, n: next(names))
    with StoreWriter(tmp_path) as w:
        w.write("trades", "BINANCE", "BTC-USDT", trades(5))
    assert first.read_bytes() == before
    assert len(visible_parts(tmp_path)) == 2


def test_deferred_parts_are_invisible_until_commit_and_abort_removes_them(tmp_path):
    w = StoreWriter(tmp_path, deferred=True, batch_rows=2)
    w.write("trades", "BINANCE", "BTC-USDT", trades(4))  # flushed to pending files
    assert visible_parts(tmp_path) == []
    hidden = [p for p in (tmp_path / "trades").rglob("*") if p.is_file()]
    assert hidden and all(p.name.startswith(".") for p in hidden)
    w.abort()
    assert [p for p in (tmp_path / "trades").rglob("*") if p.is_file()] == []

    w = StoreWriter(tmp_path, deferred=True, batch_rows=2)
    w.write("trades", "BINANCE", "BTC-USDT", trades(4))
    published = w.commit()
    assert len(published) == 1 and visible_parts(tmp_path) == published


def test_exception_inside_deferred_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path, deferred=True, batch_rows=1) as w:
            w.write("trades", "BINANCE", "BTC-USDT", trades(3))
            raise RuntimeError("importer crashed")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_failed_parquet_write_leaves_no_temp_file(tmp_path, monkeypatch):
    import tradelab.store.writer as writer_mod

    def boom(table, path, **kw):
        open(path, "wb").write(b"PAR1 half")  # a half-written file...
        raise OSError("disk full")

    monkeypatch.setattr(writer_mod.pq, "write_table", boom)
    w = StoreWriter(tmp_path)
    w.write("trades", "BINANCE", "BTC-USDT", trades(2))
    with pytest.raises(OSError, match="disk full"):
        w.flush()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # ...is removed


def test_conform_fills_nullable_and_names_bad_columns():
    tbl = conform("trades", trades(2))
    assert tbl.column("recv_ts").null_count == 2
    with pytest.raises(StoreError, match="required column 'price' is missing"):
        conform("trades", {k: v for k, v in trades(2).items() if k != "price"})
    with pytest.raises(StoreError, match="unknown column 'venue'"):
        conform("trades", {**trades(2), "venue": ["x", "y"]})
    with pytest.raises(StoreError, match="partition key"):
        conform("trades", {**trades(2), "symbol": ["x", "y"]})
    with pytest.raises(StoreError, match="'price' cannot be stored as double"):
        conform("trades", {**trades(2), "price": ["abc", "1"]})
    with pytest.raises(StoreError, match="different lengths"):
        conform("trades", {**trades(2), "qty": [1.0]})
    with pytest.raises(StoreError, match="unknown table 'trade'"):
        conform("trade", trades(2))


def test_bad_partition_keys_are_refused(tmp_path):
    w = StoreWriter(tmp_path)
    with pytest.raises(StoreError, match="bad exchange name 'binance'"):
        w.write("trades", "binance", "BTC-USDT", trades(1))
    with pytest.raises(StoreError, match="bad symbol 'BTC/USDT'"):
        w.write("trades", "BINANCE", "BTC/USDT", trades(1))
    with pytest.raises(StoreError, match="bad partition date"):
        partition_dir(tmp_path, "trades", "BINANCE", "BTC-USDT", "2024-8-8")


def test_store_root_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADELAB_STORE", str(tmp_path / "from_env"))
    assert resolve_root(None, create=True) == tmp_path / "from_env"
    assert resolve_root(tmp_path / "explicit", create=True) == tmp_path / "explicit"
    monkeypatch.delenv("TRADELAB_STORE")
    monkeypatch.chdir(tmp_path)
    assert resolve_root(None, create=True) == resolve_root("data/parquet")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(StoreError, match="is a file, not a directory"):
        resolve_root(afile)
    with pytest.raises(StoreError, match="does not exist"):
        resolve_root(tmp_path / "missing")


def test_stale_hidden_files_are_found(tmp_path):
    w = StoreWriter(tmp_path, deferred=True)
    w.write("trades", "BINANCE", "BTC-USDT", trades(2))
    w.flush()
    (pending,) = [p for p in (tmp_path / "trades").rglob("*") if p.is_file()]
    os.utime(pending, (0, 0))
    assert stale_hidden_files(tmp_path, older_than_s=60) == [pending]
    assert Catalog(tmp_path).partitions().empty  # and readers never see it
