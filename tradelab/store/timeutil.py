"""Moved to :mod:`tradelab.core.timeutil` (kept importable for code written against this path)."""

from tradelab.core.timeutil import *  # noqa: F403
from tradelab.core.timeutil import __all__  # noqa: F401
