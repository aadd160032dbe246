"""Arrow schemas of the store's tables.

Every table is partitioned on disk as ``<table>/exchange=<EX>/symbol=<SYM>/date=<YYYY-MM-DD>/``;
the three partition columns live only in the path, never inside the part files. Timestamps are
int64 UTC nanoseconds: ``ts`` is the exchange's time, ``recv_ts`` the local receipt time (null
where the source has none, e.g. OHLCV history). The ``date`` partition is the UTC date of ``ts``.

Conventions per table:

- ``trades``: one row per trade print; ``side`` is the *taker* side (``buy``/``sell``).
- ``book``: L2 deltas, one row per level change. ``qty == 0`` removes the level. Rows of one
  exchange message share ``ts``/``seq``; the last row of a message carries ``BOOK_LAST``.
  Rows of a full snapshot carry ``BOOK_SNAPSHOT`` (the book is cleared before the first one).
  ``seq`` is the exchange's final update id of the message, ``prev_seq`` the id it follows
  (Binance futures ``pu``, spot ``U - 1``), null where the exchange has none. Between two
  snapshots the stored deltas are continuous: a sequence break is written to
  ``quality_events`` and deltas resume only after a new snapshot.
- ``bbo``: best bid/offer updates. Binance spot ``bookTicker`` carries no exchange time: there
  ``ts`` equals ``recv_ts``.
- ``funding``: ``settled`` rows are realised funding payments at the funding time; unsettled
  rows are the exchange's running estimate for ``next_funding_ts``.
- ``ohlcv``: ``ts`` is the candle's open time; ``interval`` like ``1m``/``8h``; ``kind`` is
  ``trade`` (ordinary candles), ``mark`` or ``index``.
- ``quality_events``: gaps, resyncs and other data-quality records written by producers.
"""

from __future__ import annotations

import pyarrow as pa

PARTITION_COLUMNS = ("exchange", "symbol", "date")

BOOK_SNAPSHOT = 1
"""Flag bit: the row belongs to a full book snapshot."""
BOOK_LAST = 2
"""Flag bit: the row is the last of its exchange message (the book is consistent after it)."""


def _f(name: str, typ: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


TRADES = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("recv_ts", pa.int64()),
        _f("price", pa.float64(), False),
        _f("qty", pa.float64(), False),
        _f("side", pa.string(), False),
        _f("trade_id", pa.string()),
    ]
)

BOOK = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("recv_ts", pa.int64()),
        _f("seq", pa.int64()),
        _f("prev_seq", pa.int64()),
        _f("side", pa.string(), False),
        _f("price", pa.float64(), False),
        _f("qty", pa.float64(), False),
        _f("flags", pa.uint8(), False),
    ]
)

BBO = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("recv_ts", pa.int64()),
        _f("seq", pa.int64()),
        _f("bid_px", pa.float64(), False),
        _f("bid_qty", pa.float64(), False),
        _f("ask_px", pa.float64(), False),
        _f("ask_qty", pa.float64(), False),
    ]
)

FUNDING = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("recv_ts", pa.int64()),
        _f("rate", pa.float64(), False),
        _f("settled", pa.bool_(), False),
        _f("mark_price", pa.float64()),
        _f("index_price", pa.float64()),
        _f("next_funding_ts", pa.int64()),
    ]
)

OPEN_INTEREST = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("recv_ts", pa.int64()),
        _f("open_interest", pa.float64(), False),
        _f("open_interest_value", pa.float64()),
    ]
)

OHLCV = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("recv_ts", pa.int64()),
        _f("interval", pa.string(), False),
        _f("kind", pa.string(), False),
        _f("open", pa.float64(), False),
        _f("high", pa.float64(), False),
        _f("low", pa.float64(), False),
        _f("close", pa.float64(), False),
        _f("volume", pa.float64(), False),
        _f("n_trades", pa.int64()),
    ]
)

QUALITY_EVENTS = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("recv_ts", pa.int64()),
        _f("table_name", pa.string(), False),
        _f("kind", pa.string(), False),
        _f("expected_seq", pa.int64()),
        _f("got_seq", pa.int64()),
        _f("source", pa.string()),
        _f("detail", pa.string()),
    ]
)

# -- the live runners' tables (one row per order, fill, position change, PnL snapshot and risk
# event of a run; ``run_id`` names the run, ``ts`` is the runner's clock)

ORDERS = pa.schema(
    [
        _f("ts", pa.int64(), False),  # when the order was decided
        _f("run_id", pa.string(), False),
        _f("client_id", pa.string(), False),
        _f("venue_id", pa.string()),
        _f("side", pa.string(), False),
        _f("order_type", pa.string(), False),
        _f("tif", pa.string()),
        _f("qty", pa.float64(), False),
        _f("price", pa.float64()),
        _f("reduce_only", pa.bool_()),
        _f("tag", pa.string()),
        _f("state", pa.string(), False),  # the last state the journal holds
        _f("filled_qty", pa.float64(), False),
        _f("avg_price", pa.float64()),
        _f("updated_ts", pa.int64()),
    ]
)

