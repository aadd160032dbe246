"""A seeded synthetic crypto market for demos, tests and scale benchmarks.

:func:`generate_market` turns a :class:`SynthConfig` into a :class:`SynthMarket` (trades, 1m/5m
bars aggregated from those trades, funding and mark-price klines for perps); :mod:`.export` writes
it as freqtrade feather files, as a raw Binance websocket recording, or straight into the store.
The model is described in :mod:`tradelab.synth.market`; the kernels live in :mod:`.nb`.
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

__all__ = [
    "PERP_EXCHANGE",
    "SPOT_EXCHANGE",
    "SynthConfig",
    "SynthMarket",
    "bars_from_trades",
    "generate_market",
    "perp_symbol",
    "write_binance_ws",
    "write_freqtrade",
    "write_store",
]
