"""Where heavy work runs: this process, the local process pool, or a Dask cluster.

Sweeps, walk-forwards over saved runs, event-backtest grids and the nightly hand their work to
a :class:`Backend` as a :class:`Job` (one function over many items, shared inputs sent to each
worker once) and take the results back as they complete. This package knows nothing of what
it runs.
"""

from tradelab.compute.config import ComputeConfig, open_backend
from tradelab.compute.job import Backend, Job, Progress
from tradelab.compute.local import InProcess, LocalPool

__all__ = ["Backend", "ComputeConfig", "InProcess", "Job", "LocalPool", "Progress",
           "open_backend"]
