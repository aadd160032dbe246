"""What a research notebook calls first: store resolution and the plotly renderer.

Plotly 6+ emits only ``application/vnd.plotly.v1+json`` by default, which nbconvert drops from
HTML (the chart vanishes). :func:`setup` registers and selects the ``tradelab`` renderer: every
figure is emitted as that JSON (JupyterLab draws it) *and* as ``text/html`` with the figure's
data and plotly.js inlined in the first figure of the kernel only (nbconvert keeps it), with no
require.js and no CDN, so an exported report works offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_STORE = PROJECT_ROOT / ".demo" / "store"
_STATE = {"plotlyjs_sent": False}


def resolve_store(store: str | os.PathLike | None = None) -> Path:
    """The store a notebook reads: ``store`` if given, else ``$TRADELAB_STORE``, else the demo
    store (``.demo/store`` in the project root, made by ``make demo``)."""
    chosen = store or os.environ.get("TRADELAB_STORE") or DEMO_STORE
    path = Path(chosen).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"store {path} does not exist: run `make demo` (it builds "
            ".demo/store) or pass store=... / set TRADELAB_STORE"
        )
    return path


def figure_html(fig: Any, include_plotlyjs: bool) -> str:
    """A figure as an HTML fragment with its data (plotly.js inlined when asked)."""
    return str(
        fig.to_html(
            full_html=False, include_plotlyjs=include_plotlyjs, config={"displaylogo": False}
        )
    )


def _renderer_class() -> type:
    from plotly.io._base_renderers import MimetypeRenderer

    class TradelabRenderer(MimetypeRenderer):
        """JSON for JupyterLab plus self-contained HTML for nbconvert."""

        def to_mimebundle(self, fig_dict: dict) -> dict:
            import plotly.graph_objects as go

            fig = go.Figure(fig_dict)
            first = not _STATE["plotlyjs_sent"]
            _STATE["plotlyjs_sent"] = True
            return {
                "application/vnd.plotly.v1+json": json.loads(fig.to_json()),
                "text/html": figure_html(fig, include_plotlyjs=first),
            }

    return TradelabRenderer


def setup() -> None:
    """Select the ``tradelab`` plotly renderer (call once at the top of a notebook)."""
    import plotly.io as pio

    if "tradelab" not in pio.renderers:
        pio.renderers["tradelab"] = _renderer_class()()
    pio.renderers.default = "tradelab"
    _STATE["plotlyjs_sent"] = False
