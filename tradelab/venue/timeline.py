"""Run a scripted order timeline on the venue, driven by its own source's messages.

:func:`run_timeline` publishes the venue source's messages itself, in order (the venue clock is
the stream: speed 0), and sends each :class:`~tradelab.matching.timeline.Action` through the
venue's latency gate when the clock reaches its time: before the first message stamped after it.
Orders carry the client id ``tl-<order_id>``; what each action got back and every fill are
returned in the engines' common form, to compare with the event backtester's
(:mod:`tradelab.backtest.event.timeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tradelab.adapters.binance import trading as wire
from tradelab.matching.timeline import Action, TimelineFill
from tradelab.matching.types import A_CANCEL, A_PLACE
from tradelab.venue.accounts import Account
from tradelab.venue.core import Venue
from tradelab.venue.latency import Ticket
from tradelab.venue.trading import Order, Trading

MS = 1_000_000


@dataclass
class VenueTimeline:
    """What the timeline did on the venue."""

    fills: list[TimelineFill]
    status: dict[int, str]  # order id -> final status (REJECTED when the venue refused it)
    tickets: list[tuple[Action, Ticket]] = field(default_factory=list)
    orders: dict[int, Order] = field(default_factory=dict)


def client_id(order_id: int) -> str:
    return f"tl-{order_id}"


def _message_ns(data: dict) -> int:
    t = data.get("E") or data.get("T")
    return int(t) * MS if t else 0


async def run_timeline(venue: Venue, account: Account, symbol: str,
                       actions: Sequence[Action]) -> VenueTimeline:
    """Replay the venue's source to its end with ``actions`` sent at their times."""
    trading = venue.trading
    gate = venue.gate
    todo = sorted(actions, key=lambda a: a.t_ns)
    sent: list[tuple[Action, Ticket]] = []
    k = 0

    def send(a: Action) -> None:
        if a.kind == "place":
            params = {"symbol": symbol, "side": a.side, "type": a.type, "quantity": a.qty,
                      "newClientOrderId": client_id(a.order_id)}
            if a.type != "MARKET":
                params["price"] = a.price or ""
            if a.type == "LIMIT":
                params["timeInForce"] = a.tif
            req = wire.parse_order(params)
            sent.append((a, gate.submit(A_PLACE, lambda: trading.new_order(account, req),
                                        a.t_ns)))
        else:
            sent.append((a, gate.submit(A_CANCEL, lambda: trading.cancel(
                account, symbol, None, client_id(a.order_id)), a.t_ns)))

    gate.set_streaming(True)
    try:
        while batch := venue.source.take(None):
            for msg in batch:
                t = _message_ns(msg.data)
                while k < len(todo) and todo[k].t_ns < t:
                    send(todo[k])
                    k += 1
                await venue.publish(msg)
        for a in todo[k:]:
            send(a)
    finally:
        gate.set_streaming(False)
    orders: dict[int, Order] = {}
    status: dict[int, str] = {}
    for a, tk in sent:
        if a.kind != "place":
            continue
        if isinstance(tk.result, Order):
            orders[a.order_id] = tk.result
        else:
            status[a.order_id] = "REJECTED"
    status.update({oid: o.status for oid, o in orders.items()})
    return VenueTimeline(fills_of(trading, account, orders), status, sent, orders)


def fills_of(trading: Trading, account: Account, orders: dict[int, Order]) -> list[TimelineFill]:
    """The account's fills of ``orders`` (timeline id -> venue order), as they happened."""
    by_order = {o.order_id: oid for oid, o in orders.items()}
    fills = []
    for order, f in trading.trades.get(account.uid, []):
        oid = by_order.get(order.order_id)
        if oid is not None:
            fills.append(TimelineFill(oid, f.time_ms, order.side, f.price, f.qty, f.maker,
                                      f.commission))
    return fills
