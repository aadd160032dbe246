"""Stores for the report, nightly and promotion tests: 1m bars with or without a planted trend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tradelab.backtest.runs import RunStore
from tradelab.backtest.vector.config import parse_sweep_config
from tradelab.backtest.vector.engine import run_sweep
from tradelab.backtest.vector.walkforward import walk_forward_run
from tradelab.store.writer import StoreWriter

START = pd.Timestamp("2025-03-01", tz="UTC")
DAYS = 6


def planted_bars(
    drift: float, seed: int, days: int = DAYS, regime_bars: int = 360, sigma: float = 3e-4
) -> pd.DataFrame:
    """1m bars whose log price moves ``+-drift`` per bar in regimes of ``regime_bars`` bars
    (the sign flips every regime: trends a moving-average crossover can ride) plus Gaussian
    noise of ``sigma`` per bar. ``drift=0`` is a pure random walk (nothing to find)."""
    n = days * 1440
    rng = np.random.default_rng(seed)
    sign = np.where((np.arange(n) // regime_bars) % 2 == 0, 1.0, -1.0)
    logp = np.log(100.0) + np.cumsum(drift * sign + rng.normal(0.0, sigma, n))
    close = np.round(np.exp(logp), 2)  # on a 0.01 tick, like the trades below
    open_ = np.r_[100.0, close[:-1]]
    hi = np.maximum(open_, close)
    lo = np.minimum(open_, close)
    ts = (START.value + np.arange(n, dtype=np.int64) * 60 * 10**9).astype(np.int64)
    return pd.DataFrame(
        {
            "ts": ts,
            "open": open_,
            "high": hi,
            "low": lo,
            "close": close,
            "volume": np.full(n, 10.0),
            "n_trades": np.full(n, 20, np.int64),
        }
    )


def write_bars(
    store: Path, bars: pd.DataFrame, symbol: str = "BTC-USDT", exchange: str = "BINANCE"
) -> None:
    """Write 1m ``ohlcv`` candles (kind ``trade``) into the store, and the trades they are made
    of (10 at the open 1 s into the minute, 10 at the close 59 s in), so the event backtester
    can replay the same market."""
    n = len(bars)
    ts = np.repeat(bars["ts"].to_numpy(), 2) + np.tile([1, 59], n) * 10**9
    px = np.column_stack([bars["open"], bars["close"]]).ravel()
    with StoreWriter(store, fsync=False) as w:
        w.write(
            "trades",
            exchange,
            symbol,
            {
                "ts": ts,
                "price": px,
                "qty": np.full(2 * n, 10.0),
                "side": pa.array(np.where(np.arange(2 * n) % 2 == 0, "buy", "sell")),
                "trade_id": pa.array([str(i) for i in range(1, 2 * n + 1)]),
            },
        )
        w.write(
            "ohlcv",
            exchange,
            symbol,
            {
                "ts": bars["ts"].to_numpy(),
                "interval": ["1m"] * n,
                "kind": ["trade"] * n,
                "open": bars["open"].to_numpy(),
                "high": bars["high"].to_numpy(),
                "low": bars["low"].to_numpy(),
                "close": bars["close"].to_numpy(),
                "volume": bars["volume"].to_numpy(),
                "n_trades": bars["n_trades"].to_numpy(),
            },
        )


GRID = {"fast": [5, 15, 30], "slow": [60, 120, 240, 480], "allow_short": [1]}


def swept_store(
    store: Path, drift: float, seed: int, family: str = "planted", symbol: str = "BTC-USDT"
) -> str:
    """Bars (a day of history first), an MA-crossover sweep over the rest, and its
    walk-forward (train 48 h, test 12 h); returns the run id."""
    write_bars(store, planted_bars(drift, seed), symbol)
    cfg = parse_sweep_config(
        {
            "name": family,
            "strategy": "ma_crossover",
            "family": family,
            "exchange": "BINANCE",
            "symbols": [symbol],
            "start": str(START + pd.Timedelta(days=1)),
            "end": str(START + pd.Timedelta(days=DAYS)),
            "interval": "1m",
            "grid": GRID,
            "fees": {"taker": 0.0001},
            "execution": "next_open",
            "period": "1h",
            "workers": 1,
        }
    )
    (res,) = run_sweep(cfg, store)
    walk_forward_run(res.run_id, train=48, test=12, store=store)
    assert res.run_id in RunStore(store).list_runs()
    return str(res.run_id)
