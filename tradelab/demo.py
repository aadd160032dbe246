"""The end-to-end demo behind ``make demo`` (``tradelab demo``).

It needs no keys and no network: a seeded synthetic market is written out in the formats real
data arrives in (freqtrade feather files and a raw Binance websocket recording), imported into a
fresh store by the real importers, checked by the data-quality report, and queried through the
DuckDB catalog. A plotly chart of what landed is written under ``reports/demo/``.
"""

from __future__ import annotations

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


def run_demo(
    workdir: Path = Path(".demo"),
    days: float = 7.0,
    seed: int = 7,
    reports: Path = Path("reports/demo"),
    console: Console | None = None,
) -> dict:
    """Run every step; returns the figures it printed (for tests)."""
    from tradelab.cli import print_quality

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
    ws_files = write_binance_ws(market, raw / "binance_ws", hours=6)
    timings["export"] = time.perf_counter() - t0
    con.print(f"{len(ft_files)} freqtrade feather files under {raw / 'freqtrade'}")
    con.print(
        f"{len(ws_files)} Binance websocket recordings (first 6 h of spot trades and "
        f"bookTicker) under {raw / 'binance_ws'}"
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

    timings["total"] = time.perf_counter() - t_start
    con.print(Rule("summary"))
    con.print(
        f"store {store}: {report['summary']['partitions']:,} partitions, "
        f"{sum(report['summary']['rows'].values()):,} rows; "
        f"{report['summary']['partitions_with_issues']} partitions with issues, "
        f"{report['summary']['rejected_lines']} rejected lines"
    )
    con.print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    con.print(
        f'explore it: tradelab sql "SELECT symbol, count(*) FROM trades GROUP BY 1" --store {store}'
    )
    return {"report": report, "timings": timings, **figures}


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
