"""Numba kernels of the synthetic market: arrays in, arrays out, no pandas, no I/O.

Random numbers are never drawn here: the caller draws them with a seeded
``numpy.random.Generator`` and passes them in, so a kernel is a pure function of its inputs and
the whole market is reproducible bit for bit.

Conventions: time is int64 UTC nanoseconds; prices are built as ``ticks / ticks_per_unit`` (an
exact integer divided by an exact integer, hence the double nearest to the decimal price, the
same value ``float("60000.01")`` parses to); quantities likewise as ``lots / lots_per_unit``.
The aggregation kernels sum volume strictly left to right in trade order and are compiled
without ``fastmath``, which is what a streaming aggregator or DuckDB's ``sum`` over rows in
file order computes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NS_PER_S = 1_000_000_000
SECONDS_PER_MINUTE = 60


@njit(cache=True)
def garch_nb(
    z: np.ndarray, omega: float, alpha: float, beta: float, h0: float, h_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) at one step per element of ``z`` (unit-variance innovations).

    ``h[i]`` is the conditional variance of step ``i`` (known before it), ``r[i] =
    sqrt(h[i]) * z[i]`` its log return, and ``h[i+1] = omega + alpha * r[i]**2 + beta * h[i]``,
    capped at ``h_max``. Returns ``(h, r)``.
    """
    n = z.shape[0]
    h = np.empty(n, dtype=np.float64)
    r = np.empty(n, dtype=np.float64)
    hp = h0
    for i in range(n):
        h[i] = hp
        ri = math.sqrt(hp) * z[i]
        r[i] = ri
        hp = omega + alpha * ri * ri + beta * hp
        if hp > h_max:
            hp = h_max
    return h, r


