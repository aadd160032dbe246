"""The ground floor every layer shares: the event record and its flags, time parsing.

Nothing here imports another tradelab package, so ``store``, ``features``, ``matching`` and the
backtesters can all build on it.
"""
