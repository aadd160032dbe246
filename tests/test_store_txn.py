"""Imports are transactions, and the store keeps each content key once.

Real recordings and freqtrade files, real processes killed with SIGKILL, real parallel imports.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import import_ws
from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.binance_ws import BinanceWsImporter
from tradelab.collect.importers.freqtrade import FreqtradeImporter
from tradelab.store import Catalog, StoreWriter
from tradelab.store.schema import MARKET_TABLES, SCHEMAS

ROOT = Path(__file__).resolve().parents[1]
SPOT = "spot_btcusdt_20240808.gz"
TABLES = [*MARKET_TABLES, "quality_events"]


def store_rows(store: Path) -> dict[str, pd.DataFrame]:
    """Every visible row of every table, in a canonical order (for row-for-row comparison)."""
    cat = Catalog(store)
    out = {}
    for table in TABLES:
        cols = [*SCHEMAS[table].names, "exchange", "symbol"]
        if table == "quality_events":
            cols.remove("source")  # names the file the event came from
            cols.remove("detail")
        df = cat.sql(f"SELECT {', '.join(cols)} FROM {table}")
        out[table] = df.sort_values(cols, ignore_index=True, na_position="first")
    cat.close()
    return out


def counts(store: Path) -> dict[str, int]:
    return {t: len(df) for t, df in store_rows(store).items()}


def assert_same_rows(a: Path, b: Path) -> None:
    ra, rb = store_rows(a), store_rows(b)
    for table in TABLES:
        pd.testing.assert_frame_equal(ra[table], rb[table], check_dtype=False, obj=table)


@pytest.fixture(scope="module")
def clean_spot(tmp_path_factory, binance_ws):
    store = tmp_path_factory.mktemp("clean_spot")
    (rep,) = import_ws(store, binance_ws / SPOT)
    assert rep.status == "committed"
    return store


@pytest.fixture(scope="module")
def clean_ohlcv(tmp_path_factory, test_data):
    store = tmp_path_factory.mktemp("clean_ohlcv")
    run = ImportRun("freqtrade", store, {})
    FreqtradeImporter(run, "BINANCE").import_dir(test_data / "ohlcv" / "binance_usdm_2025")
    run.finish()
    return store


# -- a killed import leaves nothing visible ------------------------------------------------------

# The import runs in its own process; right after the first part file is linked under its final
# name, it waits: the test polls for the visible part, then SIGKILLs it. The wait only keeps the
# process from moving on before the kill lands (the flag file is for debugging).
KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import tradelab.store.writer as W
    from tradelab.collect.importers.base import ImportRun
    flag = Path(sys.argv[3])
    real = W.StoreWriter._publish
    def publish(self, hidden, final):
        out = real(self, hidden, final)
        flag.write_text(str(out))
        time.sleep(60)
        return out
    W.StoreWriter._publish = publish
    kind, store = sys.argv[1], sys.argv[2]
    run = ImportRun(kind, store, {})
    if kind == "binance-ws":
        from tradelab.collect.importers.binance_ws import BinanceWsImporter
        BinanceWsImporter(run).import_files(sys.argv[4:])
    else:
        from tradelab.collect.importers.freqtrade import FreqtradeImporter
        FreqtradeImporter(run, "BINANCE").import_dir(sys.argv[4])
    run.finish()
    """
)


def _visible_parts(store: Path) -> list[Path]:
    return [p for t in TABLES if (store / t).is_dir() for p in (store / t).rglob("part-*.parquet")]


