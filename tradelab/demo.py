"""The end-to-end demo behind ``make demo`` (``tradelab demo``).

It needs no keys and no network: a seeded synthetic market is written out in the formats real
data arrives in (freqtrade feather files and a raw Binance websocket recording), imported into a
fresh store by the real importers, checked by the data-quality report, and queried through the
DuckDB catalog. A plotly chart of what landed is written under ``reports/demo/``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.binance_ws import BinanceWsImporter
from tradelab.collect.importers.freqtrade import FreqtradeImporter
from tradelab.store import Catalog
from tradelab.store.quality import quality_report
from tradelab.synth import SynthConfig, generate_market, write_binance_ws, write_freqtrade

SWEPT = "BTC-USDT"
"""The symbol the demo sweeps and promotes; its trades are recorded over the whole market."""


def run_demo(
    workdir: Path = Path(".demo"),
    days: float = 7.0,
    seed: int = 7,
    reports: Path = Path("reports/demo"),
    console: Console | None = None,
    collect_s: float = 20.0,
    paper_s: float = 30.0,
) -> dict:
    """Run every step; returns the figures it printed (for tests). ``collect_s`` seconds of
    live collection from the local venue (0 skips it); ``paper_s`` seconds of paper trading
    (0 skips it)."""
    from tradelab.report.console import print_quality

    con = console or Console()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    store = workdir / "store"
    raw = workdir / "raw"
    for path in (store, raw):
        if path.exists():
            shutil.rmtree(path)
    raw.mkdir(parents=True)

    con.print(Rule("1. a synthetic market"))
    t0 = time.perf_counter()
    cfg = SynthConfig(seed=seed, days=days)
    market = generate_market(cfg)
    timings["generate"] = time.perf_counter() - t0
    con.print(
        f"{days:g} days from {cfg.start}, seed {seed}: "
        + ", ".join(f"{s} {len(market.trades[s]):,} trades" for s in market.symbols)
    )

    con.print(Rule("2. written as real data arrives"))
    t0 = time.perf_counter()
    ft_files = write_freqtrade(market, raw / "freqtrade")
    # the swept symbol's trades over the whole market (the promotion gate replays the swept
    # bars' own trades through the event backtester); the other spot symbols' first 6 h
    others = [s for s in market.spot_symbols if s != SWEPT]
    ws_files = write_binance_ws(market, raw / "binance_ws", symbols=[SWEPT])
    if others:
        ws_files += write_binance_ws(market, raw / "binance_ws", symbols=others, hours=6)
    timings["export"] = time.perf_counter() - t0
    con.print(f"{len(ft_files)} freqtrade feather files under {raw / 'freqtrade'}")
    con.print(
        f"{len(ws_files)} Binance websocket recordings of spot trades and bookTicker under "
        f"{raw / 'binance_ws'}: {SWEPT} over all {days:g} days"
        + (f", {', '.join(others)} over the first 6 h" if others else "")
    )

    con.print(Rule("3. imported into a fresh store"))
    t0 = time.perf_counter()
    run = ImportRun("freqtrade", store, {"directory": str(raw / "freqtrade")})
    ft_reports = FreqtradeImporter(run, "BINANCE").import_dir(raw / "freqtrade")
    run.finish()
    run = ImportRun("binance-ws", store, {"files": [str(f) for f in ws_files]})
    ws_reports = BinanceWsImporter(run).import_files(ws_files)
    run.finish()
    timings["import"] = time.perf_counter() - t0
    imported = Table(title=f"imported into {store}")
    for col in ("source", "files", "status", "rows"):
        imported.add_column(col)
    for label, reps in (("freqtrade", ft_reports), ("binance-ws", ws_reports)):
        rows: dict[str, int] = {}
        for r in reps:
            for k, v in r.rows.items():
                rows[k] = rows.get(k, 0) + v
        imported.add_row(
            label,
            str(len(reps)),
            ", ".join(sorted({r.status for r in reps})),
            ", ".join(f"{k} {v:,}" for k, v in sorted(rows.items())),
        )
    con.print(imported)
    failed = [r for r in ft_reports + ws_reports if r.status != "committed"]
    if failed:
        raise RuntimeError(f"demo import failed: {failed[0].path}: {failed[0].detail}")

    con.print(Rule("4. data quality"))
    t0 = time.perf_counter()
    report = quality_report(store)
    timings["quality"] = time.perf_counter() - t0
    print_quality(report, console=con)

    con.print(Rule("5. catalog queries"))
    t0 = time.perf_counter()
    cat = Catalog(store)
    figures = _queries(cat, market, con)
    timings["queries"] = time.perf_counter() - t0

    con.print(Rule("6. a picture"))
    chart = _chart(cat, reports)
    con.print(f"candles, volume and funding: {chart}")

    con.print(Rule("7. research: a sweep, its statistics, a walk-forward"))
    if days >= 3:
        t0 = time.perf_counter()
        figures.update(_research(store, workdir, market, con))
        timings["research"] = time.perf_counter() - t0
    else:
        con.print("skipped: the sweep needs at least 3 days of market (--days)")

    if collect_s > 0:
        con.print(Rule(f"8. live: the local venue, cryptofeed and ccxt ({collect_s:g} s)"))
        t0 = time.perf_counter()
        figures.update(asyncio.run(_live(store, market, collect_s, seed, con)))
        timings["live"] = time.perf_counter() - t0

    if "sweep" in figures:
        con.print(Rule("9. the nightly: notebooks to offline HTML, then promotion"))
        t0 = time.perf_counter()
        figures.update(_nightly_and_promotion(store, workdir, figures["sweep_run_id"],
                                              reports.parent, con))
        timings["nightly"] = time.perf_counter() - t0

    if paper_s > 0:
        con.print(Rule(f"10. paper trading on the local venue ({paper_s:g} s)"))
        t0 = time.perf_counter()
        figures.update(_paper(workdir, figures.get("promoted"), paper_s, seed, con))
        timings["paper"] = time.perf_counter() - t0

    timings["total"] = time.perf_counter() - t_start
    con.print(Rule("summary"))
    con.print(
        f"imported into {store}: {report['summary']['partitions']:,} partitions, "
        f"{sum(report['summary']['rows'].values()):,} rows; "
        f"{report['summary']['partitions_with_issues']} partitions with issues, "
        f"{report['summary']['rejected_lines']} rejected lines"
    )
    if "sweep" in figures:
        sw, wf = figures["sweep"], figures["walkforward"]
        con.print(f"research: {sw['n_trials_this_run']} sets swept; best set PSR "
                  f"{sw.get('psr', float('nan')):.3f}, Deflated Sharpe "
                  f"{sw.get('dsr', float('nan')):.3f} over {sw['n_trials']} trials, PBO "
                  f"{sw.get('pbo', float('nan')):.2f}; walk-forward OOS Sharpe "
                  f"{wf['oos_sharpe_annualized']:.2f} (DSR {wf.get('oos_dsr', float('nan')):.3f})")
    if "collected_rows" in figures:
        con.print(f"collected live: {sum(figures['collected_rows'].values()):,} rows; "
                  f"backfilled {figures['backfilled_candles']} candles; the rebuilt books agree "
                  "with bookTicker: " + ", ".join(f"{k} {v:.2%}" for k, v in
                                                  figures["book_agreement"].items()))
    con.print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    con.print(
        f'explore it: tradelab sql "SELECT symbol, count(*) FROM trades GROUP BY 1" --store {store}'
    )
    if "paper" in figures:
        p = figures["paper"]
        held = ", ".join(f"{q:.5f} {sym}" for sym, q in p["positions"].items())
        con.print(f"paper: {p['strategy']} ({'promoted' if not p['forced'] else 'forced demo'})"
                  f" {p['fills']} fills, position {held}, realized "
                  f"{p['realized_pnl']:.4f}, equity {p['equity']:.2f} USDT; journal "
                  f"{p['journal']}")
    if "reports_index" in figures:
        con.print(f"reports: {figures['reports_index']}")
    return {"report": report, "timings": timings, **figures}


DEMO_PAPER = ("ma_crossover", ["fast=3", "slow=8"])
"""What the demo trades on paper when nothing was promoted (forced, and recorded as such)."""


def _paper(workdir: Path, promoted: str | None, seconds: float, seed: int,
           con: Console) -> dict:
    """``python -m runners.paper`` for ``seconds`` against a synthetic local venue (both real
    processes): the promoted strategy, or a named demo strategy with ``--force``."""
    import json
    import os
    import subprocess
    import sys
    import urllib.request

    from tradelab.net.ports import free_port_pair

    port = free_port_pair()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), *filter(None, [os.environ.get(
            "PYTHONPATH")])])}
    venue = subprocess.Popen([sys.executable, "-m", "tradelab.cli", "venue", "--synthetic",
                              "--symbols", "BTCUSDT", "--market", "spot", "--seed", str(seed),
                              "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    out = workdir / "paper" / "summary.json"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/venue/status", timeout=1)
                break
            except OSError:
                if time.time() > deadline or venue.poll() is not None:
                    raise RuntimeError("the demo venue did not start") from None
                time.sleep(0.3)
        cmd = [sys.executable, "-m", "runners.paper", "--venue", "local",
               "--venue-address", f"127.0.0.1:{port}", "--duration-s", str(seconds),
               "--interval", "1s", "--out-json", str(out), "--run-dir",
               str(workdir / "paper" / "run"), "--store", str(workdir / "store"),
               "--notional-usdt", "300", "--log-level", "WARNING"]
        if promoted:
            name = Path(promoted).stem
            cmd += ["--strategy", name, "--promoted-dir", str(Path(promoted).parent)]
            con.print(f"trading the promoted {name} on paper (1 s bars for the demo)")
        else:
            name, params = DEMO_PAPER
            cmd += ["--strategy", name, "--force"]
            for p in params:
                cmd += ["--param", p]
            con.print(f"nothing was promoted: trading the demo strategy {name} "
                      f"({', '.join(params)}) with --force (recorded in the run)")
        shutil.rmtree(workdir / "paper", ignore_errors=True)
        con.print("$ python -m runners.paper " + " ".join(cmd[3:]), highlight=False)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                           timeout=seconds + 120)
        if r.returncode != 0:
            raise RuntimeError(f"the paper runner failed:\n{r.stdout[-2000:]}"
                               f"\n{r.stderr[-2000:]}")
    finally:
        venue.terminate()
        try:
            venue.wait(10)
        except subprocess.TimeoutExpired:
            venue.kill()
    s = json.loads(out.read_text())
    fills = [(f["qty"], f["price"]) for f in s["fills_detail"]]
    con.print(f"metrics were served at {s['metrics_url']}/metrics; {s['messages']} market "
              f"messages, {s['bars']} bars, {s['orders']} orders, {len(fills)} fills")
    for q, px in fills[:10]:
        con.print(f"  fill {q} @ {px}")
    held = ", ".join(f"{q:.5f} {sym}" for sym, q in s["positions"].items())
    con.print(f"position {held}, realized {s['realized_pnl']:.4f}, "
              f"unrealized {s['unrealized_pnl']:.4f}, fees {s['fees']:.4f}, equity "
              f"{s['equity']:.2f} USDT; exit: {s['exit_reason']}; risk {s['risk']}")
    con.print(f"journal {s['journal']}; its tables are in the store (orders, fills, "
              f"positions, pnl, risk_events) under run {s['run_id']}")
    return {"paper": {"strategy": s["strategy"], "forced": s["forced"], "fills": len(fills),
                      "bars": s["bars"], "orders": s["orders"],
                      "positions": s["positions"], "realized_pnl": s["realized_pnl"],
                      "equity": s["equity"], "journal": s["journal"],
                      "run_id": s["run_id"], "metrics_url": s["metrics_url"]}}


def _queries(cat: Catalog, market, con: Console) -> dict:
    sym = "BTC-USDT"
    h1 = cat.bars("BINANCE", sym, "1h")
    con.print(
        f"[bold]bars('BINANCE', '{sym}', '1h')[/]: {len(h1)} bars resampled from the "
        f"stored {h1.attrs['source'].split(':')[1]} candles; the last three:"
    )
    con.print(h1.drop(columns=["ts"]).tail(3).to_string())

    first_hours = cat.bars("BINANCE", sym, "1m", end=int(h1["ts"].iloc[0]) + 6 * 3600 * 10**9)
    ts0, ts1 = int(first_hours["ts"].iloc[0]), int(first_hours["ts"].iloc[-1]) + 60 * 10**9
    trades_1m = cat.trade_bars("BINANCE", sym, "1m", start=ts0, end=ts1)
    same = bool(
        np.array_equal(
            first_hours[["open", "high", "low", "close"]].to_numpy(),
            trades_1m[["open", "high", "low", "close"]].to_numpy(),
        )
    )
    same = same and len(first_hours) == len(trades_1m)
    con.print(
        f"1m candles imported from freqtrade vs 1m bars rebuilt from the imported "
        f"websocket trades over the first 6 h ({len(trades_1m)} bars): "
        + ("[green]identical[/]" if same else "[red]DIFFERENT[/]")
    )

    s1 = cat.bars("BINANCE", sym, "1s", start=ts0, end=ts0 + 3600 * 10**9)
    con.print(
        f"1s bars from trades for the first hour: {len(s1):,} bars, "
        f"{int(s1['n_trades'].sum()):,} trades"
    )

    fund = cat.funding("BINANCE_FUTURES", f"{sym}-PERP", settled=True)
    ann = fund["rate"].mean() * 3 * 365
    con.print(
        f"funding {sym}-PERP: {len(fund)} settlements, mean {fund['rate'].mean():.2e} per "
        f"8h = {ann:.1%} a year annualised"
    )

    daily = cat.sql(
        "SELECT symbol, CAST(date AS VARCHAR) AS date, round(sum(volume), 2) AS "
        "volume FROM ohlcv WHERE interval = '1m' AND kind = 'trade' "
        "GROUP BY ALL ORDER BY symbol, date LIMIT 6"
    )
    con.print("[bold]cat.sql[/](daily volume from 1m candles):")
    con.print(daily.to_string(index=False))
    return {"bars_1h": len(h1), "trades_match_candles": same, "funding_settlements": len(fund)}


def _chart(cat: Catalog, reports: Path) -> Path:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    h1 = cat.bars("BINANCE", "BTC-USDT", "1h")
    fund = cat.funding("BINANCE_FUTURES", "BTC-USDT-PERP", settled=True)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.6, 0.2, 0.2],
        vertical_spacing=0.03,
        subplot_titles=("BTC-USDT 1h (synthetic)", "volume", "funding rate, 8h"),
    )
    fig.add_trace(
        go.Candlestick(
            x=h1.index, open=h1.open, high=h1.high, low=h1.low, close=h1.close, name="BTC-USDT"
        ),
        row=1,
        col=1,
    )
    fig.add_trace(go.Bar(x=h1.index, y=h1.volume, name="volume"), row=2, col=1)
    fig.add_trace(go.Bar(x=fund.index, y=fund.rate, name="funding"), row=3, col=1)
    fig.update_layout(
        height=800, showlegend=False, xaxis_rangeslider_visible=False, template="plotly_white"
    )
    reports.mkdir(parents=True, exist_ok=True)
    out = reports / "store.html"
    fig.write_html(out, include_plotlyjs=True)  # self-contained: opens offline
    return out


def _research(store: Path, workdir: Path, market, con: Console) -> dict:
    """A Keltner sweep on the synthetic BTC 1m bars (hourly returns for the statistics), then a
    walk-forward over it: the same commands a researcher runs, on the demo's store."""
    import pandas as pd
    import yaml

    from tradelab.backtest.vector.config import load_sweep_config
    from tradelab.backtest.vector.engine import run_sweep
    from tradelab.backtest.vector.walkforward import walk_forward_run
    from tradelab.report.console import print_sweep, print_walkforward

    # the first day stays before the start, so the warm-up check has history to compare with
    start = pd.Timestamp(market.start_ns + 86_400 * 10**9, unit="ns", tz="UTC")
    end = pd.Timestamp(market.end_ns, unit="ns", tz="UTC")
    cfg_path = workdir / "sweep_keltner.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": "demo_keltner", "strategy": "keltner_breakout", "exchange": "BINANCE",
        "symbols": [SWEPT], "start": str(start), "end": str(end), "interval": "1m",
        "grid": {"ema_period": [20, 40, 80, 160, 320], "atr_period": [14, 60],
                 "k": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
        "fees": {"taker": 0.0004}, "execution": "next_open", "period": "1h", "top_n": 10}))
    con.print(f"tradelab sweep --config {cfg_path} --store {store}")
    (res,) = run_sweep(load_sweep_config(cfg_path), store)
    print_sweep(res, top=5, console=con)
    con.print(f"tradelab walkforward {res.run_id} --train 48 --test 12 --store {store}")
    wf = walk_forward_run(res.run_id, train=48, test=12, store=store)
    print_walkforward(wf, console=con)
    return {"sweep": res.scores, "walkforward": wf["scores"], "sweep_run_id": res.run_id}


