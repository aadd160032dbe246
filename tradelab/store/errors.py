"""Errors raised by the store. Messages name the offending thing and what to do about it."""


class StoreError(Exception):
    """A problem with the store itself: bad root, bad partition key, schema mismatch."""
