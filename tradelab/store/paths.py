"""Where things live in the store: the root, partition directories and part-file names."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

from tradelab.errors import StoreError

DEFAULT_ROOT = Path("data/parquet")
STORE_ENV = "TRADELAB_STORE"

_EXCHANGE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TABLE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def resolve_root(root: str | os.PathLike | None = None, *, create: bool = False) -> Path:
    """The store root: ``root`` if given, else ``$TRADELAB_STORE``, else ``data/parquet``.

    Raises ``StoreError`` when the path exists but is not a directory, or (``create=False``)
    does not exist.
    """
    chosen = Path(root) if root is not None else Path(os.environ.get(STORE_ENV) or DEFAULT_ROOT)
    if chosen.exists() and not chosen.is_dir():
        raise StoreError(
            f"store path {str(chosen)!r} is a file, not a directory; "
            f"pass --store DIR (or set {STORE_ENV}) to a directory"
        )
    if not chosen.exists():
        if not create:
            raise StoreError(
                f"store {str(chosen)!r} does not exist; import or collect data "
                f"first, or pass --store DIR (or set {STORE_ENV})"
            )
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {str(chosen)!r}: {exc}") from None
    return chosen


def check_exchange(exchange: str) -> str:
    """Validate a cryptofeed-style exchange name (``BINANCE``, ``BINANCE_FUTURES``)."""
    if not isinstance(exchange, str) or not _EXCHANGE_RE.match(exchange):
        raise StoreError(
            f"bad exchange name {exchange!r}: use the cryptofeed form, "
            "upper case, e.g. BINANCE, BINANCE_FUTURES, BYBIT, OKX"
        )
    return exchange


def check_symbol(symbol: str) -> str:
    """Validate a normalised symbol (``BTC-USDT``, ``BTC-USDT-PERP``)."""
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise StoreError(
            f"bad symbol {symbol!r}: use the normalised cryptofeed form, "
            "e.g. BTC-USDT or BTC-USDT-PERP"
        )
    return symbol


def check_table(table: str) -> str:
    if not isinstance(table, str) or not _TABLE_RE.match(table):
        raise StoreError(f"bad table name {table!r}")
    return table


def partition_dir(root: Path, table: str, exchange: str, symbol: str, date: str) -> Path:
    """``<root>/<table>/exchange=<EX>/symbol=<SYM>/date=<YYYY-MM-DD>``."""
    check_table(table)
    check_exchange(exchange)
    check_symbol(symbol)
    if not _DATE_RE.match(date):
        raise StoreError(f"bad partition date {date!r}: expected YYYY-MM-DD")
    return root / table / f"exchange={exchange}" / f"symbol={symbol}" / f"date={date}"


def table_glob(root: Path, table: str) -> str:
    """Glob matching every visible part file of ``table``."""
    return str(root / check_table(table) / "*" / "*" / "*" / "*.parquet")


def new_part_name(run_id: str, counter: int) -> str:
    """A part-file name that sorts by write time: ``part-<ns>-<run>-<n>.parquet``."""
    return f"part-{time.time_ns():020d}-{run_id}-{counter:05d}.parquet"


def new_run_id() -> str:
    """Short random id naming one producer run (an import, a collector session)."""
    return uuid.uuid4().hex[:10]


def is_pending(name: str) -> bool:
    """Hidden temporary/pending part files are never visible to readers."""
    return name.startswith(".") and (".tmp" in name or ".pending" in name)
