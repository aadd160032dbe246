"""Constants and record dtypes of the matching core (numba reads the integers as constants).

Prices inside the core are integer ticks (``round(price / tick)``); quantities are float64 in
base units and always multiples of the instrument's lot (step) size.

Records (aligned, numba-readable):

- ``instrument_dt``: one instrument's trading rules and fees (a plain record so it can be filled
  from any exchange-filters object: tick, lot, min qty, min notional, maker/taker fee rates).
- ``order_dt``: one of our orders as the exchange holds it, with its queue state.
- ``fill_dt``: one execution (its own last quantity and last price), maker or taker, with fee.
- ``report_dt``: one order status change (accepted, cancelled, expired, rejected, triggered ...).
"""

from __future__ import annotations

import numpy as np

# sides
BUY = 1
SELL = -1

# order kinds
LIMIT = 0
MARKET = 1
STOP_MARKET = 2  # stop-loss: triggers when the last trade reaches the stop against the position
TAKE_PROFIT_MARKET = 3  # take-profit: triggers when the last trade reaches the target
TRAILING_STOP_MARKET = 4  # stop that follows the best trade price by ``trail`` (a fraction)

# time in force
GTC = 0
GTX = 1  # post-only: rejected if it would take
IOC = 2
FOK = 3

# order flags
F_REDUCE_ONLY = 1
F_AT_PRICE = 2
"""Agreement checks only (never a venue's order): a market order that fills whole, as taker, at
the price given in ``px_t``, whatever the book holds (even none). The event backtester uses it to
fill a bar strategy at the bar price a vectorized sweep uses (``fill: bar_price``)."""

# statuses (a finished order has status >= FILLED and is never touched again)
ST_FREE = 0  # empty slot
ST_NEW = 1  # resting (limit) or waiting for its trigger (contingent)
ST_PARTIAL = 2
ST_FILLED = 3
ST_CANCELED = 4
ST_EXPIRED = 5
ST_REJECTED = 6

# report kinds beyond a status change
RP_ACCEPTED = 1
RP_PARTIAL = 2
RP_FILLED = 3
RP_CANCELED = 4
RP_EXPIRED = 5
RP_REJECTED = 6
RP_TRIGGERED = 7
RP_MODIFIED = 8
RP_AMENDED = 9  # quantity reduced by the exchange (a bracket stop after a take-profit tier)

# reasons
R_NONE = 0
R_POST_ONLY = 1  # post-only order would have taken
R_FOK_DEPTH = 2  # not enough visible depth within the limit for a fill-or-kill
R_IOC_REST = 3  # remainder of an IOC / market order
R_OFF_TICK = 4
R_OFF_LOT = 5
R_MIN_QTY = 6
R_MIN_NOTIONAL = 7
R_REDUCE_ONLY = 8  # reduce-only would increase (or open) the position
R_UNKNOWN_ORDER = 9  # cancel/modify of an unknown or finished order
R_NO_LIQUIDITY = 10  # taking order met an empty book
R_FULL = 11  # no free order slot
R_OCO = 12  # cancelled because a linked order of its bracket fired
R_GAP = 13  # cancelled by the engine: the feed has a gap, the book is stale
R_LATENCY = 14  # rejected by the latency model (negative entry latency)
R_BAD_QTY = 15
R_OUT_OF_RANGE = 16  # price outside the core's tick window

REASONS = {
    R_NONE: "",
    R_POST_ONLY: "post-only order would take liquidity",
    R_FOK_DEPTH: "fill-or-kill: not enough depth within the limit price",
    R_IOC_REST: "remainder of an immediate order expired",
    R_OFF_TICK: "price is not a multiple of the tick size",
    R_OFF_LOT: "quantity is not a multiple of the lot size",
    R_MIN_QTY: "quantity below the minimum quantity",
    R_MIN_NOTIONAL: "notional below the minimum notional",
    R_REDUCE_ONLY: "reduce-only order would not reduce the position",
    R_UNKNOWN_ORDER: "unknown or finished order",
    R_NO_LIQUIDITY: "no liquidity on the other side",
    R_FULL: "too many open orders",
    R_OCO: "cancelled: a linked order of the bracket fired",
    R_GAP: "market data gap or no snapshot yet: the book is not valid",
    R_LATENCY: "rejected by the exchange (latency model)",
    R_BAD_QTY: "quantity must be positive",
    R_OUT_OF_RANGE: "price outside the matching core's tick window",
}

