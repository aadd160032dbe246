"""Spot trading state as the journal keeps it: orders with their fills, balances, id counters.

Keys: ``counters`` (next order, trade and default client ids), ``last_px`` (the market's last
trade price per symbol, for stop orders), ``account:<uid>`` (free and locked balances, with a
fingerprint of the API key so a journal is never applied to a different accounts file), and
``order:<id>`` per order. Amounts are decimal strings.

On restore the matching cores start empty: open orders that were resting re-enter a fresh core
(at the back of each price level's queue, with what they have left) as soon as the venue's book
can seed it; conditional orders not yet triggered wait for their stop price again.
"""

from __future__ import annotations

import hashlib
import itertools
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradelab.venue.trading import Order, Trading


def key_fingerprint(api_key: str) -> str:
    """A short digest of an API key (the key itself is never written)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def _peek(counter: itertools.count) -> tuple[int, itertools.count]:
    """The next value of ``counter`` and a counter that still yields it."""
    n = next(counter)
    return n, itertools.count(n)


def _order_state(o: Order) -> dict[str, Any]:
    return {"uid": o.account.uid, "symbol": o.inst.symbol, "id": o.order_id,
            "client_id": o.client_id, "side": o.side, "type": o.type, "tif": o.tif,
            "price": str(o.price), "qty": str(o.orig_qty), "quote_qty": str(o.orig_quote_qty),
            "time": o.time_ms, "status": o.status, "executed": str(o.executed),
            "cum_quote": str(o.cum_quote), "update": o.update_ms, "lock_asset": o.lock_asset,
            "locked": str(o.locked), "stop": str(o.stop_price), "triggered": o.triggered_ms,
            "fills": [[f.trade_id, str(f.price), str(f.qty), str(f.commission),
                       f.commission_asset, f.maker, f.time_ms] for f in o.fills]}


def trading_state(t: Trading) -> dict[str, Any]:
    """Everything of ``t`` that must survive a restart."""
    out = trading_state_head(t)
    for o in t.orders.values():
        out[f"order:{o.order_id}"] = _order_state(o)
    return out


def trading_state_head(t: Trading) -> dict[str, Any]:
    """The state but the orders: id counters, last prices, accounts."""
    next_order, t._order_ids = _peek(t._order_ids)
    next_client, t._client_ids = _peek(t._client_ids)
    trade_ids = {}
    for sym, counter in list(t._trade_ids.items()):
        trade_ids[sym], t._trade_ids[sym] = _peek(counter)
    out: dict[str, Any] = {
        "counters": {"order": next_order, "client": next_client, "trade": trade_ids},
        "last_px": {s: str(p) for s, p in t.last_px.items()}}
    for acc in t.accounts.by_key.values():
        out[f"account:{acc.uid}"] = {
            "key": key_fingerprint(acc.api_key),
            "free": {a: str(v) for a, v in acc.free.items()},
            "locked": {a: str(v) for a, v in acc.locked.items()}}
    return out


def changed_trading_state(t: Trading) -> dict[str, Any]:
    """The entries of :func:`trading_state` that may have changed since the last call: the
    counters, last prices and accounts, and the orders that were open then or are new since
    (a finished order never changes again). O(open orders), not O(all orders)."""
    nxt = _next_order_id(t)
    if t.journal_watch is None:
        out = trading_state(t)
        candidates = set(t.orders)
    else:
        watch, seen = t.journal_watch
        out = trading_state_head(t)
        candidates = watch | set(range(seen + 1, nxt))
        for oid in sorted(candidates):
            o = t.orders.get(oid)
            if o is not None:
                out[f"order:{oid}"] = _order_state(o)
    t.journal_watch = ({i for i in candidates if i in t.orders and t.orders[i].open}, nxt - 1)
    return out


def _next_order_id(t: Trading) -> int:
    n, t._order_ids = _peek(t._order_ids)
    return n


def restore_trading(t: Trading, state: dict[str, Any]) -> None:
    """Put ``t`` (fresh, with its accounts from the config) back in the journal's state."""
    from tradelab.venue.trading import Fill, Order

    if t.orders:
        raise ValueError("restore needs a venue that has taken no orders yet")
    by_uid = {a.uid: a for a in t.accounts.by_key.values()}
    for key, value in state.items():
        if not key.startswith("account:"):
            continue
        uid = int(key.split(":", 1)[1])
        acc = by_uid.get(uid)
        if acc is None or key_fingerprint(acc.api_key) != value["key"]:
            raise ValueError(f"account #{uid} of the journal is not the configured account "
                             f"#{uid} (a different accounts file?)")
        acc.free = {a: Decimal(v) for a, v in value["free"].items()}
        acc.locked = {a: Decimal(v) for a, v in value["locked"].items()}
    trades: list[tuple[Order, Fill]] = []
    for key, v in state.items():
        if not key.startswith("order:"):
            continue
        inst = t.instruments.get(("spot", v["symbol"]))
        if inst is None:
            raise ValueError(f"order {v['id']} is on {v['symbol']}, which this venue does not "
                             "list")
        acc = by_uid[v["uid"]]
        o = Order(acc, inst, v["id"], v["client_id"], v["side"], v["type"], v["tif"],
                  Decimal(v["price"]), Decimal(v["qty"]), Decimal(v["quote_qty"]), v["time"],
                  status=v["status"], executed=Decimal(v["executed"]),
                  cum_quote=Decimal(v["cum_quote"]), update_ms=v["update"],
                  lock_asset=v["lock_asset"], locked=Decimal(v["locked"]),
                  stop_price=Decimal(v["stop"]), triggered_ms=v["triggered"])
        o.fills = [Fill(f[0], Decimal(f[1]), Decimal(f[2]), Decimal(f[3]), f[4], f[5], f[6])
                   for f in v["fills"]]
        t.orders[o.order_id] = o
        trades += [(o, f) for f in o.fills]
        if o.open:
            t.off_book[o.order_id] = o  # re-enters a fresh core (or waits for its stop)
    t.trades = {}
    for o, f in sorted(trades, key=lambda x: (x[1].time_ms, x[1].trade_id)):
        t.trades.setdefault(o.account.uid, []).append((o, f))
    c = state.get("counters", {})
    t._order_ids = itertools.count(int(c.get("order", 1)))
    t._client_ids = itertools.count(int(c.get("client", 1)))
    t._trade_ids = {s: itertools.count(int(n)) for s, n in c.get("trade", {}).items()}
    t.last_px = {s: Decimal(p) for s, p in state.get("last_px", {}).items()}
    t.journal_watch = None
