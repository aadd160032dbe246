"""A bar strategy one closed bar at a time, and when its target changes become orders.

One implementation for every place that runs a bar strategy on events (the event backtester and
the live runners), so they take the same decisions from the same bars:

- :meth:`BarDriver.on_bar` advances the strategy's own ``step`` kernel (the one its sweeps run)
  by one bar and returns the new target (-1, 0, +1);
- :meth:`BarDriver.wants_order` says whether a target calls for an order now: not when it is
  the target the orders sent so far aim at, and not while an earlier order is still on its way
  (the change waits for the next bar); an order the venue rejected leaves its target unreached,
  so the next bar tries again;
- :meth:`BarDriver.sent` records that the caller acted on a target (with the id of the order it
  sent, or None when sizing gave nothing to send).
"""

from __future__ import annotations

import numpy as np

from tradelab.strategies.contract import StrategyModule
from tradelab.strategies.params import StrategyParams, as_vector
from tradelab.strategies.types import BAR

BAR_COLUMNS = ("open", "high", "low", "close", "volume")


class BarDriver:
    """One bar strategy with one parameter set, and the target its orders aim at."""

    def __init__(self, module: StrategyModule,
                 params: StrategyParams | np.ndarray | dict | None) -> None:
        if module.KIND != BAR:
            raise ValueError(f"{module.NAME} is a {module.KIND} strategy, not a bar strategy")
        extra = [c for c in module.INPUTS if c not in BAR_COLUMNS]
        if extra:
            raise ValueError(f"{module.NAME} reads {', '.join(extra)}, which bars built from "
                             f"one instrument's trades do not have (they have "
                             f"{', '.join(BAR_COLUMNS)})")
        if isinstance(params, dict):
            params = module.Params(**params)
        self.module = module
        self.p = as_vector(module.Params, params)
        self.state = module.init_state_nb(self.p)
        self.cols = [BAR_COLUMNS.index(c) for c in module.INPUTS]
        self.held = 0  # the target the orders sent so far aim at
        self.last_order: int | None = None  # id of the last order sent ...
        self._held_before = 0  # ... and the target held before it

    def on_bar(self, bar: np.ndarray | list[float]) -> int:
        """The strategy's target after this closed bar (open, high, low, close, volume)."""
        return int(self.module.step(self.p, self.state, *(float(bar[k]) for k in self.cols)))

    def wants_order(self, target: int, in_flight: bool, last_rejected: bool) -> bool:
        """Whether ``target`` calls for an order now (see the module docstring).
        ``last_rejected``: the venue rejected :attr:`last_order`."""
        if self.last_order is not None and last_rejected:
            self.held = self._held_before
            self.last_order = None
        return target != self.held and not in_flight

    def sent(self, target: int, order_id: int | None) -> None:
        """The caller acted on ``target``: sent ``order_id`` (None: nothing to send)."""
        if order_id is not None:
            self.last_order, self._held_before = order_id, self.held
        self.held = target

    def state_dict(self) -> dict:
        """What a restarted runner needs to continue (the strategy state and the target)."""
        return {"state": [None if np.isnan(x) else float(x) for x in self.state],
                "held": self.held,
                "last_order": self.last_order, "held_before": self._held_before}

    def restore(self, d: dict) -> None:
        self.state[:] = np.asarray([np.nan if x is None else x for x in d["state"]],
                                   dtype=np.float64)
        self.held = int(d["held"])
        self.last_order = d["last_order"]
        self._held_before = int(d["held_before"])


__all__ = ["BAR_COLUMNS", "BarDriver"]