def _kill_at_first_visible_part(store: Path, kind: str, sources: list[Path], tmp: Path) -> None:
    flag = tmp / "published.flag"
    flag.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, kind, str(store), str(flag), *map(str, sources)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not _visible_parts(store):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no part file became visible"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_killed_imports_leave_nothing_visible_and_reimport_equals_clean(
    tmp_path, binance_ws, test_data, clean_spot, clean_ohlcv
):
    cases = [("binance-ws", [binance_ws / SPOT], clean_spot)] * 5 + [
        ("freqtrade", [test_data / "ohlcv" / "binance_usdm_2025"], clean_ohlcv)
    ] * 5
    for i, (kind, sources, clean) in enumerate(cases):
        store = tmp_path / f"store{i}"
        _kill_at_first_visible_part(store, kind, sources, tmp_path)
        assert _visible_parts(store)  # the linked part is on disk ...
        assert counts(store) == dict.fromkeys(TABLES, 0)  # ... but nothing is visible
        assert list((store / "_txn").glob("*.pending"))
        # a new writer cleans the dead transaction up
        StoreWriter(store).close()
        assert _visible_parts(store) == []
        assert list((store / "_txn").iterdir()) == []
        assert not [p for p in store.rglob(".part-*")]  # no hidden leftovers either
        # and a re-import equals a clean import row for row
        run = ImportRun(kind, store, {})
        if kind == "binance-ws":
            reports = BinanceWsImporter(run).import_files(sources)
        else:
            reports = FreqtradeImporter(run, "BINANCE").import_dir(sources[0])
        run.finish()
        assert {r.status for r in reports} <= {"committed", "skipped"}
        assert_same_rows(store, clean)


def test_reimport_is_not_fooled_by_the_manifest_of_a_killed_run(tmp_path, binance_ws):
    """A kill after the commit was recorded but before the marker was removed is finished by
    recovery (rolled forward): the manifest and the visible data agree."""
    import tradelab.store.writer as W

    real = W.txn.Marker.release
    calls = []

    def crash_before_release(self):  # dies as a kill would: lock dropped, marker left
        if self._fh is None:
            return
        calls.append(self.id)
        self._fh.close()
        self._fh = None
        raise KeyboardInterrupt("killed after the manifest was written")

    W.txn.Marker.release = crash_before_release
    try:
        run = ImportRun("binance-ws", tmp_path, {})
        with pytest.raises(KeyboardInterrupt):
            BinanceWsImporter(run).import_files([binance_ws / SPOT])
    finally:
        W.txn.Marker.release = real
    assert counts(tmp_path)["trades"] == 0  # recorded, but not yet visible
    doc = json.loads((tmp_path / "_imports" / f"{run.run_id}.json").read_text())
    assert doc["txns"] == calls and doc["files"][0]["status"] == "committed"
    assert StoreWriter(tmp_path).recovered["rolled_forward"] == 1
    assert counts(tmp_path)["trades"] == doc["files"][0]["rows"]["trades"] > 0


def _crash_before_release(self):  # dies as a kill would: lock dropped, marker left
    if self._fh is None:
        return
    self._fh.close()
    self._fh = None
    raise KeyboardInterrupt("killed after the commit was recorded")


def test_reimport_after_a_kill_between_record_and_marker_removal_shows_the_import(
    tmp_path, binance_ws, clean_spot
):
    """The captured failure of the CLI kill test: the killed run's manifest listed the file as
    committed while its marker (hiding the parts) was left. The re-import took the manifest's
    word, skipped the file without recovering, and the store stayed empty. "Already imported"
    must mean visible: the dead commit is finished first."""
    import tradelab.store.writer as W

    real = W.txn.Marker.release
    W.txn.Marker.release = _crash_before_release
    try:
        with pytest.raises(KeyboardInterrupt):
            import_ws(tmp_path, binance_ws / SPOT)
    finally:
        W.txn.Marker.release = real
    assert counts(tmp_path) == dict.fromkeys(TABLES, 0)  # recorded, not yet visible
    assert list((tmp_path / "_txn").glob("*.pending"))
    (rep,) = import_ws(tmp_path, binance_ws / SPOT)
    assert rep.status == "skipped"  # the killed run's commit was finished: it imported the file
    assert_same_rows(tmp_path, clean_spot)
    assert list((tmp_path / "_txn").iterdir()) == []


