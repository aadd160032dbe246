"""The runner's journal: every order action, execution, position change, PnL snapshot and risk
event, written durably (:class:`tradelab.store.jsonlog.JsonLog`) before the runner acts on it.

Records are plain JSON with a ``type``: ``start``, ``order`` (a new order, before it is sent),
``order_state``, ``execution``, ``risk``, ``pnl`` and ``state`` (what a restarted runner needs:
the strategy driver's state, the risk guards' counters, open brackets). Decimals are written as
strings. :func:`rehydrate` rebuilds the order manager's orders from a journal, so a restarted
runner knows every order it ever sent and never reuses a client id.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from tradelab.live.orders import Execution, ManagedOrder, OrderManager, OrderState
from tradelab.live.risk import RiskEvent
from tradelab.store.jsonlog import JsonLog


def _d(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


class RunJournal:
    """A run's journal file (appends are durable when the method returns)."""

    def __init__(self, path: str | os.PathLike, fsync: bool = True) -> None:
        self.log = JsonLog(path, fsync=fsync)

    @property
    def records(self) -> list[dict[str, Any]]:
        """What the file held when it was opened (a restart's starting point)."""
        return self.log.records

    def start(self, run_id: str, ts_ns: int, **info: Any) -> None:
        self.log.append({"type": "start", "run_id": run_id, "ts_ns": ts_ns, **info})

    def order_new(self, o: ManagedOrder, ts_ns: int) -> None:
        self.log.append({"type": "order", "ts_ns": ts_ns, "client_id": o.client_id,
                         "symbol": o.symbol, "side": o.side, "order_type": o.type,
                         "qty": _d(o.qty), "price": _d(o.price), "tif": o.tif,
                         "reduce_only": o.reduce_only, "tag": o.tag})

    def order_state(self, o: ManagedOrder, ts_ns: int) -> None:
        self.log.append({"type": "order_state", "ts_ns": ts_ns, "client_id": o.client_id,
                         "state": o.state.value, "venue_id": o.venue_id,
                         "outcome_unknown": o.outcome_unknown})

    def execution(self, o: ManagedOrder, ex: Execution, side: str, position: float,
                  realized: float) -> None:
        self.log.append({"type": "execution", "ts_ns": ex.ts_ns, "client_id": o.client_id,
                         "symbol": o.symbol, "side": side, "trade_id": ex.trade_id,
                         "qty": _d(ex.qty), "price": _d(ex.price), "fee": _d(ex.fee),
                         "fee_asset": ex.fee_asset, "maker": ex.maker,
                         "inferred": ex.inferred, "position": position,
                         "realized_pnl": realized, "order_state": o.state.value})

    def risk(self, ev: RiskEvent) -> None:
        self.log.append({"type": "risk", "ts_ns": ev.ts_ns, "kind": ev.kind,
                         "reason": ev.reason, "symbol": ev.symbol,
                         "detail": {k: (float(v) if isinstance(v, float | int) else str(v))
                                    for k, v in ev.detail.items()}})

    def pnl(self, ts_ns: int, symbol: str, position: float, mark: float | None,
            realized: float, unrealized: float, fees: float, equity: float) -> None:
        self.log.append({"type": "pnl", "ts_ns": ts_ns, "symbol": symbol,
                         "position": position, "mark": mark, "realized_pnl": realized,
                         "unrealized_pnl": unrealized, "fees": fees, "equity": equity})

    def state(self, ts_ns: int, **state: Any) -> None:
        self.log.append({"type": "state", "ts_ns": ts_ns, **state})

    def close(self) -> None:
        self.log.close()


def rehydrate(records: list[dict[str, Any]], oms: OrderManager) -> None:
    """Rebuild ``oms``'s orders (states and executions) from journal records (each runner
    core then finds its own last ``state`` record: :meth:`BarRunnerCore.last_state`)."""
    for r in records:
        t = r["type"]
        if t == "order":
            o = ManagedOrder(r["client_id"], r["symbol"], r["side"], r["order_type"],
                             Decimal(r["qty"]),
                             Decimal(r["price"]) if r["price"] is not None else None,
                             r["tif"], r["reduce_only"], r["tag"], created_ns=r["ts_ns"],
                             updated_ns=r["ts_ns"])
            o.history.append((r["ts_ns"], o.state))
            # sent or not, its outcome is unknown until the venue says: reconcile asks
            o.outcome_unknown = True
            oms.adopt(o)
        elif t == "order_state":
            o = oms.orders[r["client_id"]]
            o.state = OrderState(r["state"])
            o.venue_id = r["venue_id"]
            o.outcome_unknown = bool(r["outcome_unknown"])
            o.history.append((r["ts_ns"], o.state))
        elif t == "execution":
            o = oms.orders[r["client_id"]]
            if not any(e.trade_id == r["trade_id"] for e in o.executions):
                o.executions.append(Execution(r["trade_id"], Decimal(r["qty"]),
                                              Decimal(r["price"]), Decimal(r["fee"] or "0"),
                                              r["fee_asset"], r["ts_ns"], r["maker"],
                                              r["inferred"]))
            o.state = OrderState(r["order_state"])
            o.outcome_unknown = False


__all__ = ["RunJournal", "rehydrate"]
