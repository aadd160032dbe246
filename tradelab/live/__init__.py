"""Live runners' core: order manager, risk, journal, brokers, reconciliation and metrics.

``live`` reaches a venue only over the network, through the clients a real exchange needs
(cryptofeed, ccxt); it never imports :mod:`tradelab.venue`.
"""