@njit(cache=True)
def second_path_nb(logp0: float, r: np.ndarray, h: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Per-second log price: a Brownian bridge inside each minute.

    Minute ``m`` moves by exactly ``r[m]`` (up to rounding); its 60 one-second increments are
    ``sqrt(h[m] / 60) * (e_j - mean(e)) + r[m] / 60`` with ``e`` standard normal draws (60 per
    minute). Element ``k`` of the result is the log price at the *end* of second ``k``.
    """
    n = r.shape[0]
    out = np.empty(n * SECONDS_PER_MINUTE, dtype=np.float64)
    lp = logp0
    for m in range(n):
        base = m * SECONDS_PER_MINUTE
        mean = 0.0
        for j in range(SECONDS_PER_MINUTE):
            mean += e[base + j]
        mean /= SECONDS_PER_MINUTE
        s = math.sqrt(h[m] / SECONDS_PER_MINUTE)
        drift = r[m] / SECONDS_PER_MINUTE
        for j in range(SECONDS_PER_MINUTE):
            lp += s * (e[base + j] - mean) + drift
            out[base + j] = lp
    return out


@njit(cache=True)
def ar1_nb(x0: float, mean: float, phi: float, sigma: float, eps: np.ndarray) -> np.ndarray:
    """AR(1) path ``x[i] = mean + phi * (x[i-1] - mean) + sigma * eps[i]`` from ``x[-1] = x0``."""
    n = eps.shape[0]
    out = np.empty(n, dtype=np.float64)
    x = x0
    for i in range(n):
        x = mean + phi * (x - mean) + sigma * eps[i]
        out[i] = x
    return out


@njit(cache=True)
def perp_mid_nb(spot_mid: np.ndarray, basis: np.ndarray, basis0: float) -> np.ndarray:
    """Perp mid per second: ``spot_mid * (1 + b)``, ``b`` interpolated linearly inside a minute.

    ``basis[m]`` is the basis at the end of minute ``m``, ``basis0`` the one at the start.
    """
    n_min = basis.shape[0]
    out = np.empty(spot_mid.shape[0], dtype=np.float64)
    prev = basis0
    for m in range(n_min):
        cur = basis[m]
        base = m * SECONDS_PER_MINUTE
        for j in range(SECONDS_PER_MINUTE):
            w = (j + 1) / SECONDS_PER_MINUTE
            out[base + j] = spot_mid[base + j] * (1.0 + prev + (cur - prev) * w)
        prev = cur
    return out


@njit(cache=True)
def spread_ticks_nb(h: np.ndarray, h_bar: float, base_ticks: int) -> np.ndarray:
    """Quoted spread in ticks per minute: ``base_ticks`` widened with the volatility ratio."""
    n = h.shape[0]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        s = int(math.floor(base_ticks * math.sqrt(h[i] / h_bar) + 0.5))
        out[i] = s if s >= base_ticks else base_ticks
    return out


@njit(cache=True)
def quote_ticks_nb(
    mid: np.ndarray, spread_min: np.ndarray, ticks_per_unit: float, first_sec: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best bid and ask in ticks for seconds ``first_sec .. first_sec + len(mid) - 1``.

    The quote of a second straddles its mid: ``bid = round(mid * tpu - spread / 2)``,
    ``ask = bid + spread``, with the spread of the second's minute.
    """
    n = mid.shape[0]
    bid = np.empty(n, dtype=np.int64)
    ask = np.empty(n, dtype=np.int64)
    for i in range(n):
        s = spread_min[(first_sec + i) // SECONDS_PER_MINUTE]
        b = int(math.floor(mid[i] * ticks_per_unit - 0.5 * s + 0.5))
        bid[i] = b
        ask[i] = b + s
    return bid, ask


@njit(cache=True)
def fill_trades_nb(
    counts: np.ndarray,
    t0: int,
    mid0: float,
    mid: np.ndarray,
    spread_min: np.ndarray,
    sigma_min: np.ndarray,
    ticks_per_unit: float,
    lots_per_unit: float,
    u_time: np.ndarray,
    u_side: np.ndarray,
    z_qty: np.ndarray,
    qty_mu: float,
    qty_sigma: float,
    flow: float,
    margin_ns: int,
):
    """Trades of every second from pre-drawn randoms.

    Second ``k`` (starting at ``t0 + k`` s) holds ``counts[k]`` trades at uniform times at least
    ``margin_ns`` inside the second, sorted and strictly increasing. The taker buys with
    probability ``0.5 + flow * tanh(ret / sigma)`` (``ret`` the second's mid log return,
    ``sigma`` its expected size) and lifts the ask; a seller hits the bid. Quantities are
    lognormal ``exp(qty_mu + qty_sigma * z)`` rounded to whole lots (at least one).

    Returns ``(ts, price, qty, side)`` with ``side`` 0 for a buying taker, 1 for a selling one.
    """
    n_trades = u_time.shape[0]
    ts = np.empty(n_trades, dtype=np.int64)
    price = np.empty(n_trades, dtype=np.float64)
    qty = np.empty(n_trades, dtype=np.float64)
    side = np.empty(n_trades, dtype=np.int8)
    span = NS_PER_S - 2 * margin_ns
    k = 0
    prev_mid = mid0
    for s in range(counts.shape[0]):
        c = counts[s]
        m = mid[s]
        if c > 0:
            minute = s // SECONDS_PER_MINUTE
            sp = spread_min[minute]
            bid = math.floor(m * ticks_per_unit - 0.5 * sp + 0.5)
            ask = bid + sp
            bid_px = bid / ticks_per_unit
            ask_px = ask / ticks_per_unit
            sig = sigma_min[minute]
            ret = math.log(m / prev_mid)
            p_buy = 0.5 + flow * math.tanh(ret / sig) if sig > 0.0 else 0.5
            sec_ns = t0 + s * NS_PER_S
            # times: draw, insertion-sort, then make strictly increasing
            for i in range(k, k + c):
                off = sec_ns + margin_ns + np.int64(u_time[i] * span)
                j = i
                while j > k and ts[j - 1] > off:
                    ts[j] = ts[j - 1]
                    j -= 1
                ts[j] = off
            for i in range(k + 1, k + c):
                if ts[i] <= ts[i - 1]:
                    ts[i] = ts[i - 1] + 1
            for i in range(k, k + c):
                if u_side[i] < p_buy:
                    side[i] = 0
                    price[i] = ask_px
                else:
                    side[i] = 1
                    price[i] = bid_px
                lots = math.floor(math.exp(qty_mu + qty_sigma * z_qty[i]) * lots_per_unit + 0.5)
                if lots < 1:
                    lots = 1
                qty[i] = lots / lots_per_unit
            k += c
        prev_mid = m
    return ts, price, qty, side


@njit(cache=True)
def ohlc_grid_nb(values: np.ndarray, t0: int, dt: int, step: int):
    """OHLC of a regularly sampled series (sample ``i`` at ``t0 + i * dt``) per ``step`` bucket.

    Returns ``(bar_ts, open, high, low, close)``; buckets are epoch-aligned.
    """
    n = values.shape[0]
    if n == 0:
        e = np.empty(0, dtype=np.float64)
        return np.empty(0, dtype=np.int64), e, e.copy(), e.copy(), e.copy()
    first = t0 // step
    nb = (t0 + (n - 1) * dt) // step - first + 1
    bar_ts = np.empty(nb, dtype=np.int64)
    o = np.empty(nb, dtype=np.float64)
    hi = np.empty(nb, dtype=np.float64)
    lo = np.empty(nb, dtype=np.float64)
    c = np.empty(nb, dtype=np.float64)
    seen = np.zeros(nb, dtype=np.bool_)
    for i in range(n):
        j = (t0 + i * dt) // step - first
        x = values[i]
        if not seen[j]:
            seen[j] = True
            bar_ts[j] = (first + j) * step
            o[j] = x
            hi[j] = x
            lo[j] = x
        if x > hi[j]:
            hi[j] = x
        if x < lo[j]:
            lo[j] = x
        c[j] = x
    keep = np.flatnonzero(seen)
    return bar_ts[keep], o[keep], hi[keep], lo[keep], c[keep]


@njit(cache=True)
def funding_nb(
    fund_min: np.ndarray,
    basis: np.ndarray,
    mid: np.ndarray,
    mid0: float,
    eps: np.ndarray,
    mean: float,
    phi: float,
    k_basis: float,
    basis_mean: float,
    k_mom: float,
    sigma: float,
    clip: float,
    window_min: int,
) -> np.ndarray:
    """Funding rates at minute offsets ``fund_min`` (AR(1) that leans with basis and momentum).

    ``rate_k = mean + phi * (rate_{k-1} - mean) + k_basis * (avg basis - basis_mean)
    + k_mom * (perp log return) + sigma * eps_k``, both leaning terms measured over the
    ``window_min`` minutes before the funding time (as far as data reaches; zero without any),
    clipped to ``[-clip, clip]``. ``basis`` is per minute, ``mid`` the perp mid per second.
    """
    n_f = fund_min.shape[0]
    n_min = basis.shape[0]
    out = np.empty(n_f, dtype=np.float64)
    prev = mean
    for k in range(n_f):
        hi_m = fund_min[k]
        if hi_m > n_min:
            hi_m = n_min
        lo_m = fund_min[k] - window_min
        if lo_m < 0:
            lo_m = 0
        lean = 0.0
        if hi_m > lo_m:
            acc = 0.0
            for m in range(lo_m, hi_m):
                acc += basis[m]
            lean += k_basis * (acc / (hi_m - lo_m) - basis_mean)
            p_end = mid[hi_m * SECONDS_PER_MINUTE - 1]
            p_start = mid[lo_m * SECONDS_PER_MINUTE - 1] if lo_m > 0 else mid0
            lean += k_mom * math.log(p_end / p_start)
        r = mean + phi * (prev - mean) + lean + sigma * eps[k]
        if r > clip:
            r = clip
        elif r < -clip:
            r = -clip
        out[k] = r
        prev = r
    return out
