"""Exchange adapters: each venue's wire format, in one package per venue.

``tradelab.adapters.<venue>`` holds what is specific to that venue: its message schema and
parsing, its recording format, its book-sequence rules, its symbol and market names, its message
encoders and its exchange filters. Everything outside speaks tradelab's own types (store symbols
such as ``BTC-USDT-PERP``, int64 UTC nanoseconds, the store's tables).
"""
