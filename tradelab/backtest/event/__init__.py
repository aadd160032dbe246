"""Event-driven L2 backtester: a two-clock replay of stored events over the matching core.

- :mod:`.sim_nb`: the numba replay state and loop (exchange and local sides, latency queues);
- :mod:`.replay`: the Python driver over chunks of ``Catalog.iter_events`` (bounded memory);
- :mod:`.loops_nb`: strategy loops (quoting) on top of the replay.
"""
