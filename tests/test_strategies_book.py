"""Book strategies: hand-made books with every intent written out, then the real recordings:
streaming == vectorized == grid, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from tradelab import features, strategies
from tradelab.store import Catalog
from tradelab.strategies import IntentKind, imbalance_microprice, ofi_reversion

NAN = np.nan
MS = 1_000_000
EL, ES, C, X = (IntentKind.ENTER_LONG, IntentKind.ENTER_SHORT, IntentKind.CANCEL,
                IntentKind.EXIT)
BOOK_STRATEGIES = [n for n in strategies.names() if strategies.get(n).KIND == "book"]


def one_level(rows, bid=100.0, ask=101.0):
    """A one-level book frame from ``(t_ms, bid qty, ask qty)``; ``None`` qty = invalid row."""
    ts = np.array([t * MS for t, _, _ in rows], dtype=np.int64)
    book = np.array([[bid, qb, ask, qa] if qb is not None else [NAN] * 4 for _, qb, qa in rows])
    return features.BookFrame(ts, book)


def intents(out):
    return [(int(r["idx"]), int(r["kind"]), None if np.isnan(r["px"]) else float(r["px"]))
            for r in out]


def test_imbalance_microprice_by_hand():
    # bid 100 / ask 101, one level: imbalance = (qb - qa) / (qb + qa) and the weighted mid is
    # 100 + qb / (qb + qa), so tilt = (that - 100.5) / 100.5 * 1e4 bps (7/3: imbalance 0.4,
    # tilt +19.9 bps; 5.5/4.5: 0.1 and 4.98 bps; 5.2/4.8: 0.04 and 1.99 bps)
    frame = one_level([
        (0, 5, 5),  # neutral, ARMED
        (100, 7, 3),  # long signal -> ENTER_LONG at the bid -> IN_TRADE
        (200, 6.5, 3.5),  # still long (0.3, 14.9 bps): nothing
        (300, 5.5, 4.5),  # neutral -> CANCEL at the mid -> WAIT_REARM
        (400, 3, 7),  # short signal, but the lean has not faded: still WAIT_REARM
        (500, 5.2, 4.8),  # |imbalance| 0.04 < 0.10 -> ARMED
        (1000, 3, 7),  # short signal, ARMED, but only 700 ms since the CANCEL: cooldown
        (1800, 3, 7),  # 1500 ms since: ENTER_SHORT at the ask
        (1900, 7, 3),  # adverse -> CANCEL
        (2000, None, None),  # invalid book while waiting: nothing
        (2100, 5, 5),  # re-armed
        (3400, 7, 3),  # exactly 1500 ms after the last intent: ENTER_LONG
        (3500, None, None),  # invalid book in a trade -> CANCEL, no price to refer to
    ])
    p = imbalance_microprice.Params(levels=1, imb_entry=0.2, tilt_entry_bps=5.0, imb_rearm=0.1,
                                    tilt_rearm_bps=2.0, cooldown_ms=1500)
    out = imbalance_microprice.run(frame, p)
    assert intents(out) == [(1, EL, 100.0), (3, C, 100.5), (7, ES, 101.0), (8, C, 100.5),
                            (11, EL, 100.0), (12, C, None)]
    assert out["ts"].tolist() == [100 * MS, 300 * MS, 1800 * MS, 1900 * MS, 3400 * MS,
                                  3500 * MS]
    # the tilt gate: the largest tilt here is 19.9 bps
    p = imbalance_microprice.Params(levels=1, tilt_entry_bps=25.0)
    assert len(imbalance_microprice.run(frame, p)) == 0
    # no cooldown: the short at 1000 ms goes through
    p = imbalance_microprice.Params(levels=1, imb_entry=0.2, tilt_entry_bps=5.0, imb_rearm=0.1,
                                    tilt_rearm_bps=2.0, cooldown_ms=0)
    assert [i[:2] for i in intents(imbalance_microprice.run(frame, p))][:4] == [
        (1, EL), (3, C), (6, ES), (8, C)]


def test_ofi_reversion_by_hand():
    # one row per 1 s window (bid 100 / ask 101 fixed), so each window's OFI is the bid-size
    # change of its row: windows 0..9 -> 0, +1, -1, +1, +5, 0, -6, (7: empty) 0, 0, -6
    frame = one_level([(100, 10, 5), (1100, 11, 5), (2100, 10, 5), (3100, 11, 5),
                       (4100, 16, 5), (5100, 16, 5), (6100, 10, 5), (8100, 10, 5),
                       (9100, 4, 5), (10100, 4, 5), (10200, 4, 5)])
    p = ofi_reversion.Params(window_ms=1000, lookback=3, z_entry=1.0, z_exit=0.5, levels=1,
                             max_spread_bps=200.0)
    # row 4 completes window 3 (+1) against [0, 1, -1]: z = 1 / 0.816 = 1.22 -> ENTER_SHORT
    # row 5: window 4 (+5) against [1, -1, 1]: z = 4.95, still short
    # row 6: window 5 (0) against [-1, 1, 5]: z = -0.67 < 0.5 -> EXIT
    # row 7: windows 6 (-6) and 7 (empty, 0) complete; the latest, 0, against [5, 0, -6]: 0.07
    # row 8: window 8 (0) against [0, -6, 0]: z = 0.71, no entry
    # row 9: window 9 (-6) against [-6, 0, 0]: z = -1.41 -> ENTER_LONG
    out = ofi_reversion.run(frame, p)
    assert intents(out) == [(4, ES, 101.0), (6, X, 100.5), (9, EL, 100.0)]
    # the spread is 99.5 bps: a 50 bps ceiling blocks both entries (and so the exit)
    p = ofi_reversion.Params(window_ms=1000, lookback=3, z_entry=1.0, z_exit=0.5, levels=1,
                             max_spread_bps=50.0)
    assert len(ofi_reversion.run(frame, p)) == 0


def test_book_strategies_check_their_input():
    frame = one_level([(0, 5, 5)])
    with pytest.raises(ValueError, match="levels=5 but the book frame holds 1 levels"):
        imbalance_microprice.run(frame)
    with pytest.raises(TypeError, match="reads a BookFrame"):
        ofi_reversion.run({"book": frame.book})


# -- the real recordings ----------------------------------------------------------------------

SETS = {
    "imbalance_microprice": [
        {},
        {"tilt_entry_bps": 0.02, "tilt_rearm_bps": 0.01, "cooldown_ms": 500},
        {"levels": 10, "imb_entry": 0.3, "tilt_entry_bps": 0.05, "tilt_rearm_bps": 0.02},
    ],
    "ofi_reversion": [
        {},
        {"window_ms": 500, "lookback": 30, "z_entry": 1.5, "levels": 3},
        {"window_ms": 250, "lookback": 120, "z_entry": 2.5, "z_exit": 0.0},
    ],
}


@pytest.fixture(scope="module")
def synth_frames(tmp_path_factory):
    """Ten minutes of the zero-intelligence market as a USD-M and a spot recording (tick 0.1,
    so tilts reach fractions of a bp), imported like the real ones: the parity checks run on
    them whether or not the recordings are there."""
    from tradelab.collect.importers.base import ImportRun
    from tradelab.collect.importers.binance_ws import BinanceWsImporter
    from tradelab.synth import ZIConfig, write_zi_recording

    tmp = tmp_path_factory.mktemp("zi_books")
    for market in ("usdm", "spot"):
        path = write_zi_recording(ZIConfig(market=market, seed=21, tick_size=0.1),
                                  tmp / f"{market}.gz", 600)
        run = ImportRun("binance-ws", tmp / "store", {})
        BinanceWsImporter(run).import_files([path])
        run.finish()
    cat = Catalog(tmp / "store")
    out = {
        "usdm events": features.book_frame_from_events(
            cat.events("BINANCE_FUTURES", "BTC-USDT-PERP"), levels=10),
        "spot 100ms": features.book_frame_from_snapshots(
            cat.book_snapshots("BINANCE", "BTC-USDT", levels=10, every="100ms")),
    }
    cat.close()
    return out


def frame_of(request, which: str):
    """``'usdm events'`` / ``'spot 100ms'`` from the recordings, or ``'synthetic ...'``."""
    if which.startswith("synthetic "):
        return request.getfixturevalue("synth_frames")[which.removeprefix("synthetic ")]
    return request.getfixturevalue("frames")[which]


WHICH = ["usdm events", "spot 100ms", "synthetic usdm events", "synthetic spot 100ms"]


@pytest.fixture(scope="module")
def frames(usdm_store, spot_store):
    out = {}
    cat = Catalog(usdm_store[0])
    out["usdm events"] = features.book_frame_from_events(
        cat.events("BINANCE_FUTURES", "BTC-USDT-PERP"), levels=10
    )
    cat.close()
    cat = Catalog(spot_store[0])
    out["spot 100ms"] = features.book_frame_from_snapshots(
        cat.book_snapshots("BINANCE", "BTC-USDT", levels=10, every="100ms")
    )
    cat.close()
    return out


def stream(module, p, frame):
    """A live runner's loop: the step kernel called from Python, one update at a time."""
    s = module.init_state(p)
    got = []
    for i in range(len(frame)):
        kind, px = module.step(p, s, frame.ts[i], frame.book, i)
        if kind != IntentKind.NONE:
            got.append((frame.ts[i], i, kind, px))
    return got


