"""The zero-intelligence market: its Binance messages rebuild its book exactly, every way."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pytest

from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.binance_ws import BinanceWsImporter
from tradelab.synth import zi_nb as nb
from tradelab.synth.zi import ZIConfig, ZIMarket, write_zi_recording

S = 1_000_000_000
CONFIGS = {
    "spot-100ms": ZIConfig(market="spot", seed=11),
    "usdm-0ms": ZIConfig(market="usdm", seed=12),
    "usdm-100ms": ZIConfig(market="usdm", seed=13, depth_cadence="100ms"),
    "spot-0ms": ZIConfig(market="spot", seed=14, depth_cadence="0ms"),
}
PER_EVENT = ("usdm-0ms", "spot-0ms")


def _kind(msg: dict) -> str:
    return msg["stream"].split("@")[1]


def _run(cfg: ZIConfig, seconds: int = 150) -> dict:
    """Messages in irregular windows, with a snapshot after each window (and its position)."""
    m = ZIMarket(cfg)
    rng = np.random.default_rng(cfg.seed)
    msgs = m.advance(cfg.start_ns + 2 * S)
    snaps = [(len(msgs), m.snapshot())]
    end = cfg.start_ns + seconds * S
    while m.now_ns < end:
        step = int(rng.choice([0, 1_000, 37 * 1_000_000, 100 * 1_000_000, 2_345 * 1_000_000]))
        msgs += m.advance(min(end, m.now_ns + step))
        snaps.append((len(msgs), m.snapshot()))
    return {"cfg": cfg, "market": m, "msgs": msgs, "snaps": snaps}


@pytest.fixture(scope="module", params=list(CONFIGS))
def run(request) -> dict:
    return _run(CONFIGS[request.param]) | {"name": request.param}


class Replay:
    """A client's book: a REST snapshot, then diffs the Binance way (strings kept as sent)."""

    def __init__(self, snap: dict, usdm: bool) -> None:
        self.bids = {p: q for p, q in snap["bids"]}
        self.asks = {p: q for p, q in snap["asks"]}
        self.snap_id = snap["lastUpdateId"]
        self.usdm = usdm
        self.last_u: int | None = None

    def feed(self, d: dict) -> bool:
        """Apply diff ``d`` if it follows the snapshot; return whether it was applied."""
        if self.last_u is None:
            if d["u"] < self.snap_id if self.usdm else d["u"] <= self.snap_id:
                return False
            if self.usdm:
                # Binance: U <= id <= u; a snapshot taken before any diff was sent is continued
                # by pu == id instead (ccxt and cryptofeed accept both)
                assert d["U"] <= self.snap_id <= d["u"] or d["pu"] == self.snap_id
            else:
                assert d["U"] <= self.snap_id + 1 <= d["u"], "first diff must straddle"
        elif self.usdm:
            assert d["pu"] == self.last_u, f"pu {d['pu']} != previous u {self.last_u}"
        else:
            assert d["U"] == self.last_u + 1, f"U {d['U']} != previous u + 1"
        assert d["U"] <= d["u"]
        for side, levels in ((self.bids, d["b"]), (self.asks, d["a"])):
            for p, q in levels:
                if float(q) == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_u = d["u"]
        return True

    def levels(self, limit: int = 1000) -> tuple[list, list]:
        bids = sorted(self.bids.items(), key=lambda x: -float(x[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda x: float(x[0]))[:limit]
        return [list(x) for x in bids], [list(x) for x in asks]

    def top(self) -> tuple[str, str, str, str]:
        b = max(self.bids, key=float)
        a = min(self.asks, key=float)
        return b, self.bids[b], a, self.asks[a]


# -- (1) snapshot + diffs reproduce every later snapshot -----------------------------------------


def test_diffs_replayed_on_a_snapshot_reproduce_every_later_snapshot(run):
    usdm = run["cfg"].market == "usdm"
    msgs, snaps = run["msgs"], run["snaps"]
    replay = Replay(snaps[0][1], usdm)
    pos = 0  # the client buffered the diffs sent before the snapshot too
    applied = 0
    for end, snap in snaps[1:]:
        for msg in msgs[pos:end]:
            if _kind(msg) == "depth":
                applied += replay.feed(msg["data"])
        pos = end
        bids, asks = replay.levels()
        assert (bids, asks) == (snap["bids"], snap["asks"])
        if replay.last_u is not None:
            assert replay.last_u == snap["lastUpdateId"]
        else:
            assert snap["lastUpdateId"] == replay.snap_id
    assert applied > 500
    assert len(snaps) > 50


def test_snapshot_limits_and_fields(run):
    m = run["market"]
    snap = m.snapshot(5)
    assert len(snap["bids"]) == len(snap["asks"]) == 5
    assert float(snap["bids"][0][0]) < float(snap["asks"][0][0])
    assert list(snap) == (
        ["lastUpdateId", "E", "T", "bids", "asks"]
        if run["cfg"].market == "usdm"
        else ["lastUpdateId", "bids", "asks"]
    )
    with pytest.raises(ValueError, match="limit"):
        m.snapshot(0)


# -- (2) bookTicker = top of the book rebuilt at its update id ------------------------------------


def test_book_ticker_is_the_top_rebuilt_from_diffs_at_its_update_id(run):
    usdm = run["cfg"].market == "usdm"
    msgs, snaps = run["msgs"], run["snaps"]
    replay = Replay(snaps[0][1], usdm)
    per_event = run["name"] in PER_EVENT
    tickers: list[dict] = []
    prev_top = None
    checked = 0
    for i, msg in enumerate(msgs):
        kind, d = _kind(msg), msg["data"]
        if kind == "bookTicker":
            assert not tickers or d["u"] > tickers[-1]["u"]
            tickers.append(d)
            if per_event and replay.last_u is not None:
                # one diff per event, sent before the event's bookTicker
                assert d["u"] == replay.last_u
                assert (d["b"], d["B"], d["a"], d["A"]) == replay.top()
                checked += 1
        elif kind == "depth" and replay.feed(d):
            top = replay.top()
            if per_event:
                if prev_top is not None and top != prev_top:
                    # a top change is announced right after its diff
                    nxt = msgs[i + 1]
                    assert _kind(nxt) == "bookTicker" and nxt["data"]["u"] == d["u"]
                prev_top = top
            else:
                # an aggregated diff lags the tickers: the last ticker at or before its u is the
                # top after it (every top change in between would have sent a later ticker)
                last = [t for t in tickers[-50:] if t["u"] <= d["u"]]
                if last:
                    t = last[-1]
                    assert (t["b"], t["B"], t["a"], t["A"]) == top
                    checked += 1
    assert checked > 200


# -- (3) trades hit the top and consume what the diffs remove -------------------------------------


def _walks(msgs: list[dict]):
    """Runs of trade messages (one market order each) with the message index after the run."""
    run: list[dict] = []
    for i, msg in enumerate(msgs):
        if _kind(msg) == "trade":
            run.append(msg["data"])
        elif run:
            yield run, i
            run = []


def test_trades_walk_the_top_and_match_the_aggtrades(run):
    msgs = run["msgs"]
    last_ticker = None
    trades = [m["data"] for m in msgs if _kind(m) == "trade"]
    assert len(trades) > 300
    assert [t["t"] for t in trades] == list(range(trades[0]["t"], trades[0]["t"] + len(trades)))
    walks = 0
    i0 = 0
    for walk, i in _walks(msgs):
        for msg in msgs[i0 : i - len(walk)]:
            if _kind(msg) == "bookTicker":
                last_ticker = msg["data"]
        i0 = i
        assert len({(t["T"], t["m"]) for t in walk}) == 1, "one taker order per run"
        px = [Decimal(t["p"]) for t in walk]
        sell = walk[0]["m"]
        assert px == sorted(px, reverse=sell)
        if last_ticker is not None:
            assert walk[0]["p"] == (last_ticker["b"] if sell else last_ticker["a"])
            walks += 1
    assert walks > 100
    aggs = [m["data"] for m in msgs if _kind(m) == "aggTrade"]
    by_id = {t["t"]: t for t in trades}
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    for a in aggs:
        parts = [by_id[t] for t in range(a["f"], a["l"] + 1)]
        assert {p["p"] for p in parts} == {a["p"]}
        assert sum(Decimal(p["q"]) for p in parts) == Decimal(a["q"])
        assert {(p["T"], p["m"]) for p in parts} == {(a["T"], a["m"])}
    assert sum(a["l"] - a["f"] + 1 for a in aggs) == len(trades)


@pytest.mark.parametrize("name", PER_EVENT)
def test_trade_sizes_equal_the_depth_their_diff_removes(name):
    cfg = CONFIGS[name]
    m = ZIMarket(cfg)
    replay = Replay(m.snapshot(), cfg.market == "usdm")
    msgs = m.advance(cfg.start_ns + 120 * S)
    pending: list[dict] = []
    checked = 0
    for msg in msgs:
        kind, d = _kind(msg), msg["data"]
        if kind == "trade":
            pending.append(d)
        elif kind == "depth":
            if pending:
                sell = pending[0]["m"]
                book = replay.bids if sell else replay.asks
                before = sorted(book.items(), key=lambda x: float(x[0]), reverse=sell)
                replay.feed(d)
                changed = dict(d["b"] if sell else d["a"])
                hit: dict[str, Decimal] = {}
                for t in pending:
                    hit[t["p"]] = hit.get(t["p"], Decimal(0)) + Decimal(t["q"])
                # the hit levels are the best ones, in order, all but the last emptied
                assert [p for p, _ in before[: len(hit)]] == list(hit)
                assert set(changed) == set(hit)
                for p, q in hit.items():
                    assert Decimal(dict(before)[p]) - q == Decimal(changed[p])
                for p in list(hit)[:-1]:
                    assert Decimal(changed[p]) == 0
                pending = []
                checked += 1
            else:
                replay.feed(d)
    assert checked > 300


# -- (4) reproducible, whatever the windows ------------------------------------------------------


@pytest.mark.parametrize("name", ["spot-100ms", "usdm-0ms"])
def test_same_seed_same_stream_whatever_the_windows(name):
    cfg = CONFIGS[name]
    end = cfg.start_ns + 60 * S
    one = ZIMarket(cfg)
    whole = one.advance(end)
    two = ZIMarket(cfg)
    rng = np.random.default_rng(0)
    parts: list[dict] = []
    cuts = np.sort(rng.integers(cfg.start_ns, end, 300))
    grid = cfg.start_ns + np.arange(1, 40) * 100_000_000  # right on the 100 ms grid too
    for t in np.unique(np.concatenate([cuts, grid, [end]])):
        parts += two.advance(int(t))
        parts += two.advance(int(t))  # an empty window
    assert orjson.dumps(parts) == orjson.dumps(whole)
    assert one.snapshot() == two.snapshot()
    assert one.best() == two.best()
    other = ZIMarket(ZIConfig(market=cfg.market, seed=cfg.seed + 1)).advance(end)
    assert orjson.dumps(other) != orjson.dumps(whole)


def test_time_runs_forward_only():
    m = ZIMarket(CONFIGS["usdm-0ms"])
    m.advance(m.now_ns + S)
    with pytest.raises(ValueError, match="time runs forward"):
        m.advance(m.now_ns - 1)


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match=r"ZIConfig.market='coin'"):
        ZIConfig(market="coin")
    with pytest.raises(ValueError, match="depth_cadence"):
        ZIConfig(depth_cadence="fast")
    with pytest.raises(ValueError, match="tick_size"):
        ZIConfig(tick_size=-1.0)
    with pytest.raises(ValueError, match="streams"):
        ZIConfig(streams=("depth", "kline"))


# -- (5) an hour: two-sided, tight spread, depth, a wandering mid ---------------------------------


def test_an_hour_keeps_a_realistic_two_sided_book():
    cfg = ZIConfig(seed=21)
    m = ZIMarket(cfg)
    spreads, depth_b, depth_a, mids, dts = [], [], [], [], []
    for minute in range(1, 61):
        ev, _, _ = m.simulate_raw(cfg.start_ns + minute * 60 * S)
        assert (ev["bid_px"] >= 0).all() and (ev["ask_px"] >= 0).all(), "one-sided book"
        spreads.append(ev["ask_px"] - ev["bid_px"])
        dts.append(np.diff(np.append(ev["t"], m.now_ns)))  # time each spread lasted
        bids, asks = m.book_ticks()
        bb, ba = max(bids), min(asks)
        depth_b.append(sum(bb - p < 10 for p in bids))
        depth_a.append(sum(p - ba < 10 for p in asks))
        mids.append((bb + ba) / 2)
    sp = np.concatenate(spreads)
    w = np.concatenate(dts)
    assert sp.min() >= 1, "crossed or locked book"
    share = {k: w[sp == k].sum() / w.sum() for k in (1, 2, 3)}
    assert share[1] > 0.6
    assert sum(share.values()) > 0.95
    assert np.mean(depth_b) > 6 and np.mean(depth_a) > 6, "levels within 10 ticks"
    steps = np.diff(mids)
    assert 5 < steps.std() < 100, "the mid should wander by tens of ticks a minute"
    assert np.ptp(mids) > 20


# -- (6) the real recordings' field sets and number formats ---------------------------------------


def _first_of_each(path: Path) -> dict[str, dict]:
    found: dict[str, dict] = {}
    with gzip.open(path, "rb") as fh:
        for line in fh:
            msg = orjson.loads(line[line.index(b" ") + 1 :])
            kind = _kind(msg) if "stream" in msg else "snapshot"
            found.setdefault(kind.split("@")[0], msg.get("data", msg))
            if len(found) == 4:
                break
    return found


def _decimals(s: str) -> int:
    return len(s.split(".")[1]) if "." in s else 0


@pytest.mark.data
@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_messages_have_the_real_recordings_fields_and_formats(market, binance_ws):
    real = _first_of_each(binance_ws / f"{market}_btcusdt_20240808.gz")
    m = ZIMarket(ZIConfig(market=market))
    ours: dict[str, dict] = {"snapshot": m.snapshot()}
    for msg in m.advance(m.now_ns + 10 * S):
        ours.setdefault(_kind(msg).split("@")[0], msg["data"])
    assert set(real) == {"depth", "trade", "bookTicker", "snapshot"}
    for kind, r in real.items():
        o = ours[kind]
        assert list(o) == list(r), kind
        for key, val in r.items():
            assert type(o[key]) is type(val), (kind, key)
        if kind in ("depth", "snapshot"):
            r_lvl = (r.get("b") or r.get("bids") or r.get("a") or r.get("asks"))[0]
            o_lvl = (o.get("b") or o.get("bids") or o.get("a") or o.get("asks"))[0]
            assert [_decimals(x) for x in o_lvl] == [_decimals(x) for x in r_lvl]
        elif kind == "trade":
            assert (_decimals(o["p"]), _decimals(o["q"])) == (_decimals(r["p"]), _decimals(r["q"]))
    agg = ours["aggTrade"]  # not in the recordings: Binance's documented fields
    keys = ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]
    assert list(agg) == keys + (["M"] if market == "spot" else [])


