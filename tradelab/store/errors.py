"""The store's error class; it lives in :mod:`tradelab.errors` with the rest of the hierarchy."""

from tradelab.errors import StoreError

__all__ = ["StoreError"]
