"""Accounting properties of the matching core over random event and order sequences.

For any sequence: every execution is positive and at most what the order had left; the sum of
signed fills equals the position and the fees sum to the core's fees; an execution equal to the
remainder completes the order (a FILLED report at once); a finished order never reports or
fills again; filled + leaves = quantity for each order.
"""

from __future__ import annotations

import pytest

hyp = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

from tradelab.matching import (  # noqa: E402
    BUY,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    RP_ACCEPTED,
    RP_AMENDED,
    RP_CANCELED,
    RP_EXPIRED,
    RP_FILLED,
    RP_MODIFIED,
    RP_REJECTED,
    RP_TRIGGERED,
    SELL,
    STOP_MARKET,
    MatchingCore,
    instrument,
)

TERMINAL = {RP_FILLED, RP_CANCELED, RP_EXPIRED, RP_REJECTED}

prices = st.integers(min_value=990, max_value=1010).map(lambda t: t / 10)
qtys = st.integers(min_value=1, max_value=3000).map(lambda k: k / 1000)

actions = st.one_of(
    st.tuples(st.just("depth"), st.sampled_from([BUY, SELL]), prices,
              st.one_of(st.just(0.0), qtys)),
    st.tuples(st.just("trade"), st.sampled_from([BUY, SELL]), prices, qtys),
    st.tuples(st.just("limit"), st.sampled_from([BUY, SELL]), prices, qtys,
              st.sampled_from([GTC, GTX, IOC, FOK]), st.booleans()),
    st.tuples(st.just("market"), st.sampled_from([BUY, SELL]), qtys, st.booleans()),
    st.tuples(st.just("stop"), st.sampled_from([BUY, SELL]), prices, qtys),
    st.tuples(st.just("cancel"), st.integers(min_value=1, max_value=30)),
    st.tuples(st.just("modify"), st.integers(min_value=1, max_value=30), prices, qtys),
)


@hyp.settings(max_examples=300, deadline=None)
@hyp.given(
    model=st.sampled_from(["risk_averse", "power", "power3", "log2"]),
    seq=st.lists(actions, min_size=1, max_size=60),
)
def test_accounting_invariants(model: str, seq: list) -> None:
    c = MatchingCore(instrument(0.1, 0.001, maker_fee=-0.0001, taker_fee=0.0004), 90, 110,
                     model, 2.0, max_orders=16)
    c.on_book(0, [(99.9, 5.0), (99.8, 2.0)], [(100.0, 4.0), (100.1, 1.0)])
    leaves: dict[int, float] = {}
    qty: dict[int, float] = {}
    filled: dict[int, float] = {}
    done: set[int] = set()
    pos = 0.0
    fees = 0.0
    next_id = 1
    pending_fill_report: set[int] = set()
    for ts, a in enumerate(seq, start=1):
        kind = a[0]
        if kind == "depth":
            ex = c.on_depth(ts, a[1], a[2], a[3])
        elif kind == "trade":
            ex = c.on_trade(ts, a[1], a[2], a[3])
        elif kind == "limit":
            ex = c.place(ts, next_id, a[1], a[3], px=a[2], kind=LIMIT, tif=a[4],
                         reduce_only=a[5])
            qty[next_id] = leaves[next_id] = a[3]
            next_id += 1
        elif kind == "market":
            ex = c.place(ts, next_id, a[1], a[2], kind=MARKET, reduce_only=a[3])
            qty[next_id] = leaves[next_id] = a[2]
            next_id += 1
        elif kind == "stop":
            ex = c.place(ts, next_id, a[1], a[3], kind=STOP_MARKET, trigger=a[2])
            qty[next_id] = leaves[next_id] = a[3]
            next_id += 1
        elif kind == "cancel":
            ex = c.cancel(ts, a[1])
        else:
            ex = c.modify(ts, a[1], a[2], a[3])
        merged = [("f", int(f["rec"]), f) for f in ex.fills]
        merged += [("r", int(r["rec"]), r) for r in ex.reports]
        merged.sort(key=lambda m: m[1])
        for tag, _, rec in merged:
            oid = int(rec["order_id"])
            if tag == "f":
                f = rec
                assert oid not in done, "a finished order filled again"
                assert 0 < f["qty"] <= leaves[oid] + 1e-9
                leaves[oid] = round(leaves[oid] - f["qty"], 9)
                filled[oid] = filled.get(oid, 0.0) + f["qty"]
                assert f["leaves"] == pytest.approx(leaves[oid], abs=1e-9)
                pos += f["side"] * f["qty"]
                fees += f["fee"]
                assert f["position"] == pytest.approx(pos, abs=1e-9)
                if leaves[oid] < 1e-9:
                    pending_fill_report.add(oid)
                continue
            k = int(rec["kind"])
            if k == RP_REJECTED and (oid not in qty or oid in done or kind == "modify"):
                continue  # cancel/modify of an unknown or finished id, or a refused modify
            assert oid not in done, f"finished order {oid} reported again ({k})"
            assert k in TERMINAL | {RP_ACCEPTED, RP_MODIFIED, RP_TRIGGERED, RP_AMENDED}
            if k in (RP_MODIFIED, RP_AMENDED):
                leaves[oid] = round(float(rec["leaves"]), 9)
                qty[oid] = filled.get(oid, 0.0) + leaves[oid]
            if k == RP_FILLED:
                assert leaves[oid] == pytest.approx(0.0, abs=1e-9)
                pending_fill_report.discard(oid)
            if k in TERMINAL:
                done.add(oid)
        # a fill equal to the remainder completes the order in the same call
        assert not pending_fill_report
        assert c.position == pytest.approx(pos, abs=1e-9)
        assert c.fees == pytest.approx(fees, abs=1e-9)
    for oid, q in qty.items():
        o = c.order(oid)
        if o is not None and o["id"] == oid and oid not in done:
            assert o["filled"] + o["leaves"] == pytest.approx(q, abs=1e-9)
