"""The run summary on a hand-made run: every figure computed by hand below."""

from __future__ import annotations

import json

import pytest

from tradelab.live.summary import NS, RunRecorder, percentiles

T0 = 1_700_000_000 * NS


def test_percentiles_are_numpys_linear_interpolation_and_none_when_empty():
    # rank 0.95 * 3 = 2.85: 3 + 0.85 * (4 - 3)
    assert percentiles([1.0, 2.0, 3.0, 4.0], (50, 95)) == pytest.approx({"p50": 2.5, "p95": 3.85})
    assert percentiles([], (50,)) == {"p50": None}


def test_a_hand_made_run():
    r = RunRecorder(T0)
    r.market(T0, 99.0, 101.0)  # mid 100, spread 200 bps
    r.transition(T0, "flat", "quoting", "signal")
    r.trigger(T0)
    # buy at 98.9: 0.1 below the best bid 99 -> 0.1/99*1e4 = 10.10 bps
    r.entry(T0, "a", +1, 98.9, 99.0, 101.0)
    r.round_trip(T0, "place", 800.0)
    # sell at 101.2: 0.2 above the best ask 101 -> 19.80 bps
    r.entry(T0, "b", -1, 101.2, 99.0, 101.0)
    r.round_trip(T0, "place", 1200.0)
    r.fill(T0 + 250_000_000, "a", +1, 0.5, 98.9, partial=True)   # 250 ms after placing
    r.fill(T0 + 400_000_000, "a", +1, 0.5, 98.9, partial=False)  # 400 ms
    r.market(T0 + NS, 98.0, 98.6)         # mid 98.3 one second later
    r.market(T0 + 6 * NS, 98.5, 98.7)     # mid 98.6
    r.cancel(T0 + 61 * NS, "adverse")
    r.round_trip(T0 + 61 * NS, "cancel", 900.0)
    s = r.summary(T0 + 70 * NS, "timeout", requested_s=70)
    json.dumps(s)  # JSON-able
    assert s["exit_reason"] == "timeout" and s["actual_elapsed_s"] == 70.0
    assert s["counters"]["triggers"] == 1 and s["counters"]["entries"] == 2
    assert s["counters"]["fills"] == 2 and s["counters"]["partial_fills"] == 1
    assert s["counters"]["filled_qty_total"] == 1.0
    assert s["cancels_by_reason"] == {"adverse": 1}
    assert s["time_to_fill_ms"]["p50"] == pytest.approx(325.0)  # of 250 and 400
    assert s["distance_to_best_bps"]["p50"] == pytest.approx((0.1 / 99 + 0.2 / 101) / 2 * 1e4)
    # adverse 1 s after each buy at 98.9: mid at +1.25 s / +1.4 s is 98.3 -> (98.9-98.3)/98.9
    adverse_1s = 0.6 / 98.9 * 1e4
    assert s["adverse_bps_1s"]["p50"] == pytest.approx(adverse_1s)
    # 5 s later (+5.25, +5.4 s) the mid is still 98.3 (98.6 only from +6 s)
    assert s["adverse_bps_5s"]["p99"] == pytest.approx(adverse_1s)
    assert s["place_rtt_us"]["p50"] == 1000.0 and s["cancel_rtt_us"]["p50"] == 900.0
    m0, m1 = s["minute_buckets"]
    assert (m0["minute"], m0["entries"], m0["fills"], m0["cancels"]) == (0, 2, 2, 0)
    assert m0["avg_mid"] == pytest.approx((100 + 98.3 + 98.6) / 3)
    assert m0["avg_spread_bps"] == pytest.approx((200 + 0.6 / 98.3 * 1e4 + 0.2 / 98.6 * 1e4) / 3)
    assert (m1["minute"], m1["cancels"], m1["cancel_rtt_us"]["p50"]) == (1, 1, 900.0)
    assert s["state_transitions"][0]["to"] == "quoting"


def test_a_fill_too_late_to_see_its_adverse_move_is_left_out():
    r = RunRecorder(T0)
    r.market(T0, 99.0, 101.0)
    r.fill(T0, "x", -1, 1.0, 101.0, partial=False)
    s = r.summary(T0 + NS // 2, "sigint")
    assert s["adverse_bps_1s"] == {"p50": None, "p95": None, "p99": None}
