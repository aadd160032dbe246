"""Two instruments in one run, merged by local time (hand-built streams, expected order and fills
written out).

Instrument A (tick 0.5): snapshot bid 100 x 5 / asks 101 x 1, 102 x 2 at exchange 0; trades at
exchange 2 ms and 5 ms. Instrument B: snapshot bid 200 x 3 / ask 201 x 2 at 0; trades at 2 ms and
3 ms. Every row is received 1 ms after its exchange time. On A's first trade (local 3 ms) the
strategy buys 1.5 of A at market and sells 1 of B at market (a spread trade); with 1 ms entry
latency both orders reach their exchanges at 4 ms: A walks its asks (1 at 101, 0.5 at 102), B
hits its bid (1 at 200). Responses come back at 5 ms.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradelab.backtest.event.multi import MultiReplay
from tradelab.backtest.event.replay import Latency, Replay
from tradelab.core.events import EV_ASK, EV_BID, EV_DEPTH, EV_LAST, EV_SNAPSHOT, EV_TRADE, event_dt
from tradelab.matching import instrument
from tradelab.matching import latency_nb as L
from tradelab.matching import sim_nb as sn
from tradelab.matching.types import BUY, IOC, MARKET, SELL

MS = 1_000_000
SNAP = EV_DEPTH | EV_SNAPSHOT


def _events(rows) -> np.ndarray:
    ev = np.zeros(len(rows), dtype=event_dt)
    for i, (e, ts, px, q) in enumerate(rows):
        ev[i]["ev"], ev[i]["exch_ts"], ev[i]["local_ts"] = e, ts, ts + MS
        ev[i]["px"], ev[i]["qty"] = px, q
    return ev


A = _events(
    [
        (SNAP | EV_BID, 0, 100.0, 5.0),
        (SNAP | EV_ASK, 0, 101.0, 1.0),
        (SNAP | EV_ASK | EV_LAST, 0, 102.0, 2.0),
        (EV_TRADE | EV_LAST, 2 * MS, 101.0, 0.1),
        (EV_TRADE | EV_LAST, 5 * MS, 100.0, 0.2),
    ]
)
B = _events(
    [
        (SNAP | EV_BID, 0, 200.0, 3.0),
        (SNAP | EV_ASK | EV_LAST, 0, 201.0, 2.0),
        (EV_TRADE | EV_LAST, 2 * MS, 201.0, 0.3),
        (EV_TRADE | EV_LAST, 3 * MS, 200.0, 0.4),
    ]
)


def _replay(ev: np.ndarray, chunks: int = 1) -> Replay:
    inst = instrument(0.5, 0.001, taker_fee=0.001)
    parts = np.array_split(ev, chunks)
    return Replay(parts, inst, Latency(*L.constant(MS, MS)), feed_offset=0)


@pytest.mark.parametrize("chunks", [1, 2])
def test_two_instruments_merged_by_local_time_with_their_own_fills(chunks) -> None:
    multi = MultiReplay([_replay(A, chunks), _replay(B, chunks)])
    seen: list[tuple[int, int, float]] = []
    sent = []

    def on_event(k: int, row, now: int) -> None:
        seen.append((k, now, float(row["px"])))
        if k == 0 and (int(row["ev"]) & EV_TRADE) and not sent:
            sn.submit_place_nb(multi.sims[0], 1, BUY, MARKET, IOC, 0, 0, 0, 1.5, 0.0, 0)
            sn.submit_place_nb(multi.sims[1], 1, SELL, MARKET, IOC, 0, 0, 0, 1.0, 0.0, 0)
            sent.append(now)

    ra, rb = multi.run(on_event)
    assert seen == [
        (0, 1 * MS, 100.0),
        (0, 1 * MS, 101.0),
        (0, 1 * MS, 102.0),  # A's snapshot first ...
        (1, 1 * MS, 200.0),
        (1, 1 * MS, 201.0),  # ... then B's at the same local time
        (0, 3 * MS, 101.0),
        (1, 3 * MS, 201.0),  # equal local times: A before B
        (1, 4 * MS, 200.0),
        (0, 6 * MS, 100.0),
    ]
    assert sent == [3 * MS]
    fa, fb = ra.fills, rb.fills
    assert fa["px"].tolist() == [101.0, 102.0] and fa["qty"].tolist() == pytest.approx([1, 0.5])
    assert fa["exch_ts"].tolist() == [4 * MS, 4 * MS] and fa["ts"].tolist() == [5 * MS, 5 * MS]
    assert fa["fee"].tolist() == pytest.approx([0.101, 0.051])
    assert fb["px"].tolist() == [200.0] and fb["side"].tolist() == [SELL]
    assert fb["exch_ts"].tolist() == [4 * MS] and fb["qty"].tolist() == pytest.approx([1.0])
    assert multi.sims[0].fv[sn.F_POS] == pytest.approx(1.5)
    assert multi.sims[1].fv[sn.F_POS] == pytest.approx(-1.0)
    assert ra.events == len(A) and rb.events == len(B)


def test_a_single_instrument_run_sees_every_row_once_in_order() -> None:
    seen = []
    (r,) = MultiReplay([_replay(B)]).run(lambda k, row, now: seen.append(now))
    assert seen == [MS, MS, 3 * MS, 4 * MS] and r.events == len(B)


@pytest.mark.slow
@pytest.mark.data
def test_spot_and_perp_recordings_in_one_run(spot_store, usdm_store) -> None:
    """Real BTC-USDT spot and BTC-USDT-PERP recordings (two stores, two venues' streams) over
    their common first five minutes: every row of each is delivered once, in its own order,
    merged by local time; a spot buy and a perp sell sent at the same moment fill on their own
    books, 10 ms later, and leave a long spot / short perp position."""
    from tradelab.store.catalog import Catalog

    spans, cats = [], []
    for (store, _), (ex, sym) in (
        (spot_store, ("BINANCE", "BTC-USDT")),
        (usdm_store, ("BINANCE_FUTURES", "BTC-USDT-PERP")),
    ):
        cat = Catalog(store)
        cats.append((cat, ex, sym))
        spans.append(cat._event_span(ex, sym))
    s = max(sp[0] for sp in spans)
    e = min(s + 5 * 60 * 1_000_000_000, min(sp[1] for sp in spans))
    assert e > s, "the recordings overlap"
    replays, totals = [], []
    for cat, ex, sym in cats:
        tick = 0.01 if ex == "BINANCE" else 0.1
        inst = instrument(tick, 0.001, taker_fee=0.0005)
        totals.append(sum(len(c) for c in cat.iter_events(ex, sym, s, e, chunk="1m")))
        replays.append(
            Replay(
                cat.iter_events(ex, sym, s, e, chunk="1m"),
                inst,
                Latency(*L.constant(10 * MS, 10 * MS)),
            )
        )
    multi = MultiReplay(replays)
    counts = [0, 0]
    last = [-1]
    sent: list[int] = []

    def on_event(k: int, row, now: int) -> None:
        assert now >= last[0]
        last[0] = now
        counts[k] += 1
        if (
            not sent
            and now >= s + 60 * 1_000_000_000
            and multi.sims[0].sv[sn.S_GAP] == 0
            and multi.sims[1].sv[sn.S_GAP] == 0
        ):
            sn.submit_place_nb(multi.sims[0], 1, BUY, MARKET, IOC, 0, 0, 0, 0.01, 0.0, 0)
            sn.submit_place_nb(multi.sims[1], 1, SELL, MARKET, IOC, 0, 0, 0, 0.01, 0.0, 0)
            sent.append(now)

    spot, perp = multi.run(on_event)
    for cat, _, _ in cats:
        cat.close()
    assert counts == totals and [spot.events, perp.events] == totals
    assert len(sent) == 1
    fs, fp = spot.fills, perp.fills
    assert fs["qty"].sum() == pytest.approx(0.01) and (fs["side"] == BUY).all()
    assert fp["qty"].sum() == pytest.approx(0.01) and (fp["side"] == SELL).all()
    assert (fs["exch_ts"] == sent[0] + 10 * MS).all() and (fp["exch_ts"] == sent[0] + 10 * MS).all()
    assert multi.sims[0].fv[sn.F_POS] == pytest.approx(0.01)
    assert multi.sims[1].fv[sn.F_POS] == pytest.approx(-0.01)
    # each filled on its own tick grid (spot 0.01, perp 0.1), within 0.5 % of the other
    assert np.allclose(np.round(fp["px"] * 10), fp["px"] * 10)
    assert abs(fs["px"].mean() / fp["px"].mean() - 1) < 5e-3