@pytest.mark.parametrize("name", BOOK_STRATEGIES)
@pytest.mark.parametrize("which", WHICH)
def test_streaming_equals_vectorized_equals_grid_on_real_books(request, name, which):
    m = strategies.get(name)
    frame = frame_of(request, which)
    grid = np.vstack([m.Params(**kw).to_array() for kw in SETS[name]])
    g = m.grid(frame, grid)
    assert np.all(np.diff(g["set"]) >= 0)
    total = 0
    for j, p in enumerate(grid):
        full = m.run(frame, p)
        total += len(full)
        mine = g[g["set"] == j]
        for col in ("ts", "idx", "px", "kind"):
            assert np.array_equal(mine[col], full[col], equal_nan=col == "px"), col
        got = stream(m, p, frame)
        assert len(got) == len(full)
        for (t, i, kind, px), r in zip(got, full):
            assert (t, i, kind) == (r["ts"], r["idx"], r["kind"])
            assert px == r["px"] or (np.isnan(px) and np.isnan(r["px"]))
    assert total > 20, "the strategies act on real books"


@pytest.mark.parametrize("name", BOOK_STRATEGIES)
@pytest.mark.parametrize("which", ["usdm events", "synthetic usdm events"])
def test_no_look_ahead_on_real_books(request, name, which):
    m = strategies.get(name)
    frame = frame_of(request, which)
    p = m.Params(**SETS[name][1])
    full = m.run(frame, p)
    assert len(full) > 10
    rng = np.random.default_rng(3)
    for t in (10, 500, 2_000, 4_321, len(frame) - 2):
        cut = features.BookFrame(frame.ts[: t + 1], frame.book[: t + 1])
        assert np.array_equal(m.run(cut, p), full[full["idx"] <= t])
        other = frame.book.copy()
        other[t + 1 :] = other[t + 1 :][::-1] * rng.uniform(0.99, 1.01, (len(frame) - t - 1, 1))
        alt = m.run(features.BookFrame(frame.ts, other), p)
        assert np.array_equal(alt[alt["idx"] <= t], full[full["idx"] <= t])


@pytest.mark.data
def test_a_live_loop_over_raw_events_emits_what_the_vectorized_run_emits(usdm_store):
    # what a runner does: each event updates the book; after each complete depth message the
    # top of book goes to the strategy's step
    from tradelab.features import lob_nb

    cat = Catalog(usdm_store[0])
    events = cat.events("BINANCE_FUTURES", "BTC-USDT-PERP")[:200_000]
    cat.close()
    m = imbalance_microprice
    p = m.Params(**SETS["imbalance_microprice"][1]).to_array()
    book_state, state = lob_nb.lob_new(), m.init_state(p)
    row = np.empty((1, 40))
    live = []
    for e in events:
        if lob_nb.lob_step(book_state, 0, int(e["ev"]), e["px"], e["qty"]):
            lob_nb.lob_write_top(book_state, 0, row, 0)
            kind, px = m.step(p, state, int(e["exch_ts"]), row, 0)
            if kind != IntentKind.NONE:
                live.append((int(e["exch_ts"]), kind, px))
    ref = m.run(features.book_frame_from_events(events, 10), p)
    assert len(live) > 5
    assert live == [(int(r["ts"]), int(r["kind"]), float(r["px"])) for r in ref]
