"""A zero-intelligence L2 order-flow model that speaks the Binance market-data protocol.

The model is the zero-intelligence limit order book of Smith, Farmer, Gillemot and Krishnamurthy
(2003, "Statistical theory of the continuous double auction", Quantitative Finance 3) in the
Markov form of Cont, Stoikov and Talreja (2010, "A stochastic model for order book dynamics",
Operations Research 58(3)), on an integer tick grid with sizes in lots:

- **Limit orders** arrive on each side at distance ``k = 1..max_level`` ticks from the
  *opposite* best quote at rate ``lambda(k) = limit_rate * k**-limit_alpha`` (CST's power law);
  ``k = 1`` with a one-tick spread joins the best queue, with a wider spread it improves it.
  Sizes are lognormal (median ``limit_size`` in base units, log-sd ``limit_size_sigma``),
  rounded to whole lots (at least one).
- **Cancellations**: each resting order at distance ``d`` from the opposite best leaves at rate
  ``theta(d) = cancel_rate * d**-cancel_alpha`` (``d`` clamped to ``max_level``), so a level's
  cancellation rate is ``theta(d)`` times its queue length in orders. The book keeps lots and an
  order count per level; a cancellation removes an order of the level's average size.
- **Market orders** arrive at rate ``market_rate``, buy or sell, with lognormal sizes
  (``market_size``, ``market_size_sigma``). They walk the opposite side level by level and print
  one trade per maker order filled (a level's orders are taken as equal, front first).
- **Two-sided book.** A side's last order is never cancelled and a market order leaves at least
  one lot on the side it hits.
- **Drift.** ZI order flow alone diffuses slowly. A reference price follows a Gaussian random
  walk (``ref_vol_ticks`` per square-root second, stepped every ``ref_step_ms``) held within
  ``ref_max_gap_ticks`` of the mid, and tilts which side arrives: with
  ``x = (reference - mid) / steer_ticks`` a market order buys with probability
  ``(1 + tanh(steer_market * x)) / 2`` and a limit order is a bid with probability
  ``(1 + tanh(steer_limit * x)) / 2``. The mid follows the reference as fast as the book lets it.

Events follow one another as a continuous-time Markov chain (Gillespie): the waiting time after
each event is exponential with the total rate of the new state and is kept as state, so the
message stream depends only on the config and seed, not on how callers cut time into windows.
The book is warmed up for ``warmup_s`` seconds before ``start_ns`` (no messages); the numba
kernels live in :mod:`tradelab.synth.zi_nb`.

:class:`ZIMarket` turns events into Binance combined-stream payloads for ``spot`` or ``usdm``
(USD-M futures) with the field sets and string formats of real recordings;
:func:`write_zi_recording` writes them as a ``<recv ns> <json>`` gzip recording with one REST
depth snapshot near the start.
"""

from __future__ import annotations

import gc
import gzip
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tradelab.adapters.binance import encode
from tradelab.adapters.binance.recording import format_line
from tradelab.adapters.binance.schema import MARKETS, stream_name
from tradelab.synth import zi_nb as nb

MS = 1_000_000
NS_PER_S = 1_000_000_000
STREAM_KINDS = ("depth", "trade", "aggTrade", "bookTicker")
CAP_EVENTS = 1 << 15
CAP_CHANGES = 1 << 17
CAP_TRADES = 1 << 17
_CACHE_MAX = 200_000
_CADENCE_RE = re.compile(r"^(\d+)ms$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]+$")

@dataclass(frozen=True)
class _MarketDefaults:
    tick_size: float
    lot_size: float
    depth_cadence: str


_DEFAULTS = {
    "spot": _MarketDefaults(tick_size=0.01, lot_size=0.00001, depth_cadence="100ms"),
    "usdm": _MarketDefaults(tick_size=0.1, lot_size=0.001, depth_cadence="0ms"),
}


