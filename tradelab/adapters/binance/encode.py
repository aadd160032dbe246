"""Binance payloads built from plain values: what the synthetic markets and the venue send.

Field sets, field order and string formats follow real recordings (spot and USD-M differ: USD-M
depth diffs carry ``T`` and ``pu``, USD-M trades ``X`` instead of ``M``, a USD-M bookTicker has
``e``, ``T`` and ``E``). Prices and quantities are passed already formatted as Binance strings.
The ``*_lines`` functions build whole recording lines for many messages at once (Arrow string
kernels), for writers of long recordings.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def envelope(stream: str, data: dict) -> dict:
    """The combined-stream envelope ``{"stream": ..., "data": ...}``."""
    return {"stream": stream, "data": data}


def depth_update(
    spot: bool, e_ms: int, t_ms: int, symbol: str, first: int, last: int, prev: int,
    bids: list, asks: list,
) -> dict:
    """A ``depthUpdate``: ``U=first``, ``u=last``; USD-M adds ``T=t_ms`` and ``pu=prev``."""
    if spot:
        return {"e": "depthUpdate", "E": e_ms, "s": symbol, "U": first, "u": last, "b": bids,
                "a": asks}
    return {"e": "depthUpdate", "E": e_ms, "T": t_ms, "s": symbol, "U": first, "u": last,
            "pu": prev, "b": bids, "a": asks}


def trade(
    spot: bool, t_ms: int, symbol: str, trade_id: int, price: str, qty: str, buyer_maker: bool
) -> dict:
    """A ``trade`` (``m`` true when the buyer is the maker, i.e. the taker sold)."""
    if spot:
        return {"e": "trade", "E": t_ms, "s": symbol, "t": trade_id, "p": price, "q": qty,
                "T": t_ms, "m": buyer_maker, "M": True}
    return {"e": "trade", "E": t_ms, "T": t_ms, "s": symbol, "t": trade_id, "p": price,
            "q": qty, "X": "MARKET", "m": buyer_maker}


def agg_trade(
    spot: bool, e_ms: int, symbol: str, agg_id: int, price: str, qty: str, first_id: int,
    last_id: int, t_ms: int, buyer_maker: bool,
) -> dict:
    """An ``aggTrade`` covering trades ``first_id..last_id``."""
    d = {"e": "aggTrade", "E": e_ms, "s": symbol, "a": agg_id, "p": price, "q": qty,
         "f": first_id, "l": last_id, "T": t_ms, "m": buyer_maker}
    if spot:
        d["M"] = True
    return d


def agg_trade_of_trade(spot: bool, d: dict) -> dict:
    """The ``aggTrade`` of a single ``trade`` payload (one trade per aggregate)."""
    return agg_trade(spot, d.get("E", d["T"]), d["s"], d["t"], d["p"], d["q"], d["t"], d["t"],
                     d["T"], d["m"])


def agg_trade_row(spot: bool, agg_id: int, price: str, qty: str, first_id: int, last_id: int,
                  t_ms: int, buyer_maker: bool) -> dict:
    """One row of the REST ``aggTrades`` answer."""
    row = {"a": agg_id, "p": price, "q": qty, "f": first_id, "l": last_id, "T": t_ms,
           "m": buyer_maker}
    if spot:
        row["M"] = True
    return row


def book_ticker(
    spot: bool, update_id: int, symbol: str, bid: str, bid_qty: str, ask: str, ask_qty: str,
    t_ms: int,
) -> dict:
    """A ``bookTicker`` (spot has no event type or times)."""
    if spot:
        return {"u": update_id, "s": symbol, "b": bid, "B": bid_qty, "a": ask, "A": ask_qty}
    return {"e": "bookTicker", "u": update_id, "s": symbol, "b": bid, "B": bid_qty, "a": ask,
            "A": ask_qty, "T": t_ms, "E": t_ms}


def mark_price_update(e_ms: int, symbol: str, mark: float, index: float, rate: float,
                      next_funding_ms: int) -> dict:
    """A USD-M ``markPriceUpdate`` (8-decimal strings; ``P``, the settle estimate, is the mark)."""
    return {"e": "markPriceUpdate", "E": e_ms, "s": symbol, "p": f"{mark:.8f}",
            "i": f"{index:.8f}", "P": f"{mark:.8f}", "r": f"{rate:.8f}", "T": next_funding_ms}


def depth_snapshot(last_update_id: int | None, bids: list, asks: list,
                   times: dict | None = None) -> dict:
    """A REST depth body; ``times`` (USD-M: ``{"E": ..., "T": ...}``) goes before the levels."""
    body: dict = {"lastUpdateId": last_update_id}
    if times:
        body.update(times)
    body["bids"] = bids
    body["asks"] = asks
    return body


# -- many lines at once (Arrow) ------------------------------------------------------------------


def decimal8(units: np.ndarray, per_unit: int) -> pa.Array:
    """Strings with 8 decimals (Binance's form, ``"60000.01000000"``) of ``units / per_unit``."""
    if 10**8 % per_unit:
        raise ValueError(f"a step of 1/{per_unit} cannot be written with 8 decimals")
    units = np.asarray(units, dtype=np.int64)
    whole = pc.cast(pa.array(units // per_unit), pa.string())
    frac = pc.utf8_lpad(
        pc.cast(pa.array((units % per_unit) * (10**8 // per_unit)), pa.string()),
        width=8,
        padding="0",
    )
    return pc.binary_join_element_wise(whole, frac, ".")


def _i(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(
        *[pa.scalar(p) if isinstance(p, str) else p for p in parts], ""
    )


def spot_trade_lines(
    stream: str, symbol: str, recv: np.ndarray, e_ms: np.ndarray, trade_id: np.ndarray,
    price_units: np.ndarray, qty_units: np.ndarray, t_ms: np.ndarray, buyer_maker: np.ndarray,
    price_per_unit: int, qty_per_unit: int,
) -> pa.Array:
    """Recording lines of spot ``trade`` messages on stream ``<stream>@trade`` (prices and
    quantities as integer units of ``1/price_per_unit`` and ``1/qty_per_unit``)."""
    return _join(
        _i(recv),
        f' {{"stream":"{stream}@trade","data":{{"e":"trade","E":',
        _i(e_ms),
        f',"s":"{symbol}","t":',
        _i(trade_id),
        ',"p":"',
        decimal8(price_units, price_per_unit),
        '","q":"',
        decimal8(qty_units, qty_per_unit),
        '","T":',
        _i(t_ms),
        ',"m":',
        pc.if_else(pa.array(buyer_maker), "true", "false"),
        ',"M":true}}\n',
    )


def spot_book_ticker_lines(
    stream: str, symbol: str, recv: np.ndarray, update_id: np.ndarray, bid: np.ndarray,
    bid_qty: np.ndarray, ask: np.ndarray, ask_qty: np.ndarray, price_per_unit: int,
    qty_per_unit: int,
) -> pa.Array:
    """Recording lines of spot ``bookTicker`` messages on stream ``<stream>@bookTicker``."""
    return _join(
        _i(recv),
        f' {{"stream":"{stream}@bookTicker","data":{{"u":',
        _i(update_id),
        f',"s":"{symbol}","b":"',
        decimal8(bid, price_per_unit),
        '","B":"',
        decimal8(bid_qty, qty_per_unit),
        '","a":"',
        decimal8(ask, price_per_unit),
        '","A":"',
        decimal8(ask_qty, qty_per_unit),
        '"}}\n',
    )
