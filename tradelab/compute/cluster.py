"""The Dask backend: jobs on a Dask ``distributed`` cluster, an existing one (its scheduler's
address) or a ``LocalCluster`` started here.

Every worker first imports the job's ``preload`` modules (at once, before the first task; a
worker that has run the job before has them already). The job's shared inputs are scattered to
every worker once (``broadcast``: a worker that dies
takes no only copy with it); each item is one task that gets them by reference. At most
``in_flight`` tasks (by default three per worker thread) are submitted at a time, and each
result is handed back, and released on the cluster, as soon as it arrives: the client holds
a bounded number of results whatever the size of the job. A worker that dies has its tasks
rerun elsewhere by the scheduler (Dask's ``allowed-failures``); the job's results do not
depend on where an item ran.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from tradelab.compute.job import Job, Progress

_READY: set[str] = set()
_READY_LOCK = threading.Lock()


def _preload(modules: tuple[str, ...]) -> None:
    """Import ``modules`` on a worker (once per worker process: Python caches imports)."""
    import importlib

    for name in modules:
        importlib.import_module(name)


def _call(fn, setup, token: str, shared: Any, item: Any) -> Any:
    """One item on a Dask worker; the job's setup runs once per worker process."""
    if setup is not None and token not in _READY:
        with _READY_LOCK:
            if token not in _READY:
                setup(shared, 1)
                _READY.add(token)
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
        if job.preload:  # as a local pool's fork server does: every worker at once, up front
            self.client.run(_preload, job.preload)
        # one future for the whole object (a tuple or dict would be scattered item by item)
        [shared] = self.client.scatter([job.shared], broadcast=True, hash=False)
        limit = self._in_flight or 3 * self.workers
        running: dict[Any, tuple[int, Any]] = {}
        nxt = 0

        def submit():
            nonlocal nxt
            i = nxt
            nxt += 1
            f = self.client.submit(_call, job.fn, job.setup, token, shared, items[i],
                                   key=f"{token}-{i}", pure=False)
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
            shared.release()
