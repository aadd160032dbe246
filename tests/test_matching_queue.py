"""Queue-position models of the matching core on hand-built level sequences.

The worked case is the issue's (and hftbacktest's published queue semantics, see
shared/notes/peers-facts.md 2.1); the two other cases were computed by hand from the model
formulas (``p = f(back) / ...``; ``est = front - (1 - p) * chg + min(back - p * chg, 0)``;
``front = min(est, new)``) and are written out below.
"""

from __future__ import annotations

import pytest

from tradelab.matching import BUY, SELL, MatchingCore, instrument

LOT = 0.001
BID = 100.0
ASK = 100.1

# (model, n): the seven variants of the issue
MODELS = [
    ("risk_averse", 0.0),
    ("power", 2.0),
    ("power", 3.0),
    ("power2", 2.0),
    ("power3", 3.0),
    ("log", 0.0),
    ("log2", 0.0),
]


def _core(model: str, n: float, level: float) -> MatchingCore:
    c = MatchingCore(instrument(0.1, LOT), 90.0, 110.0, model, n)
    c.on_book(0, [(BID, level)], [(ASK, 50.0)])
    ex = c.place(1, 1, BUY, 10.0, px=BID)
    assert ex.reports["kind"].tolist() == [1]  # accepted, resting
    assert c.order(1)["front"] == level
    return c


def _depth(c: MatchingCore, ts: int, qty: float) -> None:
    assert len(c.on_depth(ts, BUY, BID, qty).fills) == 0


def _trade(c: MatchingCore, ts: int, qty: float) -> float:
    f = c.on_trade(ts, SELL, BID, qty).fills
    return float(f["qty"].sum())


WORKED = {  # quantity filled at the last trade (peers-facts 2.1)
    ("risk_averse", 0.0): 2.0,
    ("power", 2.0): 3.059,
    ("power", 3.0): 2.711,
    ("power2", 2.0): 4.438,
    ("power3", 3.0): 2.211,
    ("log", 0.0): 3.792,
    ("log2", 0.0): 2.615,
}
FRONT_AFTER_STEP3 = {
    ("risk_averse", 0.0): 6.0,
    ("power", 2.0): 4.9412,
    ("power", 3.0): 5.2895,
    ("power2", 2.0): 3.5625,
    ("power3", 3.0): 5.7891,
    ("log", 0.0): 4.2081,
    ("log2", 0.0): 5.3854,
}


@pytest.mark.parametrize("model,n", MODELS)
def test_worked_case(model: str, n: float) -> None:
    c = _core(model, n, 10.0)
    _depth(c, 2, 6.0)  # cancel at the tail: everyone at front 6
    assert c.order(1)["front"] == pytest.approx(6.0)
    _depth(c, 3, 16.0)  # others join behind
    _depth(c, 4, 12.0)  # cancel, split ahead/behind by the model
    assert c.order(1)["front"] == pytest.approx(FRONT_AFTER_STEP3[(model, n)], abs=1e-4)
    assert _trade(c, 5, 3.0) == 0.0
    _depth(c, 6, 9.0)  # fully explained by the trade: not counted twice
    got = _trade(c, 7, 5.0)
    assert got == pytest.approx(WORKED[(model, n)], abs=1e-9)
    assert c.position == pytest.approx(got)


CASE_A = {  # level 5 (front 5); 5 -> 8 (join); 8 -> 4 (cancel); trade 5
    ("risk_averse", 0.0): 1.0,  # front min(5, 4) = 4
    ("power", 2.0): 2.941,  # p = 9/34, est = 5 - (25/34)*4 + min(3 - 36/34, 0) = 2.0588
    ("power", 3.0): 3.289,  # p = 27/152, front 1.7105
    ("power2", 2.0): 3.438,  # p = 9/64, front 1.5625
    ("power3", 3.0): 1.0,  # p = 1 - (5/8)^3, est 4.0 capped at the level (4)
    ("log", 0.0): 2.255,  # front 2.7448
    ("log2", 0.0): 1.476,  # front 3.5237
}
CASE_B = {  # level 20; 20 -> 25 (join); trade 5; 25 -> 14 (6 unexplained); trade 15
    ("risk_averse", 0.0): 1.0,  # front 15, then min(15, 14) = 14
    ("power", 2.0): 4.154,  # back 10, front 15: p = 100/325, front 10.8462
    ("power", 3.0): 4.629,  # front 10.3714
    ("power2", 2.0): 5.04,  # p = 100/625, front 9.96
    ("power3", 3.0): 1.296,  # p = 1 - 0.6^3, front 13.704
    ("log", 0.0): 3.217,  # front 11.7826
    ("log2", 0.0): 1.584,  # front 13.4159
}


@pytest.mark.parametrize("model,n", MODELS)
def test_case_cancel_after_joiners(model: str, n: float) -> None:
    c = _core(model, n, 5.0)
    _depth(c, 2, 8.0)
    _depth(c, 3, 4.0)
    assert _trade(c, 4, 5.0) == pytest.approx(CASE_A[(model, n)], abs=1e-9)


@pytest.mark.parametrize("model,n", MODELS)
def test_case_trade_then_mixed_decrease(model: str, n: float) -> None:
    c = _core(model, n, 20.0)
    _depth(c, 2, 25.0)
    assert _trade(c, 3, 5.0) == 0.0
    _depth(c, 4, 14.0)
    assert _trade(c, 5, 15.0) == pytest.approx(CASE_B[(model, n)], abs=1e-9)


def test_unknown_queue_model_is_named() -> None:
    with pytest.raises(ValueError, match="unknown queue model 'power9'"):
        MatchingCore(instrument(0.1, LOT), 90.0, 110.0, "power9")
