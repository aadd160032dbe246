"""The exception hierarchy: every error tradelab raises on purpose is a :class:`TradelabError`.

Messages name the offending thing and what to do about it. The command line prints any
``TradelabError`` as one line and exits 1; callers that care catch the narrower class.
"""

from __future__ import annotations


class TradelabError(Exception):
    """Base of every error tradelab raises on purpose."""


class StoreError(TradelabError):
    """A problem with the store or the data in it: bad root, partition key, schema mismatch,
    a query over data that is not there, a source that cannot deliver data."""


class ConfigError(TradelabError):
    """A configuration file or value that cannot be used: missing, not YAML, fails validation."""


class ImportFailed(StoreError):
    """An input file that cannot be imported at all (not a recording, wrong market,
    unreadable); nothing of it is stored."""


class AdapterError(TradelabError):
    """Input an exchange adapter cannot translate: unknown market, unsplittable symbol,
    a price or quantity an exchange filter refuses."""
