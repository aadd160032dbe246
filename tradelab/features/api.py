"""The pandas-facing side of :mod:`tradelab.features`: Series/DataFrames in, the same out.

Each function validates its arguments, hands contiguous float64 arrays to the numba kernel named
in its docstring and puts the result back on the input's index. Bar functions take a frame with
``high``/``low``/``close`` columns, as ``Catalog.bars`` returns; book functions take a
:class:`BookFrame` built from ``Catalog.events`` or ``Catalog.book_snapshots``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradelab.core.timeutil import interval_ns
from tradelab.features import depth_nb, funding_nb, lob_nb, ofi_nb, returns_nb, ta_nb

__all__ = [
    "BookFrame",
    "annualized_funding",
    "atr",
    "basis",
    "book_features",
    "book_frame_from_events",
    "book_frame_from_snapshots",
    "donchian",
    "ema",
    "expected_carry",
    "funding_forecast",
    "keltner",
    "liquidity_events",
    "multilevel_ofi",
    "ofi",
    "ofi_windows",
    "realized_vol",
    "returns",
    "rsi",
    "sma",
]


def _period(name: str, n: int, low: int = 1) -> int:
    if isinstance(n, bool) or int(n) != n or n < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {n!r}")
    return int(n)


def _arr(x) -> np.ndarray:
    """C-contiguous, writable float64 (pandas hands out read-only views, which numba would
    compile a second time)."""
    return np.require(np.asarray(x, dtype=np.float64), requirements=["C", "W"])


def _index(x):
    return x.index if isinstance(x, pd.Series | pd.DataFrame) else None


def _series(values: np.ndarray, like, name: str) -> pd.Series:
    return pd.Series(values, index=_index(like), name=name)


def _hlc(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in ("high", "low", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars need columns high, low, close; missing {missing}")
    return _arr(bars["high"]), _arr(bars["low"]), _arr(bars["close"])


# -- bars -------------------------------------------------------------------------------------


def returns(close: pd.Series, periods: int = 1, log: bool = False) -> pd.Series:
    """``periods``-bar simple returns (``close / close.shift(periods) - 1``) or log returns;
    kernel ``returns_nb``."""
    k = _period("periods", periods)
    return _series(returns_nb.returns_nb(_arr(close), k, bool(log)), close, "returns")


def realized_vol(
    close: pd.Series, window: int, periods_per_year: float | None = None
) -> pd.Series:
    """``sqrt`` of the sum of squared one-bar log returns over ``window`` bars; annualized by
    ``sqrt(periods_per_year / window)`` when given (525,600 for 1m bars); kernel
    ``realized_vol_nb``."""
    n = _period("window", window)
    out = returns_nb.realized_vol_nb(_arr(close), n)
    if periods_per_year is not None:
        if periods_per_year <= 0:
            raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
        out = out * np.sqrt(periods_per_year / n)
    return _series(out, close, "realized_vol")


def sma(x: pd.Series, n: int) -> pd.Series:
    """Simple moving average, ``talib.SMA``; kernel ``sma_nb``."""
    return _series(ta_nb.sma_nb(_arr(x), _period("n", n)), x, f"sma_{n}")


def ema(x: pd.Series, n: int) -> pd.Series:
    """Exponential moving average, ``talib.EMA`` (SMA-seeded); kernel ``ema_nb``."""
    return _series(ta_nb.ema_nb(_arr(x), _period("n", n)), x, f"ema_{n}")


def rsi(x: pd.Series, n: int = 14) -> pd.Series:
    """Wilder's RSI, ``talib.RSI``; kernel ``rsi_nb``."""
    return _series(ta_nb.rsi_nb(_arr(x), _period("n", n)), x, f"rsi_{n}")


def atr(bars: pd.DataFrame, n: int = 14) -> pd.Series:
    """Wilder's average true range, ``talib.ATR``; kernel ``atr_nb``."""
    h, lo, c = _hlc(bars)
    return _series(ta_nb.atr_nb(h, lo, c, _period("n", n)), bars, f"atr_{n}")


def keltner(bars: pd.DataFrame, n_ema: int = 20, n_atr: int = 10, k: float = 2.0) -> pd.DataFrame:
    """Keltner channel ``mid, upper, lower``: EMA of the typical price +- k * ATR, as
    ``talib.KC``; kernel ``keltner_nb``."""
    h, lo, c = _hlc(bars)
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    mid, up, low = ta_nb.keltner_nb(h, lo, c, _period("n_ema", n_ema), _period("n_atr", n_atr),
                                    float(k))
    return pd.DataFrame({"mid": mid, "upper": up, "lower": low}, index=bars.index)


