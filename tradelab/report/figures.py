"""Plotly figures and frames for the research notebooks (the notebooks only call and draw).

Each function takes a store (and a run id where it reads a saved run) and returns a plotly
``Figure`` or a pandas frame; nothing here prints or writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tradelab.backtest.runs import RunStore

TEMPLATE = "plotly_white"


# -- runs ---------------------------------------------------------------------------------------


def latest_run(store: Path, strategy: str | None = None, kind: str = "sweep") -> str:
    """The newest saved run of ``kind`` (``sweep`` or ``event``), of ``strategy`` if given."""
    runs = RunStore(store)
    for rid in reversed(runs.list_runs()):
        rep = json.loads((runs.root / rid / "report.json").read_text())
        if (rep.get("kind") == "event") != (kind == "event"):
            continue
        cfg = json.loads((runs.root / rid / "config.json").read_text())
        if strategy is None or strategy in (cfg.get("strategy"), cfg.get("family")):
            return rid
    raise FileNotFoundError(
        f"no {kind} run{' of ' + strategy if strategy else ''} under "
        f"{runs.root}: run `tradelab sweep` (or `make demo`) first"
    )


def run_files(store: Path, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A saved run's (report.json, config.json)."""
    folder = RunStore(store).root / run_id
    if not (folder / "report.json").exists():
        raise FileNotFoundError(f"no run {run_id!r} under {folder.parent}")
    return (
        json.loads((folder / "report.json").read_text()),
        json.loads((folder / "config.json").read_text()),
    )


# -- data tour ----------------------------------------------------------------------------------


def catalog_summary(store: Path) -> pd.DataFrame:
    """Partitions per table/exchange/symbol: first and last day, days, megabytes."""
    from tradelab.store import Catalog

    parts = Catalog(store).partitions()
    return (
        parts.groupby(["table", "exchange", "symbol"])
        .agg(
            first=("date", "min"),
            last=("date", "max"),
            days=("date", "count"),
            mb=("bytes", lambda b: round(b.sum() / 1e6, 3)),
        )
        .reset_index()
    )


def quality_frame(store: Path) -> pd.DataFrame:
    """One row per partition of the quality report: rows and the issues found."""
    from tradelab.store.quality import quality_report

    rep = quality_report(store)
    return pd.DataFrame(
        [
            {
                "table": p["table"],
                "exchange": p.get("exchange"),
                "symbol": p.get("symbol"),
                "date": p.get("date"),
                "rows": p.get("rows"),
                "issues": "; ".join(p.get("issues") or []),
            }
            for p in rep["partitions"]
        ]
    )