def _decimals(x: float, name: str) -> tuple[int, int]:
    """``(decimals, integer units)`` of a positive decimal step such as 0.1 -> (1, 1)."""
    if not (isinstance(x, (int, float)) and x > 0 and math.isfinite(x)):
        raise ValueError(f"ZIConfig.{name}={x!r}: must be a positive number such as 0.01")
    d = Decimal(repr(float(x))).normalize()
    exponent = d.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity: excluded above
        raise ValueError(f"ZIConfig.{name}={x!r}: not a finite decimal")
    dp = max(0, -exponent)
    units = d.scaleb(dp)
    if units != units.to_integral_value() or dp > 12:
        raise ValueError(f"ZIConfig.{name}={x!r}: not a decimal step with at most 12 decimals")
    return dp, int(units)


@dataclass(frozen=True)
class ZIConfig:
    """Everything that determines a :class:`ZIMarket`: same config, same messages, bit for bit.

    Rates are per second, sizes in base-asset units (converted to lots), distances in ticks.
    ``None`` picks the market's default: spot tick 0.01, lot 0.00001, ``100ms`` depth cadence,
    8 decimals in prices and quantities; USD-M tick 0.1, lot 0.001, ``0ms`` cadence (one diff per
    event), ``max(2, tick decimals)`` price decimals and lot decimals in quantities (as Binance
    prints BTCUSDT: ``"61800.20"``, ``"0.014"``).
    """

    seed: int = 7
    symbol: str = "BTCUSDT"
    market: str = "usdm"
    """``spot`` or ``usdm``: the message formats to speak."""
    tick_size: float | None = None
    lot_size: float | None = None
    initial_mid: float = 60000.0
    start_ns: int = 1_722_470_400_000_000_000
    """Exchange time of the first message window, UTC ns (default 2024-08-01 00:00)."""
    depth_cadence: str | None = None
    """``"0ms"``: one diff per event; ``"100ms"`` (or any ``"<n>ms"``): changes aggregated on a
    grid of that step aligned to ``start_ns``, one diff per step that changed something."""
    limit_rate: float = 1.5
    """``lambda(1)``: limit orders per second per side at one tick from the opposite best."""
    limit_alpha: float = 0.8
    max_level: int = 100
    """Farthest placement distance, ticks (at most 4096)."""
    cancel_rate: float = 0.1
    """``theta(1)``: cancellations per resting order per second at distance one."""
    cancel_alpha: float = 0.3
    market_rate: float = 4.0
    limit_size: float = 0.02
    limit_size_sigma: float = 0.9
    market_size: float = 0.015
    market_size_sigma: float = 1.1
    ref_vol_ticks: float = 3.0
    """Reference-price volatility, ticks per square-root second."""
    ref_step_ms: int = 1000
    ref_max_gap_ticks: float = 20.0
    steer_ticks: float = 4.0
    steer_market: float = 1.0
    steer_limit: float = 0.5
    warmup_s: float = 300.0
    first_update_id: int = 1_000_000
    first_trade_id: int = 1_000_000
    first_agg_id: int = 1_000_000
    streams: tuple[str, ...] = STREAM_KINDS
    """Which of ``depth``, ``trade``, ``aggTrade``, ``bookTicker`` :meth:`ZIMarket.advance`
    returns (the simulation is the same whatever is selected)."""
    price_decimals: int | None = None
    qty_decimals: int | None = None
    derived: dict[str, Any] = field(init=False, default_factory=dict, compare=False, repr=False)
    """Values derived by validation (decimals, integer units, cadence in ns)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", tuple(self.streams))
        self._validate()

    def _validate(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"ZIConfig.{name}={getattr(self, name)!r}: {why}")

        if self.market not in MARKETS:
            raise bad("market", "use 'spot' or 'usdm'")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise bad("seed", "use a non-negative integer")
        if not isinstance(self.symbol, str) or not _SYMBOL_RE.match(self.symbol):
            raise bad("symbol", "use the Binance form, upper case, e.g. BTCUSDT")
        dflt = _DEFAULTS[self.market]
        tick = self.tick_size if self.tick_size is not None else dflt.tick_size
        lot = self.lot_size if self.lot_size is not None else dflt.lot_size
        tick_dp, tick_units = _decimals(tick, "tick_size")
        lot_dp, lot_units = _decimals(lot, "lot_size")
        spot = self.market == "spot"
        price_dp = self.price_decimals
        if price_dp is None:
            price_dp = 8 if spot else max(2, tick_dp)
        qty_dp = self.qty_decimals
        if qty_dp is None:
            qty_dp = 8 if spot else lot_dp
        if not isinstance(price_dp, int) or not tick_dp <= price_dp <= 12:
            raise bad("price_decimals", f"must be an integer in [{tick_dp}, 12] for this tick")
        if not isinstance(qty_dp, int) or not lot_dp <= qty_dp <= 12:
            raise bad("qty_decimals", f"must be an integer in [{lot_dp}, 12] for this lot")
        cadence = self.depth_cadence if self.depth_cadence is not None else dflt.depth_cadence
        m = _CADENCE_RE.match(cadence) if isinstance(cadence, str) else None
        if m is None:
            raise bad("depth_cadence", "use '0ms' (per event) or a step such as '100ms'")
        if not (isinstance(self.initial_mid, (int, float)) and self.initial_mid > 0):
            raise bad("initial_mid", "must be a positive price")
        if not isinstance(self.max_level, (int, np.integer)) or not 1 <= self.max_level <= 4096:
            raise bad("max_level", "must be an integer in [1, 4096]")
        mid_ticks = round(self.initial_mid / tick)
        if mid_ticks < 10 * self.max_level:
            raise bad(
                "initial_mid", f"must be at least 10 * max_level = {10 * self.max_level} ticks"
            )
        if not isinstance(self.start_ns, (int, np.integer)) or self.start_ns < 0:
            raise bad("start_ns", "must be integer UTC nanoseconds")
        for name in ("limit_rate", "cancel_rate", "limit_size", "market_size", "steer_ticks"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be positive")
        for name in (
            "limit_alpha",
            "cancel_alpha",
            "market_rate",
            "limit_size_sigma",
            "market_size_sigma",
            "ref_vol_ticks",
            "ref_max_gap_ticks",
            "steer_market",
            "steer_limit",
            "warmup_s",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise bad(name, "must be a finite number >= 0")
        if not isinstance(self.ref_step_ms, int) or self.ref_step_ms < 1:
            raise bad("ref_step_ms", "must be a positive integer")
        for name in ("first_update_id", "first_trade_id", "first_agg_id"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "must be a positive integer")
        unknown = [s for s in self.streams if s not in STREAM_KINDS]
        if unknown:
            raise bad("streams", f"unknown {unknown}; choose from {STREAM_KINDS}")
        derived = dict(
            tick=float(tick),
            lot=float(lot),
            tick_dp=tick_dp,
            tick_units=tick_units,
            lot_dp=lot_dp,
            lot_units=lot_units,
            price_dp=price_dp,
            qty_dp=qty_dp,
            cadence_ns=int(m.group(1)) * MS,
            cadence=cadence,
            mid_ticks=int(mid_ticks),
        )
        object.__setattr__(self, "derived", derived)

    # -- derived ---------------------------------------------------------------------------

    @property
    def tick(self) -> float:
        return self.derived["tick"]

    @property
    def lot(self) -> float:
        return self.derived["lot"]

    @property
    def cadence(self) -> str:
        return self.derived["cadence"]

    def lambdas(self) -> np.ndarray:
        """``lambda(k)`` for ``k = 1..max_level`` (limit orders per second per side)."""
        k = np.arange(1, self.max_level + 1, dtype=np.float64)
        return self.limit_rate * k**-self.limit_alpha

    def thetas(self) -> np.ndarray:
        """``theta(d)`` indexed by distance ``d = 0..max_level`` (``theta[0]`` unused)."""
        d = np.arange(0, self.max_level + 1, dtype=np.float64)
        d[0] = 1.0
        return self.cancel_rate * d**-self.cancel_alpha


def _seed_state(seed: int, stream: int) -> np.ndarray:
    return np.random.SeedSequence([int(seed), 0x5A1, stream]).generate_state(4, dtype=np.uint64)


class ZIMarket:
    """A running zero-intelligence market; see the module docstring for the model.

    The *internal* book (:meth:`book`, :meth:`best`) is the simulation state at ``now_ns``. The
    *published* book is the one a client rebuilds from the depth diffs returned so far;
    :meth:`snapshot` serves it, so its ``lastUpdateId`` is the ``u`` of the last diff returned.
    With a ``0ms`` cadence both are the same after each :meth:`advance`.
    """

    def __init__(self, cfg: ZIConfig | None = None) -> None:
        self.cfg = cfg = cfg if cfg is not None else ZIConfig()
        x = cfg.derived
        self._spot = cfg.market == "spot"
        self._sym = cfg.symbol
        self._cadence_ns = x["cadence_ns"]
        self.stream_names = {k: stream_name(cfg.symbol, k, cfg.cadence) for k in STREAM_KINDS}
        self._want = frozenset(cfg.streams)
        # price strings: ticks * tick_units are units of 10**-tick_dp
        self._p_scale = x["tick_units"] * 10 ** (x["price_dp"] - x["tick_dp"])
        self._p_div = 10 ** x["price_dp"]
        self._p_dp = x["price_dp"]
        self._q_scale = x["lot_units"] * 10 ** (x["qty_dp"] - x["lot_dp"])
        self._q_div = 10 ** x["qty_dp"]
        self._q_dp = x["qty_dp"]
        self._pstr: dict[int, str] = {}
        self._qstr: dict[int, str] = {}

        lam = cfg.lambdas()
        theta = cfg.thetas()
        self._lam_cdf = np.cumsum(lam) / lam.sum()
        self._lam_cdf[-1] = 1.0
        self._theta = theta
        prm = np.zeros(nb.P_SIZE)
        prm[nb.P_MU] = cfg.market_rate
        prm[nb.P_LMED] = cfg.limit_size / x["lot"]
        prm[nb.P_LSIG] = cfg.limit_size_sigma
        prm[nb.P_MMED] = cfg.market_size / x["lot"]
        prm[nb.P_MSIG] = cfg.market_size_sigma
        prm[nb.P_REFSIG] = cfg.ref_vol_ticks * math.sqrt(cfg.ref_step_ms / 1000.0)
        prm[nb.P_REFSTEP] = cfg.ref_step_ms * MS
        prm[nb.P_REFGAP] = cfg.ref_max_gap_ticks
        prm[nb.P_SCALE] = cfg.steer_ticks
        prm[nb.P_GMKT] = cfg.steer_market
        prm[nb.P_GLIM] = cfg.steer_limit
        prm[nb.P_LAM] = lam.sum()
        self._prm = prm

        self._q = np.zeros((2, nb.W), dtype=np.int64)
        self._n = np.zeros((2, nb.W), dtype=np.int64)
        self._iv = np.zeros(nb.I_SIZE, dtype=np.int64)
        self._fv = np.zeros(nb.F_SIZE, dtype=np.float64)
        self._rng = np.stack([_seed_state(cfg.seed, 0), _seed_state(cfg.seed, 1)])
        counts = np.maximum(1, np.rint(lam / theta[1:])).astype(np.int64)
        lots = max(1, round(prm[nb.P_LMED]))
        nb.seed_book_nb(self._q, self._n, self._iv, x["mid_ticks"], counts, lots)
        self._fv[nb.F_REF] = float(x["mid_ticks"])
        t0 = int(cfg.start_ns) - round(cfg.warmup_s * NS_PER_S)
        self._iv[nb.I_REFT] = t0 + cfg.ref_step_ms * MS
        nb.schedule_next_nb(t0, self._n, self._iv, self._rng, self._theta, self._prm)
        while not self._simulate(int(cfg.start_ns))[0]:
            pass
        self._iv[nb.I_UID] = cfg.first_update_id
        self._iv[nb.I_TID] = cfg.first_trade_id
        self._iv[nb.I_AID] = cfg.first_agg_id

        self.now_ns = int(cfg.start_ns)
        self.n_events = 0
        bp, bl = nb.book_levels_nb(self._q, self._iv, nb.BID, nb.W)
        ap, al = nb.book_levels_nb(self._q, self._iv, nb.ASK, nb.W)
        self._pub = (dict(zip(bp.tolist(), bl.tolist())), dict(zip(ap.tolist(), al.tolist())))
        self._last_u = cfg.first_update_id - 1
        self._last_change_ns = int(cfg.start_ns)
        self._bkt: dict[tuple[int, int], int] = {}
        self._bkt_end = -1
        self._bkt_U = 0
        self._bkt_u = 0
        self._bkt_t = 0

    # -- simulation ------------------------------------------------------------------------

    def _simulate(self, t1: int):
        ne, done, ev, ch, tr = nb.simulate_nb(
            t1,
            self._q,
            self._n,
            self._iv,
            self._fv,
            self._rng,
            self._lam_cdf,
            self._theta,
            self._prm,
            CAP_EVENTS,
            CAP_CHANGES,
            CAP_TRADES,
        )
        return done, ev, ch, tr

    def simulate_raw(self, t1_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance to ``t1_ns`` and return the raw ``(events, changes, trades)`` records of
        :mod:`.zi_nb` instead of messages (prices in ticks, sizes in lots; ``ch_end``/``tr_end``
        index into the arrays returned). Messages for this window are not produced, so do not
        mix it with :meth:`advance` on one market."""
        t1 = self._check_t1(t1_ns)
        evs, chs, trs = [], [], []
        k0 = m0 = 0
        while True:
            done, ev, ch, tr = self._simulate(t1)
            ev = ev.copy()
            ev["ch_end"] += k0
            ev["tr_end"] += m0
            k0 += len(ch)
            m0 += len(tr)
            evs.append(ev)
            chs.append(ch)
            trs.append(tr)
            if done:
                break
        self.now_ns = t1
        ev = np.concatenate(evs)
        self.n_events += len(ev)
        return ev, np.concatenate(chs), np.concatenate(trs)

    def _check_t1(self, t1_ns: int) -> int:
        t1 = int(t1_ns)
        if t1 < self.now_ns:
            raise ValueError(
                f"advance({t1}): time runs forward only; the market is already at {self.now_ns}"
            )
        return t1

    def advance(self, t1_ns: int) -> list[dict]:
        """Combined-stream payloads ``{"stream": ..., "data": ...}`` of everything with exchange
        time before ``t1_ns`` (a ``100ms`` diff whose step ends at or before ``t1_ns`` included),
        in exchange-time order."""
        return [msg for _, msg in self.advance_timed(t1_ns)]

    def advance_timed(self, t1_ns: int) -> list[tuple[int, dict]]:
        """Like :meth:`advance`, each payload paired with its exchange time in ns (the event
        time; for aggregated diffs the end of their step) for pacing delivery."""
        t1 = self._check_t1(t1_ns)
        out: list[tuple[int, dict]] = []
        # Hundreds of thousands of small acyclic containers: the cyclic collector would only
        # rescan them (it tripled the cost of an hour of messages).
        gc_on = gc.isenabled()
        gc.disable()
        try:
            while True:
                done, ev, ch, tr = self._simulate(t1)
                self.n_events += len(ev)
                self._messages(ev, ch, tr, out)
                if done:
                    break
            if self._cadence_ns and self._bkt and self._bkt_end <= t1:
                self._flush_bucket(out)
        finally:
            if gc_on:
                gc.enable()
        self.now_ns = t1
        return out

    # -- formatting ------------------------------------------------------------------------

    def _px(self, ticks: int) -> str:
        s = self._pstr.get(ticks)
        if s is None:
            if len(self._pstr) > _CACHE_MAX:
                self._pstr.clear()
            u = ticks * self._p_scale
            s = f"{u // self._p_div}.{u % self._p_div:0{self._p_dp}d}" if self._p_dp else str(u)
            self._pstr[ticks] = s
        return s

    def _qty(self, lots: int) -> str:
        s = self._qstr.get(lots)
        if s is None:
            if len(self._qstr) > _CACHE_MAX:
                self._qstr.clear()
            u = lots * self._q_scale
            s = f"{u // self._q_div}.{u % self._q_div:0{self._q_dp}d}" if self._q_dp else str(u)
            self._qstr[lots] = s
        return s

    def price(self, ticks: int) -> float:
        """The float price of ``ticks`` (the double nearest the decimal price)."""
        x = self.cfg.derived
        return ticks * x["tick_units"] / 10 ** x["tick_dp"]

    def quantity(self, lots: int) -> float:
        x = self.cfg.derived
        return lots * x["lot_units"] / 10 ** x["lot_dp"]

    def _levels(self, items: list[tuple[int, int]], bids: bool) -> list[list[str]]:
        if len(items) == 1:
            p, q = items[0]
            return [[self._px(p), self._qty(q)]]
        px, qty = self._px, self._qty
        return [[px(p), qty(q)] for p, q in sorted(items, reverse=bids)]

    # -- messages --------------------------------------------------------------------------

    def _diff(self, tau: int, t_last: int, U: int, u: int, bids, asks) -> dict:
        e_ms = tau // MS
        b = self._levels(bids, True)
        a = self._levels(asks, False)
        data = encode.depth_update(self._spot, e_ms, t_last // MS, self._sym, U, u, self._last_u,
                                   b, a)
        pb, pa = self._pub
        for p, q in bids:
            if q:
                pb[p] = q
            else:
                pb.pop(p, None)
        for p, q in asks:
            if q:
                pa[p] = q
            else:
                pa.pop(p, None)
        self._last_u = u
        self._last_change_ns = t_last
        return encode.envelope(self.stream_names["depth"], data)

    def _flush_bucket(self, out: list) -> None:
        bids = [(p, q) for (s, p), q in self._bkt.items() if s > 0]
        asks = [(p, q) for (s, p), q in self._bkt.items() if s < 0]
        msg = self._diff(self._bkt_end, self._bkt_t, self._bkt_U, self._bkt_u, bids, asks)
        if "depth" in self._want:
            out.append((self._bkt_end, msg))
        self._bkt = {}

    def _messages(self, ev: np.ndarray, ch: np.ndarray, tr: np.ndarray, out: list) -> None:
        if len(ev) == 0:
            return
        spot = self._spot
        sym = self._sym
        px, qty = self._px, self._qty
        enc_trade, enc_agg, enc_bt = encode.trade, encode.agg_trade, encode.book_ticker
        want_depth = "depth" in self._want
        want_trade = "trade" in self._want
        want_agg = "aggTrade" in self._want
        want_bt = "bookTicker" in self._want
        s_trade = self.stream_names["trade"]
        s_agg = self.stream_names["aggTrade"]
        s_bt = self.stream_names["bookTicker"]
        cad = self._cadence_ns
        start = self.cfg.start_ns
        e_t = ev["t"].tolist()
        e_side = ev["side"].tolist()
        e_top = ev["top"].tolist()
        e_ch = ev["ch_end"].tolist()
        e_tr = ev["tr_end"].tolist()
        e_bp = ev["bid_px"].tolist()
        e_bq = ev["bid_qty"].tolist()
        e_ap = ev["ask_px"].tolist()
        e_aq = ev["ask_qty"].tolist()
        c_side = ch["side"].tolist()
        c_px = ch["px"].tolist()
        c_qty = ch["qty"].tolist()
        c_uid = ch["uid"].tolist()
        t_px = tr["px"].tolist()
        t_qty = tr["qty"].tolist()
        t_tid = tr["tid"].tolist()
        t_aid = tr["aid"].tolist()
        k0 = 0
        m0 = 0
        for i in range(len(e_t)):
            t = e_t[i]
            k1 = e_ch[i]
            m1 = e_tr[i]
            ms = t // MS
            if cad and self._bkt and t >= self._bkt_end:
                self._flush_bucket(out)
            if m1 > m0:
                maker_buys = e_side[i] < 0  # the taker sold: the buyer is the maker
                if want_trade:
                    for j in range(m0, m1):
                        d = enc_trade(spot, ms, sym, t_tid[j], px(t_px[j]), qty(t_qty[j]),
                                      maker_buys)
                        out.append((t, {"stream": s_trade, "data": d}))
                if want_agg:
                    j = m0
                    while j < m1:
                        g = j
                        lots = 0
                        while g < m1 and t_aid[g] == t_aid[j]:
                            lots += t_qty[g]
                            g += 1
                        d = enc_agg(spot, ms, sym, t_aid[j], px(t_px[j]), qty(lots), t_tid[j],
                                    t_tid[g - 1], ms, maker_buys)
                        out.append((t, {"stream": s_agg, "data": d}))
                        j = g
            if k1 > k0:
                if cad:
                    if not self._bkt:
                        self._bkt_end = start + ((t - start) // cad + 1) * cad
                        self._bkt_U = c_uid[k0]
                    bkt = self._bkt
                    for j in range(k0, k1):
                        bkt[(c_side[j], c_px[j])] = c_qty[j]
                    self._bkt_u = c_uid[k1 - 1]
                    self._bkt_t = t
                else:
                    bids = [(c_px[j], c_qty[j]) for j in range(k0, k1) if c_side[j] > 0]
                    asks = [(c_px[j], c_qty[j]) for j in range(k0, k1) if c_side[j] < 0]
                    msg = self._diff(t, t, c_uid[k0], c_uid[k1 - 1], bids, asks)
                    if want_depth:
                        out.append((t, msg))
                if want_bt and e_top[i]:
                    d = enc_bt(spot, c_uid[k1 - 1], sym, px(e_bp[i]), qty(e_bq[i]), px(e_ap[i]),
                               qty(e_aq[i]), ms)
                    out.append((t, {"stream": s_bt, "data": d}))
            k0 = k1
            m0 = m1

    # -- views -----------------------------------------------------------------------------

    def snapshot(self, limit: int = 1000) -> dict:
        """The REST depth body of the published book: ``lastUpdateId`` is the ``u`` of the last
        diff returned by :meth:`advance`, with the best ``limit`` levels per side (USD-M adds
        ``E``, the market's time, and ``T``, the time of that last change, in ms)."""
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"snapshot(limit={limit!r}): limit must be a positive integer")
        pb, pa = self._pub
        bids = [[self._px(p), self._qty(pb[p])] for p in sorted(pb, reverse=True)[:limit]]
        asks = [[self._px(p), self._qty(pa[p])] for p in sorted(pa)[:limit]]
        times = None if self._spot else {"E": self.now_ns // MS, "T": self._last_change_ns // MS}
        return encode.depth_snapshot(self._last_u, bids, asks, times)

    def book(self, limit: int | None = None) -> dict[str, list[tuple[float, float]]]:
        """The internal book at ``now_ns``: ``{"bids": [(price, qty), ...], "asks": ...}``,
        best first, floats."""
        lim = nb.W if limit is None else int(limit)
        out = {}
        for name, side in (("bids", nb.BID), ("asks", nb.ASK)):
            p, q = nb.book_levels_nb(self._q, self._iv, side, lim)
            out[name] = [(self.price(a), self.quantity(b)) for a, b in zip(p.tolist(), q.tolist())]
        return out

    def book_ticks(self) -> tuple[dict[int, int], dict[int, int]]:
        """The internal book as ``({bid tick: lots}, {ask tick: lots})``."""
        bp, bl = nb.book_levels_nb(self._q, self._iv, nb.BID, nb.W)
        ap, al = nb.book_levels_nb(self._q, self._iv, nb.ASK, nb.W)
        return dict(zip(bp.tolist(), bl.tolist())), dict(zip(ap.tolist(), al.tolist()))

    def best(self) -> tuple[float, float, float, float]:
        """``(bid_px, bid_qty, ask_px, ask_qty)`` of the internal book."""
        iv, q = self._iv, self._q
        bb, ba = int(iv[nb.I_BB]), int(iv[nb.I_BA])
        base = int(iv[nb.I_BASE])
        return (
            self.price(base + bb),
            self.quantity(int(q[nb.BID, bb])),
            self.price(base + ba),
            self.quantity(int(q[nb.ASK, ba])),
        )

    @property
    def last_update_id(self) -> int:
        """``u`` of the last diff returned (the published book's update id)."""
        return self._last_u

    @property
    def reference_price(self) -> float:
        """The drifting reference price the order flow leans towards."""
        return float(self._fv[nb.F_REF]) * self.cfg.tick


# -- recording -------------------------------------------------------------------------------


def write_zi_recording(
    market_or_cfg: ZIMarket | ZIConfig,
    path: str | os.PathLike,
    seconds: float,
    *,
    streams: Iterable[str] = ("depth", "trade", "bookTicker"),
    snapshot_after_s: float = 1.0,
    snapshot_latency_ms: int = 25,
    latency_ms: tuple[float, float] = (2.0, 6.0),
    chunk_s: float = 10.0,
) -> Path:
    """Write ``seconds`` of the market as a gzip recording in the exact format of the real
    Binance files: ``<recv ns> <json>`` lines, combined-stream envelopes, and one REST depth
    snapshot (1000 levels) taken ``snapshot_after_s`` after the start and received
    ``snapshot_latency_ms`` later, so the Binance importer can sync the book.

    ``streams`` defaults to what the real recordings hold (no ``aggTrade``: importers would store
    the trades twice). Receipt time is exchange time plus a latency drawn uniformly from
    ``latency_ms`` (seeded), kept non-decreasing as on one connection. The file appears only
    complete (written under a hidden name, then renamed); the same market gives the same bytes.
    """
    mkt = market_or_cfg if isinstance(market_or_cfg, ZIMarket) else ZIMarket(market_or_cfg)
    kinds = tuple(streams)
    unknown = [s for s in kinds if s not in STREAM_KINDS]
    if unknown:
        raise ValueError(f"write_zi_recording: unknown streams {unknown}; use {STREAM_KINDS}")
    if not seconds > 0:
        raise ValueError(f"write_zi_recording: seconds={seconds!r} must be positive")
    names = {mkt.stream_names[k] for k in kinds}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    rng = np.random.default_rng([mkt.cfg.seed, 0x2EC])
    lo, hi = latency_ms
    t_start = mkt.now_ns
    t_end = t_start + round(seconds * NS_PER_S)
    t_snap = min(t_end, t_start + round(snapshot_after_s * NS_PER_S))
    step = max(1, round(chunk_s * NS_PER_S))
    snap_line: tuple[int, bytes] | None = None
    last_recv = 0
    cuts = sorted({t_snap, *range(t_start + step, t_end, step), t_end})
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as fh:
        for t1 in cuts:
            timed = mkt.advance_timed(t1)
            lat = rng.uniform(lo, hi, len(timed)) * MS
            lines = []
            for (tau, msg), dl in zip(timed, lat.tolist()):
                if msg["stream"] not in names:
                    continue
                recv = max(tau + int(dl), last_recv)
                last_recv = recv
                if snap_line is not None and snap_line[0] <= recv:
                    lines.append(snap_line[1])
                    snap_line = None
                lines.append(format_line(recv, msg))
            fh.write(b"".join(lines))
            if t1 == t_snap:
                recv = t_snap + snapshot_latency_ms * MS
                snap_line = (recv, format_line(recv, mkt.snapshot(1000)))
        if snap_line is not None:
            fh.write(snap_line[1])
    os.replace(tmp, path)
    return path
