"""The market-data side of order matching on the venue, shared by spot and USD-M.

Each instrument of a market gets a :class:`~tradelab.matching.MatchingCore` the first time an
order arrives, seeded with the venue's book; from then on every depth diff and trade the venue
publishes for that market is fed to it, so resting orders keep a queue position and fill from
the market's trades and crossings, and takers walk the book. A subclass books what the core
reports in ``_apply(symbol, executions)``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np

from tradelab.adapters.binance import trading as wire
from tradelab.matching import BUY, I_BASE, SELL, Executions, MatchingCore, instrument
from tradelab.venue.book import VenueBook
from tradelab.venue.instruments import Instrument

PRICE_WINDOW = 0.10
"""The matching core's dense book spans the mid price +-10 % (orders outside are refused)."""
MAX_WALK = 1000
"""Price levels a market order's cost or quantity is worked out over (Binance walks at most
this deep too, in practice)."""


class BookCores:
    """Matching cores of one market's instruments, fed from the venue's books."""

    market: str
    books: dict[tuple[str, str], VenueBook]
    clock_ms: Callable[[], int]
    cores: dict[str, MatchingCore]
    at_ns: int | None = None
    """Set while an order action takes effect (the venue's latency gate): the cores' time."""
    queue_model: str = "risk_averse"
    """The matching cores' queue-position model (and its exponent ``queue_n``)."""
    queue_n: float = 2.0

    def _apply(self, symbol: str, ex: Executions) -> None:
        raise NotImplementedError

    # -- market data ----------------------------------------------------------------------

    def on_depth(self, symbol: str, diff: dict) -> None:
        """A depth diff the venue applied to its book."""
        core = self.cores.get(symbol)
        if core is None:
            return
        # one message: its rows in a row (bids, then asks), fills only at its end (crossings)
        self._apply(symbol, core.on_book(
            self._ns(), [(float(p), float(q)) for p, q in diff.get("b", [])],
            [(float(p), float(q)) for p, q in diff.get("a", [])], snapshot=False))

    def on_trade(self, symbol: str, data: dict) -> None:
        """A market trade (``m``: the buyer was the maker, so the taker sold)."""
        core = self.cores.get(symbol)
        if core is None:
            return
        taker = SELL if data["m"] else BUY
        self._apply(symbol, core.on_trade(self._ns(), taker, float(data["p"]), float(data["q"])))

    def on_snapshot(self, symbol: str) -> None:
        """The venue's book was (re)loaded from a snapshot: the core takes it whole."""
        core = self.cores.get(symbol)
        if core is not None:
            self._seed(symbol, core)

    # -- cores ----------------------------------------------------------------------------

    def _ns(self) -> int:
        """Time on the matching core: when the current order action takes effect (``at_ns``,
        set by the venue's latency gate), else the venue clock."""
        return self.at_ns if self.at_ns is not None else self.clock_ms() * 1_000_000

    def _ms(self) -> int:
        return self._ns() // 1_000_000

    def _core(self, inst: Instrument) -> MatchingCore:
        core = self.cores.get(inst.symbol)
        if core is not None:
            return core
        book = self.books[inst.key]
        bid, ask = book.best()
        if not book.synced or bid is None or ask is None:
            raise wire.rejected("Market is closed.")
        mid = (bid + ask) / 2
        core = MatchingCore(instrument(float(inst.tick), float(inst.step)),
                            mid * (1 - PRICE_WINDOW), mid * (1 + PRICE_WINDOW),
                            self.queue_model, self.queue_n)
        self._seed(inst.symbol, core)
        self.cores[inst.symbol] = core
        return core

    def _seed(self, symbol: str, core: MatchingCore) -> None:
        book = self.books[(self.market, symbol)]
        bids = [(float(p), float(q)) for p, q in book.bids.items()]
        asks = [(float(p), float(q)) for p, q in book.asks.items()]
        self._apply(symbol, core.on_book(self._ns(), bids, asks))

    def _levels(self, inst: Instrument, side: str) -> list[tuple[Decimal, Decimal]]:
        """What a taker on ``side`` can take, best first: the matching core's book less what
        the venue's own orders already took from it (until the market's next update)."""
        c = self.cores[inst.symbol].core
        q, used = (c.ask_q, c.ask_c) if side == "BUY" else (c.bid_q, c.bid_c)
        avail = q - used
        idx = np.flatnonzero(avail > 0)
        if side == "SELL":
            idx = idx[::-1]
        base, tick, qd = int(c.iv[I_BASE]), Decimal(inst.tick), inst.qty_decimals()
        return [((base + int(i)) * tick, Decimal(f"{avail[i]:.{qd}f}")) for i in idx[:MAX_WALK]]

    def _walk_cost(self, inst: Instrument, qty: Decimal) -> Decimal:
        """Quote cost of buying (``qty`` > 0) from the asks or selling (``qty`` < 0) into the
        bids (of what they hold, if less: the rest of a market order expires unfilled)."""
        left, cost = abs(qty), Decimal(0)
        for p, q in self._levels(inst, "BUY" if qty > 0 else "SELL"):
            take = min(left, q)
            cost += take * p
            left -= take
            if left <= 0:
                break
        return cost