# -- (7) rate (the speed of the hour is measured by benchmarks/synth_zi.py) ----------------------


def test_an_hour_of_a_busy_market_has_the_configured_event_rate():
    cfg = ZIConfig(seed=3)
    raw, msg = ZIMarket(cfg), ZIMarket(cfg)
    ev, _, _ = raw.simulate_raw(cfg.start_ns + 3600 * S)
    out = msg.advance(cfg.start_ns + 3600 * S)
    rate = len(ev) / 3600
    assert 40 < rate < 70
    assert len(out) > 0


# -- the recording writer ------------------------------------------------------------------------


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_recording_imports_with_a_synced_book_and_no_gaps(market, tmp_path):
    cfg = ZIConfig(market=market, seed=5)
    path = write_zi_recording(cfg, tmp_path / f"{market}_zi.gz", 30)
    again = write_zi_recording(cfg, tmp_path / "again.gz", 30)
    assert path.read_bytes() == again.read_bytes()
    lines = gzip.open(path, "rb").read().splitlines()
    recv = [int(x.split(b" ", 1)[0]) for x in lines]
    assert recv == sorted(recv)
    snaps = [i for i, x in enumerate(lines) if b'"lastUpdateId"' in x]
    assert len(snaps) == 1 and 0 < snaps[0] < len(lines) // 10
    for line, r in zip(lines[:50], recv):
        data = orjson.loads(line.split(b" ", 1)[1]).get("data", {})
        if "E" in data:  # receipt a few ms after the exchange time
            assert 0 < r - data["E"] * 1_000_000 < 20_000_000
    run = ImportRun("binance-ws", tmp_path / "store", {})
    (rep,) = BinanceWsImporter(run, None).import_files([path])
    run.finish()
    assert rep.status == "committed" and rep.market == market
    assert rep.gaps == 0 and rep.resyncs == 0 and sum(rep.rejects.values()) == 0
    assert rep.messages["snapshot"] == 1 and rep.messages["trade"] > 50
    assert rep.rows["trades"] == rep.messages["trade"]