# queue models
Q_RISK_AVERSE = 0
Q_POWER = 1  # p = back^n / (back^n + front^n)
Q_POWER2 = 2  # p = back^n / (back + front)^n
Q_POWER3 = 3  # p = 1 - (front / (front + back))^n
Q_LOG = 4  # p = ln(1+back) / (ln(1+back) + ln(1+front))
Q_LOG2 = 5  # p = ln(1+back) / ln(1+back+front)

QUEUE_MODELS = {
    "risk_averse": Q_RISK_AVERSE,
    "power": Q_POWER,
    "power2": Q_POWER2,
    "power3": Q_POWER3,
    "log": Q_LOG,
    "log2": Q_LOG2,
}

# order actions (for per-action latency)
A_PLACE = 0
A_CANCEL = 1
A_MODIFY = 2

instrument_dt = np.dtype(
    [
        ("tick", np.float64),
        ("lot", np.float64),
        ("min_qty", np.float64),
        ("min_notional", np.float64),
        ("maker_fee", np.float64),  # rate on notional; negative = rebate
        ("taker_fee", np.float64),
        ("contract_size", np.float64),  # linear contracts: notional = size * px * qty
    ],
    align=True,
)

order_dt = np.dtype(
    [
        ("id", np.int64),
        ("status", np.int64),
        ("side", np.int64),  # BUY / SELL
        ("kind", np.int64),
        ("tif", np.int64),
        ("flags", np.int64),
        ("px", np.int64),  # limit price in ticks (0 for market-type orders)
        ("trigger", np.int64),  # trigger price in ticks (contingent orders)
        ("qty", np.float64),  # original quantity
        ("leaves", np.float64),
        ("filled", np.float64),
        ("front", np.float64),  # queue quantity ahead of us at our level
        ("cum_trade", np.float64),  # trade quantity at our level since the last depth update
        ("trail", np.float64),  # trailing distance as a fraction of price
        ("oco", np.int64),  # bracket id linking stop / take-profit orders (0 = none)
        ("accept_ts", np.int64),  # exchange time the order was accepted (or re-queued)
        ("seq", np.int64),  # arrival sequence at the exchange (time priority)
    ],
    align=True,
)

fill_dt = np.dtype(
    [
        ("ts", np.int64),  # exchange time of the execution
        ("order_id", np.int64),
        ("side", np.int64),
        ("px", np.float64),  # last price
        ("qty", np.float64),  # last quantity
        ("leaves", np.float64),  # order quantity left after this execution
        ("fee", np.float64),  # positive = paid, negative = rebate received
        ("maker", np.int64),  # 1 maker, 0 taker
        ("queue_wait", np.int64),  # ns from acceptance (or re-queue) to this execution
        ("position", np.float64),  # position after this execution
        ("rec", np.int64),  # sequence number among this core's fills and reports (their order)
    ],
    align=True,
)

report_dt = np.dtype(
    [
        ("ts", np.int64),
        ("order_id", np.int64),
        ("kind", np.int64),  # RP_*
        ("status", np.int64),  # ST_* after the change
        ("reason", np.int64),  # R_*
        ("leaves", np.float64),
        ("px", np.float64),
        ("rec", np.int64),  # sequence number among this core's fills and reports (their order)
    ],
    align=True,
)

# slots of the int64 state vector
I_BASE = 0  # tick of array index 0
I_N = 1  # number of tick slots per side
I_BEST_BID = 2  # array index of the best bid (-1 = none)
I_BEST_ASK = 3  # array index of the best ask (n = none)
I_IN_SNAPSHOT = 4  # inside a snapshot message
I_AT_MSG_START = 5  # next depth row starts a new message
I_N_FILLS = 6
I_N_REPORTS = 7
I_SEQ = 8  # arrival counter
I_QUEUE_MODEL = 9
I_DROPPED = 10  # depth rows outside the tick window
I_LAST_TRADE = 11  # last trade price in ticks (0 = none yet)
I_VALID = 12  # book valid (a snapshot was applied and no gap since)
I_REC = 13  # next record sequence number
I_HI = 14  # order slots in use are below this (loops stop here)
I_SIZE = 16

# slots of the float64 state vector
D_POSITION = 0
D_CASH = 1  # quote balance change from executions, fees included
D_FEES = 2  # fees paid (negative = rebates)
D_QUEUE_N = 3  # exponent of the power queue models
D_VOLUME = 4  # traded quantity
D_SIZE = 8
