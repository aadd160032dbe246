"""TA-Lib-equivalent indicator kernels: SMA, EMA, RSI, true range, ATR, Keltner, Donchian.

Shape and axis: inputs are 1-D float64 arrays over time (oldest first); outputs have the input's
length. Every indicator comes as a pair that agrees bit for bit:

- the streaming form: ``<name>_size(...)`` float64 slots of state, ``<name>_init(s, o, ...)``
  writing the initial state at offset ``o`` of a state vector ``s`` (so a strategy keeps all its
  indicators in one vector), ``<name>_new(...)`` allocating a vector for one indicator, and
  ``<name>_step(s, o, x...) -> value`` advancing by one input;
- the vectorized form ``<name>_nb(x..., params)``, a loop over that same step.

Each step repeats TA-Lib's arithmetic in TA-Lib's order (seeding, Wilder smoothing, running sums,
multiplying by ``1/n`` where TA-Lib does), so the outputs equal TA-Lib's functions bit for bit.
TA-Lib 0.8 ships two builds of EMA and ATR and picks one at load time by CPU: on a CPU with FMA
it fuses ``a * b + c`` into one rounding. These kernels always fuse (``llvm.fma``, exact on every
CPU), so they give the same numbers on every machine and equal TA-Lib bit for bit on FMA CPUs
(x86-64 since 2013, every ARM64); on an older CPU TA-Lib itself rounds differently (about 1e-16
relative).

NaN policy. Warm-up outputs are NaN exactly where TA-Lib puts them. Leading NaN inputs are skipped
the way the TA-Lib Python wrapper skips them: an indicator starts at the first non-NaN input (the
first bar where high, low and close are all non-NaN). A NaN after the start propagates as it does
in TA-Lib: SMA, EMA and ATR stay NaN from then on; RSI returns 0 from then on. Rolling max/min and
Donchian follow pandas (``rolling(n).max()``): a window holding a NaN gives NaN; TA-Lib's MAX/MIN
return order-dependent values there.

Compilation: the steps are inlined into their loops (``inline="always"``), keep one flat float64
state vector, and every kernel uses ``error_model="numpy"`` (``x / 0`` gives inf or NaN instead
of raising ZeroDivisionError). Without raising branches numba can prune the reference counting
of the state vector from the loop, which otherwise costs more than the arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _fma_intrinsic(typingctx, a, b, c):
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        dbl = ir.DoubleType()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(dbl, [dbl, dbl, dbl]), "llvm.fma.f64"
        )
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True, error_model="numpy", inline="always")
def fma(a: float, b: float, c: float) -> float:
    """``a * b + c`` with a single rounding (IEEE fused multiply-add), on every CPU."""
    return _fma_intrinsic(float(a), float(b), float(c))


# -- SMA --------------------------------------------------------------------------------------
# [n, count, running total, ring position, ring[n]]


@njit(cache=True, error_model="numpy")
def sma_size(n: int) -> int:
    """State slots of an SMA over ``n`` inputs."""
    return 4 + n


@njit(cache=True, error_model="numpy")
def sma_init(s: np.ndarray, o: int, n: int) -> None:
    """Initial state of a simple moving average over ``n`` inputs (``talib.SMA(x, n)``)."""
    s[o : o + 4 + n] = 0.0
    s[o] = n


@njit(cache=True, error_model="numpy")
def sma_new(n: int) -> np.ndarray:
    """A state vector holding one SMA."""
    s = np.empty(sma_size(n))
    sma_init(s, 0, n)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def sma_step(s: np.ndarray, o: int, x: float) -> float:
    """Advance the SMA by one input: TA-Lib's running total (add the new input, output the total
    divided by ``n``, then subtract the oldest input)."""
    c = s[o + 1]
    if c == 0.0 and math.isnan(x):
        return np.nan
    n = s[o]
    c += 1.0
    s[o + 1] = c
    pos = s[o + 3]  # kept as a float: no int round trip on the loop-carried chain
    s[o + 4 + int(pos)] = x
    pos += 1.0
    if pos == n:
        pos = 0.0
    s[o + 3] = pos
    if c < n:
        s[o + 2] += x
        return np.nan
    total = s[o + 2] + x
    s[o + 2] = total - s[o + 4 + int(pos)]  # the slot after the newest holds the oldest
    return total / n


@njit(cache=True, error_model="numpy")
def sma_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average; equals ``talib.SMA(x, n)``."""
    s = sma_new(n)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = sma_step(s, 0, x[i])
    return out


# -- EMA --------------------------------------------------------------------------------------
# [n, k, count, seed sum / ema, inputs to skip after the start]

EMA_SIZE = 5