def test_a_commit_after_a_writer_died_with_its_commit_recorded_stores_nothing_twice(tmp_path):
    """Writer b starts (its recovery finds nothing), then writer a dies after recording its
    commit. At b's commit a's rows are still hidden: b must finish a's commit before it drops
    stored keys, or a later recovery would show the same trades twice."""
    import tradelab.store.writer as W

    rows = {"ts": [1_723_161_255_000_000_000 + i for i in range(5)], "price": [1.0] * 5,
            "qty": [1.0] * 5, "side": ["buy"] * 5, "trade_id": [str(i) for i in range(5)]}
    b = StoreWriter(tmp_path, deferred=True)
    a = StoreWriter(tmp_path, deferred=True, record_path="record.json")
    a.write("trades", "BINANCE", "BTC-USDT", rows)

    def record(txn_id: str) -> None:
        (tmp_path / "record.json").write_text(json.dumps({"txns": [txn_id]}))

    real = W.txn.Marker.release
    W.txn.Marker.release = _crash_before_release
    try:
        with pytest.raises(KeyboardInterrupt):
            a.commit(record)
    finally:
        W.txn.Marker.release = real
    assert counts(tmp_path)["trades"] == 0  # a: recorded, hidden until recovered
    b.write("trades", "BINANCE", "BTC-USDT", rows)
    b.commit()
    later = StoreWriter(tmp_path)  # recovers whatever is still dead
    assert counts(tmp_path)["trades"] == 5  # was 10: b's copy plus a's, rolled forward later
    assert b.recovered["rolled_forward"] == 1
    assert b.stats.duplicates["trades"] == 5 and b.stats.rows["trades"] == 0
    assert later.recovered == {"rolled_back": 0, "rolled_forward": 0, "files_removed": 0}


def test_a_marker_removed_by_a_recovery_before_its_lock_is_taken_is_made_again(
    tmp_path, monkeypatch
):
    """A new marker exists unlocked for a moment (created, not yet locked); a recovery in
    another process then removes it as a dead writer's. The writer must not go on with a
    marker that is no longer on disk (it failed with FileNotFoundError at the rename)."""
    from tradelab.store import txn

    real_flock = txn.fcntl.flock
    armed = [True]

    def flock(fd, op):
        if armed[0] and op & txn.fcntl.LOCK_EX and os.fstat(fd).st_nlink == 1:
            armed[0] = False
            assert [p.name for p in (tmp_path / "_txn").iterdir()][0].endswith(".pending.tmp")
            txn.recover(tmp_path)  # what a starting writer elsewhere does at this moment
            assert list((tmp_path / "_txn").iterdir()) == []
        return real_flock(fd, op)

    w = StoreWriter(tmp_path, deferred=True, batch_rows=1)
    monkeypatch.setattr(txn.fcntl, "flock", flock)
    w.write("trades", "BINANCE", "BTC-USDT", {
        "ts": [1_723_161_255_000_000_000], "price": [1.0], "qty": [1.0], "side": ["buy"],
        "trade_id": ["1"]})
    monkeypatch.setattr(txn.fcntl, "flock", real_flock)
    assert not armed[0]
    assert [p.name for p in (tmp_path / "_txn").iterdir()] == [f"{w.writer_id}.pending"]
    assert StoreWriter(tmp_path).recovered["rolled_back"] == 0  # it is live and locked
    w.commit()
    assert counts(tmp_path)["trades"] == 1


# -- the same data by any path is stored once ----------------------------------------------------


def test_same_file_twice_in_one_call_with_force(tmp_path, binance_ws, clean_spot):
    run = ImportRun("binance-ws", tmp_path, {})
    reports = BinanceWsImporter(run, force=True).import_files([binance_ws / SPOT] * 2)
    run.finish()
    assert [r.status for r in reports] == ["committed", "committed"]
    assert reports[1].skipped["already_stored_trades"] == counts(clean_spot)["trades"]
    assert sum(reports[1].rows.values()) == 0
    assert counts(tmp_path) == counts(clean_spot)
    assert_same_rows(tmp_path, clean_spot)


def test_force_reimport_stores_nothing_twice(tmp_path, binance_ws, clean_spot):
    import_ws(tmp_path, binance_ws / SPOT)
    run = ImportRun("binance-ws", tmp_path, {})
    (rep,) = BinanceWsImporter(run, force=True).import_files([binance_ws / SPOT])
    run.finish()
    assert rep.status == "committed" and sum(rep.rows.values()) == 0
    assert_same_rows(tmp_path, clean_spot)


