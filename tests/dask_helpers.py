"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

Workers run without a nanny, so a worker that dies stays dead (no restart hides a bug), with one
thread each and this checkout on their ``PYTHONPATH``. :meth:`LocalDaskCluster.close` ends the
processes it started, by their process ids.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))


class LocalDaskCluster:
    """A scheduler and ``n_workers`` single-threaded workers (named w0, w1, ...)."""

    def __init__(self, folder: Path, n_workers: int = 2, timeout: float = 60.0) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        env["NUMBA_NUM_THREADS"] = "1"
        self._env = env
        info = folder / "scheduler.json"
        self.scheduler = self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(info)], "scheduler")
        self.workers: dict[str, subprocess.Popen] = {}
        try:
            deadline = time.monotonic() + timeout
            while not info.exists() or not info.read_text().strip():
                if self.scheduler.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the dask scheduler did not start: "
                                       f"{self._log('scheduler')}")
                time.sleep(0.1)
            self.address = json.loads(info.read_text())["address"]
            for i in range(n_workers):
                self.add_worker(f"w{i}")
            self.wait_for_workers(n_workers, timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, cmd: list[str], name: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(cmd, cwd=self.folder, env=self._env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def _log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()[-2000:]

    def add_worker(self, name: str) -> None:
        """Start one more worker process."""
        self.workers[name] = self._start(
            [DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "60",
             "--local-directory", str(self.folder / name)], name)

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            try:
                client.wait_for_workers(n, timeout=timeout)
            except TimeoutError:
                logs = {w: self._log(w) for w in self.workers}
                raise RuntimeError(f"{n} dask workers did not join: {logs}") from None

    def kill_worker(self, name: str) -> None:
        """SIGKILL one worker (no goodbye to the scheduler)."""
        proc = self.workers[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        """Workers first (each says goodbye to the scheduler), then the scheduler; whatever
        has not stopped 10 s after SIGTERM is killed."""
        for group in (list(self.workers.values()), [self.scheduler]):
            for p in group:
                if p.poll() is None:
                    p.terminate()
            for p in group:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)


# -- jobs for the tests (module level: workers import them by name) -----------------------------

_SETUPS: list[int] = []


def count_setup(shared: int, threads: int) -> None:
    """A job's setup: counted per process."""
    _SETUPS.append(threads)


def times(shared: int, x: int) -> tuple[int, int, int]:
    """``shared * x``, with this process's id and how many setups it has run."""
    return shared * x, os.getpid(), len(_SETUPS)


def fail_on_three(shared: int, x: int) -> int:
    if x == 3:
        raise ValueError("three is refused")
    return shared * x