def _nightly_and_promotion(store: Path, workdir: Path, run_id: str, reports: Path,
                           con: Console) -> dict:
    """configs/nightly.yaml's jobs on the demo store (reports under ``reports``), then
    ``tradelab promote`` on the sweep: a promoted config only if every gate passes."""
    from tradelab.report.nb import PROJECT_ROOT
    from tradelab.report.nightly import load_nightly_config, run_nightly
    from tradelab.report.promotion import evaluate, load_promotion_config, write_promoted

    cfg = load_nightly_config(PROJECT_ROOT / "configs" / "nightly.yaml").model_copy(
        update={"store": store.resolve(), "out": reports.resolve()})
    con.print(f"tradelab nightly --config configs/nightly.yaml --store {store}: "
              f"{len(cfg.jobs)} jobs, {cfg.parallel} at once")

    def progress(name: str, state: str) -> None:
        if state != "queued":
            con.print(f"  {name}: {state}", highlight=False)

    summary = run_nightly(cfg, progress=progress)
    for r in summary["jobs"]:
        if r["status"] != "ok":
            con.print(f"  [red]{r['name']} failed:[/] {r['error']}", highlight=False)
    con.print(f"nightly: {summary['ok']} ok, {summary['failed']} failed in "
              f"{summary['seconds']:.1f} s")
    pcfg = load_promotion_config(PROJECT_ROOT / "configs" / "promotion.yaml")
    verdict = evaluate(run_id, store, pcfg)
    con.print(f"tradelab promote {verdict.strategy} --run {run_id} --store {store}")
    for g in verdict.gates:  # the agreement gate replays the swept bars' stored trades
        con.print(f"  {'PASS' if g.passed else 'FAIL'} {g.line()}", highlight=False)
    promoted = None
    if verdict.passed:
        promoted = write_promoted(verdict, store, pcfg, workdir / "promoted")
        con.print(f"[green]promoted[/] {verdict.strategy}: {promoted}")
    else:
        con.print(f"[bold]nothing promoted[/]: {verdict.strategy} ({run_id}) failed "
                  f"{len(verdict.failed)} of {len(verdict.gates)} gates: "
                  + ", ".join(g.name for g in verdict.failed), highlight=False)
    return {"nightly": {"ok": summary["ok"], "failed": summary["failed"],
                        "seconds": summary["seconds"]},
            "promotion": verdict.as_dict(), "promoted": str(promoted) if promoted else None,
            "reports_index": summary["index"]}


