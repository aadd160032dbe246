"""Binance (spot and USD-M futures): everything tradelab knows about Binance's wire format.

- :mod:`.schema`: markets, stream names and kinds, REST hosts.
- :mod:`.symbols`: raw (``BTCUSDT``), ccxt (``BTC/USDT:USDT``) and store (``BTC-USDT-PERP``)
  symbols, market and store-exchange names.
- :mod:`.recording`: the ``<recv ns> <json>`` recording format: open, sniff, parse, write a line.
- :mod:`.parse`: stream payloads to plain values (prices, sizes, times in ns).
- :mod:`.depth_sync`: the ``U``/``u``/``pu`` rules that chain depth diffs onto a snapshot.
- :mod:`.encode`: payload builders (depth, trade, aggTrade, bookTicker, markPrice, snapshots).
- :mod:`.filters`: exchange filters (tick size, step size, notional): round, validate, serve.
"""
