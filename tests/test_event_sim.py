"""The two-clock replay: latency ordering, FIFO order queues, funding, gaps, on hand-built events.

Times are small integers (ns). Book: bid 100.0 x 10, ask 100.1 x 10 (tick 0.1, lot 0.001).
"""

from __future__ import annotations

import numpy as np
import pytest

from tradelab.backtest.event.funding import load_funding, settlement_times
from tradelab.backtest.event.replay import Funding, Latency, Replay
from tradelab.core.events import (
    EV_ASK,
    EV_BID,
    EV_DEPTH,
    EV_GAP,
    EV_LAST,
    EV_SELL,
    EV_SNAPSHOT,
    EV_TRADE,
    event_dt,
)
from tradelab.errors import StoreError
from tradelab.matching import (
    BUY,
    GTC,
    LIMIT,
    MARKET,
    R_GAP,
    R_LATENCY,
    RP_ACCEPTED,
    RP_CANCELED,
    RP_REJECTED,
    SELL,
    instrument,
)
from tradelab.matching import latency_nb as L
from tradelab.matching import sim_nb as sn

TICKS_100 = 1000  # 100.0 in ticks of 0.1


def events(rows: list[tuple[int, int, int, float, float]]) -> np.ndarray:
    """Rows of (ev, exch_ts, local_ts, px, qty)."""
    out = np.zeros(len(rows), dtype=event_dt)
    for i, (e, t, lt, px, q) in enumerate(rows):
        out[i] = (e, t, lt, px, q, -1)
    return out


def snapshot(t: int, lt: int | None = None) -> list[tuple[int, int, int, float, float]]:
    lt = t if lt is None else lt
    return [
        (EV_DEPTH | EV_BID | EV_SNAPSHOT, t, lt, 100.0, 10.0),
        (EV_DEPTH | EV_ASK | EV_SNAPSHOT | EV_LAST, t, lt, 100.1, 10.0),
    ]


def replay(rows, latency: Latency, funding: Funding | None = None) -> Replay:
    return Replay([events(rows)], instrument(0.1, 0.001), latency, funding=funding,
                  feed_offset=0, window_pct=0.5)


def run_until(rp: Replay, until: int) -> int:
    rp.sim.sv[sn.S_FINAL] = 1
    return sn.elapse_nb(rp.sim, rp.ev, until)


def log(rp: Replay) -> np.ndarray:
    return rp.sim.log[: rp.sim.sv[sn.S_LOG_N]]


def test_order_arriving_at_t_does_not_see_a_trade_stamped_t() -> None:
    rows = snapshot(0) + [
        (EV_TRADE | EV_SELL | EV_LAST, 1500, 1500, 99.9, 1.0),  # through our bid, at arrival
        (EV_TRADE | EV_SELL | EV_LAST, 1600, 1600, 99.9, 1.0),  # the next one fills us
    ]
    rp = replay(rows, Latency(*L.constant(500, 300)))
    run_until(rp, 1000)
    sn.submit_place_nb(rp.sim, 1, BUY, LIMIT, GTC, 0, TICKS_100, 0, 1.0, 0.0, 0)
    assert run_until(rp, 10_000) == sn.EL_END
    lg = log(rp)
    acc = lg[(lg["what"] == sn.M_REPORT) & (lg["kind"] == RP_ACCEPTED)]
    fills = lg[lg["what"] == sn.M_FILL]
    assert acc["exch_ts"].tolist() == [1500] and acc["ts"].tolist() == [1800]
    assert fills["exch_ts"].tolist() == [1600]  # not the trade at 1500
    assert fills["ts"].tolist() == [1900]  # + response latency
    assert rp.sim.fv[sn.F_POS] == pytest.approx(1.0)


def test_local_side_sees_data_at_local_time() -> None:
    # exchange time 100, received locally at 400: the strategy sees the book only from 400
    rows = snapshot(100, 400)
    rp = replay(rows, Latency(*L.constant(0, 0)))
    assert run_until(rp, 399) == sn.EL_UNTIL
    assert rp.sim.sv[sn.S_IE] == 2 and rp.sim.sv[sn.S_IL] == 0
    assert rp.sim.sv[sn.S_GAP] == 1  # no valid local book yet
    run_until(rp, 400)
    assert rp.sim.sv[sn.S_IL] == 2 and rp.sim.sv[sn.S_GAP] == 0


