"""``python -m runners.paper``: trade a promoted strategy on paper against a live book.

Market data comes from the collector's cryptofeed feeds (the local venue with ``--venue local``);
fills come from the matching core behind the configured latency and queue model, exactly as in
the event backtester, never "fill on touch". See ``--help``.
"""

from __future__ import annotations

import sys

from tradelab.live.cli import main_paper

if __name__ == "__main__":
    sys.exit(main_paper())
