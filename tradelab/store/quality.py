"""Data-quality checks per partition (table, exchange, symbol, date).

Every partition gets: rows, part files, time span, rows out of order (``ts`` going backwards
within a part file), duplicate rows, negative latency (``recv_ts < ts``: the local clock is
behind the exchange's), the median latency, odd receipt times (zero or negative; for live tables
more than ``RECV_FAR_S`` from the exchange time) and bad values (see ``GOOD_VALUES``). Then per
table:

- ``book``: messages, snapshots, gaps and resyncs recorded by producers (``quality_events``),
  breaks in the stored update-id chain (should be 0: producers stop at a gap), crossed and locked
  books after each message of the rebuilt book;
- ``bbo``: crossed (bid > ask) and locked (bid == ask) quotes;
- ``ohlcv``: per interval and kind, missing candles and gap runs, candles off the interval grid,
  inconsistent OHLC;
- ``funding``: settlement jitter (distance of settled rows from the hour), missing settlements;
- imports: rejected lines by reason from the import manifests.

Findings that deserve attention are listed as plain sentences under ``issues``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from tradelab.core.timeutil import candle_slots, ns_to_date
from tradelab.store.catalog import Catalog, partition_filter

KEY = ["exchange", "symbol", "date"]
_HOUR_NS = 3_600_000_000_000
JITTER_ISSUE_MS = 1_000.0
"""Funding times a few ms off the hour are normal (Binance); beyond this they are an issue."""


RECV_FAR_S = 300.0
"""A receipt time further than this from the exchange time is flagged (live tables only)."""
_LIVE_TABLES = ("trades", "book", "bbo")


def _pos(*cols: str) -> str:
    return " AND ".join(f"isfinite({c}) AND {c} > 0" for c in cols)


def _nonneg(*cols: str) -> str:
    return " AND ".join(f"isfinite({c}) AND {c} >= 0" for c in cols)


GOOD_VALUES = {
    "trades": _pos("price", "qty"),
    "book": f"{_pos('price')} AND {_nonneg('qty')}",
    "bbo": f"{_pos('bid_px', 'ask_px')} AND {_nonneg('bid_qty', 'ask_qty')}",
    "ohlcv": f"{_pos('open', 'high', 'low', 'close')} AND {_nonneg('volume')}",
    "funding": "isfinite(rate) AND (mark_price IS NULL OR (isfinite(mark_price) AND "
               "mark_price > 0))",
    "open_interest": _nonneg("open_interest"),
}
"""What a stored value must satisfy, per table: finite, prices positive, sizes not negative."""


def _common(cat: Catalog, table: str, where: str) -> pd.DataFrame:
    """Counts, span, order, latency, odd receipt times and bad values per partition."""
    far = int(RECV_FAR_S * 1e9)
    far_sql = (
        f"count(*) FILTER (WHERE recv_ts > 0 AND abs(recv_ts - ts) > {far})"
        if table in _LIVE_TABLES else "0"
    )
    good = GOOD_VALUES.get(table)
    bad_sql = f"count(*) FILTER (WHERE NOT ({good}))" if good else "0"
    return cat.sql(f"""
        WITH t AS (
            SELECT *,
                   ts < lag(ts) OVER (PARTITION BY exchange, symbol, date, filename
                                      ORDER BY file_row_number) AS backwards
            FROM "_{table}_raw" WHERE {where})
        SELECT exchange, symbol, CAST(date AS VARCHAR) AS date, count(*) AS rows,
               count(DISTINCT filename) AS files, min(ts) AS ts_min, max(ts) AS ts_max,
               count(*) FILTER (WHERE backwards) AS out_of_order,
               count(*) FILTER (WHERE recv_ts < ts) AS negative_latency,
               median((recv_ts - ts) / 1e6) AS latency_p50_ms,
               count(*) FILTER (WHERE recv_ts <= 0) AS recv_ts_not_positive,
               {far_sql} AS recv_ts_far,
               {bad_sql} AS bad_values
        FROM t GROUP BY exchange, symbol, date ORDER BY exchange, symbol, date""")


def _duplicates(cat: Catalog, table: str, where: str, key: str) -> pd.DataFrame:
    return cat.sql(f"""
        SELECT exchange, symbol, CAST(date AS VARCHAR) AS date,
               count(*) - count(DISTINCT ({key})) AS duplicates
        FROM "_{table}_raw" WHERE {where} GROUP BY ALL""")


def _book_checks(cat: Catalog, where: str) -> pd.DataFrame:
    msgs = cat.sql(f"""
        WITH m AS (
            SELECT exchange, symbol, date, ts, seq, prev_seq, (flags & 1) = 1 AS snap,
                   lag(seq) OVER w AS last_seq, lag((flags & 1) = 1) OVER w AS last_snap
            FROM "_book_raw" WHERE {where} AND (flags & 2) = 2
            WINDOW w AS (PARTITION BY exchange, symbol ORDER BY ts, filename, file_row_number))
        SELECT exchange, symbol, CAST(date AS VARCHAR) AS date, count(*) AS messages,
               count(*) FILTER (WHERE snap) AS snapshots,
               count(*) FILTER (WHERE NOT snap AND prev_seq IS NOT NULL AND last_seq IS NOT NULL
                   AND ((last_snap AND NOT (prev_seq <= last_seq AND last_seq < seq))
                        OR (NOT last_snap AND prev_seq <> last_seq))) AS seq_breaks
        FROM m GROUP BY ALL""")
    events = cat.sql(f"""
        SELECT exchange, symbol, CAST(date AS VARCHAR) AS date,
               count(*) FILTER (WHERE kind = 'gap') AS gaps,
               count(*) FILTER (WHERE kind = 'resync') AS resyncs
        FROM "_quality_events_raw" WHERE {where} AND table_name = 'book' GROUP BY ALL""")
    out = msgs.merge(events, on=KEY, how="left")
    crossed = []
    for ex, sym in out[["exchange", "symbol"]].drop_duplicates().itertuples(index=False):
        try:
            top = cat.top_of_book(ex, sym)
        except Exception:  # noqa: BLE001 - no snapshot: nothing to rebuild, reported as no book
            continue
        top = top[top["valid"]]
        if top.empty:
            continue
        days = pd.Series(top["ts"].to_numpy() // 86_400_000_000_000)
        frame = pd.DataFrame(
            {
                "exchange": ex,
                "symbol": sym,
                "date": days.map(lambda d: ns_to_date(int(d) * 86_400_000_000_000)),
                "crossed": (top["bid_px"] > top["ask_px"]).to_numpy(),
                "locked": (top["bid_px"] == top["ask_px"]).to_numpy(),
            }
        )
        crossed.append(frame.groupby(KEY, as_index=False)[["crossed", "locked"]].sum())
    if crossed:
        out = out.merge(pd.concat(crossed), on=KEY, how="left")
    return out


def _bbo_checks(cat: Catalog, where: str) -> pd.DataFrame:
    return cat.sql(f"""
        SELECT exchange, symbol, CAST(date AS VARCHAR) AS date,
               count(*) FILTER (WHERE bid_px > ask_px) AS crossed,
               count(*) FILTER (WHERE bid_px = ask_px) AS locked
        FROM "_bbo_raw" WHERE {where} GROUP BY ALL""")


def _ohlcv_checks(cat: Catalog, where: str) -> pd.DataFrame:
    df = cat.sql(f"""
        SELECT exchange, symbol, CAST(date AS VARCHAR) AS date, interval, kind, ts,
               (low > least(open, close) OR high < greatest(open, close) OR low > high)
                   AS bad_ohlc
        FROM "_ohlcv_raw" WHERE {where} ORDER BY exchange, symbol, interval, kind, ts""")
    rows = []
    for (ex, sym, iv, kind), g in df.groupby(
        ["exchange", "symbol", "interval", "kind"], sort=False
    ):
        ts = g["ts"].to_numpy()
        diff = np.diff(ts)
        slot, on_grid = candle_slots(ts, str(iv))  # the exchange's grid: weeks open on Monday
        # candles missing between neighbours; an off-grid candle is not a hole
        missing = np.maximum(np.diff(slot) - 1, 0)
        per = pd.DataFrame(
            {
                "date": g["date"].to_numpy(),
                "missing": np.concatenate([[0], missing]),
                "gap_runs": np.concatenate([[0], (missing > 0).astype(int)]),
                "largest_gap_s": np.concatenate([[0], np.where(missing > 0, diff, 0)]) / 1e9,
                "off_grid": (~on_grid).astype(int),
                "bad_ohlc": g["bad_ohlc"].to_numpy().astype(int),
            }
        )
        agg = per.groupby("date", as_index=False).agg(
            missing_candles=("missing", "sum"),
            gap_runs=("gap_runs", "sum"),
            largest_gap_s=("largest_gap_s", "max"),
            off_grid=("off_grid", "sum"),
            bad_ohlc=("bad_ohlc", "sum"),
        )
        agg.insert(0, "exchange", str(ex))
        agg.insert(1, "symbol", str(sym))
        agg["series"] = f"{kind}:{iv}"
        rows.append(agg)
    if not rows:
        return pd.DataFrame(columns=KEY)
    out = pd.concat(rows, ignore_index=True)
    return out.groupby(KEY, as_index=False).agg(
        series=("series", lambda s: ",".join(sorted(set(s)))),
        missing_candles=("missing_candles", "sum"),
        gap_runs=("gap_runs", "sum"),
        largest_gap_s=("largest_gap_s", "max"),
        off_grid=("off_grid", "sum"),
        bad_ohlc=("bad_ohlc", "sum"),
    )


def _funding_checks(cat: Catalog, where: str) -> pd.DataFrame:
    df = cat.sql(f"""
        SELECT exchange, symbol, CAST(date AS VARCHAR) AS date, ts
        FROM "_funding_raw" WHERE {where} AND settled ORDER BY exchange, symbol, ts""")
    if df.empty:
        return pd.DataFrame(columns=KEY)
    ts = df["ts"].to_numpy()
    jitter = ((ts + _HOUR_NS // 2) % _HOUR_NS - _HOUR_NS // 2) / 1e6
    df["jitter_ms"] = np.abs(jitter)
    df["jittered"] = (jitter != 0).astype(int)
    df["missed"] = 0
    for _key, g in df.groupby(["exchange", "symbol"], sort=False):
        d = np.diff(g["ts"].to_numpy())
        if len(d):
            # the schedule: the most common spacing in whole hours (ties: the shortest)
            hours = np.maximum(np.rint(d / _HOUR_NS).astype(np.int64), 1)
            values, counts = np.unique(hours, return_counts=True)
            typical = values[counts == counts.max()].min()
            missed = np.concatenate([[0], np.maximum(np.rint(hours / typical) - 1, 0)])
            df.loc[g.index, "missed"] = missed.astype(int)
    return df.groupby(KEY, as_index=False).agg(
        settlements=("ts", "count"),
        jittered=("jittered", "sum"),
        max_jitter_ms=("jitter_ms", "max"),
        missed_settlements=("missed", "sum"),
    )


_TABLE_CHECKS = {
    "trades": [lambda c, w: _duplicates(c, "trades", w, "coalesce(trade_id, '') || ts")],
    "book": [
        lambda c, w: _duplicates(c, "book", w, "seq, side, price, qty, flags, ts"),
        _book_checks,
    ],
    "bbo": [
        lambda c, w: _duplicates(c, "bbo", w, "seq, ts, bid_px, bid_qty, ask_px, ask_qty"),
        _bbo_checks,
    ],
    "ohlcv": [lambda c, w: _duplicates(c, "ohlcv", w, "ts, interval, kind"), _ohlcv_checks],
    "funding": [lambda c, w: _duplicates(c, "funding", w, "ts, settled"), _funding_checks],
    "open_interest": [lambda c, w: _duplicates(c, "open_interest", w, "ts")],
}


def _issues(row: dict[str, Any]) -> list[str]:
    out = []
    rows = row.get("rows") or 0
    if row.get("out_of_order"):
        out.append(f"{row['out_of_order']} rows out of time order")
    if row.get("duplicates"):
        out.append(f"{row['duplicates']} duplicate rows")
    if rows and row.get("negative_latency"):
        share = row["negative_latency"] / rows
        out.append(
            f"negative latency in {share:.0%} of rows (median "
            f"{row.get('latency_p50_ms', float('nan')):.0f} ms): local clock behind exchange"
        )
    for key, text in (
        ("recv_ts_not_positive", "rows with a zero or negative receipt time"),
        ("recv_ts_far", f"rows received more than {RECV_FAR_S:.0f} s from the exchange time"),
        ("bad_values", "rows with a non-finite, non-positive price or negative size"),
        ("gaps", "sequence gaps"),
        ("seq_breaks", "breaks in the stored id chain"),
        ("crossed", "crossed books"),
        ("locked", "locked books"),
        ("missing_candles", "missing candles"),
        ("off_grid", "candles off grid"),
        ("bad_ohlc", "inconsistent OHLC rows"),
        ("missed_settlements", "missed funding settlements"),
    ):
        value = row.get(key)
        if value is not None and not pd.isna(value) and value > 0:
            out.append(f"{int(value)} {text}")
    if row.get("resyncs"):
        out.append(f"{int(row['resyncs'])} resyncs")
    if (row.get("max_jitter_ms") or 0) > JITTER_ISSUE_MS:
        out.append(
            f"funding settlement times off the hour by up to {row['max_jitter_ms'] / 1000:.1f} s"
        )
    return out


def quality_report(
    root: str | os.PathLike | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
    date: str | None = None,
    tables: list[str] | None = None,
) -> dict[str, Any]:
    """Run every check; returns ``{'partitions': [...], 'imports': {...}, 'summary': {...}}``."""
    cat = Catalog(root)
    where = partition_filter(exchange, symbol, date)
    parts: list[dict[str, Any]] = []
    for table, checks in _TABLE_CHECKS.items():
        if tables and table not in tables:
            continue
        if not cat._has_files(table):
            continue
        df = _common(cat, table, where)
        if df.empty:
            continue
        for check in checks:
            extra = check(cat, where)
            if not extra.empty:
                df = df.merge(extra, on=KEY, how="left")
        df.insert(0, "table", table)
        df["span_s"] = (df["ts_max"] - df["ts_min"]) / 1e9
        for rec in df.to_dict("records"):
            clean: dict[str, Any] = {
                str(k): (
                    None
                    if (isinstance(v, float) and np.isnan(v)) or v is pd.NA
                    else (int(v) if isinstance(v, (np.integer,)) else v)
                )
                for k, v in rec.items()
            }
            clean["issues"] = _issues(clean)
            parts.append(clean)
    imports = import_rejects(cat.root)
    summary = {
        "partitions": len(parts),
        "rows": {
            t: int(sum(p["rows"] for p in parts if p["table"] == t))
            for t in sorted({p["table"] for p in parts})
        },
        "partitions_with_issues": sum(1 for p in parts if p["issues"]),
        "rejected_lines": sum(imports["rejects"].values()),
    }
    cat.close()
    return {"partitions": parts, "imports": imports, "summary": summary}


def import_rejects(root) -> dict[str, Any]:
    """Rejected input lines by reason over all import manifests, and the runs' statuses."""
    rejects: dict[str, int] = defaultdict(int)
    runs = []
    mdir = root / "_imports"
    for mf in sorted(mdir.glob("*.json")) if mdir.is_dir() else []:
        try:
            doc = json.loads(mf.read_text())
        except (OSError, ValueError):
            continue
        failed = [f["path"] for f in doc.get("files", []) if f.get("status") == "failed"]
        n_rej = 0
        for f in doc.get("files", []):
            for reason, n in (f.get("rejects") or {}).items():
                rejects[reason] += n
                n_rej += n
        runs.append(
            {
                "run_id": doc.get("run_id"),
                "kind": doc.get("kind"),
                "files": len(doc.get("files", [])),
                "failed": failed,
                "rejects": n_rej,
                "rejects_file": doc.get("rejects_file"),
            }
        )
    return {"runs": runs, "rejects": dict(rejects)}
