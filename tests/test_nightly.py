"""Notebooks, the nightly and its offline HTML, on a small store built once per session."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradelab.report import nb
from tradelab.report.html import external_resources, strip_external
from tradelab.report.nightly import NightlyConfig, NightlyJob, run_nightly
from tradelab.report.provenance import partitions_read, stale, stamp, store_hash

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PLOTLY_JS_HEADER = re.compile(r"\* plotly\.js v\d")
NEWPLOT = re.compile(r"Plotly\.newPlot\(\s*\"([0-9a-f-]+)\",\s*(\[.*?\]),\s*\{", re.S)


def plotly_charts(page: str) -> list[tuple[str, list]]:
    """Every ``Plotly.newPlot(id, data, ...)`` in a page with its parsed data list."""
    return [(m.group(1), json.loads(m.group(2))) for m in NEWPLOT.finditer(page)]


# -- provenance and offline HTML (fast) ------------------------------------------------------------


def test_partition_hash_follows_the_files(tmp_path):
    part = tmp_path / "trades" / "exchange=BINANCE" / "symbol=BTC-USDT" / "date=2025-01-01"
    part.mkdir(parents=True)
    (part / "a.parquet").write_bytes(b"x" * 10)
    (part / ".pending.parquet").write_bytes(b"y")  # hidden: not yet visible
    first = partitions_read(tmp_path)
    assert [(p["table"], p["symbol"], p["date"], p["parts"]) for p in first] == [
        ("trades", "BTC-USDT", "2025-01-01", 1)
    ]
    prov = stamp({"k": 1}, tmp_path)
    assert not stale(prov)
    (part / "b.parquet").write_bytes(b"z" * 3)
    assert partitions_read(tmp_path)[0]["hash"] != first[0]["hash"]
    assert stale(prov)
    assert store_hash(first) == store_hash(list(reversed(first)))
    assert prov["git"]["commit"] and len(prov["git"]["commit"]) == 40
    assert prov["packages"]["plotly"] and prov["config"] == {"k": 1}


def test_external_resources_are_found_and_stripped():
    page = (
        '<html><head><script src="https://cdnjs.cloudflare.com/require.min.js"></script>'
        '<link rel="icon" href="https://qtpylib.io/favicon.ico"><script>var a = '
        '"https://plotly.com/";</script></head><body><img src="data:image/png;base64,AA">'
        "</body></html>"
    )
    assert len(external_resources(page)) == 2
    clean = strip_external(page)
    assert external_resources(clean) == [] and '"https://plotly.com/"' in clean


def test_a_notebook_with_widget_state_exports_offline(tmp_path):
    """A widget (DuckDB's progress bar on a slow machine) saved by papermill must not make the
    report load nbconvert's widget renderer from unpkg; the widget's text fallback stays."""
    import nbformat
    from nbconvert import HTMLExporter

    from tradelab.report.html import notebook_html

    view = "application/vnd.jupyter.widget-view+json"
    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("q()")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={view: {"model_id": "m1", "version_major": 2}, "text/plain": "FloatProgress"},
        ),
        nbformat.v4.new_output("stream", name="stdout", text="12 partitions\n"),
    ]
    book.cells.append(cell)
    book.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    raw, _ = HTMLExporter(exclude_input=True).from_notebook_node(book)
    assert any("unpkg.com" in r for r in external_resources(raw))  # the trap is real
    path = tmp_path / "w.ipynb"
    nbformat.write(book, path)
    page = notebook_html(path, tmp_path / "w.html").read_text()
    assert external_resources(page) == []
    assert "FloatProgress" in page and "12 partitions" in page


def test_the_catalog_turns_duckdb_progress_bars_off(tmp_path):
    from tradelab.store.catalog import Catalog

    con = Catalog(tmp_path).con
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)


def test_the_renderer_sends_plotly_js_once_and_data_every_time():
    import plotly.graph_objects as go

    nb.setup()
    a = go.Figure(go.Scatter(y=[1, 2, 3]))._repr_mimebundle_({}, {})
    b = go.Figure(go.Bar(y=[4, 5]))._repr_mimebundle_({}, {})
    assert PLOTLY_JS_HEADER.search(a["text/html"]) and not PLOTLY_JS_HEADER.search(b["text/html"])
    assert plotly_charts(b["text/html"])[0][1][0]["y"] == [4, 5]
    assert b["application/vnd.plotly.v1+json"]["data"][0]["type"] == "bar"


def test_store_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADELAB_STORE", str(tmp_path))
    assert nb.resolve_store(None) == tmp_path.resolve()
    monkeypatch.delenv("TRADELAB_STORE")
    assert nb.resolve_store(tmp_path) == tmp_path.resolve()
    if not nb.DEMO_STORE.exists():
        with pytest.raises(FileNotFoundError, match="make demo"):
            nb.resolve_store(None)


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        doc = json.loads(path.read_text())
        code = [c for c in doc["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path
        if path.name != "store_tour.ipynb":
            assert "parameters" in code[0]["metadata"].get("tags", []), path
            assert "store = None" in "".join(code[0]["source"]), path


# -- notebooks and the nightly on the small store (slow) -------------------------------------------


@pytest.mark.slow
def test_notebooks_execute_under_nbval(small_store):
    store, _ = small_store
    env = dict(
        os.environ,
        TRADELAB_STORE=str(store),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    books = [
        str(NOTEBOOKS / f"{n}.ipynb") for n in ("data_tour", "sweep", "walkforward", "promotion")
    ]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            *books,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert re.search(r"\b\d+ passed", res.stdout)


@pytest.fixture(scope="module")
def nightly(small_store, tmp_path_factory):
    store, run_id = small_store
    out = tmp_path_factory.mktemp("reports")
    jobs = [
        NightlyJob(
            name="data_tour",
            notebook=NOTEBOOKS / "data_tour.ipynb",
            parameters={"exchange": "BINANCE", "symbol": "BTC-USDT", "interval": "1h"},
        ),
        NightlyJob(
            name="sweep",
            notebook=NOTEBOOKS / "sweep.ipynb",
            strategy="ma_crossover",
            parameters={"run_id": "latest"},
        ),
        NightlyJob(
            name="walkforward",
            notebook=NOTEBOOKS / "walkforward.ipynb",
            strategy="ma_crossover",
            tearsheet=True,
            parameters={"run_id": run_id},
        ),
        NightlyJob(
            name="promotion", notebook=NOTEBOOKS / "promotion.ipynb", parameters={"run_id": run_id}
        ),
        NightlyJob(
            name="broken",
            notebook=NOTEBOOKS / "data_tour.ipynb",
            parameters={"symbol": "NOPE-USDT"},
        ),
    ]
    cfg = NightlyConfig(store=store, out=out, parallel=2, jobs=jobs)
    seen: list[tuple[str, str]] = []
    summary = run_nightly(cfg, date="2026-01-02", progress=lambda n, s: seen.append((n, s)))
    return summary, out, seen, run_id


@pytest.mark.slow
def test_nightly_runs_every_job_and_a_failure_stops_nothing(nightly):
    summary, out, seen, run_id = nightly
    status = {r["name"]: r["status"] for r in summary["jobs"]}
    assert status == {
        "data_tour": "ok",
        "sweep": "ok",
        "walkforward": "ok",
        "promotion": "ok",
        "broken": "failed",
    }
    broken = next(r for r in summary["jobs"] if r["name"] == "broken")
    assert "NOPE-USDT" in broken["error"]
    assert sorted(n for n, s in seen if s != "queued") == sorted(status)
    wf = next(r for r in summary["jobs"] if r["name"] == "walkforward")
    assert wf["run_id"] == run_id and wf["tearsheet"]
    f = wf["figures"]
    assert f["dsr"] >= 0.95 and f["pbo"] <= 0.2 and f["oos_sharpe"] > 1 and f["trades"] >= 20
    # the verdict is the promotion gate's (its agreement check is tested in test_promotion)
    assert wf["verdict"]["passed"] is (not wf["verdict"]["failed"])


@pytest.mark.slow
def test_nightly_pages_are_offline_with_data_in_every_chart(nightly):
    summary, out, _, run_id = nightly
    day = out / "2026-01-02"
    pages = {r["name"]: day / r["html"] for r in summary["jobs"] if r.get("html")}
    assert set(pages) == {"data_tour", "sweep", "walkforward", "promotion", "broken"}
    expected_charts = {"data_tour": 2, "sweep": 2, "walkforward": 3, "promotion": 0}
    for name, path in pages.items():
        page = path.read_text()
        assert external_resources(page) == [], name
        assert not re.search(r"<script[^>]*\bsrc\s*=", page), name  # every script inline
        assert "provenance: commit" in page and "store hash" in page, name
        assert "Plotly.newPlot" not in page or len(PLOTLY_JS_HEADER.findall(page)) == 1, name
        charts = plotly_charts(page)
        if name in expected_charts:
            assert len(charts) >= expected_charts[name], (name, len(charts))
        for _, data in charts:  # every chart has traces with data points
            assert data and any(len(t.get("x") or t.get("y") or t.get("z") or []) for t in data)
        # code hidden: no input areas, no notebook source in the page
        assert not re.search(r"class=\"[^\"]*(jp-CodeMirrorEditor|highlight)", page), name
        assert "resolve_store(store)" not in page, name
    assert "this job failed" in pages["broken"].read_text()
    sheet = day / next(r["tearsheet"] for r in summary["jobs"] if r["name"] == "walkforward")
    text = sheet.read_text()
    assert external_resources(text) == [] and "<svg" in text and "provenance: commit" in text
    assert "save()" not in text  # quantstats' onload call of a function it did not define


@pytest.mark.slow
def test_nightly_indexes_list_jobs_with_figures_and_resolving_links(nightly):
    summary, out, _, _ = nightly
    for index, prefix in (
        (out / "2026-01-02" / "index.html", out / "2026-01-02"),
        (out / "index.html", out),
    ):
        page = index.read_text()
        assert external_resources(page) == []
        for job in ("data_tour", "sweep", "walkforward", "promotion", "broken"):
            assert f"<td>{job}</td>" in page
        assert 'class="failed">failed' in page and "NOPE-USDT" in page
        assert "refused" in page or "PROMOTE" in page
        links = re.findall(r'href="([^"]+)"', page)
        assert links
        for link in links:
            assert (prefix / link).is_file(), link
    top = (out / "index.html").read_text()
    assert 'href="2026-01-02/index.html"' in top
    saved = json.loads((out / "2026-01-02" / "summary.json").read_text())
    assert saved["ok"] == 4 and saved["failed"] == 1


@pytest.mark.slow
def test_report_renders_one_saved_run_on_demand(small_store, tmp_path):
    from typer.testing import CliRunner

    from tradelab.cli import app

    store, run_id = small_store
    res = CliRunner().invoke(app, ["report", run_id, "--store", str(store), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    page = tmp_path / run_id / f"{run_id}.html"
    assert f"report: {page}" in res.output.replace("\n", "")
    text = page.read_text()
    assert external_resources(text) == [] and len(plotly_charts(text)) >= 3
    assert (tmp_path / run_id / f"{run_id}_tearsheet.html").is_file()
    res = CliRunner().invoke(app, ["report", "no-such-run", "--store", str(store)])
    assert res.exit_code == 1 and "no run 'no-such-run'" in res.output
