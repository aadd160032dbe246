"""tradelab: a research-first crypto trading platform."""

__version__ = "0.1.0"