FILLS = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("run_id", pa.string(), False),
        _f("client_id", pa.string(), False),
        _f("trade_id", pa.string(), False),
        _f("side", pa.string(), False),
        _f("qty", pa.float64(), False),
        _f("price", pa.float64(), False),
        _f("fee", pa.float64()),
        _f("fee_asset", pa.string()),
        _f("maker", pa.bool_()),
        _f("inferred", pa.bool_()),  # reconstructed from an order's cumulative figures
        _f("position", pa.float64()),  # after this fill
        _f("realized_pnl", pa.float64()),  # of the run so far
    ]
)

POSITIONS = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("run_id", pa.string(), False),
        _f("position", pa.float64(), False),
        _f("change", pa.float64(), False),
        _f("price", pa.float64()),
        _f("trade_id", pa.string(), False),
    ]
)

PNL = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("run_id", pa.string(), False),
        _f("position", pa.float64()),
        _f("mark", pa.float64()),
        _f("realized_pnl", pa.float64()),
        _f("unrealized_pnl", pa.float64()),
        _f("fees", pa.float64()),
        _f("equity", pa.float64()),
    ]
)

RISK_EVENTS = pa.schema(
    [
        _f("ts", pa.int64(), False),
        _f("run_id", pa.string(), False),
        _f("kind", pa.string(), False),
        _f("reason", pa.string(), False),
        _f("detail", pa.string()),  # JSON
        _f("seq", pa.int64(), False),  # the journal record's sequence number
    ]
)

RUNNER_TABLES = ("orders", "fills", "positions", "pnl", "risk_events")

SCHEMAS: dict[str, pa.Schema] = {
    "trades": TRADES,
    "book": BOOK,
    "bbo": BBO,
    "funding": FUNDING,
    "open_interest": OPEN_INTEREST,
    "ohlcv": OHLCV,
    "quality_events": QUALITY_EVENTS,
    "orders": ORDERS,
    "fills": FILLS,
    "positions": POSITIONS,
    "pnl": PNL,
    "risk_events": RISK_EVENTS,
}

ROW_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "trades": (("trade_id", "ts"), ("ts", "price", "qty", "side")),
    "book": (("seq", "prev_seq", "flags"), None),
    "bbo": (("seq",), ("ts", "bid_px", "bid_qty", "ask_px", "ask_qty")),
    "funding": (("ts", "settled"), None),
    "open_interest": (("ts",), None),
    "ohlcv": (("ts", "interval", "kind"), None),
    "quality_events": (("ts", "table_name", "kind", "expected_seq", "got_seq"), None),
    "orders": (("run_id", "client_id"), None),
    "fills": (("run_id", "trade_id"), None),
    "positions": (("run_id", "trade_id"), None),
    "pnl": (("run_id", "ts"), None),
    "risk_events": (("run_id", "seq"), None),
}
"""What makes a stored row the same row, per table: ``(key, fallback)``. The store keeps one row
per key (per exchange/symbol/date partition) whatever path the data arrives by. A row whose first
key column is null is keyed by ``fallback`` instead, or never deduplicated when that is None.
``book`` is keyed per *message* (its rows up to the one flagged ``BOOK_LAST``): ``seq``,
``prev_seq`` and the ``BOOK_SNAPSHOT`` bit of ``flags``; a book message without ``seq`` is never
deduplicated. The runners' tables are keyed by run and the runner's own ids, so exporting a
journal twice stores it once. Tables registered later have no key."""

MESSAGE_TABLES = ("book",)
"""Tables whose key identifies a message of several rows (the rows up to ``BOOK_LAST``)."""

MARKET_TABLES = ("trades", "book", "bbo", "funding", "open_interest", "ohlcv")
OHLCV_KINDS = ("trade", "mark", "index")
TRADE_SIDES = ("buy", "sell")
BOOK_SIDES = ("bid", "ask")


def schema_for(table: str) -> pa.Schema:
    """Return the Arrow schema of ``table`` or raise a ``StoreError`` naming the known tables."""
    try:
        return SCHEMAS[table]
    except KeyError:
        from tradelab.errors import StoreError

        raise StoreError(f"unknown table {table!r}; known tables: {', '.join(SCHEMAS)}") from None


def register_schema(table: str, schema: pa.Schema) -> None:
    """Add a table (e.g. the runners' ``orders``/``fills``) to the store's schema registry."""
    if table in SCHEMAS and SCHEMAS[table] != schema:
        raise ValueError(f"table {table!r} is already registered with another schema")
    SCHEMAS[table] = schema
