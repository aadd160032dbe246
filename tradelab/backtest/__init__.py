"""Backtesters: vectorized sweeps (``vector``) and, later, the event-driven L2 engine."""
