"""tradelab.compute: one interface, three backends, the same results.

The Dask tests run a real scheduler and two worker processes on 127.0.0.1 (``dask scheduler``,
``dask worker --no-nanny``) and hold a sweep, a walk-forward over saved runs and an event-backtest
grid run there to the very same numbers as the local backend; one kills a worker mid-sweep.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests import dask_helpers as dh
from tradelab.backtest.event.config import EventBacktestConfig
from tradelab.backtest.event.run import run_grid
from tradelab.backtest.runs import RunStore
from tradelab.backtest.vector.chunks import CHUNKS_DIR
from tradelab.backtest.vector.config import parse_sweep_config
from tradelab.backtest.vector.engine import run_sweep
from tradelab.backtest.vector.walkforward import walk_forward_runs
from tradelab.compute import ComputeConfig, InProcess, Job, LocalPool
from tradelab.synth import SynthConfig, generate_market, write_store

# -- the interface on the local backends ----------------------------------------------------------


@pytest.mark.parametrize("backend", [InProcess(), LocalPool(2)], ids=["in-process", "pool"])
def test_every_item_comes_back_once_at_its_position(backend):
    job = Job(dh.times, 7, dh.count_setup, start_method="spawn")
    seen = []
    got = {}
    for i, (value, _, setups) in backend.run(job, list(range(10)),
                                             progress=lambda d, n: seen.append((d, n))):
        assert i not in got
        got[i] = value
        assert setups == 1  # the setup ran once in the process that ran the item
    assert got == {i: 7 * i for i in range(10)}
    assert seen == [(k, 10) for k in range(1, 11)]


@pytest.mark.parametrize("backend", [InProcess(), LocalPool(2)], ids=["in-process", "pool"])
def test_a_failing_item_raises_or_is_returned(backend):
    job = Job(dh.fail_on_three, 2, start_method="spawn")
    with pytest.raises(ValueError, match="three is refused"):
        dict(backend.run(job, [1, 2, 3, 4]))
    out = dict(backend.run(job, [1, 2, 3, 4], return_exceptions=True))
    assert out[0] == 2 and out[1] == 4 and out[3] == 8
    assert isinstance(out[2], ValueError) and "three is refused" in str(out[2])


def test_compute_config_names_bad_input():
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        ComputeConfig(scheduler="127.0.0.1")
    with pytest.raises(ValueError, match="not both"):
        ComputeConfig(scheduler="tcp://127.0.0.1:8786", dask_local=2)
    with pytest.raises(ValueError):
        ComputeConfig(dask_local=0)
    cfg = ComputeConfig(scheduler="tcp://10.0.0.1:8786")
    assert cfg.with_cli(None, 3) == ComputeConfig(dask_local=3)
    assert cfg.with_cli(None, None) is cfg


# -- sweeps: written as they arrive, resumed after an interruption ---------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("compute_store")
    write_store(generate_market(SynthConfig(days=3, seed=5, perp=False,
                                            spot_symbols={"BTC-USDT": 60000.0})), root,
                fsync=False)
    return root


def sweep_cfg(**over):
    raw = {"name": "c", "strategy": "ma_crossover", "exchange": "BINANCE",
           "symbols": ["BTC-USDT"], "start": "2025-01-01", "end": "2025-01-03",
           "interval": "1m", "grid": {"fast": [3, 5, 8, 13], "slow": [21, 34, 55]},
           "period": "1h", "chunk_size": 2, "workers": 1, "bias_checks": False,
           "family": "compute"}
    raw.update(over)
    return parse_sweep_config(raw)


class Counting(InProcess):
    """In this process, counting the items it was given."""

    def __init__(self) -> None:
        self.items = 0

    def run(self, job, items, progress=None, *, return_exceptions=False):
        self.items += len(items)
        return super().run(job, items, progress, return_exceptions=return_exceptions)


class Interrupt(Exception):
    pass


def test_an_interrupted_sweep_resumes_from_the_chunks_written(store):
    cfg = sweep_cfg(family="resume")
    clean, = run_sweep(cfg, store, save=False)

    def stop_after_three(symbol, done, total):
        if done == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_sweep(cfg, store, progress=stop_after_three)
    folders = list((RunStore(store).root / CHUNKS_DIR).iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.npz"))) == 3
    again = Counting()
    resumed, = run_sweep(cfg, store, backend=again)
    assert again.items == 6 - 3  # 12 sets in chunks of 2: only the 3 missing ones ran
    pd.testing.assert_frame_equal(resumed.metrics, clean.metrics)
    pd.testing.assert_frame_equal(resumed.period_returns, clean.period_returns)
    assert not folders[0].exists()  # removed once the run was saved
    # another grid (or other data) never picks up those chunks
    other = Counting()
    run_sweep(sweep_cfg(family="resume", grid={"fast": [3, 5], "slow": [21]}), store,
              backend=other)
    assert other.items == 1


# -- the same results on a real Dask cluster -------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = dh.LocalDaskCluster(tmp_path_factory.mktemp("dask"), n_workers=2)
    yield c
    c.close()


@pytest.fixture
def dask_backend(cluster):
    from tradelab.compute.cluster import DaskBackend

    b = DaskBackend.connect(cluster.address)
    yield b
    b.close()


def _trials(store, family: str, run_id: str) -> pd.DataFrame:
    path = RunStore(store).root / "trials" / f"family={family}" / f"{run_id}.parquet"
    return pd.read_parquet(path).drop(columns=["run_id"])


def _same_sweep(a, b, store):
    pd.testing.assert_frame_equal(a.metrics, b.metrics)  # bit for bit: exact equality
    pd.testing.assert_frame_equal(a.period_returns, b.period_returns)
    assert a.scores == b.scores
    pd.testing.assert_frame_equal(_trials(store, a.config.family_name, a.run_id),
                                  _trials(store, b.config.family_name, b.run_id))
    loaded = [RunStore(store).load(r.run_id) for r in (a, b)]
    pd.testing.assert_frame_equal(loaded[0]["metrics"], loaded[1]["metrics"])
    pd.testing.assert_frame_equal(loaded[0]["period_returns"], loaded[1]["period_returns"])


@pytest.mark.slow
def test_dask_runs_each_item_once_with_the_shared_inputs_set_up_once_per_worker(dask_backend):
    job = Job(dh.times, 3, dh.count_setup)
    out = dict(dask_backend.run(job, list(range(12))))
    assert {i: v for i, (v, _, _) in out.items()} == {i: 3 * i for i in range(12)}
    assert {s for _, _, s in out.values()} == {1}
    assert dask_backend.workers == 2 and "dashboard" in dask_backend.describe()
    with pytest.raises(ValueError, match="three is refused"):
        dict(dask_backend.run(Job(dh.fail_on_three, 1), [1, 2, 3]))


@pytest.mark.slow
def test_sweep_on_dask_equals_the_local_sweep(store, dask_backend):
    local, = run_sweep(sweep_cfg(), store)
    remote, = run_sweep(sweep_cfg(), store, backend=dask_backend)
    assert local.n_sets == 12 and len(local.period_returns) == 48
    _same_sweep(local, remote, store)


@pytest.mark.slow
def test_walk_forward_over_saved_runs_on_dask_equals_local(store, dask_backend):
    ids = [r.run_id for r in run_sweep(sweep_cfg(family="wf"), store)]
    ids += [r.run_id for r in run_sweep(sweep_cfg(family="wf", grid={"fast": [2, 4],
                                                                     "slow": [10, 30]}), store)]
    local = walk_forward_runs(ids, train=12, test=6, store=store, save=False)
    remote = walk_forward_runs(ids, train=12, test=6, store=store, backend=dask_backend)
    assert [r["run_id"] for r in remote] == ids
    for a, b in zip(local, remote):
        assert a["scores"] == b["scores"] and a["scores"]["windows"] == (48 - 12) // 6
        pd.testing.assert_frame_equal(a["windows"], b["windows"])
        pd.testing.assert_series_equal(a["oos_returns"], b["oos_returns"])
        saved = json.loads((RunStore(store).root / a["run_id"] / "walkforward.json").read_text())
        assert saved["scores"] == json.loads(json.dumps(a["scores"]))


def _event_cfg(**over) -> EventBacktestConfig:
    base = dict(name="g", exchange="BINANCE", symbol="BTC-USDT", start="2025-01-01",
                end="2025-01-01T02:00:00Z", strategy="ma_crossover",
                bar=dict(interval="1m", fill="bar_price", execution="next_open"),
                grid={"fast": [3, 5], "slow": [13]}, instrument=dict(tick=0.01, lot=1e-9,
                                                                         taker_fee=0.0004),
                equity_interval="1m", period="15m", chunk="1h", family="grid")
    base.update(over)
    return EventBacktestConfig.model_validate(base)


@pytest.mark.slow
def test_event_grid_on_dask_equals_local_whether_workers_see_the_store_or_not(store,
                                                                             dask_backend):
    local = run_grid(_event_cfg(), store)
    remote = run_grid(_event_cfg(), store, dask_backend)
    sent = run_grid(_event_cfg(compute={"store_visible": False}), store, dask_backend)
    assert [r.params for r in local] == [r.params for r in remote] == [r.params for r in sent]
    assert sum(r.stats["fills"] for r in local) > 0
    for a, b, c in zip(local, remote, sent):
        for other in (b, c):
            assert a.metrics == other.metrics and a.pnl == other.pnl
            pd.testing.assert_frame_equal(a.fills, other.fills)
            pd.testing.assert_frame_equal(a.equity, other.equity)
            pd.testing.assert_frame_equal(a.orders, other.orders)
            saved = pd.read_parquet(other.path / "fills.parquet")
            pd.testing.assert_frame_equal(saved, a.fills.reset_index(drop=True))
    trials = RunStore(store).trials("grid")
    assert len(trials) == 2  # the same two sets each time: registered once


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_changes_nothing(store, tmp_path):
    from tradelab.compute.cluster import DaskBackend

    cfg = sweep_cfg(family="kill", grid={"fast": list(range(2, 14)), "slow": [21, 34, 55, 89]},
                    chunk_size=1)
    local, = run_sweep(cfg, store)
    c = dh.LocalDaskCluster(tmp_path / "dask", n_workers=2)
    try:
        backend = DaskBackend.connect(c.address)
        killed: list[str] = []

        def kill_one(symbol, done, total):
            if killed:
                return
            busy = {backend.client.scheduler_info()["workers"][w]["name"]: keys
                    for w, keys in backend.client.processing().items() if keys}
            if busy:
                victim = max(busy, key=lambda n: len(busy[n]))
                c.kill_worker(victim)
                killed.append(victim)

        remote, = run_sweep(cfg, store, backend=backend, progress=kill_one)
        assert killed, "no worker had a chunk in hand to be killed with"
        assert c.workers[killed[0]].poll() is not None  # it stayed dead (no nanny)
        _same_sweep(local, remote, store)
        backend.close()
    finally:
        c.close()


# -- the command line ------------------------------------------------------------------------------


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "tradelab.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _config_file(tmp_path, cfg) -> str:
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude={"compute"})))
    return str(path)


def test_a_malformed_scheduler_address_is_refused_before_anything_runs(store, tmp_path):
    res = _cli("sweep", "--config", _config_file(tmp_path, sweep_cfg()), "--store", store,
               "--scheduler", "localhost:8786")
    assert res.returncode == 2
    assert "scheduler must look like tcp://HOST:PORT, got 'localhost:8786'" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_sweep_command_on_a_scheduler_prints_where_it_runs(store, cluster, tmp_path):
    res = _cli("sweep", "--config", _config_file(tmp_path, sweep_cfg(family="cli")), "--store",
               store, "--scheduler", cluster.address, "--json")
    assert res.returncode == 0, res.stderr
    assert f"compute: Dask cluster at {cluster.address}, 2 worker threads; dashboard" \
        in res.stderr.replace("\n", " ")
    run_id = json.loads(res.stdout)[0]["run_id"]
    local, = run_sweep(sweep_cfg(family="cli"), store)
    a, b = (RunStore(store).load(r) for r in (local.run_id, run_id))
    pd.testing.assert_frame_equal(a["metrics"], b["metrics"])
    pd.testing.assert_frame_equal(a["period_returns"], b["period_returns"])
    assert a["report"]["scores"] == b["report"]["scores"]
    pd.testing.assert_frame_equal(_trials(store, "cli", local.run_id),
                                  _trials(store, "cli", run_id))
