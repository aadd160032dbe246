"""One run, several symbols: each symbol has its own runner core, and they share the run's order
manager, risk engine, portfolio and journal. So the total cap counts every symbol's exposure,
the daily guard adds their losses and closes them all, a restart rebuilds each symbol, and the
journal's tables land under each symbol's partition (hand-made streams, hand-computed
figures; the run's real shell, fed directly, no network)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.test_live_core import RISING_THEN_FALLING, _stream
from tests.test_live_parity import LOOSE, MOM, S
from tradelab.adapters.binance.filters import symbol_filters
from tradelab.live.app import LiveRun, RunConfig
from tradelab.live.cli import main_paper
from tradelab.live.orders import Execution
from tradelab.live.persist import persist_journal
from tradelab.live.portfolio import Portfolio
from tradelab.store.catalog import Catalog
from tradelab.store.jsonlog import read_log

SYMS = ("BTCUSDT", "ETHUSDT")
ENTRY_ROWS = 17  # the deep book and the first five trades: long 2 at 100.5 after bar 3
CLOSE_ALL_AT_1 = LOOSE.model_copy(update={"daily": LOOSE.daily.model_copy(
    update={"max_loss_usdt": 1.0, "action": "close_all"})})  # a day's loss over 1 USDT


def _run(tmp_path, risk=LOOSE, run_dir="run", **overrides) -> LiveRun:
    cfg = {"run_id": "multi", "strategy": "momentum", "params": MOM, "symbol": SYMS[0],
           "symbols": SYMS, "market": "spot", "interval_ns": S, "units": 2.0,
           "venue_rest": "", "venue_ws": "", "run_dir": tmp_path / run_dir, "risk": risk,
           "entry_ms": 5.0, "response_ms": 5.0, "maker_fee": 0.0002, "taker_fee": 0.0005,
           "queue_model": "risk_averse", "queue_n": 2.0, "start_cash": 1000.0,
           "close_delay_ms": 0.0, **overrides}
    return LiveRun(RunConfig(**cfg),
                   {s: symbol_filters("spot", s, "0.5", "0.001") for s in SYMS})


def _feed(run: LiveRun, sym: str, rows: np.ndarray, one_by_one: bool = False) -> None:
    leg = next(leg for leg in run.legs if leg.symbol == sym)
    if one_by_one:
        for i in range(len(rows)):
            run._feed(leg, rows[i:i + 1], "trade")
    else:
        run._feed(leg, rows, "trade")


def _risk(run: LiveRun) -> list[dict]:
    return [r for r in read_log(run.cfg.run_dir / "journal.log") if r["type"] == "risk"]


def test_the_total_cap_counts_the_other_symbols_exposure(tmp_path):
    # per symbol 1000, total 300: BTC's long 2 (bought at 100.5, marked at the mid 100.25:
    # 200.5 of exposure) leaves 99.5 for ETH, whose long 2 at its bar's close 101 shrinks to
    # 99.5 / 101 = 0.98515 (0.985 on the 0.001 step); each alone would have fitted
    risk = LOOSE.model_copy(update={"caps": LOOSE.caps.model_copy(
        update={"per_symbol_usdt": 1000.0, "total_usdt": 300.0, "soft_cap_pct": 0.0})})
    run = _run(tmp_path, risk)
    stream = _stream(RISING_THEN_FALLING)
    _feed(run, "BTCUSDT", stream[:ENTRY_ROWS])
    assert run.portfolio.positions["BTCUSDT"] == pytest.approx(2.0)
    _feed(run, "ETHUSDT", stream[:ENTRY_ROWS])
    run.journal.close()
    eth = [o for o in run.oms.orders.values() if o.symbol == "ETHUSDT"]
    assert len(eth) == 1 and float(eth[0].qty) == pytest.approx(0.985)
    assert run.portfolio.positions["ETHUSDT"] == pytest.approx(0.985)
    shrinks = [r for r in _risk(run) if r["kind"] == "shrink"]
    assert len(shrinks) == 1 and shrinks[0]["symbol"] == "ETHUSDT"
    assert shrinks[0]["detail"]["allowed"] == pytest.approx(99.5 / 101.0)
    assert run.portfolio.exposure() <= 300.0
    # client ids are one sequence for the run: no two symbols share one
    assert sorted(run.oms.orders) == ["tl-1", "tl-2"]


def test_the_daily_guard_adds_the_symbols_losses_and_closes_every_symbol(tmp_path):
    # each long 2 bought at 100.5 (fee 0.1005) and marked at 100.25 loses 0.6005: one symbol
    # alone stays under the 1.0 limit, both together (1.201) trip it on the event that brings
    # ETH's fill; close_all then flattens both symbols with reduce-only market orders
    run = _run(tmp_path, CLOSE_ALL_AT_1)
    stream = _stream(RISING_THEN_FALLING)
    _feed(run, "BTCUSDT", stream[:ENTRY_ROWS], one_by_one=True)
    assert run.portfolio.positions["BTCUSDT"] == pytest.approx(2.0)
    assert run.risk.halted is None
    eth = next(leg for leg in run.legs if leg.symbol == "ETHUSDT")
    tripped_at = None
    for i in range(ENTRY_ROWS):
        run._feed(eth, stream[i:i + 1], "trade")
        if run.risk.halted and tripped_at is None:
            tripped_at = i
            assert run.portfolio.positions["ETHUSDT"] == pytest.approx(2.0)
            assert run.portfolio.equity(1000.0) == pytest.approx(1000.0 - 2 * 0.6005)
    assert tripped_at is not None, "the guard never tripped"
    flat = [o for o in run.oms.orders.values() if o.tag.startswith("flatten")]
    assert sorted(o.symbol for o in flat) == ["BTCUSDT", "ETHUSDT"]
    assert all(o.reduce_only and o.side == "SELL" and float(o.qty) == 2.0 for o in flat)
    # later trades let both flattening orders fill: the run is flat on every symbol
    _feed(run, "BTCUSDT", stream[ENTRY_ROWS:])
    _feed(run, "ETHUSDT", stream[ENTRY_ROWS:])
    assert run.portfolio.positions == {"BTCUSDT": 0.0, "ETHUSDT": 0.0}
    run.journal.close()
    kinds = [(r["kind"], r["symbol"]) for r in _risk(run)]
    assert ("close_all", "") in kinds
    # halted: no new entries on either symbol after the trip (bar 5 asked for a short)
    assert all(o.tag.startswith("flatten") or o.tag.startswith("target +1")
               for o in run.oms.orders.values())


def test_a_restart_rebuilds_every_symbol_from_the_shared_journal(tmp_path):
    stream = _stream(RISING_THEN_FALLING)
    first = _run(tmp_path)
    _feed(first, "BTCUSDT", stream[:ENTRY_ROWS])
    _feed(first, "ETHUSDT", stream[:ENTRY_ROWS + 2])  # ETH also sees the fall: it reversed
    first.journal.close()
    second = _run(tmp_path)
    asyncio.run(second._resume_and_reconcile())  # paper: the journal alone
    second.journal.close()
    assert second.portfolio.positions == pytest.approx(first.portfolio.positions)
    assert second.portfolio.realized_by == pytest.approx(first.portfolio.realized_by)
    assert second.portfolio.cost == pytest.approx(first.portfolio.cost)
    for a, b in zip(first.legs, second.legs, strict=True):
        assert b.core.driver.held == a.core.driver.held
        np.testing.assert_array_equal(b.core.driver.state, a.core.driver.state)
    assert list(second.oms.orders) == list(first.oms.orders)
    assert second.oms.next_client_id() == f"tl-{len(first.oms.orders) + 1}"
    # a journal of these symbols does not resume on others
    other = RunConfig(**{**first.cfg.__dict__, "symbols": ("BTCUSDT",)})
    third = LiveRun(other, symbol_filters("spot", "BTCUSDT", "0.5", "0.001"))
    with pytest.raises(Exception, match="cannot resume on BTCUSDT"):
        asyncio.run(third._resume_and_reconcile())


def test_each_symbol_lands_in_its_own_store_partition_once(tmp_path):
    stream = _stream(RISING_THEN_FALLING)
    run = _run(tmp_path)
    _feed(run, "BTCUSDT", stream)
    _feed(run, "ETHUSDT", stream[:ENTRY_ROWS])
    run.kill("test")
    run._snapshot_pnl()
    run.journal.close()
    store = tmp_path / "store"
    journal = run.cfg.run_dir / "journal.log"
    for _ in range(2):  # exporting twice stores every row once
        counts = {s: persist_journal(journal, store, "multi", "spot", s) for s in SYMS}
    recs = read_log(journal)
    n_fills = {s: sum(1 for r in recs if r["type"] == "execution" and r["symbol"] == s)
               for s in SYMS}
    assert n_fills["BTCUSDT"] == 2 and n_fills["ETHUSDT"] == 1
    assert counts["BTCUSDT"]["fills"] == 2 and counts["ETHUSDT"]["fills"] == 1
    with Catalog(store) as cat:
        fills = cat.sql("SELECT symbol, count(*) n FROM fills GROUP BY symbol ORDER BY symbol")
        kills = cat.sql("SELECT symbol, count(*) n FROM risk_events WHERE kind = 'kill' "
                        "GROUP BY symbol ORDER BY symbol")
        pos = cat.sql("SELECT symbol, position FROM pnl ORDER BY symbol")
    assert fills["n"].tolist() == [2, 1]
    assert kills["n"].tolist() == [1, 1]  # the run-wide kill stopped both symbols
    assert pos["position"].tolist() == pytest.approx([run.portfolio.positions["BTCUSDT"],
                                                      run.portfolio.positions["ETHUSDT"]])
    s = run.summary()
    assert s["symbols"] == list(SYMS) and set(s["legs"]) == set(SYMS)
    assert s["legs"]["BTCUSDT"]["fills"] == 2 and s["legs"]["ETHUSDT"]["fills"] == 1
    assert s["counters"]["fills"] == 3  # the run's recorder pools its symbols'
    assert s["positions"] == run.portfolio.positions and "position" not in s
    assert s["realized_pnl"] == pytest.approx(sum(v["realized_pnl"]
                                                  for v in s["legs"].values()))


def test_the_portfolio_values_a_position_without_a_mark_at_cost():
    p = Portfolio()
    p.book("BTCUSDT", "BUY", Execution("1", qty=_d("2"), price=_d("100"), fee=_d("0.1"),
                                       fee_asset="USDT", ts_ns=0, maker=False))
    p.book("ETHUSDT", "SELL", Execution("2", qty=_d("1"), price=_d("50"), fee=_d("0"),
                                        fee_asset="USDT", ts_ns=0, maker=False))
    assert p.equity(1000.0) == pytest.approx(1000.0 - 0.1)  # no marks yet: no made-up loss
    p.marks.update({"BTCUSDT": 101.0, "ETHUSDT": 49.0})
    assert p.unrealized("BTCUSDT") == pytest.approx(2.0)
    assert p.unrealized("ETHUSDT") == pytest.approx(1.0)
    assert p.equity(1000.0) == pytest.approx(1000.0 - 0.1 + 3.0)
    assert p.exposure() == pytest.approx(2 * 101.0 + 49.0)
    closed = p.book("ETHUSDT", "BUY", Execution("3", qty=_d("1"), price=_d("48"), fee=_d("0"),
                                                fee_asset="USDT", ts_ns=1, maker=False))
    assert closed == pytest.approx(2.0) and p.realized_by["ETHUSDT"] == pytest.approx(2.0)
    assert p.positions["ETHUSDT"] == 0.0 and p.realized == pytest.approx(2.0)


def _d(x: str):
    from decimal import Decimal

    return Decimal(x)


@pytest.mark.parametrize("argv, message", [
    (["--symbols", "BTCUSDT,ETHUSDT", "--units", "1"], "with several symbols give "
     "--notional-usdt"),
    (["--symbols", "BTCUSDT,BTCUSDT"], "names a symbol twice"),
])
def test_the_command_refuses_what_a_multi_symbol_run_cannot_mean(argv, message, capsys):
    assert main_paper(["--strategy", "ma_crossover", "--force", *argv]) == 1
    assert message in capsys.readouterr().err


def test_a_run_resumes_only_as_what_it_traded(tmp_path):
    first = _run(tmp_path)
    asyncio.run(first._resume_and_reconcile())  # writes the start record
    first.journal.close()
    for change, message in (({"params": {**MOM, "threshold": 0.001}}, "with parameters"),
                            ({"strategy": "ma_crossover", "params": {"fast": 2, "slow": 4}},
                             "with strategy momentum")):
        run = _run(tmp_path, **change)
        with pytest.raises(Exception, match=message):
            asyncio.run(run._resume_and_reconcile())
        run.journal.close()


def test_the_summary_lists_the_runner_and_position_state_transitions(tmp_path):
    run = _run(tmp_path, CLOSE_ALL_AT_1)
    stream = _stream(RISING_THEN_FALLING)
    _feed(run, "BTCUSDT", stream[:ENTRY_ROWS], one_by_one=True)
    _feed(run, "ETHUSDT", stream[:ENTRY_ROWS], one_by_one=True)
    _feed(run, "BTCUSDT", stream[ENTRY_ROWS:])
    _feed(run, "ETHUSDT", stream[ENTRY_ROWS:])
    run.journal.close()
    moves = [(t["subject"], t["from"], t["to"]) for t in run.summary()["state_transitions"]]
    # each symbol went long, the guard halted the run, the flattening made both flat
    assert moves.count(("BTCUSDT", "flat", "long")) == 1
    assert moves.count(("ETHUSDT", "flat", "long")) == 1
    assert ("runner", "running", "halted") in moves
    assert moves.index(("runner", "running", "halted")) > moves.index(("ETHUSDT", "flat",
                                                                        "long"))
    assert ("BTCUSDT", "long", "flat") in moves and ("ETHUSDT", "long", "flat") in moves


def test_stale_data_cancels_and_the_next_event_resumes(tmp_path):
    risk = LOOSE.model_copy(update={"orders": LOOSE.orders.model_copy(
        update={"stale_after_s": 2.0})})
    run = _run(tmp_path, risk)
    stream = _stream(RISING_THEN_FALLING)
    _feed(run, "BTCUSDT", stream[:12])  # the book only
    for ev in run.risk.check_stale(int(stream["local_ts"][11]) + 3 * S):
        run.core._risk_event(ev)
    assert run.state == "stale" and run.risk.stale
    _feed(run, "ETHUSDT", stream[:1])  # data again (any symbol: the feed is one connection)
    assert run.state == "running" and not run.risk.stale
    run.journal.close()
    kinds = [r["kind"] for r in _risk(run)]
    assert kinds[-2:] == ["stale", "resume"]


def test_store_run_writes_a_killed_runs_journal_once(tmp_path):
    from typer.testing import CliRunner

    from tradelab.cli import app

    run = _run(tmp_path)
    asyncio.run(run._resume_and_reconcile())  # the start record: run id, market, symbols
    stream = _stream(RISING_THEN_FALLING)
    _feed(run, "BTCUSDT", stream)
    _feed(run, "ETHUSDT", stream[:ENTRY_ROWS])
    run.journal.close()  # ... and the process died here: nothing reached the store
    store = tmp_path / "store"
    cli = CliRunner()
    for _ in range(2):
        r = cli.invoke(app, ["store-run", str(run.cfg.run_dir), "--store", str(store)])
        assert r.exit_code == 0, r.output
    assert "BTCUSDT: 2 orders, 2 fills" in r.output
    with Catalog(store) as cat:
        fills = cat.sql("SELECT symbol, count(*) n FROM fills WHERE run_id = 'multi' "
                        "GROUP BY symbol ORDER BY symbol")
    assert fills["n"].tolist() == [2, 1]
    r = cli.invoke(app, ["store-run", str(tmp_path / "nothing"), "--store", str(store)])
    assert r.exit_code != 0 and "not a runner's run directory" in r.output