def test_gunzipped_copy_is_the_same_data(tmp_path, binance_ws, clean_spot):
    plain = tmp_path / "spot_btcusdt_20240808.txt"
    plain.write_bytes(gzip.decompress((binance_ws / SPOT).read_bytes()))
    store = tmp_path / "store"
    import_ws(store, binance_ws / SPOT)
    (rep,) = import_ws(store, plain)
    assert rep.status == "committed" and sum(rep.rows.values()) == 0
    assert_same_rows(store, clean_spot)


def test_truncated_then_full_stores_the_missing_messages_once(tmp_path, binance_ws, clean_spot):
    lines = gzip.decompress((binance_ws / SPOT).read_bytes()).splitlines(keepends=True)
    cut = tmp_path / "truncated.txt"
    cut.write_bytes(b"".join(lines[: len(lines) // 2]))
    store = tmp_path / "store"
    (first,) = import_ws(store, cut)
    assert 0 < first.rows["book"] < counts(clean_spot)["book"]
    (full,) = import_ws(store, binance_ws / SPOT)
    assert full.skipped["already_stored_book"] == first.rows["book"]
    assert_same_rows(store, clean_spot)
    # the book is continuous: the rebuilt top of book equals the clean store's, message by message
    got = Catalog(store).top_of_book("BINANCE", "BTC-USDT")
    want = Catalog(clean_spot).top_of_book("BINANCE", "BTC-USDT")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    assert got["valid"].sum() == want["valid"].sum() > 0


@pytest.mark.slow
def test_parallel_imports_of_one_file_store_it_once(tmp_path, binance_ws, clean_spot):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "tradelab.cli", "import", "binance-ws", str(binance_ws / SPOT),
            "--store", str(tmp_path), "--json"]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
    assert_same_rows(tmp_path, clean_spot)


def test_freqtrade_twice_and_parallel_writers_keep_one_candle_per_time(
    tmp_path, test_data, clean_ohlcv
):
    src = test_data / "ohlcv" / "binance_usdm_2025"
    for _ in range(2):
        run = ImportRun("freqtrade", tmp_path, {})
        FreqtradeImporter(run, "BINANCE").import_dir(src)
        run.finish()
    assert_same_rows(tmp_path, clean_ohlcv)


def test_two_deferred_writers_committing_the_same_rows(tmp_path):
    """Two transactions holding the same trades, committed one after the other: stored once."""
    rows = {"ts": [1_723_161_255_000_000_000 + i for i in range(5)], "price": [1.0] * 5,
            "qty": [1.0] * 5, "side": ["buy"] * 5, "trade_id": [str(i) for i in range(5)]}
    a, b = StoreWriter(tmp_path, deferred=True), StoreWriter(tmp_path, deferred=True)
    a.write("trades", "BINANCE", "BTC-USDT", rows)
    b.write("trades", "BINANCE", "BTC-USDT", {k: v[2:] + v[:1] for k, v in rows.items()})
    a.flush()
    b.flush()
    assert counts(tmp_path)["trades"] == 0  # neither is visible before its commit
    a.commit()
    b.commit()
    assert counts(tmp_path)["trades"] == 5
    assert b.stats.duplicates["trades"] == 4 and b.stats.rows["trades"] == 0


@pytest.mark.slow
def test_cli_import_killed_when_its_first_part_appears_is_all_or_nothing(
    tmp_path, binance_ws, clean_spot
):
    """No hook this time: the real `tradelab import` is SIGKILLed as soon as a part file shows
    up. Wherever the kill lands, the store shows the whole import or nothing, and a re-import
    equals a clean one.

    It failed now and then when the kill landed after the manifest recorded the commit and
    before the marker went: the re-import skipped the file without recovering the dead commit
    (see the test of each step below, ``recorded``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i in range(3):
        store = tmp_path / f"store{i}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradelab.cli", "import", "binance-ws",
             str(binance_ws / SPOT), "--store", str(store)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not _visible_parts(store) and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.001)
            # not os.kill(proc.pid): an import that finished before a part was seen has been
            # reaped by poll(), and its pid may already be another process's
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        seen = counts(store)
        assert seen in (dict.fromkeys(TABLES, 0), counts(clean_spot))
        (rep,) = import_ws(store, binance_ws / SPOT)
        assert rep.status in ("committed", "skipped")
        assert_same_rows(store, clean_spot)
        assert list((store / "_txn").iterdir()) == []


# `tradelab import` with a SIGKILL of itself at one chosen step of its commit (monkeypatched in
# the child process only: the store has no kill hook). The steps, in commit order:
STEP_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import tradelab.store.writer as W
    from tradelab.collect.importers import base

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, name, before):
        real = getattr(owner, name)
        def wrapped(*args, **kwargs):
            if before:
                die()
            out = real(*args, **kwargs)
            die()
            return out
        setattr(owner, name, wrapped)

    step = sys.argv[1]
    if step == "first_link":  # one part linked under its final name
        wrap(W.StoreWriter, "_publish", before=False)
    elif step == "all_linked":  # every part linked, the manifest not yet written
        wrap(base.ImportRun, "_write_manifest", before=True)
    elif step == "recorded":  # the manifest lists the commit, the marker is still there
        wrap(W.txn.Marker, "release", before=True)
    elif step == "released":  # the commit point passed, the run not finished
        wrap(W.txn.Marker, "release", before=False)
    sys.argv = ["tradelab", *sys.argv[2:]]
    from tradelab.cli import main
    main()
    """
)
# step -> (visible after the kill: the whole import?, status of the re-import)
KILL_STEPS = {
    "first_link": (False, "committed"),
    "all_linked": (False, "committed"),
    "recorded": (False, "skipped"),  # the re-import finishes the dead commit first
    "released": (True, "skipped"),
}


@pytest.mark.slow
@pytest.mark.parametrize("step", list(KILL_STEPS))
def test_import_killed_at_each_step_of_its_commit_is_all_or_nothing(
    step, tmp_path, binance_ws, clean_spot
):
    """The deterministic version of the test above: one kill per step of the commit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", STEP_KILL_SCRIPT, step, "import", "binance-ws",
         str(binance_ws / SPOT), "--store", str(tmp_path)],
        env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    whole, status = KILL_STEPS[step]
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "_imports").glob("*.json")]
    recorded = [f["status"] for m in manifests for f in m["files"]] == ["committed"]
    assert recorded == (step in ("recorded", "released"))  # the kill landed where it should
    assert bool(list((tmp_path / "_txn").glob("*.pending"))) == (step != "released")
    assert counts(tmp_path) == (counts(clean_spot) if whole else dict.fromkeys(TABLES, 0))
    (rep,) = import_ws(tmp_path, binance_ws / SPOT)
    assert rep.status == status
    assert_same_rows(tmp_path, clean_spot)
    assert list((tmp_path / "_txn").iterdir()) == []
    assert not list(tmp_path.rglob(".part-*"))


def test_a_commit_whose_record_fails_leaves_nothing(tmp_path):
    """The parts are linked before the manifest is written: if writing it fails, the links are
    undone before the marker goes, so nothing becomes visible."""
    w = StoreWriter(tmp_path, deferred=True)
    w.write("trades", "BINANCE", "BTC-USDT", {
        "ts": [1_723_161_255_000_000_000], "price": [1.0], "qty": [1.0], "side": ["buy"],
        "trade_id": ["1"]})

    def record(txn_id: str) -> None:
        raise OSError("disk full while writing the manifest")

    with pytest.raises(OSError, match="disk full"):
        w.commit(record)
    assert counts(tmp_path)["trades"] == 0
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_starting_writer_never_touches_a_live_transaction(tmp_path):
    rows = {"ts": [1_723_161_255_000_000_000], "price": [1.0], "qty": [1.0], "side": ["buy"],
            "trade_id": ["1"]}
    live = StoreWriter(tmp_path, deferred=True, batch_rows=1)
    live.write("trades", "BINANCE", "BTC-USDT", rows)  # a pending part and a locked marker
    before = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    other = StoreWriter(tmp_path)  # recovery runs here
    assert other.recovered == {"rolled_back": 0, "rolled_forward": 0, "files_removed": 0}
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == before
    live.commit()
    assert counts(tmp_path)["trades"] == 1
