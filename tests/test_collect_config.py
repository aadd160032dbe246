"""Collector configuration: bad values are refused naming the key; --venue re-points feeds."""

from __future__ import annotations

import pytest

from tradelab.collect.config import load_config, parse_config
from tradelab.errors import ConfigError

GOOD = {"feeds": [{"exchange": "BINANCE", "symbols": ["BTC-USDT"], "channels": ["trades"]}]}


def test_the_shipped_config_is_valid():
    cfg = load_config("configs/collect.yaml")
    assert {f.exchange for f in cfg.feeds} == {"BINANCE", "BINANCE_FUTURES", "BYBIT", "OKX"}


@pytest.mark.parametrize("feed, message", [
    ({"exchange": "KRAKEN"}, "feeds.0.exchange: Value error, unknown exchange 'KRAKEN'"),
    ({"channels": ["orders"]}, "unknown channels ['orders']"),
    ({"symbols": ["BTC/USDT"]}, "symbols must be normalised like BTC-USDT"),
    ({"symbols": ["BTC-USDT-PERP"]}, "BINANCE is spot; perpetuals ['BTC-USDT-PERP']"),
    ({"channels": ["funding"]}, "channels ['funding'] need perpetual symbols"),
    ({"depth": 2}, "feeds.0.depth: Input should be greater than or equal to 5"),
    ({"endpoint": {"websocket": "ws://x", "rest": "http://x"}}, "must start with wss://"),
    ({"colour": "blue"}, "feeds.0.colour: Extra inputs are not permitted"),
])
def test_bad_feed_values_name_the_key(feed, message):
    raw = {"feeds": [{**GOOD["feeds"][0], **feed}]}
    with pytest.raises(ConfigError, match="invalid collector config") as exc:
        parse_config(raw, "my.yaml")
    assert message in str(exc.value) and "my.yaml" in str(exc.value)


def test_top_level_values_and_files(tmp_path):
    with pytest.raises(ConfigError, match="flush_interval_s: Input should be greater than 0"):
        parse_config({**GOOD, "flush_interval_s": 0})
    with pytest.raises(ConfigError, match="queue_size \\(100\\) must be at least twice batch_rows"):
        parse_config({**GOOD, "queue_size": 100, "batch_rows": 60})
    with pytest.raises(ConfigError, match="feeds: Field required"):
        parse_config({})
    bad = tmp_path / "c.yaml"
    bad.write_text("feeds: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
