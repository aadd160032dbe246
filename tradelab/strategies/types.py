"""Constants and record types of the strategies, in a form numba reads directly.

Enums are NamedTuple instances (numba treats a global one as a tuple of constants, so a kernel
writes ``IntentKind.CANCEL``); records are aligned numpy dtypes named ``*_dt``.

- ``Target``: a bar strategy's target position per bar, int8 in {-1, 0, +1}.
- ``IntentKind``: what a book strategy asks for. ``ENTER_LONG``/``ENTER_SHORT`` open a position
  in that direction, ``CANCEL`` withdraws the entry (its resting order; what to do with a partial
  fill is the order manager's business), ``EXIT`` closes the position. ``NONE`` is "nothing".
- ``Phase``: the re-arming state machine of ``imbalance_microprice``.
- ``intent_dt``: one order intent: ``ts`` (exchange time of the update that caused it, ns),
  ``idx`` (row of the input it answers), ``px`` (price reference: best bid for a long entry, best
  ask for a short entry, mid for CANCEL and EXIT; how to execute is not the strategy's
  business), ``set`` (parameter set of a grid run, 0 otherwise), ``kind`` (an ``IntentKind``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TargetT(NamedTuple):
    SHORT: int
    FLAT: int
    LONG: int


Target = TargetT(-1, 0, 1)


class IntentKindT(NamedTuple):
    NONE: int
    ENTER_LONG: int
    ENTER_SHORT: int
    CANCEL: int
    EXIT: int


IntentKind = IntentKindT(0, 1, 2, 3, 4)
INTENT_NAMES = {v: k for k, v in IntentKind._asdict().items()}


class PhaseT(NamedTuple):
    ARMED: int
    IN_TRADE: int
    WAIT_REARM: int


Phase = PhaseT(0, 1, 2)

intent_dt = np.dtype(
    [
        ("ts", np.int64),
        ("idx", np.int64),
        ("px", np.float64),
        ("set", np.int32),
        ("kind", np.int8),
    ],
    align=True,
)

BAR = "bar"
"""A strategy that reads bars and returns a target position per bar."""
BOOK = "book"
"""A strategy that reads book updates (a book frame) and returns order intents."""
QUOTE = "quote"
"""A strategy that reads the top of book and its position and returns a bid and an ask price."""
