"""The local backends: items in this process (:class:`InProcess`) or on a pool of worker
processes on this machine (:class:`LocalPool`, the default).

A pool's workers receive the job's shared inputs once, in their initializer, and start from a
clean server process (``forkserver``, preloading the job's modules, or ``spawn``): forking the
caller itself is unsafe after it has used numba's OpenMP threads ("fork() called from a process
already using GNU OpenMP") or DuckDB's. As with any process pool, a script that runs a job on
it needs the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from tradelab.compute.job import Job, Progress

_STATE: dict[str, Any] = {}
"""This process's installed job (a pool worker's, or the caller's when it helps)."""


def _install(job: Job, threads: int) -> None:
    """Make ``job`` this process's job and run its setup."""
    if job.setup is not None:
        job.setup(job.shared, threads)
    _STATE["job"] = job


def _call(item: Any) -> Any:
    job: Job = _STATE["job"]
    return job.fn(job.shared, item)


def _pid() -> int:
    """A no-op task: its result says the pool's workers are up."""
    return os.getpid()


def _context(job: Job):
    ctx = mp.get_context(job.start_method)
    if job.start_method == "forkserver" and job.preload:
        ctx.set_forkserver_preload(list(job.preload))
    return ctx


class InProcess:
    """Every item in this process, one after the other (with every core for the item)."""

    workers = 1

    def describe(self) -> str:
        return "in this process"

    def run(self, job: Job, items: Sequence[Any], progress: Progress | None = None, *,
            return_exceptions: bool = False) -> Iterator[tuple[int, Any]]:
        _install(job, os.cpu_count() or 1)
        for i, item in enumerate(items):
            try:
                res = job.fn(job.shared, item)
            except Exception as exc:
                if not return_exceptions:
                    raise
                res = exc
            if progress:
                progress(i + 1, len(items))
            yield i, res

    def close(self) -> None:
        pass


class LocalPool:
    """Items on ``workers`` processes of this machine; started per run, shut down after it."""

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"a local pool needs at least one worker, got {workers}")
        self._workers = workers

    @property
    def workers(self) -> int:
        return self._workers

    def describe(self) -> str:
        return f"local pool of {self._workers} worker processes"

    def close(self) -> None:
        pass

    def run(self, job: Job, items: Sequence[Any], progress: Progress | None = None, *,
            return_exceptions: bool = False) -> Iterator[tuple[int, Any]]:
        n = len(items)
        done = 0
        for i, res in self._results(job, items, min(self._workers, max(n, 1)),
                                    return_exceptions):
            done += 1
            if progress:
                progress(done, n)
            yield i, res

    def _results(self, job: Job, items: Sequence[Any], workers: int,
                 return_exceptions: bool) -> Iterator[tuple[int, Any]]:
        """Items on a pool of ``workers`` processes, started lazily.

        Starting the pool takes seconds (a fork server may import heavy modules before the
        workers can fork from it), so a feeder thread starts it, waits for a no-op task to come
        back (no item is handed to a pool that is not up yet) and then keeps two items in
        flight per worker. With ``job.caller_helps`` this thread works through items itself,
        from the other end of the queue, until the pool returns its first result; from then on
        it only collects (if it finishes every item before the pool is up, the run returns
        without waiting for it). Each worker receives the shared inputs once, in its
        initializer.
        """
        pending = deque(enumerate(items))
        lock = threading.Lock()
        results: queue.Queue = queue.Queue()
        up = threading.Event()
        failed = object()

        def pop(front: bool) -> tuple[int, Any] | None:
            with lock:
                if not pending:
                    return None
                return pending.popleft() if front else pending.pop()

        def feeder() -> None:
            try:
                with ProcessPoolExecutor(max_workers=workers, mp_context=_context(job),
                                         initializer=_install, initargs=(job, 1)) as pool:
                    pool.submit(_pid).result()
                    up.set()
                    running: dict[Future, int] = {}

                    def submit() -> None:
                        while (c := pop(True)) is not None:
                            try:
                                running[pool.submit(_call, c[1])] = c[0]
                                return
                            except Exception as exc:  # noqa: BLE001 - a broken pool (a
                                # worker died) fails each item it can no longer take
                                results.put((c[0], failed, exc))

                    for _ in range(2 * workers):
                        submit()
                    while running:
                        finished, _ = wait(running, return_when=FIRST_COMPLETED)
                        for f in finished:
                            i = running.pop(f)
                            exc = f.exception()
                            results.put((i, f.result()) if exc is None else (i, failed, exc))
                            submit()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                results.put(exc)
            results.put(None)

        thread = threading.Thread(target=feeder, name=f"{job.name}-pool-feeder", daemon=True)
        thread.start()
        pool_ready = local_ready = not job.caller_helps
        n_done = 0
        try:
            while n_done < len(items):
                try:
                    item = results.get_nowait() if not pool_ready else results.get()
                except queue.Empty:
                    c = pop(False)
                    if c is None:
                        item = results.get()
                    else:
                        if not local_ready:
                            _install(job, os.cpu_count() or 1)
                            local_ready = True
                        try:
                            res = job.fn(job.shared, c[1])
                        except Exception as exc:
                            if not return_exceptions:
                                raise
                            res = exc
                        n_done += 1
                        yield c[0], res
                        continue
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                pool_ready = True
                n_done += 1
                if len(item) == 3:  # the item raised in a worker
                    if not return_exceptions:
                        raise item[2]
                    yield item[0], item[2]
                else:
                    yield item
        finally:
            with lock:
                pending.clear()  # on an error: let the feeder finish what is running, and stop
            if up.is_set():
                thread.join()
            # else no item went to the pool, still starting: the feeder shuts it down once it
            # is up, in the background
