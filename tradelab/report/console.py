"""Console tables: the human-readable form of quality reports, sweeps and walk-forwards.

Used by the ``tradelab`` command and the demo. Each printer takes the ``rich`` console to print
on; without one it prints on stdout (140 columns wide when stdout is not a terminal, so tables
stay readable in logs and CI output).
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table


def default_console() -> Console:
    """Stdout, 140 columns wide when it is not a terminal."""
    return Console(width=None if sys.stdout.isatty() else 140)


def print_quality(
    report: dict, show_all: bool = False, limit: int = 40, console: Console | None = None
) -> None:
    """Human-readable quality report (used by ``quality`` and the demo)."""
    console = console or default_console()
    parts = report["partitions"]
    by_table = Table(title="store summary")
    for col in ("table", "partitions", "rows", "span", "with issues"):
        by_table.add_column(col, justify="right" if col != "table" else "left")
    for t in sorted({p["table"] for p in parts}):
        ps = [p for p in parts if p["table"] == t]
        lo = min(p["date"] for p in ps)
        hi = max(p["date"] for p in ps)
        by_table.add_row(
            t,
            f"{len(ps):,}",
            f"{sum(p['rows'] for p in ps):,}",
            lo if lo == hi else f"{lo} .. {hi}",
            f"{sum(1 for p in ps if p['issues']):,}",
        )
    console.print(by_table)
    shown = parts if show_all else [p for p in parts if p["issues"]]
    if shown:
        tbl = Table(title="partitions" + ("" if show_all else " with issues"))
        for col in ("table", "exchange", "symbol", "date", "rows", "span s", "issues"):
            tbl.add_column(col, overflow="fold")
        for p in shown[:limit]:
            tbl.add_row(
                p["table"],
                p["exchange"],
                p["symbol"],
                p["date"],
                f"{p['rows']:,}",
                f"{p['span_s']:.0f}",
                "; ".join(p["issues"]) or "-",
            )
        console.print(tbl)
        if len(shown) > limit:
            console.print(f"... and {len(shown) - limit} more (use --json for all)")
    rej = report["imports"]["rejects"]
    if rej:
        console.print(
            "[yellow]rejected input lines:[/] "
            + ", ".join(f"{k}: {v:,}" for k, v in sorted(rej.items()))
        )
    s = report["summary"]
    console.print(
        f"{s['partitions']:,} partitions, {s['partitions_with_issues']:,} with issues, "
        f"{s['rejected_lines']:,} rejected input lines"
    )


def print_sweep(r, top: int = 10, console: Console | None = None) -> None:
    """The best sets, the scores and the bias checks of one sweep result."""
    console = console or default_console()
    from tradelab import strategies

    names = list(strategies.get(r.config.strategy).Params.names())
    tbl = Table(title=f"{r.config.strategy} on {r.config.exchange} {r.symbol}: best {top} of "
                      f"{r.n_sets:,} sets by {r.config.select_by}")
    for col in ["set_id", *names, "sharpe", "total_return", "max_drawdown", "n_trades",
                "hit_rate", "profit_factor", "exposure", "turnover", "fees_paid"]:
        tbl.add_column(col, justify="right")
    for _, row in r.best.head(top).iterrows():
        cells = [str(int(row["set_id"]))] + [f"{row[n]:g}" for n in names]
        cells += [f"{row['sharpe']:.2f}", f"{row['total_return']:.1%}",
                  f"{row['max_drawdown']:.1%}", f"{row['n_trades']:.0f}",
                  f"{row['hit_rate']:.1%}", f"{row['profit_factor']:.2f}",
                  f"{row['exposure']:.0%}", f"{row['turnover']:.0f}", f"{row['fees_paid']:.1%}"]
        tbl.add_row(*cells)
    console.print(tbl)
    s = r.scores
    line = (f"trials in family {s['family']!r}: {s['n_trials']:,} "
            f"({s['n_trials_this_run']:,} in this run)")
    if "dsr" in s:
        line += f" | best set: PSR {s['psr']:.3f}, Deflated Sharpe {s['dsr']:.3f}"
    if "pbo" in s:
        line += f" | PBO {s['pbo']:.2f} ({s['pbo_n_splits']} splits)"
    console.print(line)
    la, wu = r.bias.get("lookahead", {}), r.bias.get("warmup", {})
    if la:
        console.print(f"look-ahead check: {'ok' if la['ok'] else 'FAILED'} on {la['sets']} sets "
                      f"cut at {la['cuts']}" + ("" if la["ok"] else f": {la['violations']}"))
    if wu:
        if wu.get("ok") is None:
            console.print(f"warm-up check: {wu.get('detail', 'not applicable')}")
        else:
            console.print(f"warm-up check: {'ok' if wu['ok'] else 'DEPENDS ON HISTORY'}: "
                          f"{wu['agreement_after_warmup']:.4%} of targets agree after "
                          f"{wu['warmup_bars']} bars with {wu['history_bars_added']} bars of "
                          "extra history")
    t = r.timings
    console.print(f"{t['sets']:,} sets x {t['bars']:,} bars in {t['sweep_s']:.1f} s "
                  f"({t['bar_sets_per_s']:.3g} bar-sets/s); run saved in {r.path}")


def print_walkforward(res: dict, console: Console | None = None) -> None:
    """Windows, stability and scores of a walk-forward."""
    console = console or default_console()
    w = res["windows"]
    params = [c for c in w.columns if c.startswith("param_")]
    tbl = Table(title=f"walk-forward of {res['run_id']}: train {res['train']}, test "
                      f"{res['test']}, {'anchored' if res['anchored'] else 'rolling'}")
    for col in ["window", "test from", "chosen set", *[p[6:] for p in params], "IS metric",
                "OOS metric"]:
        tbl.add_column(col, justify="right")
    for i, row in w.iterrows():
        start = row.get("test_first", row.get("test_start"))
        tbl.add_row(str(i), str(start)[:10], str(row["chosen_set_id"]),
                    *[f"{row[p]:g}" for p in params], f"{row['is_metric']:.3f}",
                    f"{row['oos_metric']:.3f}")
    console.print(tbl)
    s, m = res["scores"], res["summary"]
    console.print(f"stitched OOS: {s['oos_periods']} periods, total return "
                  f"{s['oos_total_return']:.1%}, annualized Sharpe "
                  f"{s['oos_sharpe_annualized']:.2f}; IS metric mean {m['is_metric_mean']:.3f} "
                  f"-> OOS {m['oos_metric_mean']:.3f} (efficiency {m['efficiency']:.2f}); "
                  f"{m['n_changes']} changes of the chosen set")
    if "oos_dsr" in s:
        console.print(f"OOS PSR {s['oos_psr']:.3f}; Deflated Sharpe {s['oos_dsr']:.3f} counting "
                      f"all {s['n_trials']:,} trials of {s['family']!r}")
    stab = res["stability"]
    if isinstance(stab, dict):
        console.print("parameter stability (mean absolute change per window, as a share of the "
                      "grid's range): " + ", ".join(
                          f"{k}: {v['mean_abs_change_norm']:.2f}" for k, v in stab.items()
                          if isinstance(v, dict) and v.get("mean_abs_change_norm") is not None))
