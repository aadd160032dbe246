"""Moved to :mod:`tradelab.core.events` (kept importable for code written against this path)."""

from tradelab.core.events import *  # noqa: F403
from tradelab.core.events import __all__  # noqa: F401