def test_requests_are_fifo_a_faster_cancel_never_overtakes() -> None:
    rows = snapshot(0) + [(EV_DEPTH | EV_BID | EV_LAST, 5000, 5000, 99.0, 1.0)]
    # place takes 800 to arrive, cancel only 100: the cancel is held behind the place
    lat = Latency(*L.per_action((800, 50), (100, 50), (100, 50)))
    rp = replay(rows, lat)
    run_until(rp, 1000)
    sn.submit_place_nb(rp.sim, 7, BUY, LIMIT, GTC, 0, TICKS_100, 0, 1.0, 0.0, 0)
    sn.submit_cancel_nb(rp.sim, 7)
    run_until(rp, 10_000)
    lg = log(rp)
    rep = lg[lg["what"] == sn.M_REPORT]
    assert rep["kind"].tolist() == [RP_ACCEPTED, RP_CANCELED]  # not "cancel: unknown order"
    assert rep["exch_ts"].tolist() == [1800, 1800]
    assert rep["ts"].tolist() == [1850, 1850]


def test_negative_entry_latency_is_a_rejection() -> None:
    table = np.array([[0, -1, 900], [10_000, -1, 10_900]])  # the exchange rejected these
    rp = replay(snapshot(0), Latency(*L.recorded(table)))
    run_until(rp, 1000)
    sn.submit_place_nb(rp.sim, 1, BUY, LIMIT, GTC, 0, TICKS_100, 0, 1.0, 0.0, 0)
    run_until(rp, 10_000)
    lg = log(rp)
    assert lg["kind"].tolist() == [RP_REJECTED] and lg["reason"].tolist() == [R_LATENCY]
    assert lg["ts"].tolist() == [1900]  # back after the interpolated round trip (900)


def test_recorded_latency_interpolates() -> None:
    # the documented example rows: entry 7,475,000 and 7,980,000; response 3,122,000 and 8,003,000
    table = np.array([
        [1_000_000_000, 1_007_475_000, 1_010_597_000],
        [2_000_000_000, 2_007_980_000, 2_015_983_000],
    ])
    code, params, tab = L.recorded(table)
    assert L.entry_latency_nb(code, params, tab, 1_500_000_000, 0) == 7_727_500
    mid_exch = (1_007_475_000 + 2_007_980_000) // 2
    assert L.response_latency_nb(code, params, tab, mid_exch, 0) == 5_562_500
    assert L.entry_latency_nb(code, params, tab, 0, 0) == 7_475_000  # before: first row
    assert L.entry_latency_nb(code, params, tab, 9_000_000_000, 0) == 7_980_000


def test_funding_payment_at_settlement() -> None:
    rows = snapshot(0) + [(EV_DEPTH | EV_BID | EV_LAST, 5000, 5000, 99.0, 1.0)]
    fund = Funding(np.array([3000]), np.array([0.0001]), np.array([100.05]))
    rp = replay(rows, Latency(*L.constant(10, 10)), fund)
    run_until(rp, 1000)
    sn.submit_place_nb(rp.sim, 1, BUY, MARKET, 0, 0, 0, 0, 2.0, 0.0, 0)  # long 2 at 100.1
    run_until(rp, 10_000)
    lg = log(rp)
    f = lg[lg["what"] == sn.M_FUNDING]
    assert f["exch_ts"].tolist() == [3000] and f["ts"].tolist() == [3010]
    assert f["fee"][0] == pytest.approx(2.0 * 100.05 * 0.0001)  # the long pays 0.02001
    assert rp.sim.fv[sn.F_FUNDING] == pytest.approx(0.02001)
    assert rp.sim.fv[sn.F_CASH] == pytest.approx(-2.0 * 100.1 - 0.02001)


def test_gap_cancels_resting_orders_and_resync_resumes() -> None:
    rows = snapshot(0) + [(EV_GAP, 2000, 2000, 0.0, 0.0)] + snapshot(4000)
    rp = replay(rows, Latency(*L.constant(10, 10)))
    run_until(rp, 1000)
    sn.submit_place_nb(rp.sim, 1, BUY, LIMIT, GTC, 0, TICKS_100, 0, 1.0, 0.0, 0)
    run_until(rp, 2000)
    assert rp.sim.sv[sn.S_GAP] == 1  # the strategy is told
    run_until(rp, 3000)
    sn.submit_place_nb(rp.sim, 2, BUY, LIMIT, GTC, 0, TICKS_100, 0, 1.0, 0.0, 0)  # inside the gap
    run_until(rp, 4000)
    assert rp.sim.sv[sn.S_GAP] == 0  # resynced
    sn.submit_place_nb(rp.sim, 3, BUY, LIMIT, GTC, 0, TICKS_100, 0, 1.0, 0.0, 0)
    run_until(rp, 10_000)
    rep = log(rp)
    got = [(int(r["order_id"]), int(r["kind"]), int(r["reason"])) for r in rep]
    assert got == [
        (1, RP_ACCEPTED, 0),
        (1, RP_CANCELED, R_GAP),
        (2, RP_REJECTED, R_GAP),
        (3, RP_ACCEPTED, 0),
    ]
    assert rp.sim.ex.bid_q.sum() == pytest.approx(10.0)  # the book after the resync only


