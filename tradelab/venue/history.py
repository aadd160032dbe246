"""History the venue serves over REST: klines, funding rates and aggregate trades.

Sources: freqtrade feather folders (the shared recordings' OHLCV), a synthetic market, and the
trades the venue itself has published while replaying. Paging follows Binance: ``startTime`` /
``endTime`` are inclusive and apply to the kline open time, the funding time or the trade time;
without ``startTime`` the newest ``limit`` rows up to ``endTime`` are returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.feather as feather

from tradelab.adapters.binance.symbols import (
    market_of_store_symbol,
    raw_of_store_symbol,
)
from tradelab.adapters.freqtrade.files import classify
from tradelab.core.timeutil import interval_ns

MS = 1_000_000


@dataclass
class Candles:
    """OHLCV arrays of one interval (open times in ms)."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    v: np.ndarray
    n: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class TradeLog:
    """Append-only aggregate trades of one instrument (id, time ms, price, qty, buyer maker)."""

    ids: list[int] = field(default_factory=list)
    t: list[int] = field(default_factory=list)
    p: list[str] = field(default_factory=list)
    q: list[str] = field(default_factory=list)
    m: list[bool] = field(default_factory=list)

    def add(self, agg_id: int, t_ms: int, price: str, qty: str, maker: bool) -> None:
        self.ids.append(agg_id)
        self.t.append(t_ms)
        self.p.append(price)
        self.q.append(qty)
        self.m.append(maker)


@dataclass
class InstrumentHistory:
    """Everything the venue knows about one instrument's past."""

    candles: dict[str, Candles] = field(default_factory=dict)  # interval -> candles
    mark: dict[str, Candles] = field(default_factory=dict)
    funding_t: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    funding_r: np.ndarray = field(default_factory=lambda: np.empty(0))
    trades: TradeLog = field(default_factory=TradeLog)


class History:
    """History per (market, raw symbol)."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], InstrumentHistory] = {}

    def get(self, market: str, symbol: str) -> InstrumentHistory:
        key = (market, symbol)
        if key not in self.by_key:
            self.by_key[key] = InstrumentHistory()
        return self.by_key[key]

    # -- loading -------------------------------------------------------------------------

    def load_freqtrade(self, directory: str | Path) -> list[str]:
        """Load every freqtrade feather file under ``directory``; returns what was loaded."""
        loaded = []
        for path in sorted(Path(directory).rglob("*.feather")):
            info = classify(path)
            if info is None or info["table"] not in ("ohlcv", "funding"):
                continue
            market = "usdm" if info["futures"] else "spot"
            symbol = raw_of_store_symbol(info["symbol"])
            df = feather.read_table(path).to_pandas()
            t = df["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy() // MS
            hist = self.get(market, symbol)
            if info["table"] == "funding":
                hist.funding_t = t.astype(np.int64)
                hist.funding_r = df["open"].to_numpy(dtype=float)
            else:
                c = Candles(t.astype(np.int64), *(df[k].to_numpy(dtype=float) for k in
                                                  ("open", "high", "low", "close", "volume")))
                (hist.mark if info["kind"] == "mark" else hist.candles)[info["interval"]] = c
            loaded.append(f"{market}:{symbol}:{path.name}")
        return loaded

    def load_synth(self, market_obj) -> list[str]:
        """Load candles and funding of a :class:`tradelab.synth.SynthMarket`."""
        loaded = []
        for sym in market_obj.symbols:
            market = market_of_store_symbol(sym)
            raw = raw_of_store_symbol(sym)
            hist = self.get(market, raw)
            for iv, df in market_obj.ohlcv[sym].items():
                o, h, lo, c, v = (df[k].to_numpy(dtype=float)
                                  for k in ("open", "high", "low", "close", "volume"))
                hist.candles[iv] = Candles(df["ts"].to_numpy() // MS, o, h, lo, c, v,
                                           df["n_trades"].to_numpy())
            if sym in getattr(market_obj, "funding", {}):
                f = market_obj.funding[sym]
                hist.funding_t = f["ts"].to_numpy() // MS
                hist.funding_r = f["rate"].to_numpy(dtype=float)
            loaded.append(f"{market}:{raw}")
        return loaded

    # -- queries -------------------------------------------------------------------------

    def candles(self, market: str, symbol: str, interval: str, kind: str = "trade"
                ) -> Candles | None:
        """Candles of ``interval``: stored, or aggregated from the coarsest stored divisor."""
        hist = self.by_key.get((market, symbol))
        if hist is None:
            return None
        store = hist.mark if kind == "mark" else hist.candles
        if interval in store:
            return store[interval]
        step = interval_ns(interval) // MS
        divisors = [(interval_ns(k) // MS, k) for k in store
                    if step % (interval_ns(k) // MS) == 0 and interval_ns(k) // MS < step]
        if not divisors:
            return None
        src = store[max(divisors)[1]]
        bucket = src.t // step * step
        df = pd.DataFrame({"b": bucket, "o": src.o, "h": src.h, "l": src.lo, "c": src.c,
                           "v": src.v})
        g = df.groupby("b", sort=True)
        agg = g.agg(o=("o", "first"), h=("h", "max"), l=("l", "min"), c=("c", "last"),
                    v=("v", "sum"))
        out = Candles(agg.index.to_numpy(np.int64), agg.o.to_numpy(), agg.h.to_numpy(),
                      agg.l.to_numpy(), agg.c.to_numpy(), agg.v.to_numpy())
        store[interval] = out  # cache
        return out


def page(t: np.ndarray, start: int | None, end: int | None, limit: int) -> slice:
    """Binance paging over sorted times ``t`` (ms)."""
    hi = len(t) if end is None else int(np.searchsorted(t, end, side="right"))
    if start is not None:
        lo = int(np.searchsorted(t, start, side="left"))
        return slice(lo, min(hi, lo + limit))
    return slice(max(0, hi - limit), hi)