def donchian(bars: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """Donchian channel ``upper, lower, mid`` over ``n`` bars, as ``talib.DONCHIAN``; kernel
    ``donchian_nb``."""
    missing = [c for c in ("high", "low") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars need columns high, low; missing {missing}")
    up, lo, mid = ta_nb.donchian_nb(_arr(bars["high"]), _arr(bars["low"]), _period("n", n))
    return pd.DataFrame({"upper": up, "lower": lo, "mid": mid}, index=bars.index)


# -- book -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookFrame:
    """Top ``levels`` of the book after each update: ``ts`` (int64 ns, exchange time) and
    ``book`` (float64, ``(rows, 4 * levels)``: bid px, bid qty, ask px, ask qty, best first)."""

    ts: np.ndarray
    book: np.ndarray

    @property
    def levels(self) -> int:
        return self.book.shape[1] // 4

    def __len__(self) -> int:
        return self.ts.shape[0]

    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(self.ts, unit="ns", utc=True), name="time")

    def to_frame(self) -> pd.DataFrame:
        """The same columns ``Catalog.book_snapshots`` uses (``bid_px_0`` ...), on a time index."""
        L = self.levels
        data = {"ts": self.ts}
        for b, name in enumerate(("bid_px", "bid_qty", "ask_px", "ask_qty")):
            for k in range(L):
                data[f"{name}_{k}"] = self.book[:, b * L + k]
        return pd.DataFrame(data, index=self.index())


def book_frame_from_events(
    events: np.ndarray, levels: int = 10, capacity: int = lob_nb.DEFAULT_CAPACITY
) -> BookFrame:
    """The book after every depth message of a ``Catalog.events`` array (from the first
    snapshot on); kernel ``book_from_events_nb``."""
    L = _period("levels", levels)
    cap = _period("capacity", capacity, L)
    cols = [np.require(events[c], requirements=["C", "W"]) for c in ("ev", "exch_ts", "px", "qty")]
    ts, book, _idx, _dropped = lob_nb.book_from_events_nb(*cols, L, cap)
    return BookFrame(ts, book)


def book_frame_from_snapshots(snapshots: pd.DataFrame) -> BookFrame:
    """A :class:`BookFrame` from ``Catalog.book_snapshots`` (invalid rows stay NaN)."""
    L = 0
    while f"bid_px_{L}" in snapshots.columns:
        L += 1
    if L == 0:
        raise ValueError("not a book_snapshots frame: no bid_px_0 column")
    cols = [f"{n}_{k}" for n in ("bid_px", "bid_qty", "ask_px", "ask_qty") for k in range(L)]
    missing = [c for c in cols if c not in snapshots.columns]
    if missing:
        raise ValueError(f"book_snapshots frame lacks columns {missing[:4]}")
    book = np.require(snapshots[cols].to_numpy(dtype=np.float64), requirements=["C", "W"])
    ts = np.require(snapshots["ts"].to_numpy(dtype=np.int64), requirements=["C", "W"])
    return BookFrame(ts, book)


def _levels(frame: BookFrame, n: int) -> int:
    n = _period("levels", n)
    if n > frame.levels:
        raise ValueError(f"levels={n} but the book frame holds {frame.levels} levels")
    return n


def book_features(frame: BookFrame, levels: int = 5) -> pd.DataFrame:
    """``mid, spread_bps, imbalance, weighted_mid, microprice, tilt_bps`` per update (imbalance,
    microprice and tilt over ``levels``); kernel ``book_features_nb``."""
    out = depth_nb.book_features_nb(frame.book, _levels(frame, levels))
    cols = ["mid", "spread_bps", "imbalance", "weighted_mid", "microprice", "tilt_bps"]
    return pd.DataFrame(out, columns=cols, index=frame.index())


def ofi(frame: BookFrame) -> pd.Series:
    """CKS order-flow contribution of every update (best quotes); kernel ``ofi_nb``."""
    return pd.Series(ofi_nb.ofi_nb(frame.book), index=frame.index(), name="ofi")


def multilevel_ofi(frame: BookFrame, levels: int = 5) -> pd.DataFrame:
    """Per-level contributions ``ofi_0 .. ofi_{levels-1}``; kernel ``multilevel_ofi_nb``."""
    n = _levels(frame, levels)
    out = ofi_nb.multilevel_ofi_nb(frame.book, n)
    return pd.DataFrame(out, columns=[f"ofi_{m}" for m in range(n)], index=frame.index())


def ofi_windows(frame: BookFrame, every: str = "1s", levels: int = 1) -> pd.DataFrame:
    """OFI summed over epoch-aligned windows of ``every`` (summed over ``levels`` levels):
    columns ``ofi`` and ``updates``, one row per window that saw an update; kernels
    ``ofi_nb``/``multilevel_ofi_nb`` and ``bucket_sum_nb``."""
    width = interval_ns(every)
    if width < 1000:
        raise ValueError(f"window {every!r} is below 1us")
    n = _levels(frame, levels)
    e = ofi_nb.multilevel_ofi_nb(frame.book, n).sum(axis=1) if n > 1 else ofi_nb.ofi_nb(frame.book)
    ts = np.require(frame.ts, dtype=np.int64, requirements=["C", "W"])
    start, total, count = ofi_nb.bucket_sum_nb(ts, _arr(e), width)
    idx = pd.DatetimeIndex(pd.to_datetime(start, unit="ns", utc=True), name="time")
    return pd.DataFrame({"ofi": total, "updates": count}, index=idx)


LIQUIDITY_FLAGS = {
    "bid_emptied": depth_nb.LIQ_BID_EMPTIED,
    "ask_emptied": depth_nb.LIQ_ASK_EMPTIED,
    "bid_drop": depth_nb.LIQ_BID_DROP,
    "ask_drop": depth_nb.LIQ_ASK_DROP,
    "bid_gap": depth_nb.LIQ_BID_GAP,
    "ask_gap": depth_nb.LIQ_ASK_GAP,
    "invalid": depth_nb.LIQ_INVALID,
}


def liquidity_events(
    frame: BookFrame, levels: int = 5, drop_frac: float = 0.5, gap_bps: float = 5.0
) -> pd.DataFrame:
    """Boolean columns ``bid_emptied, ask_emptied, bid_drop, ask_drop, bid_gap, ask_gap,
    invalid`` per update, plus ``flags`` (the ``LIQ_*`` bit mask); kernel
    ``liquidity_events_nb`` (definitions there)."""
    n = _levels(frame, levels)
    if not 0 < drop_frac < 1:
        raise ValueError(f"drop_frac must be in (0, 1), got {drop_frac!r}")
    if not gap_bps > 0:
        raise ValueError(f"gap_bps must be positive, got {gap_bps!r}")
    flags = depth_nb.liquidity_events_nb(frame.book, n, float(drop_frac), float(gap_bps))
    data = {name: (flags & bit) != 0 for name, bit in LIQUIDITY_FLAGS.items()}
    data["flags"] = flags
    return pd.DataFrame(data, index=frame.index())


# -- funding ----------------------------------------------------------------------------------


def annualized_funding(rates: pd.Series, interval: str = "8h") -> pd.Series:
    """Funding rate per interval scaled to a year; kernel ``annualized_funding_nb``."""
    hours = interval_ns(interval) / 3_600e9
    return _series(funding_nb.annualized_funding_nb(_arr(rates), hours), rates, "funding_apr")


def basis(spot: pd.Series, perp: pd.Series) -> pd.Series:
    """``perp / spot - 1`` on aligned series; kernel ``basis_nb``."""
    if isinstance(spot, pd.Series) and isinstance(perp, pd.Series):
        spot, perp = spot.align(perp, join="inner")
    return _series(funding_nb.basis_nb(_arr(spot), _arr(perp)), spot, "basis")


def funding_forecast(rates: pd.Series, span: float = 3.0) -> pd.Series:
    """Exponential average of published rates (NaN rows: no new rate); kernel
    ``forecast_nb``."""
    if not span >= 1:
        raise ValueError(f"span must be >= 1, got {span!r}")
    return _series(funding_nb.forecast_nb(_arr(rates), float(span)), rates, "funding_forecast")


def expected_carry(
    forecast: pd.Series, horizon: float, spot_fee: float, perp_fee: float
) -> pd.Series:
    """Spot-long/perp-short carry over ``horizon`` funding periods after round-trip fees;
    kernel ``expected_carry_nb``."""
    if horizon <= 0 or spot_fee < 0 or perp_fee < 0:
        raise ValueError("horizon must be positive and fees non-negative")
    out = funding_nb.expected_carry_nb(_arr(forecast), float(horizon), float(spot_fee),
                                       float(perp_fee))
    return _series(out, forecast, "expected_carry")
