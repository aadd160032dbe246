"""History from an exchange's REST API through ccxt: OHLCV, funding rates and trades.

- Paginated: pages of up to 1,000 rows, each starting after the last one received.
- Rate-limit aware: ccxt's own throttle is on, and a 429 / DDoS / network error is retried with
  exponential backoff (counted in the report).
- Resumable: a run continues after the newest row the store already holds for that symbol and
  kind, and every page is committed as it arrives, so an interrupted run loses at most a page.
- Idempotent: rows whose time (or trade id) is already stored are skipped, so re-running over
  the same range adds nothing.

Spot and USD-M: a ccxt symbol ``BTC/USDT`` is spot (store ``BINANCE`` ``BTC-USDT``),
``BTC/USDT:USDT`` the linear perpetual (``BINANCE_FUTURES`` ``BTC-USDT-PERP``). ``venue`` points
every Binance base URL at a local venue (``http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ccxt
import numpy as np
import pyarrow as pa

from tradelab.adapters.binance.schema import REST_HOST_RE
from tradelab.adapters.binance.symbols import (
    CCXT_EXCHANGE,
    CCXT_MARKET_TYPE,
    EXCHANGE,
    market_of_ccxt,
    store_symbol_of_ccxt,
)
from tradelab.core.timeutil import interval_ns
from tradelab.errors import StoreError
from tradelab.store.catalog import Catalog
from tradelab.store.paths import resolve_root
from tradelab.store.writer import StoreWriter

log = logging.getLogger("tradelab.backfill")
MS = 1_000_000
PAGE = 1000


@dataclass
class BackfillReport:
    """What one backfill job fetched and stored."""

    kind: str
    symbol: str
    exchange: str
    store_symbol: str
    start_ms: int
    end_ms: int
    pages: int = 0
    fetched: int = 0
    stored: int = 0
    skipped_existing: int = 0
    retries: Counter = field(default_factory=Counter)
    resumed_from_ms: int | None = None
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["retries"] = dict(self.retries)
        return d


def make_client(market: str, venue: str | None = None, timeout_ms: int = 30_000,
                rate_limit_ms: float | None = None):
    """A ccxt Binance client for ``market``, loading only that market's instruments.

    ccxt throttles by Binance's request weights (e.g. futures aggTrades weigh 20, about one
    page a second); ``rate_limit_ms`` changes its base interval (e.g. for a local venue)."""
    cls = getattr(ccxt, CCXT_EXCHANGE[market])
    client = cls({"enableRateLimit": True, "timeout": timeout_ms,
                  "options": {"fetchCurrencies": False, "fetchMargins": False,
                              "fetchMarkets": {"types": [CCXT_MARKET_TYPE[market]]}}})
    if rate_limit_ms is not None:
        client.rateLimit = rate_limit_ms
    if venue:
        base = venue if venue.startswith("http") else f"http://{venue}"
        for name, url in list(client.urls["api"].items()):
            if isinstance(url, str):
                client.urls["api"][name] = REST_HOST_RE.sub(base.rstrip("/"), url)
    return client


class Backfill:
    """Backfill jobs against one exchange (Binance spot and USD-M) into one store."""

    def __init__(self, store: str | Path | None = None, venue: str | None = None,
                 max_retries: int = 6, backoff_s: float = 1.0,
                 rate_limit_ms: float | None = None,
                 progress: Callable[[BackfillReport], None] | None = None) -> None:
        self.root = resolve_root(store, create=True)
        self.venue = venue
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.progress = progress
        self.rate_limit_ms = rate_limit_ms
        self.retries: Counter = Counter()  # over every call, market loading included
        self._clients: dict[str, object] = {}

    def client(self, market: str):
        if market not in self._clients:
            c = make_client(market, self.venue, rate_limit_ms=self.rate_limit_ms)
            self._call(c.load_markets, report=None)
            self._clients[market] = c
        return self._clients[market]

    def _call(self, fn, *args, report: BackfillReport | None, **kwargs):
        """Call ccxt, retrying throttling and network errors with exponential backoff."""
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                return fn(*args, **kwargs)
            except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
                kind = "rate_limited"
                err = exc
            except (ccxt.RequestTimeout, ccxt.NetworkError) as exc:
                kind = "network"
                err = exc
            except ccxt.BadSymbol as exc:
                raise StoreError(f"the exchange does not list it: {exc}") from None
            self.retries[kind] += 1
            if report is not None:
                report.retries[kind] += 1
            if attempt == self.max_retries:
                raise StoreError(f"giving up after {attempt + 1} attempts ({kind}): {err}")
            log.warning("%s, retrying in %.1f s: %s", kind, delay, str(err)[:200])
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable")

    # -- jobs ---------------------------------------------------------------------------

    def ohlcv(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> BackfillReport:
        """Candles of ``timeframe`` in ``[since, until)``."""
        market = market_of_ccxt(symbol)
        client = self.client(market)
        step = interval_ns(timeframe) // MS
        rep = self._report("ohlcv", symbol, market, since_ms, until_ms)
        where: dict[str, object] = {"interval": timeframe, "kind": "trade"}
        start = self._resume(rep, "ohlcv", where, since_ms, step)
        with StoreWriter(self.root, batch_rows=200_000) as writer:
            while start < until_ms:
                rows = self._call(client.fetch_ohlcv, symbol, timeframe, since=start, limit=PAGE,
                                  params={"endTime": until_ms - 1}, report=rep)
                rows = [r for r in rows if start <= r[0] < until_ms]
                rep.pages += 1
                if not rows:
                    break
                ts = np.array([r[0] for r in rows], dtype=np.int64) * MS
                keep = self._new(rep, "ohlcv", ts, where)
                if keep.size:
                    arr = np.array(rows, dtype=np.float64)[keep]
                    n = keep.size
                    writer.write("ohlcv", rep.exchange, rep.store_symbol, {
                        "ts": ts[keep], "interval": pa.repeat(pa.scalar(timeframe), n),
                        "kind": pa.repeat(pa.scalar("trade"), n), "open": arr[:, 1],
                        "high": arr[:, 2], "low": arr[:, 3], "close": arr[:, 4],
                        "volume": arr[:, 5]})
                    writer.flush()  # committed page by page: an interruption loses one page
                self._advance(rep, len(rows), keep.size)
                start = int(rows[-1][0]) + step
        return self._done(rep)

    def funding(self, symbol: str, since_ms: int, until_ms: int) -> BackfillReport:
        """Settled funding rates of a perpetual in ``[since, until)``."""
        market = market_of_ccxt(symbol)
        if market != "usdm":
            raise ValueError(f"{symbol} is spot: funding needs a perpetual like BTC/USDT:USDT")
        client = self.client(market)
        rep = self._report("funding", symbol, market, since_ms, until_ms)
        start = self._resume(rep, "funding", {"settled": True}, since_ms, 1)
        with StoreWriter(self.root) as writer:
            while start < until_ms:
                rows = self._call(client.fetch_funding_rate_history, symbol, since=start,
                                  limit=PAGE, params={"endTime": until_ms - 1}, report=rep)
                rows = [r for r in rows if start <= r["timestamp"] < until_ms]
                rep.pages += 1
                if not rows:
                    break
                ts = np.array([r["timestamp"] for r in rows], dtype=np.int64) * MS
                keep = self._new(rep, "funding", ts, {"settled": True})
                if keep.size:
                    rate = np.array([r["fundingRate"] for r in rows], dtype=np.float64)[keep]
                    writer.write("funding", rep.exchange, rep.store_symbol, {
                        "ts": ts[keep], "rate": rate, "settled": np.ones(keep.size, bool)})
                    writer.flush()
                self._advance(rep, len(rows), keep.size)
                start = int(rows[-1]["timestamp"]) + 1
        return self._done(rep)

    def trades(self, symbol: str, since_ms: int, until_ms: int) -> BackfillReport:
        """Aggregate trades in ``[since, until)``.

        Pages walk one-hour windows (Binance's limit between startTime and endTime); a full page
        switches to paging by trade id until the window's trades are exhausted."""
        market = market_of_ccxt(symbol)
        client = self.client(market)
        rep = self._report("trades", symbol, market, since_ms, until_ms)
        cursor = self._resume(rep, "trades", None, since_ms, 1)
        window = 3_600_000
        with StoreWriter(self.root) as writer:
            while cursor < until_ms:
                end = min(cursor + window, until_ms)
                rows = self._call(client.fetch_trades, symbol, limit=PAGE,
                                  params={"startTime": cursor, "endTime": end - 1}, report=rep)
                rep.pages += 1
                while rows:
                    in_range = [r for r in rows if r["timestamp"] < until_ms]
                    self._store_trades(writer, rep, in_range)
                    if len(rows) < PAGE or len(in_range) < len(rows):
                        break  # the window (or the whole range) is exhausted
                    rows = self._call(client.fetch_trades, symbol, limit=PAGE,
                                      params={"fromId": int(rows[-1]["id"]) + 1}, report=rep)
                    rep.pages += 1
                    rows = [r for r in rows if r["timestamp"] < end]
                cursor = end
        return self._done(rep)

    def _store_trades(self, writer: StoreWriter, rep: BackfillReport, rows: list[dict]) -> None:
        if not rows:
            return
        ids = np.array([str(r["id"]) for r in rows], dtype=object)
        ts = np.array([r["timestamp"] for r in rows], dtype=np.int64) * MS
        stored = Catalog(self.root).stored_values(
            "trades", rep.exchange, rep.store_symbol, "trade_id", int(ts.min()),
            int(ts.max()) + 1)
        keep = np.flatnonzero(~np.isin(ids, stored.astype(object)))
        rep.skipped_existing += len(rows) - keep.size
        if keep.size:
            writer.write("trades", rep.exchange, rep.store_symbol, {
                "ts": ts[keep], "price": np.array([rows[i]["price"] for i in keep], float),
                "qty": np.array([rows[i]["amount"] for i in keep], float),
                "side": [rows[i]["side"] for i in keep], "trade_id": list(ids[keep])})
            writer.flush()
        rep.fetched += len(rows)
        rep.stored += int(keep.size)
        if self.progress:
            self.progress(rep)

    # -- bookkeeping ----------------------------------------------------------------------

    def _report(self, kind: str, symbol: str, market: str, since: int, until: int
                ) -> BackfillReport:
        if until <= since:
            raise ValueError(f"--until must be after --since ({until} <= {since})")
        rep = BackfillReport(kind, symbol, EXCHANGE[market], store_symbol_of_ccxt(symbol), since,
                             until)
        rep.elapsed_s = time.perf_counter()
        return rep

    def _resume(self, rep: BackfillReport, table: str, where: dict[str, object] | None,
                since: int, step: int) -> int:
        last = Catalog(self.root).last_time(table, rep.exchange, rep.store_symbol, where)
        if last is not None and since <= last // MS < rep.end_ms:
            rep.resumed_from_ms = last // MS + step
            log.info("%s %s: the store already holds up to %s; continuing from there",
                     rep.symbol, rep.kind, last // MS)
            return last // MS + step
        return since

    def _new(self, rep: BackfillReport, table: str, ts: np.ndarray,
             where: dict[str, object] | None) -> np.ndarray:
        stored = Catalog(self.root).stored_values(table, rep.exchange, rep.store_symbol, "ts",
                                                  int(ts.min()), int(ts.max()) + 1, where)
        keep = np.flatnonzero(~np.isin(ts, np.asarray(stored, dtype=np.int64)))
        rep.skipped_existing += len(ts) - keep.size
        return keep

    def _advance(self, rep: BackfillReport, fetched: int, stored: int) -> None:
        rep.fetched += fetched
        rep.stored += int(stored)
        if self.progress:
            self.progress(rep)

    @staticmethod
    def _done(rep: BackfillReport) -> BackfillReport:
        rep.elapsed_s = time.perf_counter() - rep.elapsed_s
        return rep
