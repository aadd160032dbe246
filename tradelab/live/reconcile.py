"""Reconciliation: at start-up and after every reconnect, the venue is the authority.

The runner knows what its journal says; the venue knows what happened. Reconciling reads from
the venue (through the same ccxt client that trades) and brings the runner's state in line:

1. **orders**: every order the journal holds unsettled is queried by client id and settled
   (filled, open, cancelled, or never arrived); open orders on the venue carrying the runner's
   client-id prefix that the journal does not know are adopted and journaled;
2. **fills**: the account's trades since the journal's last execution are read; a fill of one of
   our orders the journal lacks is journaled and booked (never dropped, never doubled: trade ids);
3. **balances / positions**: spot: the base asset's balance must equal the balance at the run's
   first start plus the journal's net fills less fees paid in the base asset; USD-M: the venue's
   position must equal the journal's. A missing position report is never taken as flat: it is an
   error. A difference that cannot be explained stops the runner before it trades, with the
   difference printed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradelab.errors import TradelabError
from tradelab.live.core import BarRunnerCore
from tradelab.live.orders import ManagedOrder, OrderState
from tradelab.live.venue_broker import VenueBroker, execution_of

log = logging.getLogger("tradelab.live")


class ReconcileError(TradelabError):
    """The venue and the journal disagree in a way the runner cannot explain."""


@dataclass
class ReconcileReport:
    """What reconciliation found and did."""

    queried: int = 0
    adopted: list[str] = field(default_factory=list)
    fills_added: int = 0
    venue_balance: str | None = None
    expected_balance: str | None = None
    venue_position: float | None = None
    journal_position: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def reconcile(broker: VenueBroker, core: BarRunnerCore, market: str, base_asset: str,
                    start_base: Decimal | None, tolerance: Decimal,
                    balances: bool = True) -> ReconcileReport:
    """Bring the runner ``core`` in line with the venue (see the module docstring).
    ``start_base``: the base balance when the run first started (spot). ``balances=False``
    (after a stream reconnect, with orders possibly in flight) checks orders and fills only."""
    import ccxt.async_support as ccxt

    oms = core.oms
    rep = ReconcileReport()
    client, symbol = broker.client, broker.symbol
    mine = list(broker.mine().values())  # this symbol's orders (order ids are per symbol)
    # 1. orders the journal holds unsettled, then the venue's open orders
    for order in [o for o in mine if not o.done or o.outcome_unknown]:
        await broker.resolve(order)
        rep.queried += 1
    try:
        venue_open = await client.fetch_open_orders(symbol)
    except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
        raise ReconcileError(f"cannot read open orders from the venue: {exc}") from None
    prefix = f"{oms.id_prefix}-"
    for vo in venue_open:
        cid = str(vo.get("clientOrderId") or "")
        if cid.startswith(prefix) and cid not in oms.orders:
            o = ManagedOrder(cid, core.setup.symbol, str(vo["side"]).upper(),
                             str(vo["type"]).upper(), Decimal(str(vo["amount"])),
                             Decimal(str(vo["price"])) if vo.get("price") else None,
                             state=OrderState.NEW, venue_id=str(vo["id"]))
            oms.adopt(o)
            if core.journal is not None:
                core.journal.order_new(o, core.engine.now)
                core.journal.order_state(o, core.engine.now)
            rep.adopted.append(cid)
    # 2. fills since the last one the journal holds
    mine = list(broker.mine().values())  # with the orders adopted above
    by_venue = {o.venue_id: o for o in mine if o.venue_id}
    since = max((e.ts_ns for o in mine for e in o.executions), default=None)
    try:
        trades = await client.fetch_my_trades(
            symbol, None if since is None else since // 1_000_000 - 1_000, 1000)
    except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
        raise ReconcileError(f"cannot read the account's trades: {exc}") from None
    for t in trades:
        own = by_venue.get(str(t.get("order")))
        if own is None:
            continue
        ex = execution_of(t)
        if any(e.trade_id == ex.trade_id for e in own.executions):
            continue
        core.on_execution(own.client_id, ex, own.side)
        rep.fills_added += 1
    # 3. balances / positions
    journal_pos = core.positions.get(core.setup.symbol, 0.0)
    rep.journal_position = journal_pos
    if not balances:
        pass
    elif market == "usdm":
        try:
            positions = await client.fetch_positions([symbol])
        except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
            raise ReconcileError(f"cannot read positions from the venue ({exc}); a missing "
                                 "position report is never taken as flat") from None
        entries = [p for p in positions if p.get("symbol") == symbol]
        if entries:
            p = entries[0]
            sign = -1.0 if p.get("side") == "short" else 1.0
            venue_pos = sign * float(p.get("contracts") or 0.0)
        else:
            # the v3 list leaves flat symbols out: ask for this one by name (v2 answers every
            # symbol asked for, flat or not); no answer for it is an error, never "flat"
            raw_symbol = core.setup.symbol
            try:
                rows = await client.fapiPrivateV2GetPositionRisk({"symbol": raw_symbol})
            except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
                raise ReconcileError(f"cannot read the position of {raw_symbol} ({exc}); a "
                                     "missing position report is never taken as flat") from None
            named = [r for r in rows or [] if r.get("symbol") == raw_symbol]
            if not named:
                raise ReconcileError(f"the venue reported no position entry for {raw_symbol};"
                                     " a missing position report is never taken as flat")
            venue_pos = float(named[0].get("positionAmt") or 0.0)
        rep.venue_position = venue_pos
        if abs(venue_pos - journal_pos) > float(tolerance):
            raise ReconcileError(f"position differs: venue {venue_pos} vs journal "
                                 f"{journal_pos} ({symbol}); the runner will not trade")
    elif start_base is not None:
        try:
            bal = await client.fetch_balance()
        except (ccxt.OperationFailed, ccxt.ExchangeError) as exc:
            raise ReconcileError(f"cannot read balances from the venue: {exc}") from None
        venue_total = Decimal(str((bal.get(base_asset) or {}).get("total") or 0))
        fees_in_base = sum((e.fee for o in mine for e in o.executions
                            if e.fee_asset == base_asset), Decimal(0))
        # exact: the journaled fills' net quantity (buys less sells) less the fees the venue
        # took in the base asset (the runner's position is already net of those fees)
        net_fills = oms.position(core.setup.symbol)
        expected = start_base + net_fills - fees_in_base
        rep.venue_balance, rep.expected_balance = str(venue_total), str(expected)
        if abs(venue_total - expected) > tolerance:
            raise ReconcileError(
                f"{base_asset} balance differs: venue {venue_total}, journal expects "
                f"{expected} (start {start_base} + net fills {net_fills} - fees "
                f"{fees_in_base}); difference {venue_total - expected}. The runner will not "
                "trade until this is explained")
    log.info("reconciled: %s", rep.as_dict())
    return rep


__all__ = ["ReconcileError", "ReconcileReport", "reconcile"]
