"""Where a command's heavy work runs, from its config (``compute:``) and the command line
(``--scheduler``, ``--dask-local``): :func:`open_backend`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradelab.compute.job import Backend

_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d+$")


class ComputeConfig(BaseModel):
    """``compute:`` in a sweep, backtest or nightly config."""

    model_config = ConfigDict(extra="forbid")
    scheduler: str | None = None
    """A running Dask scheduler, ``tcp://HOST:PORT``; none: this machine."""
    dask_local: int | None = Field(None, ge=1, le=256)
    """Start a Dask ``LocalCluster`` of this many worker processes instead of the local pool."""
    store_visible: bool = True
    """Workers see the store (a shared filesystem) and read event chunks themselves; false: the
    client reads them and sends them to the workers."""

    @field_validator("scheduler")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError(f"scheduler must look like tcp://HOST:PORT, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_of(self) -> ComputeConfig:
        if self.scheduler and self.dask_local:
            raise ValueError("give either a scheduler address or dask_local, not both")
        return self

    def with_cli(self, scheduler: str | None, dask_local: int | None) -> ComputeConfig:
        """The command line's choice over the config's (either option replaces both keys)."""
        if scheduler is None and dask_local is None:
            return self
        return ComputeConfig(scheduler=scheduler, dask_local=dask_local,
                             store_visible=self.store_visible)

    @property
    def distributed(self) -> bool:
        return bool(self.scheduler or self.dask_local)


@contextmanager
def open_backend(compute: ComputeConfig | None, workers: int) -> Iterator[Backend]:
    """The backend ``compute`` names (default: a local pool of ``workers``), closed on exit."""
    from tradelab.compute.local import LocalPool

    compute = compute or ComputeConfig()
    backend: Backend
    if compute.scheduler:
        from tradelab.compute.cluster import DaskBackend

        backend = DaskBackend.connect(compute.scheduler)
    elif compute.dask_local:
        from tradelab.compute.cluster import DaskBackend

        backend = DaskBackend.local(compute.dask_local)
    else:
        backend = LocalPool(workers)
    try:
        yield backend
    finally:
        backend.close()
