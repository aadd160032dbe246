"""The Dask backend: jobs on a Dask ``distributed`` cluster, an existing one (its scheduler's
address) or a ``LocalCluster`` started here.

The job's shared inputs (and its preload modules and setup) reach every worker once, through a
worker plugin registered for the job: the scheduler installs it on every worker that is up and
on every worker that joins later, so a worker that dies takes no only copy with it. (Scattered
data would not do: Dask's active memory manager drops "extra" replicas of it, and a lost
scattered key cannot be recomputed.) Each item is one task that finds the inputs by the job's
token. At most ``in_flight`` tasks (by default three per worker thread) are submitted at a
time, and each result is handed back, and released on the cluster, as soon as it arrives: the
client holds a bounded number of results whatever the size of the job. A worker that dies has
its tasks rerun elsewhere by the scheduler (Dask's ``allowed-failures``); the job's results do
not depend on where an item ran.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from tradelab.compute.job import Job, Progress

_SHARED: dict[str, Any] = {}
"""Each running job's shared inputs on this worker, by token."""


class _JobPlugin(WorkerPlugin):
    """Installs a job on a worker: imports its preload modules, keeps its shared inputs under
    its token and runs its setup; removes them when the job ends."""

    idempotent = False

    def __init__(self, token: str, job: Job) -> None:
        self.token, self.job = token, job

    def setup(self, worker=None) -> None:
        for name in self.job.preload:
            importlib.import_module(name)
        if self.job.setup is not None:
            self.job.setup(self.job.shared, 1)
        _SHARED[self.token] = self.job.shared

    def teardown(self, worker=None) -> None:
        _SHARED.pop(self.token, None)


def _call(fn, token: str, item: Any) -> Any:
    """One item on a Dask worker, with the job's shared inputs its plugin installed."""
    try:
        shared = _SHARED[token]
    except KeyError:
        raise RuntimeError(f"job {token} is not installed on this worker (its plugin did "
                           "not run)") from None
    return fn(shared, item)


class DaskBackend:
    """Items as tasks on a Dask cluster; see the module docstring."""

    def __init__(self, client, cluster=None, in_flight: int | None = None) -> None:
        self.client = client
        self._cluster = cluster
        self._in_flight = in_flight

    @classmethod
    def connect(cls, address: str, timeout: float = 30.0) -> DaskBackend:
        """A cluster that is already running, by its scheduler's address (``tcp://HOST:PORT``)."""
        from distributed import Client

        try:
            client = Client(address, timeout=timeout)
        except OSError as exc:
            raise ConnectionError(f"no Dask scheduler answers at {address} ({exc}); start one "
                                  "with 'dask scheduler' or check the address") from None
        return cls(client)

    @classmethod
    def local(cls, workers: int) -> DaskBackend:
        """A ``LocalCluster`` of ``workers`` single-threaded worker processes, closed with it."""
        from distributed import Client, LocalCluster

        if workers < 1:
            raise ValueError(f"--dask-local needs at least one worker, got {workers}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0")
        return cls(Client(cluster), cluster)

    @property
    def workers(self) -> int:
        """Worker threads on the cluster now (at least 1)."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))

    def describe(self) -> str:
        where = self.client.scheduler.address
        return (f"Dask cluster at {where}, {self.workers} worker threads; dashboard "
                f"{self.client.dashboard_link}")

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def run(self, job: Job, items: Sequence[Any], progress: Progress | None = None, *,
            return_exceptions: bool = False) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        n = len(items)
        if n == 0:
            return
        token = f"{job.name}-{uuid.uuid4().hex[:10]}"
        self.client.register_plugin(_JobPlugin(token, job), name=token)
        limit = self._in_flight or 3 * self.workers
        running: dict[Any, tuple[int, Any]] = {}
        nxt = 0

        def submit():
            nonlocal nxt
            i = nxt
            nxt += 1
            f = self.client.submit(_call, job.fn, token, items[i], key=f"{token}-{i}",
                                   pure=False)
            running[f.key] = (i, f)
            return f

        queue = as_completed([submit() for _ in range(min(limit, n))], with_results=False)
        done = 0
        try:
            for f in queue:
                i, _ = running.pop(f.key)
                if f.status == "error" and return_exceptions:
                    res: Any = f.exception()
                else:
                    res = f.result()
                f.release()
                if nxt < n:
                    queue.add(submit())
                done += 1
                if progress:
                    progress(done, n)
                yield i, res
        finally:
            queue.clear()
            if running:  # closed early or failed: drop what is still queued or running
                self.client.cancel([f for _, f in running.values()])
            self.client.unregister_worker_plugin(token)