@njit(cache=True, error_model="numpy")
def ema_init(s: np.ndarray, o: int, n: int, skip: int = 0) -> None:
    """Initial state of an EMA with ``k = 2 / (n + 1)`` (``talib.EMA(x, n)``).

    ``skip`` drops that many inputs after the start before seeding (used by Keltner, whose TA-Lib
    definition seeds the EMA on the window ending at its first output).
    """
    s[o] = n
    s[o + 1] = 2.0 / (n + 1.0)
    s[o + 2] = 0.0
    s[o + 3] = 0.0
    s[o + 4] = skip


@njit(cache=True, error_model="numpy")
def ema_new(n: int) -> np.ndarray:
    """A state vector holding one EMA."""
    s = np.empty(EMA_SIZE)
    ema_init(s, 0, n, 0)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def ema_step(s: np.ndarray, o: int, x: float) -> float:
    """Advance the EMA by one input: seeded with the SMA of the first ``n`` inputs (TA-Lib's
    default compatibility), then ``ema = fma(x - ema, k, ema)``."""
    c = s[o + 2]
    if c == 0.0 and math.isnan(x):
        return np.nan
    n = s[o]
    c += 1.0
    s[o + 2] = c
    c -= s[o + 4]
    if c < n:
        s[o + 3] += x if c > 0.0 else 0.0
        return np.nan
    if c == n:
        s[o + 3] = (s[o + 3] + x) / n
        return s[o + 3]
    v = fma(x - s[o + 3], s[o + 1], s[o + 3])
    s[o + 3] = v
    return v


@njit(cache=True, error_model="numpy")
def ema_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average; equals ``talib.EMA(x, n)`` (first value at index n-1)."""
    s = ema_new(n)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = ema_step(s, 0, x[i])
    return out


# -- RSI --------------------------------------------------------------------------------------
# [n, count, previous input, average gain, average loss, 1/n]

RSI_SIZE = 6


@njit(cache=True, error_model="numpy")
def rsi_init(s: np.ndarray, o: int, n: int) -> None:
    """Initial state of Wilder's relative strength index over ``n`` changes (``talib.RSI``)."""
    s[o : o + RSI_SIZE] = 0.0
    s[o] = n
    s[o + 5] = 1.0 / n


@njit(cache=True, error_model="numpy")
def rsi_new(n: int) -> np.ndarray:
    """A state vector holding one RSI."""
    s = np.empty(RSI_SIZE)
    rsi_init(s, 0, n)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def rsi_step(s: np.ndarray, o: int, x: float) -> float:
    """Advance the RSI by one input.

    The first ``n`` changes are summed and multiplied by ``1/n`` (as TA-Lib does); afterwards
    Wilder's smoothing ``avg = (avg * (n - 1) + change) * (1/n)`` on gains and losses separately.
    ``RSI = 100 * gain / (gain + loss)``, 0 when both are zero.
    """
    c = s[o + 1]
    if c == 0.0 and math.isnan(x):
        return np.nan
    n = s[o]
    c += 1.0
    s[o + 1] = c
    d = x - s[o + 2]
    s[o + 2] = x
    up = d if d > 0.0 else 0.0
    down = 0.0 if d > 0.0 else -d
    if c <= n + 1.0:
        gain = s[o + 3] + (up if c > 1.0 else 0.0)
        loss = s[o + 4] + (down if c > 1.0 else 0.0)
        if c < n + 1.0:
            s[o + 3] = gain
            s[o + 4] = loss
            return np.nan
    else:
        gain = s[o + 3] * (n - 1.0) + up
        loss = s[o + 4] * (n - 1.0) + down
    gain *= s[o + 5]
    loss *= s[o + 5]
    s[o + 3] = gain
    s[o + 4] = loss
    t = gain + loss
    if t > 0.0:
        return (gain / t) * 100.0
    return 0.0


