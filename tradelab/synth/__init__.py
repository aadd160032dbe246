"""A seeded synthetic crypto market for demos, tests and scale benchmarks.

:func:`generate_market` turns a :class:`SynthConfig` into a :class:`SynthMarket` (trades, 1m/5m
bars aggregated from those trades, funding and mark-price klines for perps); :mod:`.export` writes
it as freqtrade feather files, as a raw Binance websocket recording, or straight into the store.
The model is described in :mod:`tradelab.synth.market`; the kernels live in :mod:`.nb`.

:class:`ZIMarket` (:mod:`.zi`) is a zero-intelligence L2 order book that emits Binance spot or
USD-M websocket messages and REST depth snapshots, for a local exchange and for recordings
(:func:`write_zi_recording`).
"""

from tradelab.synth.export import write_binance_ws, write_freqtrade, write_store
from tradelab.synth.market import (
    PERP_EXCHANGE,
    SPOT_EXCHANGE,
    SynthConfig,
    SynthMarket,
    bars_from_trades,
    generate_market,
    perp_symbol,
)
from tradelab.synth.zi import ZIConfig, ZIMarket, write_zi_recording

__all__ = [
    "PERP_EXCHANGE",
    "SPOT_EXCHANGE",
    "SynthConfig",
    "SynthMarket",
    "ZIConfig",
    "ZIMarket",
    "bars_from_trades",
    "generate_market",
    "perp_symbol",
    "write_binance_ws",
    "write_freqtrade",
    "write_store",
    "write_zi_recording",
]