async def _live(store: Path, market, seconds: float, seed: int, con: Console) -> dict:
    """The venue serves a zero-intelligence order flow for BTC/ETH spot and USD-M (and the
    synthetic candles as REST history); the real cryptofeed collector records it into the store
    for ``seconds``; ccxt backfills a day of candles from the same venue."""
    import logging

    from tradelab.collect.backfill import Backfill
    from tradelab.collect.collector import Collector
    from tradelab.collect.config import parse_config
    from tradelab.venue.core import Venue
    from tradelab.venue.history import History
    from tradelab.venue.run import synthetic_source
    from tradelab.venue.server import start_venue

    for name in ("feedhandler", "tradelab.venue", "tradelab.backfill"):
        logging.getLogger(name).setLevel(logging.WARNING)
    history = History()
    history.load_synth(market)
    venue = Venue(synthetic_source(["BTCUSDT", "ETHUSDT"], ["spot", "usdm"], seed), history,
                  speed=1.0, wait_clients=2)
    rv = await start_venue(venue)
    con.print(f"venue on 127.0.0.1:{rv.port} (TLS {rv.tls_port}): "
              + ", ".join(f"{m}:{s}" for m, s in venue.instruments))
    feeds = []
    for ex, mkt, syms, chans in (
            ("BINANCE", "spot", ["BTC-USDT", "ETH-USDT"], ["l2_book", "trades", "bbo"]),
            ("BINANCE_FUTURES", "usdm", ["BTC-USDT-PERP", "ETH-USDT-PERP"],
             ["l2_book", "trades", "bbo", "funding", "open_interest"])):
        feeds.append({"exchange": ex, "symbols": syms, "channels": chans,
                      "endpoint": {"websocket": rv.ws_url(mkt), "rest": rv.rest_url}})
    cfg = parse_config({"flush_interval_s": 2, "stats_interval_s": 5, "feeds": feeds})
    collector = Collector(cfg, store=str(store), duration_s=seconds,
                          report=lambda line: con.print(line, highlight=False, markup=False))
    summary = await collector.run(install_signals=False)
    con.print("collected: " + ", ".join(f"{t} {n:,}" for t, n in sorted(summary["rows"].items()))
              + f" in {summary['files']} part files; dropped {sum(summary['dropped'].values())}")

    loop = asyncio.get_running_loop()
    bf = Backfill(store, venue=f"127.0.0.1:{rv.port}", rate_limit_ms=5)
    day0 = int(market.start_ns // 1_000_000)
    rep = await loop.run_in_executor(None, bf.ohlcv, "BTC/USDT", "15m", day0,
                                     day0 + 86_400_000)
    again = await loop.run_in_executor(None, bf.ohlcv, "BTC/USDT", "15m", day0,
                                       day0 + 86_400_000)
    await rv.stop()
    con.print(f"ccxt backfill of BTC/USDT 15m from the venue: {rep.stored} candles in "
              f"{rep.pages} pages; a second run stores {again.stored} (idempotent)")

    cat = Catalog(store)
    agree = {}
    for ex, sym in (("BINANCE", "BTC-USDT"), ("BINANCE_FUTURES", "BTC-USDT-PERP")):
        top = cat.top_of_book(ex, sym)
        top = top[top["valid"]]
        bbo = cat.bbo(ex, sym).sort_values("seq", kind="stable")
        idx = np.searchsorted(bbo["seq"].to_numpy(), top["seq"].to_numpy(), side="right") - 1
        ok = idx >= 0
        same = (top[["bid_px", "ask_px"]].to_numpy()[ok]
                == bbo[["bid_px", "ask_px"]].to_numpy()[idx[ok]]).all(axis=1)
        agree[f"{ex} {sym}"] = float(same.mean()) if len(same) else float("nan")
        con.print(f"{ex} {sym}: the book rebuilt from the stored deltas agrees with the "
                  f"bookTicker stream after {same.mean():.2%} of {len(same)} messages")
    snaps = cat.book_snapshots("BINANCE_FUTURES", "BTC-USDT-PERP", levels=3, every="2s")
    con.print(snaps.dropna().drop(columns=["ts"]).tail(3).to_string())
    return {"collected_rows": summary["rows"], "book_agreement": agree,
            "backfilled_candles": rep.stored}
