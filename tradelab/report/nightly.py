"""The nightly: research notebooks executed with papermill, exported to offline HTML, indexed.

``run_nightly(cfg)`` resolves each job's parameters (``store``; ``run_id: latest`` becomes the
newest sweep of the job's ``strategy``), then runs the jobs in worker processes, at most
``parallel`` at once. A job executes its notebook (papermill), exports it to HTML with the code
hidden and its provenance on top, adds a quantstats tearsheet of the walk-forward's OOS returns
when asked, and computes the run's key figures and promotion verdict. A failing job records its
error (the HTML of the partly executed notebook shows it) and never stops the others. Finally
``<out>/<date>/index.html`` and ``<out>/index.html`` list every job with status, run time, key
figures, verdict, provenance and links.

Provenance "partitions read": for a job on a saved sweep run, the ``ohlcv`` and ``funding``
partitions of the run's exchange and symbols; on a saved event run, every table's partitions
of its exchange and symbol; for a job with ``exchange``/``symbol``
parameters, every table's partitions of that symbol; otherwise the whole store.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tradelab.compute import Backend, ComputeConfig, Job, LocalPool, open_backend
from tradelab.report.nb import PROJECT_ROOT
from tradelab.yamlconfig import load_model


class NightlyJob(BaseModel):
    """One notebook and its parameters."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    notebook: Path
    parameters: dict[str, Any] = {}
    strategy: str | None = None
    """For ``run_id: latest``: the newest sweep of this strategy (else of any)."""
    run_kind: Literal["sweep", "event"] = "sweep"
    """What ``run_id: latest`` means: the newest sweep run or the newest event run."""
    tearsheet: bool = False
    """Add a quantstats tearsheet of the run's walk-forward OOS returns."""


class NightlyConfig(BaseModel):
    """``configs/nightly.yaml``."""

    model_config = ConfigDict(extra="forbid")
    store: Path | None = None
    """None: ``$TRADELAB_STORE``, else the demo store."""
    out: Path = Path("reports")
    parallel: int = Field(default=2, ge=1, le=64)
    timeout_s: int = Field(default=900, gt=0)
    promotion: Path = Path("configs/promotion.yaml")
    compute: ComputeConfig = ComputeConfig()
    """Where the jobs run: the local pool (``parallel`` processes) or a Dask cluster."""
    jobs: list[NightlyJob] = Field(min_length=1)


