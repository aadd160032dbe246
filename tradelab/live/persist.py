"""A run's journal into the store: the ``orders``, ``fills``, ``positions``, ``pnl`` and
``risk_events`` tables under its run id, queryable with the catalog.

The journal is the source of truth; the tables are derived from it in one store transaction
(all or nothing), keyed by run and the runner's own ids, so exporting the same journal twice
(a restarted run, a re-run of the export) stores every row once.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tradelab.adapters.binance.symbols import EXCHANGE, store_symbol_of_raw
from tradelab.errors import StoreError
from tradelab.store.jsonlog import read_log
from tradelab.store.writer import StoreWriter


def journal_tables(records: list[dict[str, Any]], run_id: str,
                   symbol: str | None = None) -> dict[str, dict[str, list]]:
    """Column dicts of the five tables from a journal's records: of one raw ``symbol`` of a
    run that traded several (orders, fills, positions and PnL of that symbol, and its risk
    events with the run-wide ones: a halt or the kill switch stopped every symbol), or of
    everything (``None``)."""

    def ours(r: dict[str, Any]) -> bool:
        return symbol is None or r.get("symbol") == symbol

    orders: dict[str, dict[str, Any]] = {}
    fills: dict[str, list] = {k: [] for k in ("ts", "run_id", "client_id", "trade_id", "side",
                                              "qty", "price", "fee", "fee_asset", "maker",
                                              "inferred", "position", "realized_pnl")}
    positions: dict[str, list] = {k: [] for k in ("ts", "run_id", "position", "change", "price",
                                                  "trade_id")}
    pnl: dict[str, list] = {k: [] for k in ("ts", "run_id", "position", "mark", "realized_pnl",
                                            "unrealized_pnl", "fees", "equity")}
    risk: dict[str, list] = {k: [] for k in ("ts", "run_id", "kind", "reason", "detail", "seq")}
    for r in records:
        t = r["type"]
        if t in ("order", "execution", "pnl") and not ours(r):
            continue
        if t == "risk" and r.get("symbol") and not ours(r):
            continue
        if t == "order":
            orders[r["client_id"]] = {
                "ts": r["ts_ns"], "run_id": run_id, "client_id": r["client_id"],
                "venue_id": None, "side": r["side"], "order_type": r["order_type"],
                "tif": r["tif"], "qty": float(r["qty"]),
                "price": float(r["price"]) if r["price"] is not None else None,
                "reduce_only": bool(r["reduce_only"]), "tag": r["tag"], "state": "PENDING_NEW",
                "filled_qty": 0.0, "_quote": 0.0, "updated_ts": r["ts_ns"]}
        elif t == "order_state" and r["client_id"] in orders:
            o = orders[r["client_id"]]
            o["state"], o["updated_ts"] = r["state"], r["ts_ns"]
            o["venue_id"] = r["venue_id"] or o["venue_id"]
        elif t == "execution":
            qty, px = float(r["qty"]), float(r["price"])
            for k, v in (("ts", r["ts_ns"]), ("run_id", run_id), ("client_id", r["client_id"]),
                         ("trade_id", r["trade_id"]), ("side", r["side"]), ("qty", qty),
                         ("price", px), ("fee", float(r["fee"] or 0)),
                         ("fee_asset", r["fee_asset"]), ("maker", r["maker"]),
                         ("inferred", bool(r["inferred"])), ("position", r["position"]),
                         ("realized_pnl", r["realized_pnl"])):
                fills[k].append(v)
            change = qty if r["side"] == "BUY" else -qty
            for k, v in (("ts", r["ts_ns"]), ("run_id", run_id), ("position", r["position"]),
                         ("change", change), ("price", px), ("trade_id", r["trade_id"])):
                positions[k].append(v)
            placed = orders.get(r["client_id"])
            if placed is not None:
                placed["filled_qty"] += qty
                placed["_quote"] += qty * px
                placed["state"], placed["updated_ts"] = r["order_state"], r["ts_ns"]
        elif t == "pnl":
            for k in ("position", "mark", "realized_pnl", "unrealized_pnl", "fees", "equity"):
                pnl[k].append(r[k])
            pnl["ts"].append(r["ts_ns"])
            pnl["run_id"].append(run_id)
        elif t == "risk":
            for k, v in (("ts", r["ts_ns"]), ("run_id", run_id), ("kind", r["kind"]),
                         ("reason", r["reason"]), ("detail", json.dumps(r["detail"])),
                         ("seq", r["seq"])):
                risk[k].append(v)
    ocols: dict[str, list] = {k: [] for k in ("ts", "run_id", "client_id", "venue_id", "side",
                                              "order_type", "tif", "qty", "price", "reduce_only",
                                              "tag", "state", "filled_qty", "avg_price",
                                              "updated_ts")}
    for o in orders.values():
        o["avg_price"] = o["_quote"] / o["filled_qty"] if o["filled_qty"] else None
        for k in ocols:
            ocols[k].append(o[k])
    return {"orders": ocols, "fills": fills, "positions": positions, "pnl": pnl,
            "risk_events": risk}


def persist_journal(journal: str | os.PathLike, store: str | os.PathLike, run_id: str,
                    market: str, symbols: str | list[str] | tuple[str, ...]
                    ) -> dict[str, int] | dict[str, dict[str, int]]:
    """Write the journal's tables of each raw Binance symbol into ``store``, every symbol in
    one store transaction (all or nothing). Returns the rows handed to each table (rows the
    store already holds are not stored twice): per table for one symbol given as a string,
    per symbol then table for a list."""
    records = read_log(journal)
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    exchange = EXCHANGE[market]
    w = StoreWriter(store, deferred=True, run_id=None)
    counts: dict[str, dict[str, int]] = {}
    try:
        for raw in names:
            tables = journal_tables(records, run_id, raw)
            sym = store_symbol_of_raw(raw, market)
            counts[raw] = {name: w.write(name, exchange, sym, cols) if cols["ts"] else 0
                           for name, cols in tables.items()}
        w.commit()
    except BaseException:
        w.abort()
        raise
    finally:
        w.close()
    return counts[names[0]] if isinstance(symbols, str) else counts


def persist_run(run_dir: str | os.PathLike, store: str | os.PathLike
                ) -> dict[str, dict[str, int]]:
    """A run's journal (``<run_dir>/journal.log``) into ``store``, reading its run id, market
    and symbols from the journal's start record: for a run that was killed, or stored nowhere."""
    path = os.path.join(os.fspath(run_dir), "journal.log")
    if not os.path.exists(path):
        raise StoreError(f"{path} does not exist: not a runner's run directory")
    records = read_log(path)
    start = next((r for r in records if r["type"] == "start"), None)
    if start is None:
        raise StoreError(f"{path} has no start record: the run never started")
    symbols = start.get("symbols") or [start["symbol"]]
    counts = persist_journal(path, store, start["run_id"], start["market"], list(symbols))
    assert isinstance(counts, dict)
    return counts  # type: ignore[return-value]


__all__ = ["journal_tables", "persist_journal", "persist_run"]