def test_kernel_capacity_limits_split_windows_without_changing_the_stream():
    cfg = CONFIGS["usdm-0ms"]
    a, b = ZIMarket(cfg), ZIMarket(cfg)
    ev_a, ch_a, tr_a = a.simulate_raw(cfg.start_ns + 20 * S)
    chunks = []
    while True:
        ne, done, ev, ch, tr = nb.simulate_nb(
            cfg.start_ns + 20 * S,
            b._q,
            b._n,
            b._iv,
            b._fv,
            b._rng,
            b._lam_cdf,
            b._theta,
            b._prm,
            100,
            10_000,
            10_000,
        )
        chunks.append(ev["t"])
        if done:
            break
    assert len(chunks) > 5
    assert np.array_equal(np.concatenate(chunks), ev_a["t"])
    assert a.book_ticks() == b.book_ticks()


def test_window_recentres_and_drops_what_falls_off_as_ordinary_changes():
    cfg = CONFIGS["usdm-0ms"]
    m = ZIMarket(cfg)
    mid = (m._iv[nb.I_BB] + m._iv[nb.I_BA]) // 2
    shift = int(mid) - (nb.W // 4 - 5)  # put the mid just below the window's inner half
    for arr in (m._q, m._n):
        arr[:] = np.roll(arr, -shift, axis=1)
    m._iv[nb.I_BASE] += shift
    far = nb.W - 5  # an ask that the re-centring pushes out of the window
    m._q[nb.ASK, far], m._n[nb.ASK, far] = 7, 1
    m._iv[nb.I_NOA] += 1
    m._iv[nb.I_LQA] += 7
    nb._rescan(m._q, m._iv)
    far_px = int(m._iv[nb.I_BASE]) + far
    m._pub[1][far_px] = 7
    base0 = int(m._iv[nb.I_BASE])
    replay = Replay(m.snapshot(), usdm=True)
    msgs = m.advance(cfg.start_ns + 5 * S)
    for msg in msgs:
        if _kind(msg) == "depth":
            replay.feed(msg["data"])
    assert int(m._iv[nb.I_BASE]) < base0
    gone = [m._px(far_px), m._qty(0)]
    assert any(_kind(x) == "depth" and gone in x["data"]["a"] for x in msgs)
    assert m.price(far_px) > 0 and far_px not in m.book_ticks()[1]
    snap = m.snapshot()
    assert replay.levels() == (snap["bids"], snap["asks"])
    assert m.book_ticks() == tuple(dict(x) for x in m._pub)


def test_the_venues_zi_source_never_ends_in_a_quiet_stretch():
    """An endless ZI stream served by the venue: a 100 ms window without a message (a quiet
    market) is not the end of the stream (it once ended the venue's replay after seconds)."""
    from tradelab.venue.sources import ZISource

    quiet = ZIConfig(seed=3, market="spot", limit_rate=0.05, market_rate=0.05,
                     cancel_rate=0.01, depth_cadence="100ms", warmup_s=1.0)
    src = ZISource([quiet])
    t0 = src.start_at()
    seen = 0
    while True:
        msg = src.peek()
        assert msg is not None
        got = src.take(msg.at)
        seen += len(got)
        if msg.at - t0 > 120 * 1_000_000_000:
            break
    assert seen > 0