@njit(cache=True, error_model="numpy")
def rsi_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Relative strength index; equals ``talib.RSI(x, n)`` (first value at index n)."""
    s = rsi_new(n)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = rsi_step(s, 0, x[i])
    return out


# -- true range and ATR -----------------------------------------------------------------------
# [n, count, previous close, seed sum / atr, (n-1)/n, 1-(n-1)/n, bars to skip after the start]

ATR_SIZE = 7


@njit(cache=True, error_model="numpy", inline="always")
def true_range(high: float, low: float, prev_close: float) -> float:
    """``max(high - low, |high - prev_close|, |low - prev_close|)`` (``talib.TRANGE``)."""
    tr = high - low
    a = abs(prev_close - high)
    if a > tr:
        tr = a
    b = abs(prev_close - low)
    if b > tr:
        tr = b
    return tr


@njit(cache=True, error_model="numpy")
def atr_init(s: np.ndarray, o: int, n: int, skip: int = 0) -> None:
    """Initial state of Wilder's average true range over ``n`` bars (``talib.ATR``).

    ``skip`` drops that many bars after the start before the first previous close (see
    :func:`ema_init`).
    """
    s[o : o + ATR_SIZE] = 0.0
    s[o] = n
    s[o + 4] = (n - 1.0) / n
    s[o + 5] = 1.0 - s[o + 4]
    s[o + 6] = skip


@njit(cache=True, error_model="numpy")
def atr_new(n: int) -> np.ndarray:
    """A state vector holding one ATR."""
    s = np.empty(ATR_SIZE)
    atr_init(s, 0, n, 0)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def atr_step(s: np.ndarray, o: int, high: float, low: float, close: float) -> float:
    """Advance the ATR by one bar.

    The first bar only provides a previous close. The first ATR (``n`` bars later) is the mean
    of the first ``n`` true ranges; afterwards Wilder's ``atr * (n-1)/n + tr * (1 - (n-1)/n)``,
    fused as TA-Lib does.
    """
    c = s[o + 1]
    if c == 0.0 and (math.isnan(high) or math.isnan(low) or math.isnan(close)):
        return np.nan
    c += 1.0
    s[o + 1] = c
    m = c - s[o + 6] - 1.0  # true ranges so far; <= 0 while skipping and on the first bar
    tr = true_range(high, low, s[o + 2])
    s[o + 2] = close
    n = s[o]
    if m < n:
        s[o + 3] += tr if m > 0.0 else 0.0
        return np.nan
    if m == n:
        s[o + 3] = (s[o + 3] + tr) / n
        return s[o + 3]
    v = fma(s[o + 3], s[o + 4], tr * s[o + 5])
    s[o + 3] = v
    return v


@njit(cache=True, error_model="numpy")
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Average true range; equals ``talib.ATR(high, low, close, n)`` (first value at index n)."""
    s = atr_new(n)
    out = np.empty(close.shape[0])
    for i in range(close.shape[0]):
        out[i] = atr_step(s, 0, high[i], low[i], close[i])
    return out


# -- Keltner channel --------------------------------------------------------------------------
# [k | EMA state | ATR state]

KELTNER_SIZE = 1 + EMA_SIZE + ATR_SIZE


@njit(cache=True, error_model="numpy")
def keltner_init(s: np.ndarray, o: int, n_ema: int, n_atr: int, k: float) -> None:
    """Initial state of a Keltner channel, TA-Lib's ``KC(high, low, close, n_ema, n_atr, k)``."""
    lookback = max(n_ema - 1, n_atr)
    s[o] = k
    ema_init(s, o + 1, n_ema, lookback - (n_ema - 1))
    atr_init(s, o + 1 + EMA_SIZE, n_atr, lookback - n_atr)


@njit(cache=True, error_model="numpy")
def keltner_new(n_ema: int, n_atr: int, k: float) -> np.ndarray:
    """A state vector holding one Keltner channel."""
    s = np.empty(KELTNER_SIZE)
    keltner_init(s, 0, n_ema, n_atr, k)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def keltner_step(
    s: np.ndarray, o: int, high: float, low: float, close: float
) -> tuple[float, float, float]:
    """Advance the channel by one bar; returns ``(mid, upper, lower)``.

    TA-Lib's definition: ``mid = EMA(typical price, n_ema)`` with typical price
    ``(high + low + close) / 3``, ``upper/lower = mid +- k * ATR(n_atr)``. The first value comes
    at bar ``L = max(n_ema - 1, n_atr)`` and both averages are seeded on the window ending there
    (the EMA on the ``n_ema`` typical prices up to ``L``, the ATR on the ``n_atr`` true ranges up
    to ``L``), which is what ``talib.KC`` computes. NaN until both are warm.
    """
    mid = ema_step(s, o + 1, (high + low + close) / 3.0)
    atr = atr_step(s, o + 1 + EMA_SIZE, high, low, close)
    if math.isnan(mid) or math.isnan(atr):
        return np.nan, np.nan, np.nan
    w = s[o] * atr
    return mid, mid + w, mid - w