def bars_figure(store: Path, exchange: str, symbol: str, interval: str) -> go.Figure:
    """Candles and volume."""
    from tradelab.store import Catalog

    bars = Catalog(store).bars(exchange, symbol, interval)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03
    )
    fig.add_trace(
        go.Candlestick(
            x=bars.index,
            open=bars.open,
            high=bars.high,
            low=bars.low,
            close=bars.close,
            name=symbol,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(go.Bar(x=bars.index, y=bars.volume, name="volume"), row=2, col=1)
    fig.update_layout(
        height=550,
        xaxis_rangeslider_visible=False,
        showlegend=False,
        title=f"{exchange} {symbol} {interval} ({bars.attrs.get('source', '')})",
        template=TEMPLATE,
    )
    return fig


def trades_figure(store: Path, exchange: str, symbol: str, limit: int = 20_000) -> go.Figure:
    """The first ``limit`` trades: price by taker side, size as marker area."""
    from tradelab.store import Catalog

    cat = Catalog(store)
    src = cat.source("trades", exchange, symbol)
    tr = cat.sql(
        f"SELECT ts, price, qty, CAST(side AS VARCHAR) AS side FROM {src} "
        f"ORDER BY ts LIMIT {int(limit)}"
    )
    fig = go.Figure()
    for side, color in (("buy", "seagreen"), ("sell", "crimson")):
        t = tr[tr["side"] == side]
        fig.add_trace(
            go.Scattergl(
                x=pd.to_datetime(t["ts"], unit="ns", utc=True),
                y=t["price"],
                mode="markers",
                name=f"taker {side}",
                marker={
                    "color": color,
                    "size": 3 + 6 * np.sqrt(t["qty"] / max(float(tr["qty"].max()), 1e-12)),
                },
            )
        )
    fig.update_layout(
        height=400, title=f"{exchange} {symbol}: first {len(tr):,} trades", template=TEMPLATE
    )
    return fig


def book_figure(store: Path, exchange: str, symbol: str, every: str = "1s") -> go.Figure:
    """Mid and spread of the book rebuilt from the stored deltas (sampled every ``every``)."""
    from tradelab.store import Catalog

    snaps = Catalog(store).book_snapshots(exchange, symbol, levels=5, every=every)
    mid = (snaps.bid_px_0 + snaps.ask_px_0) / 2
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    fig.add_trace(go.Scatter(x=snaps.index, y=mid, name="mid"), row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=snaps.index, y=(snaps.ask_px_0 - snaps.bid_px_0) / mid * 1e4, name="spread (bps)"
        ),
        row=2,
        col=1,
    )
    fig.update_layout(height=450, template=TEMPLATE, title=f"{exchange} {symbol}: rebuilt book")
    return fig


# -- sweep --------------------------------------------------------------------------------------


def sweep_metrics(store: Path, run_id: str) -> tuple[pd.DataFrame, list[str]]:
    """The run's per-set metrics and the names of its swept parameters (more than one value)."""
    from tradelab import strategies

    _, cfg = run_files(store, run_id)
    metrics = RunStore(store).load(run_id)["metrics"]
    names = [
        n
        for n in strategies.get(cfg["strategy"]).Params.names()
        if n in metrics and metrics[n].nunique() > 1
    ]
    return metrics, names


def sweep_heatmaps(store: Path, run_id: str, metric: str = "sharpe") -> list[go.Figure]:
    """One heatmap of ``metric`` (best over the other parameters) per pair of swept parameters."""
    metrics, names = sweep_metrics(store, run_id)
    figs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pv = metrics.pivot_table(index=a, columns=b, values=metric, aggfunc="max")
            fig = go.Figure(
                go.Heatmap(
                    z=pv.to_numpy(),
                    x=[str(c) for c in pv.columns],
                    y=[str(r) for r in pv.index],
                    colorscale="RdYlGn",
                    colorbar={"title": metric},
                )
            )
            fig.update_layout(
                title=f"{metric}: {a} x {b} (best over the others)",
                xaxis_title=b,
                yaxis_title=a,
                height=420,
                template=TEMPLATE,
            )
            figs.append(fig)
    return figs


def sharpe_distribution(store: Path, run_id: str) -> go.Figure:
    """Histogram of the annualised Sharpe across every set, the chosen set marked."""
    rep, _ = run_files(store, run_id)
    metrics, _ = sweep_metrics(store, run_id)
    fig = go.Figure(go.Histogram(x=metrics["sharpe"], nbinsx=40, name="sets"))
    best = rep["scores"]["best"]["sharpe"]
    fig.add_vline(
        x=best, line_dash="dash", line_color="crimson", annotation_text=f"chosen {best:.2f}"
    )
    fig.update_layout(
        title=f"Sharpe across {len(metrics)} sets",
        xaxis_title="Sharpe (ann.)",
        height=380,
        template=TEMPLATE,
    )
    return fig


def scores_frame(store: Path, run_id: str) -> pd.DataFrame:
    """The run's scores and bias checks as one two-column table."""
    rep, _ = run_files(store, run_id)
    sc, bias = rep["scores"], rep.get("bias") or {}
    rows = {
        "family": sc["family"],
        "trials in family": sc["n_trials"],
        "sets in this run": sc["n_trials_this_run"],
        "chosen set": sc["best_set_id"],
        "chosen params": json.dumps(sc["best_params"]),
        "Sharpe": sc["best"]["sharpe"],
        "trades": sc["best"]["n_trades"],
        "max drawdown": sc["best"]["max_drawdown"],
        "PSR": sc.get("psr"),
        "DSR (all trials)": sc.get("dsr"),
        "PBO": sc.get("pbo"),
        "look-ahead ok": (bias.get("lookahead") or {}).get("ok"),
        "warm-up ok": (bias.get("warmup") or {}).get("ok"),
    }
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows))


# -- walk-forward -------------------------------------------------------------------------------


def walkforward(store: Path, run_id: str, train: int = 48, test: int = 12) -> dict[str, Any]:
    """The run's walk-forward (computed and saved beside the run when missing)."""
    from tradelab.backtest.vector.walkforward import walk_forward_run

    return walk_forward_run(run_id, train, test, store=store)


def is_oos_equity(store: Path, run_id: str, wf: dict[str, Any]) -> go.Figure:
    """Equity of the in-sample chosen set over the whole run, and the stitched OOS equity."""
    rep, _ = run_files(store, run_id)
    prets = RunStore(store).load(run_id)["period_returns"]
    best = prets[rep["scores"]["best_set_id"]].fillna(0.0)
    oos = wf["oos_returns"]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=best.index, y=(1 + best).cumprod(), name="best set, full run (in-sample choice)"
        )
    )
    fig.add_trace(
        go.Scatter(
            # the walk-forward indexes OOS returns by period position: back to times
            x=oos.index if oos.index.dtype.kind == "M" else prets.index[oos.index.to_numpy()],
            y=(1 + oos.fillna(0.0)).cumprod(),
            name="walk-forward OOS",
        )
    )
    fig.update_layout(
        title="equity: in-sample choice vs stitched out-of-sample",
        height=420,
        template=TEMPLATE,
        yaxis_title="growth of 1",
    )
    return fig


