"""``python -m runners.testnet``: trade a promoted strategy on Binance's testnet through ccxt
(or on the local venue with ``--venue local``), with reconciliation, the journal and risk.
See ``--help``."""

from __future__ import annotations

import sys

from tradelab.live.cli import main_testnet

if __name__ == "__main__":
    sys.exit(main_testnet())