def load_nightly_config(path: str | Path) -> NightlyConfig:
    """Read and validate a nightly config; relative notebook paths are taken from the project."""
    cfg = load_model(NightlyConfig, path, "nightly config")
    names = [j.name for j in cfg.jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        from tradelab.errors import ConfigError

        raise ConfigError(f"{path}: job names must be unique, repeated: {', '.join(dup)}")
    return cfg


def _abs(p: Path) -> Path:
    return p if p.is_absolute() else (PROJECT_ROOT / p)


# -- one job (runs in a worker process) -----------------------------------------------------------


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Execute one job; never raises (the error is in the result)."""
    import papermill as pm

    t0 = time.perf_counter()
    out_dir = Path(spec["out_dir"])
    executed = out_dir / "notebooks" / f"{spec['name']}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    page = out_dir / f"{spec['name']}.html"
    res: dict[str, Any] = {
        "name": spec["name"],
        "notebook": spec["notebook"],
        "parameters": spec["parameters"],
        "run_id": spec.get("run_id"),
        "status": "ok",
        "error": None,
        "html": page.name,
        "tearsheet": None,
    }
    prov = spec["provenance"]
    if spec.get("error"):  # failed while resolving parameters
        res.update(
            status="failed", error=spec["error"], html=None, seconds=time.perf_counter() - t0
        )
        return res
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    try:
        pm.execute_notebook(
            spec["notebook"],
            str(executed),
            parameters=spec["parameters"],
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            cwd=str(PROJECT_ROOT),
            execution_timeout=spec["timeout_s"],
        )
    except Exception as exc:  # noqa: BLE001 - a failing notebook is a failed job, not a crash
        res.update(status="failed", error=_error_text(exc))
    try:
        from tradelab.report.html import notebook_html

        if executed.exists():
            notebook_html(executed, page, prov, res["error"])
        else:
            res["html"] = None
    except Exception as exc:  # noqa: BLE001
        res.update(
            status="failed",
            html=None,
            error=(res["error"] or "") + f"\nHTML export failed: {_error_text(exc)}",
        )
    if spec.get("run_id"):
        try:
            res.update(run_figures(Path(spec["store"]), spec["run_id"], Path(spec["promotion"])))
        except Exception as exc:  # noqa: BLE001
            res["figures_error"] = _error_text(exc)
        if spec.get("tearsheet"):
            try:
                res["tearsheet"] = _tearsheet(
                    Path(spec["store"]),
                    spec["run_id"],
                    out_dir / f"{spec['name']}_tearsheet.html",
                    prov,
                ).name
            except Exception as exc:  # noqa: BLE001
                res["tearsheet_error"] = _error_text(exc)
    res["seconds"] = time.perf_counter() - t0
    return res


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < 4000 else text[:4000] + " ..."


def run_figures(store: Path, run_id: str, promotion: Path) -> dict[str, Any]:
    """Key figures of a saved sweep run and its promotion verdict."""
    from tradelab.backtest.runs import RunStore
    from tradelab.report.promotion import evaluate, family_dsr, load_promotion_config

    runs = RunStore(store)
    rep = json.loads((runs.root / run_id / "report.json").read_text())
    sc = rep["scores"]
    dsr, n_trials = family_dsr(runs, sc["family"], sc["best"])
    verdict = evaluate(run_id, store, load_promotion_config(promotion))
    wf = json.loads((runs.root / run_id / "walkforward.json").read_text())["scores"]
    return {
        "figures": {
            "oos_sharpe": wf.get("oos_sharpe_annualized"),
            "dsr": dsr,
            "n_trials": n_trials,
            "pbo": sc.get("pbo"),
            "trades": sc["best"].get("n_trades"),
            "max_drawdown": sc["best"].get("max_drawdown"),
        },
        "verdict": {"passed": verdict.passed, "failed": [g.line() for g in verdict.failed]},
    }


def _tearsheet(store: Path, run_id: str, out: Path, prov: dict[str, Any]) -> Path:
    import pandas as pd
    import pyarrow.parquet as pq

    from tradelab.backtest.runs import RunStore
    from tradelab.report.html import tearsheet

    oos = pq.read_table(RunStore(store).root / run_id / "walkforward_oos.parquet").to_pandas()
    if "ts" not in oos:
        raise ValueError(f"run {run_id}: walk-forward OOS returns have no timestamps")
    ts = oos["ts"].to_numpy()
    periods = RunStore(store).load(run_id)["period_returns"].index
    if len(ts) and ts.max() < len(periods):
        # runs saved before the walk-forward wrote timestamps hold row positions of the
        # run's periods in ``ts``; map them to the periods' timestamps
        index = periods[ts]
    else:
        index = pd.to_datetime(ts, unit="ns", utc=True)
    r = pd.Series(oos["ret"].to_numpy(), index=index)
    return tearsheet(r, out, f"{run_id}: walk-forward out-of-sample", prov)


# -- the nightly ----------------------------------------------------------------------------------


def _job_spec(job: NightlyJob, cfg: NightlyConfig, store: Path, out_dir: Path) -> dict[str, Any]:
    from tradelab.report import figures as F
    from tradelab.report.provenance import stamp

    params = dict(job.parameters)
    params["store"] = str(store)
    spec: dict[str, Any] = {
        "name": job.name,
        "notebook": str(_abs(job.notebook)),
        "out_dir": str(out_dir),
        "store": str(store),
        "timeout_s": cfg.timeout_s,
        "tearsheet": job.tearsheet,
        "promotion": str(_abs(cfg.promotion)),
        "run_id": None,
    }
    tables: list[str] | None = None
    exchange = params.get("exchange")
    symbols = [params["symbol"]] if params.get("symbol") else None
    try:
        if not Path(spec["notebook"]).exists():
            raise FileNotFoundError(f"notebook {spec['notebook']} does not exist")
        if params.get("run_id") == "latest":
            params["run_id"] = F.latest_run(store, job.strategy, kind=job.run_kind)
        if params.get("run_id"):
            rep, run_cfg = F.run_files(store, str(params["run_id"]))
            exchange = run_cfg.get("exchange")
            symbols = list(run_cfg.get("symbols") or [rep.get("symbol")])
            if rep.get("kind") != "event":  # a sweep reads bars and funding
                spec["run_id"] = params["run_id"]
                tables = ["ohlcv", "funding"]
    except Exception as exc:  # noqa: BLE001 - shown as this job's error
        spec["error"] = _error_text(exc)
    spec["parameters"] = params
    spec["provenance"] = stamp(
        {"job": job.model_dump(mode="json"), "parameters": params}, store, tables, exchange, symbols
    )
    return spec


def _run_spec(shared: None, spec: dict[str, Any]) -> dict[str, Any]:
    """One job on a worker (the compute layer's calling convention)."""
    return run_job(spec)


def run_nightly(
    cfg: NightlyConfig,
    *,
    date: str | None = None,
    progress: Callable[[str, str], None] | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Run every job; write the indexes; returns the summary (also ``<date>/summary.json``).

    The jobs run on ``backend`` (default: what ``cfg.compute`` names, else a local pool of
    ``cfg.parallel`` processes); on a Dask cluster, the store, the notebooks and ``out`` must
    be on a filesystem the workers share. ``progress(job_name, state)`` is called with
    ``queued`` and the final status."""
    with ExitStack() as stack:
        return _run_nightly(cfg, date, progress, backend, stack)


def _run_nightly(cfg: NightlyConfig, date: str | None,
                 progress: Callable[[str, str], None] | None, backend: Backend | None,
                 stack: ExitStack) -> dict[str, Any]:
    from tradelab.report.nb import resolve_store
    from tradelab.report.provenance import stamp

    t0 = time.perf_counter()
    store = resolve_store(cfg.store)
    date = date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    out_root = _abs(cfg.out)
    out_dir = out_root / date
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = [_job_spec(j, cfg, store, out_dir) for j in cfg.jobs]
    results: list[dict[str, Any]] = []
    for s in specs:
        if progress:
            progress(s["name"], "queued")
    if backend is None and cfg.compute.distributed:
        opened = open_backend(cfg.compute, cfg.parallel)
        backend = stack.enter_context(opened)
    if backend is None:
        backend = LocalPool(min(cfg.parallel, len(specs)))
    # a clean interpreter per local worker (spawn): no inherited threads
    job = Job(_run_spec, name="nightly", start_method="spawn")
    for i, r in backend.run(job, specs, return_exceptions=True):
        s = specs[i]
        if isinstance(r, BaseException):  # a dead worker fails only its job
            r = {
                "name": s["name"],
                "notebook": s["notebook"],
                "status": "failed",
                "error": "".join(traceback.format_exception(r, limit=3)),
                "html": None,
                "seconds": None,
                "parameters": s["parameters"],
                "run_id": s.get("run_id"),
            }
        r["provenance"] = s["provenance"]
        results.append(r)
        if progress:
            progress(s["name"], r["status"])
    order = {s["name"]: i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[r["name"]])
    summary = {
        "date": date,
        "store": str(store),
        "seconds": time.perf_counter() - t0,
        "parallel": cfg.parallel,
        "jobs": results,
        "provenance": stamp(cfg.model_dump(mode="json"), store),
        "ok": sum(r["status"] == "ok" for r in results),
        "failed": sum(r["status"] != "ok" for r in results),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out_dir / "index.html").write_text(index_html(summary, prefix=""))
    (out_root / "index.html").write_text(top_index_html(out_root, summary))
    summary["index"] = str(out_root / "index.html")
    return summary


# -- indexes --------------------------------------------------------------------------------------

_CSS = (
    "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    ".ok{color:#070}.failed{color:#b00;font-weight:bold}.pass{color:#070}"
    ".fail{color:#b00}pre{white-space:pre-wrap;max-width:900px}"
)


def _f(x: Any, fmt: str = "{:.3f}") -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return fmt.format(v) if v == v else "-"


def _rows(summary: dict[str, Any], prefix: str) -> str:
    from tradelab.report.html import provenance_block

    rows = []
    for r in summary["jobs"]:
        fig = r.get("figures") or {}
        ver = r.get("verdict")
        if ver is None:
            verdict = "-"
        elif ver["passed"]:
            verdict = '<span class="pass">PROMOTE</span>'
        else:
            verdict = '<span class="fail">refused</span><br>' + "<br>".join(
                html.escape(x) for x in ver["failed"]
            )
        links = []
        if r.get("html"):
            links.append(f'<a href="{prefix}{r["html"]}">report</a>')
        if r.get("tearsheet"):
            links.append(f'<a href="{prefix}{r["tearsheet"]}">tearsheet</a>')
        err = r.get("error")
        notes = "".join(
            f"<pre>{html.escape(str(r[k]))}</pre>"
            for k in ("figures_error", "tearsheet_error")
            if r.get(k)
        )
        rows.append(
            f"<tr><td>{html.escape(r['name'])}</td>"
            f'<td class="{r["status"]}">{r["status"]}'
            + (f"<pre>{html.escape(err)}</pre>" if err else "")
            + notes
            + "</td>"
            f"<td>{_f(r.get('seconds'), '{:.1f} s')}</td>"
            f"<td>{html.escape(str(r.get('run_id') or '-'))}</td>"
            f"<td>{_f(fig.get('oos_sharpe'), '{:.2f}')}</td><td>{_f(fig.get('dsr'))}</td>"
            f"<td>{_f(fig.get('pbo'), '{:.2f}')}</td><td>{_f(fig.get('trades'), '{:.0f}')}</td>"
            f"<td>{_f(fig.get('max_drawdown'), '{:.1%}')}</td><td>{verdict}</td>"
            f"<td>{' '.join(links) or '-'}</td>"
            f"<td>{provenance_block(r['provenance'], 'provenance')}</td></tr>"
        )
    return "".join(rows)


_HEAD = (
    "<tr><th>job</th><th>status</th><th>run time</th><th>run</th><th>OOS Sharpe</th>"
    "<th>DSR</th><th>PBO</th><th>trades</th><th>max drawdown</th><th>promotion</th>"
    "<th>links</th><th>provenance</th></tr>"
)


def index_html(summary: dict[str, Any], prefix: str = "") -> str:
    """The nightly's index page: one row per job."""
    from tradelab.report.html import provenance_block

    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>tradelab nightly "
        f"{summary['date']}</title><style>{_CSS}</style></head><body>"
        f"<h1>tradelab nightly {summary['date']}</h1>"
        f"<p>{summary['ok']} ok, {summary['failed']} failed, "
        f"{_f(summary['seconds'], '{:.0f} s')} wall time, store "
        f"<code>{html.escape(summary['store'])}</code></p>"
        f"{provenance_block(summary['provenance'], 'nightly provenance')}"
        f"<table>{_HEAD}{_rows(summary, prefix)}</table></body></html>"
    )


def top_index_html(out_root: Path, latest: dict[str, Any]) -> str:
    """``reports/index.html``: the latest nightly's table (links into its folder) and the list
    of every nightly kept under ``reports/``."""
    page = index_html(latest, prefix=f"{latest['date']}/")
    dates = sorted((p.parent.name for p in out_root.glob("*/summary.json")), reverse=True)
    hist = "".join(f'<li><a href="{d}/index.html">{d}</a></li>' for d in dates)
    return page.replace("</body>", f"<h2>every nightly</h2><ul>{hist}</ul></body>")
