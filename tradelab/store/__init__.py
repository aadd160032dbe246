"""The store: Arrow schemas, partition paths, the one Parquet writer and the DuckDB catalog."""

from tradelab.core.events import event_dt
from tradelab.errors import StoreError
from tradelab.store.catalog import Catalog
from tradelab.store.paths import resolve_root
from tradelab.store.schema import BOOK_LAST, BOOK_SNAPSHOT, SCHEMAS, schema_for
from tradelab.store.writer import StoreWriter

__all__ = [
    "BOOK_LAST",
    "BOOK_SNAPSHOT",
    "Catalog",
    "SCHEMAS",
    "StoreError",
    "StoreWriter",
    "event_dt",
    "resolve_root",
    "schema_for",
]
