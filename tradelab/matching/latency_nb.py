"""Order latency models: how long an order action takes to reach the exchange and to come back.

A model is an integer code plus an int64 parameter vector ``params`` (nanoseconds) and a
recorded ``table`` (int64, shape ``(k, 3)``: request, exchange, response times; empty unless
``LAT_TABLE``):

- ``LAT_CONSTANT``: ``params[0]`` entry, ``params[3]`` response, for every action;
- ``LAT_PER_ACTION``: ``params[A_PLACE | A_CANCEL | A_MODIFY]`` entry and ``params[3 + action]``
  response;
- ``LAT_TABLE``: measured rows. Entry latency at request time ``t`` is ``exch - req`` linearly
  interpolated over ``req``; response latency at exchange time ``t`` is ``resp - exch``
  interpolated over ``exch``; outside the table the end row's latency holds. A row with
  ``exch <= 0`` records a rejection: a latency bracketed by such a row is returned negative (the
  interpolated round trip), as in hftbacktest's ``IntpOrderLatency``.

A **negative entry latency** means the exchange rejected the order; its absolute value is the
time until the rejection reaches us.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LAT_CONSTANT = 0
LAT_PER_ACTION = 1
LAT_TABLE = 2


def constant(entry_ns: int, response_ns: int) -> tuple[int, np.ndarray, np.ndarray]:
    """A constant latency model ``(code, params, table)``."""
    return LAT_CONSTANT, _params(entry_ns, entry_ns, entry_ns, response_ns, response_ns,
                                 response_ns), _no_table()


def per_action(
    place: tuple[int, int], cancel: tuple[int, int], modify: tuple[int, int]
) -> tuple[int, np.ndarray, np.ndarray]:
    """Per action ``(entry_ns, response_ns)`` for place, cancel and modify."""
    return LAT_PER_ACTION, _params(place[0], cancel[0], modify[0], place[1], cancel[1],
                                   modify[1]), _no_table()


def recorded(table: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """A recorded table of ``(req_ts, exch_ts, resp_ts)`` rows, sorted by request time."""
    t = np.ascontiguousarray(np.asarray(table, dtype=np.int64))
    if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] < 1:
        raise ValueError(f"latency table must have shape (k>=1, 3), got {t.shape}")
    if np.any(np.diff(t[:, 0]) < 0):
        raise ValueError("latency table: request times must be sorted")
    return LAT_TABLE, _params(0, 0, 0, 0, 0, 0), t


def _params(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def _no_table() -> np.ndarray:
    return np.zeros((0, 3), dtype=np.int64)


@njit(cache=True, error_model="numpy", _nrt=False)
def _interp(x: int, x1: int, y1: int, x2: int, y2: int) -> int:
    if x2 == x1:
        return y1
    return int((y2 - y1) / (x2 - x1) * (x - x1)) + y1


@njit(cache=True, error_model="numpy", _nrt=False)
def _table_latency(table: np.ndarray, t: int, entry: bool) -> int:
    k = table.shape[0]
    xcol = 0 if entry else 1
    # rows bracketing t on the x column (request time for entry, exchange time for response)
    if k == 1 or t <= table[0, xcol]:
        lo = 0
        hi = 0
    elif t >= table[k - 1, xcol]:
        lo = k - 1
        hi = k - 1
    else:
        a = 0
        b = k - 1
        while b - a > 1:
            m = (a + b) // 2
            if table[m, xcol] <= t:
                a = m
            else:
                b = m
        lo = a
        hi = b
    if table[lo, 1] <= 0 or table[hi, 1] <= 0:
        rt = _interp(t, table[lo, 0], table[lo, 2] - table[lo, 0], table[hi, 0],
                     table[hi, 2] - table[hi, 0])
        return -abs(rt)
    if entry:
        return _interp(t, table[lo, 0], table[lo, 1] - table[lo, 0], table[hi, 0],
                       table[hi, 1] - table[hi, 0])
    return _interp(t, table[lo, 1], table[lo, 2] - table[lo, 1], table[hi, 1],
                   table[hi, 2] - table[hi, 1])


@njit(cache=True, error_model="numpy", _nrt=False)
def entry_latency_nb(code: int, params: np.ndarray, table: np.ndarray, t: int, action: int) -> int:
    """Latency (ns) from the request at local time ``t`` to its arrival at the exchange;
    negative means the exchange rejects it."""
    if code == LAT_CONSTANT:
        return params[0]
    if code == LAT_PER_ACTION:
        return params[action]
    return _table_latency(table, t, True)


@njit(cache=True, error_model="numpy", _nrt=False)
def response_latency_nb(
    code: int, params: np.ndarray, table: np.ndarray, t: int, action: int
) -> int:
    """Latency (ns) from the exchange's response at exchange time ``t`` back to us."""
    if code == LAT_CONSTANT:
        return params[3]
    if code == LAT_PER_ACTION:
        return params[3 + action]
    return abs(_table_latency(table, t, False))