def chosen_params_figure(wf: dict[str, Any]) -> go.Figure:
    """The parameters chosen in each window (one line per parameter)."""
    w = wf["windows"]
    cols = [c for c in w.columns if c.startswith("param_")]
    fig = make_subplots(
        rows=len(cols) or 1, cols=1, shared_xaxes=True, subplot_titles=[c[6:] for c in cols]
    )
    for i, c in enumerate(cols):
        fig.add_trace(
            go.Scatter(x=w.index, y=w[c], mode="lines+markers", name=c[6:]), row=i + 1, col=1
        )
    fig.update_layout(
        title="chosen parameters per window",
        height=150 + 160 * len(cols),
        showlegend=False,
        template=TEMPLATE,
    )
    return fig


def pbo_logits(store: Path, run_id: str) -> tuple[float, np.ndarray]:
    """PBO of the run recomputed by CSCV with the logits of every split."""
    from tradelab.validate import pbo

    prets = RunStore(store).load(run_id)["period_returns"]
    finite = prets.loc[:, np.isfinite(prets.to_numpy()).all(axis=0)]
    n = len(finite)
    res = pbo(finite.to_numpy(), n_splits=min(16, n - n % 2))
    return float(res.pbo), np.asarray(res.logits, dtype=float)


def pbo_histogram(store: Path, run_id: str) -> go.Figure:
    """Histogram of the CSCV logits; the mass left of 0 is the PBO."""
    p, logits = pbo_logits(store, run_id)
    fig = go.Figure(go.Histogram(x=logits[np.isfinite(logits)], nbinsx=30))
    fig.add_vline(x=0.0, line_dash="dash", line_color="crimson")
    fig.update_layout(
        title=f"CSCV logits (PBO = {p:.2f}: share left of 0)",
        height=360,
        xaxis_title="logit of the IS-best set's OOS rank",
        template=TEMPLATE,
    )
    return fig


# -- event backtest -----------------------------------------------------------------------------


def event_frames(store: Path, run_id: str) -> dict[str, Any]:
    """A saved event run's fills, orders, equity and report."""
    import pyarrow.parquet as pq

    folder = RunStore(store).root / run_id
    rep, _ = run_files(store, run_id)
    if rep.get("kind") != "event":
        raise ValueError(f"run {run_id} is not an event backtest")
    out: dict[str, Any] = {"report": rep}
    for name in ("fills", "orders", "equity"):
        out[name] = pq.read_table(folder / f"{name}.parquet").to_pandas()
    return out


def fills_on_book(ev: dict[str, Any]) -> go.Figure:
    """Mid price with every fill (buys and sells, maker and taker) and the inventory."""
    eq, fl = ev["equity"], ev["fills"]
    t = pd.to_datetime(eq["ts"], unit="ns", utc=True)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    fig.add_trace(go.Scatter(x=t, y=eq["mid"], name="mid", line={"color": "grey"}), row=1, col=1)
    for side, name, color in ((1, "buy", "seagreen"), (-1, "sell", "crimson")):
        f = fl[fl["side"] == side]
        fig.add_trace(
            go.Scatter(
                x=pd.to_datetime(f["local_ts"], unit="ns", utc=True),
                y=f["price"],
                mode="markers",
                name=f"{name} fills",
                marker={
                    "color": color,
                    "size": 6,
                    "symbol": np.where(f["liquidity"] == "maker", "circle", "x"),
                },
            ),
            row=1,
            col=1,
        )
    fig.add_trace(go.Scatter(x=t, y=eq["position"], name="inventory"), row=2, col=1)
    fig.update_layout(title="fills on the book and inventory", height=560, template=TEMPLATE)
    return fig


def queue_waits(ev: dict[str, Any]) -> go.Figure:
    """Histogram of the time maker fills waited in the queue."""
    fl = ev["fills"]
    fig = go.Figure(go.Histogram(x=fl.loc[fl["liquidity"] == "maker", "queue_wait_ms"], nbinsx=40))
    fig.update_layout(title="queue wait of maker fills (ms)", height=340, template=TEMPLATE)
    return fig


def pnl_decomposition(ev: dict[str, Any]) -> go.Figure:
    """Total PnL beside its parts: spread captured, fees, funding, adverse selection 1 s / 5 s."""
    pnl = ev["report"]["pnl"]
    keys = [
        "total",
        "spread_captured",
        "fees",
        "funding",
        "adverse_selection_1s",
        "adverse_selection_5s",
    ]
    vals = [pnl.get(k, np.nan) * (-1 if k in ("fees", "funding") else 1) for k in keys]
    fig = go.Figure(go.Bar(x=keys, y=vals, marker_color=["steelblue"] + ["grey"] * 5))
    fig.update_layout(
        title="PnL decomposition (fees and funding as paid: negative)",
        height=380,
        template=TEMPLATE,
    )
    return fig


# -- promotion ----------------------------------------------------------------------------------


def verdict_frame(verdict: Any) -> pd.DataFrame:
    """A promotion verdict's gates as a table."""
    return pd.DataFrame(
        [
            {
                "gate": g.name,
                "passed": g.passed,
                "value": g.value,
                "needs": f"{g.op} {g.threshold}",
                "reason": g.reason,
            }
            for g in verdict.gates
        ]
    )
