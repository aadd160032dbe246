"""What the compute layer runs: a :class:`Job` (one function over many items, with inputs
shared by every item) and the :class:`Backend` protocol every place that runs jobs follows.

A job is ``fn(shared, item)`` for each item. ``shared`` is sent to every worker once (a local
worker's initializer, a Dask worker plugin), never once per item. ``setup(shared, threads)``, when
given, runs once per worker process before its first item (``threads``: how many threads the
item may use there). The functions must be importable by name (module level): a Dask worker
unpickles them by reference, so it needs the same ``tradelab`` installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after every item."""


@dataclass(frozen=True)
class Job:
    """One function over many items; see the module docstring."""

    fn: Callable[[Any, Any], Any]
    shared: Any = None
    setup: Callable[[Any, int], None] | None = None
    name: str = "job"
    preload: tuple[str, ...] = ()
    """Modules imported before the first item: by a local pool's fork server before it forks
    workers, by every Dask worker (ignored in process)."""
    start_method: str = "forkserver"
    """How a local pool starts its workers (``forkserver`` or ``spawn``)."""
    caller_helps: bool = False
    """A local pool may run items in the calling process while its workers start."""


class Backend(Protocol):
    """Where jobs run: :class:`~tradelab.compute.local.InProcess`,
    :class:`~tradelab.compute.local.LocalPool` or :class:`~tradelab.compute.cluster.DaskBackend`."""

    @property
    def workers(self) -> int:
        """How many items can run at once."""
        ...

    def describe(self) -> str:
        """One line for the terminal: what runs the work (and the Dask dashboard's address)."""
        ...

    def run(self, job: Job, items: Sequence[Any], progress: Progress | None = None, *,
            return_exceptions: bool = False) -> Iterator[tuple[int, Any]]:
        """``(position in items, result)`` for every item, in the order they complete.

        An item that raised stops the run with its exception, or, with ``return_exceptions``,
        is yielded with the exception as its result. Closing the iterator early cancels what is
        still queued."""
        ...

    def close(self) -> None:
        """Release workers this backend started (a cluster it only connected to keeps running)."""
        ...