def test_sell_side_symmetry_in_replay() -> None:
    rows = snapshot(0) + [(EV_TRADE | EV_BID | EV_LAST, 2000, 2000, 100.2, 1.0)]
    rp = replay(rows, Latency(*L.constant(10, 10)))
    run_until(rp, 1000)
    sn.submit_place_nb(rp.sim, 1, SELL, LIMIT, GTC, 0, TICKS_100 + 1, 0, 0.5, 0.0, 0)
    run_until(rp, 10_000)
    fills = log(rp)[log(rp)["what"] == sn.M_FILL]
    assert fills["px"].tolist() == [100.1] and fills["qty"].tolist() == [0.5]
    assert rp.sim.fv[sn.F_POS] == pytest.approx(-0.5)


# ----------------------------------------------------------------------------- funding store


def test_settlement_grid() -> None:
    h = 3_600_000_000_000
    assert settlement_times(0, 24 * h).tolist() == [0, 8 * h, 16 * h]
    assert settlement_times(1, 8 * h + 1).tolist() == [8 * h]


def test_perpetual_backtest_without_funding_names_the_missing_range(tmp_path) -> None:
    from tradelab.store.catalog import Catalog

    h = 3_600_000_000_000
    day = 1_723_075_200_000_000_000  # 2024-08-08 00:00 UTC
    with Catalog(tmp_path) as cat:
        with pytest.raises(StoreError, match=r"no stored funding for BINANCE_FUTURES "
                           r"BTC-USDT-PERP at 2024-08-08 08:00:00\+00:00, 2024-08-08 16:00"):
            load_funding(cat, "BINANCE_FUTURES", "BTC-USDT-PERP", day + h, day + 20 * h)
        # spot, or a span with no settlement inside, needs none
        assert len(load_funding(cat, "BINANCE", "BTC-USDT", day + h, day + 20 * h).ts) == 0
        assert len(load_funding(cat, "BINANCE_FUTURES", "BTC-USDT-PERP", day + h,
                                day + 2 * h).ts) == 0


def test_local_data_comes_before_a_response_at_the_same_local_time() -> None:
    rows = snapshot(0) + [
        (EV_TRADE | EV_SELL | EV_LAST, 1600, 1600, 99.9, 1.0),  # fills us at the exchange
        (EV_DEPTH | EV_BID | EV_LAST, 1850, 1900, 99.0, 1.0),  # seen locally at 1900
    ]
    rp = replay(rows, Latency(*L.constant(500, 300)))  # the fill comes back at 1600 + 300
    run_until(rp, 1000)
    sn.submit_place_nb(rp.sim, 1, BUY, LIMIT, GTC, 0, TICKS_100, 0, 1.0, 0.0, 0)
    rp.sim.sv[sn.S_STOP_ON_BOOK] = 1
    assert sn.elapse_nb(rp.sim, rp.ev, 10_000) == sn.EL_BOOK  # the depth message at 1900
    assert rp.sim.sv[sn.S_NOW] == 1900
    assert len(log(rp)[log(rp)["what"] == sn.M_FILL]) == 0  # the response waits for it
    assert rp.sim.fv[sn.F_POS] == 0.0
    assert sn.elapse_nb(rp.sim, rp.ev, 10_000) == sn.EL_END
    fills = log(rp)[log(rp)["what"] == sn.M_FILL]
    assert fills["ts"].tolist() == [1900] and rp.sim.fv[sn.F_POS] == pytest.approx(1.0)


def test_stored_funding_is_read_with_its_mark_price(tmp_path) -> None:
    from tradelab.store import Catalog, StoreWriter

    h = 3_600_000_000_000
    day = 1_723_075_200_000_000_000  # 2024-08-08 00:00 UTC
    with StoreWriter(tmp_path) as w:
        w.write("funding", "BINANCE_FUTURES", "BTC-USDT-PERP", {
            "ts": [day + 8 * h + 3_000_000, day + 16 * h - 2_000_000, day + 12 * h],
            "recv_ts": [None, None, None],
            "rate": [0.0001, -0.0002, 0.0005],
            "settled": [True, True, False],  # an estimate is not a settlement
            "mark_price": [61000.0, 60500.0, 60000.0],
            "index_price": [None, None, None],
            "next_funding_ts": [None, None, None],
        })
    with Catalog(tmp_path) as cat:
        f = load_funding(cat, "BINANCE_FUTURES", "BTC-USDT-PERP", day + h, day + 20 * h)
    # settlements on the 8-hour grid, rates and marks from the settled rows near them
    assert f.ts.tolist() == [day + 8 * h, day + 16 * h]
    assert f.rate.tolist() == [0.0001, -0.0002]
    assert f.mark.tolist() == [61000.0, 60500.0]