@njit(cache=True, error_model="numpy")
def keltner_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n_ema: int, n_atr: int, k: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keltner channel ``(mid, upper, lower)``; ``talib.KC`` returns ``(upper, mid, lower)``."""
    s = keltner_new(n_ema, n_atr, k)
    n = close.shape[0]
    mid = np.empty(n)
    up = np.empty(n)
    lo = np.empty(n)
    for i in range(n):
        mid[i], up[i], lo[i] = keltner_step(s, 0, high[i], low[i], close[i])
    return mid, up, lo


# -- rolling max / min and the Donchian channel -----------------------------------------------
# [n, count, last NaN index, position in block, block prefix max, values[n], suffix max[n + 1]]
# Van Herk / Gil-Werman in streaming form: inputs come in blocks of n. The window ending at
# position j of the current block is the previous block from j + 1 on (its suffix maxima, computed
# once when it completed) plus the current block up to j (a running prefix maximum). O(1)
# amortised per input with no data-dependent branches in the common path; exact. A rolling min
# is the rolling max of -x.


@njit(cache=True, error_model="numpy")
def rolling_extreme_size(n: int) -> int:
    """State slots of a rolling max or min over ``n`` inputs."""
    return 6 + 2 * n


@njit(cache=True, error_model="numpy")
def rolling_extreme_init(s: np.ndarray, o: int, n: int) -> None:
    """Initial state of a rolling max or min over ``n`` inputs (``talib.MAX``/``talib.MIN``)."""
    s[o : o + 6 + 2 * n] = -np.inf
    s[o] = n
    s[o + 1] = 0.0
    s[o + 2] = -1.0
    s[o + 3] = 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _rolling_extreme_step(s: np.ndarray, o: int, x: float, sign: float) -> float:
    n = int(s[o])
    i = s[o + 1]
    s[o + 1] = i + 1.0
    pos = s[o + 3]
    k = int(pos)
    vals = o + 5
    suffix = o + 5 + n
    key = sign * x
    if math.isnan(x):
        s[o + 2] = i
        key = -np.inf
    s[vals + k] = key
    prefix = max(s[o + 4], key)
    out = max(s[suffix + k + 1], prefix)
    if k == n - 1:  # the block is complete: its suffix maxima serve the next block
        m = -np.inf
        for j in range(n - 1, -1, -1):
            m = max(m, s[vals + j])
            s[suffix + j] = m
        prefix = -np.inf
        pos = 0.0
    else:
        pos += 1.0
    s[o + 3] = pos
    s[o + 4] = prefix
    if i - s[o + 2] < n:
        return np.nan
    return sign * out


@njit(cache=True, error_model="numpy", inline="always")
def rolling_max_step(s: np.ndarray, o: int, x: float) -> float:
    """Advance a rolling maximum by one input (NaN while the window is short or holds a NaN)."""
    return _rolling_extreme_step(s, o, x, 1.0)


@njit(cache=True, error_model="numpy", inline="always")
def rolling_min_step(s: np.ndarray, o: int, x: float) -> float:
    """Advance a rolling minimum by one input (NaN while the window is short or holds a NaN)."""
    return _rolling_extreme_step(s, o, x, -1.0)


@njit(cache=True, error_model="numpy")
def rolling_max_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Rolling maximum; equals ``talib.MAX(x, n)`` and ``pd.Series(x).rolling(n).max()``."""
    s = np.empty(rolling_extreme_size(n))
    rolling_extreme_init(s, 0, n)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = rolling_max_step(s, 0, x[i])
    return out


@njit(cache=True, error_model="numpy")
def rolling_min_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Rolling minimum; equals ``talib.MIN(x, n)`` and ``pd.Series(x).rolling(n).min()``."""
    s = np.empty(rolling_extreme_size(n))
    rolling_extreme_init(s, 0, n)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = rolling_min_step(s, 0, x[i])
    return out


@njit(cache=True, error_model="numpy")
def donchian_size(n: int) -> int:
    """State slots of a Donchian channel over ``n`` bars."""
    return 2 * rolling_extreme_size(n)


@njit(cache=True, error_model="numpy")
def donchian_init(s: np.ndarray, o: int, n: int) -> None:
    """Initial state of a Donchian channel over ``n`` bars (``talib.DONCHIAN``)."""
    rolling_extreme_init(s, o, n)
    rolling_extreme_init(s, o + rolling_extreme_size(n), n)


@njit(cache=True, error_model="numpy")
def donchian_new(n: int) -> np.ndarray:
    """A state vector holding one Donchian channel."""
    s = np.empty(donchian_size(n))
    donchian_init(s, 0, n)
    return s


@njit(cache=True, error_model="numpy", inline="always")
def donchian_step(s: np.ndarray, o: int, high: float, low: float) -> tuple[float, float, float]:
    """Advance the channel by one bar; returns ``(upper, lower, mid)``: the highest high and the
    lowest low of the last ``n`` bars (this one included) and their midpoint; ``talib.DONCHIAN``
    (which returns ``(upper, mid, lower)``)."""
    up = rolling_max_step(s, o, high)
    lo = rolling_min_step(s, o + rolling_extreme_size(int(s[o])), low)
    return up, lo, (up + lo) / 2.0


@njit(cache=True, error_model="numpy")
def donchian_nb(
    high: np.ndarray, low: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Donchian channel ``(upper, lower, mid)`` over ``n`` bars."""
    s = donchian_new(n)
    m = high.shape[0]
    up = np.empty(m)
    lo = np.empty(m)
    mid = np.empty(m)
    for i in range(m):
        up[i], lo[i], mid[i] = donchian_step(s, 0, high[i], low[i])
    return up, lo, mid
