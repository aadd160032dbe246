"""Standalone HTML: executed notebooks with the code hidden, tearsheets, and offline checks.

Every page written here loads nothing from the network: nbconvert's require.js and MathJax
``<script src>`` tags (cdnjs) are removed (the notebooks need neither: figures carry plotly.js
inline, see :mod:`tradelab.report.nb`), quantstats' favicon link is dropped, and
:func:`external_resources` lists anything left that a browser would fetch.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

_EXTERNAL = re.compile(
    r"""<(script|link|img|iframe|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*["']?(https?:)?//""",
    re.IGNORECASE,
)
_CDN_SCRIPT = re.compile(
    r"""<script[^>]*\bsrc\s*=\s*["']https?://[^"']*["'][^>]*>\s*</script>""", re.IGNORECASE
)
_EXT_LINK = re.compile(r"""<link[^>]*\bhref\s*=\s*["']https?://[^"']*["'][^>]*>""", re.IGNORECASE)


# nbconvert's widget renderer is not a <script src> tag: inline JavaScript that builds one
# pointing at unpkg whenever the notebook's metadata carries widget state.
_WIDGET_LOADER = re.compile(r"https?://unpkg\.com/@jupyter-widgets/[^'\"\s]*")
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def external_resources(page: str) -> list[str]:
    """Tags that would make a browser fetch from another machine (empty for an offline page)."""
    out = []
    for m in _EXTERNAL.finditer(page):
        end = page.find(">", m.start())
        out.append(page[m.start() : end + 1][:200])
    out += [f"widget renderer {m.group(0)}" for m in _WIDGET_LOADER.finditer(page)]
    return out


def drop_widgets(nb: Any) -> int:
    """Strip ipywidgets from an executed notebook, in place: the saved widget state (whose
    presence makes nbconvert load a renderer from unpkg) and widget views in outputs, which keep
    their text fallback. A widget here is incidental (a library's progress bar, e.g. DuckDB's);
    the report's content is its figures and tables. Returns how many widget views were dropped."""
    nb.metadata.pop("widgets", None)
    dropped = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and _WIDGET_MIME in data:
                del data[_WIDGET_MIME]
                dropped += 1
        if dropped:
            cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("data", True)]
    return dropped


def strip_external(page: str) -> str:
    """Remove ``<script src=http...>`` and ``<link href=http...>`` tags."""
    return _EXT_LINK.sub("", _CDN_SCRIPT.sub("", page))


def provenance_block(prov: dict[str, Any], title: str = "provenance") -> str:
    """A collapsible HTML block with a provenance stamp (see :mod:`.provenance`)."""
    git = prov.get("git") or {}
    commit = git.get("commit") or "unknown"
    dirty = {True: " (dirty tree)", False: " (clean)", None: ""}[git.get("dirty")]
    parts = prov.get("partitions") or []
    rows = "".join(
        f"<tr><td>{html.escape(p['table'])}</td><td>{html.escape(p['exchange'])}"
        f"</td><td>{html.escape(p['symbol'])}</td><td>{html.escape(p['date'])}</td>"
        f"<td>{p['parts']}</td><td><code>{p['hash']}</code></td></tr>"
        for p in parts
    )
    pk = ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v)
    cfg = html.escape(json.dumps(prov.get("config") or {}, indent=2, default=str))
    return (
        f'<details class="provenance"><summary>{html.escape(title)}: commit '
        f"<code>{commit[:12]}</code>{dirty}, store hash <code>{prov.get('store_hash')}"
        f"</code>, {len(parts)} partitions, {html.escape(str(prov.get('created')))}"
        f"</summary><p>store: <code>{html.escape(str(prov.get('store')))}</code></p>"
        f"<p>packages: {html.escape(pk)}</p><pre>{cfg}</pre>"
        f"<table><tr><th>table</th><th>exchange</th><th>symbol</th><th>date</th>"
        f"<th>parts</th><th>hash</th></tr>{rows}</table></details>"
    )


def notebook_html(
    executed: Path, out: Path, prov: dict[str, Any] | None = None, error: str | None = None
) -> Path:
    """Export an executed notebook to standalone HTML with the code hidden (``--no-input``),
    offline, with the provenance (and the error, for a failed job) at the top."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True
    )
    nb = nbformat.read(executed, as_version=4)
    drop_widgets(nb)
    body, _ = exporter.from_notebook_node(nb)
    body = strip_external(body)
    head = ""
    if error:
        head += (
            f'<div class="job-error" style="border:2px solid #c00;padding:8px;margin:8px">'
            f"<b>this job failed:</b><pre>{html.escape(error)}</pre></div>"
        )
    if prov is not None:
        head += provenance_block(prov)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + head, body, count=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body)
    return out


def tearsheet(returns: Any, out: Path, title: str, prov: dict[str, Any] | None = None) -> Path:
    """quantstats HTML tearsheet of out-of-sample returns, compounded to daily, 365 periods a
    year, no benchmark (a ticker would be downloaded), offline (favicon link removed), and
    without quantstats' ``onload="save()"`` (undefined in a written file: a console error)."""
    import logging
    import warnings

    import pandas as pd
    import quantstats as qs

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    r = pd.Series(returns, dtype=float).dropna()
    if not isinstance(r.index, pd.DatetimeIndex):
        raise ValueError("tearsheet needs returns indexed by time")
    idx = r.index.tz_convert(None) if r.index.tz is not None else r.index
    daily = (1 + pd.Series(r.to_numpy(), index=idx)).resample("1D").prod() - 1
    if len(daily) < 2:
        raise ValueError(f"tearsheet needs at least 2 days of returns, got {len(daily)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qs.reports.html(
            daily,
            benchmark=None,
            periods_per_year=365,
            output=str(out),
            title=title,
            download_filename=out.name,
        )
    # quantstats' template calls save() on load, a function it defines only for its browser
    # download mode (output=None): with output= the page throws "save is not defined"
    page = strip_external(out.read_text()).replace(' onload="save()"', "")
    if prov is not None:
        page = re.sub(
            r"(<body[^>]*>)", lambda m: m.group(1) + provenance_block(prov), page, count=1
        )
    out.write_text(page)
    return out
