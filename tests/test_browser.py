"""A real browser opens a nightly run on real data: headless Debian Chromium over the DevTools
protocol. Every page (index, reports, tearsheet) loads with no console error and no request
leaving the machine (every non-file request is recorded and blocked), every plotly chart is
drawn with data, every link resolves. Screenshots of the index and of one report are kept under
reports/test-artifacts/ (git-ignored).

Chromium comes from Debian's ``chromium`` package: when it is missing, the test installs it
(``apt-get install -y chromium``) if it runs as root with apt available, and otherwise skips
with a message saying exactly that (``make browser`` installs it ahead of time).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests.conftest import import_ws
from tradelab.backtest.vector.config import parse_sweep_config
from tradelab.backtest.vector.engine import run_sweep
from tradelab.backtest.vector.walkforward import walk_forward_run
from tradelab.collect.importers.base import ImportRun
from tradelab.collect.importers.freqtrade import FreqtradeImporter
from tradelab.report.nightly import NightlyConfig, NightlyJob, run_nightly

pytestmark = [pytest.mark.slow, pytest.mark.data]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "reports" / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--remote-debugging-port=0",
]


def chromium_binary() -> str:
    """Debian's chromium, installed on the spot when possible; a loud skip when not."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            "BROWSER TEST NOT RUN: Debian's chromium is not installed and cannot be "
            "installed here (needs root and apt-get): run `make browser` as root"
        )
    res = subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, text=True, timeout=900
    )
    if res.returncode != 0 or not shutil.which("chromium"):
        res = subprocess.run(
            "apt-get update -q && apt-get install -y -q chromium",
            shell=True,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    found = shutil.which("chromium")
    if not found:
        pytest.skip(
            "BROWSER TEST NOT RUN: `apt-get install chromium` failed: "
            + (res.stderr or res.stdout)[-500:]
        )
    return found


class Browser:
    """A minimal DevTools-protocol client over one page target."""

    def __init__(self, binary: str, profile: Path) -> None:
        from websockets.sync.client import connect

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        self._conn = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30)
        self.ws = self._conn.__enter__()
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.blocked: list[str] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Fetch.enable", session=True, patterns=[{"urlPattern": "*"}])
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=1400,
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, session: bool = False, timeout: float = 120, **params):
        msg_id = next(self.ids)
        msg: dict = {"id": msg_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)

    def _event(self, ev: dict) -> None:
        if ev.get("method") == "Fetch.requestPaused":
            p = ev["params"]
            url = p["request"]["url"]
            if url.startswith(("file:", "data:", "blob:", "about:")):
                self._send("Fetch.continueRequest", requestId=p["requestId"])
            else:  # leaving the machine: record and refuse
                self.blocked.append(url)
                self._send(
                    "Fetch.failRequest", requestId=p["requestId"], errorReason="BlockedByClient"
                )
            return
        self.events.append(ev)

    def _send(self, method: str, **params) -> None:
        self.ws.send(
            json.dumps(
                {
                    "id": next(self.ids),
                    "method": method,
                    "params": params,
                    "sessionId": self.session,
                }
            )
        )

    def open(self, url: str, settle_s: float = 1.5) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + 120
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            self._event(json.loads(self.ws.recv(timeout=120)))
        end = time.monotonic() + settle_s  # late scripts and console messages
        while time.monotonic() < end:
            try:
                self._event(json.loads(self.ws.recv(timeout=0.2)))
            except TimeoutError:
                pass

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:300])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(json.dumps(p.get("args"))[:300])
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"].get("text", "")[:300] + " " + p["entry"].get("url", ""))
        return out

    def js(self, expr: str):
        res = self.call("Runtime.evaluate", session=True, expression=expr, returnByValue=True)
        return res["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


CHARTS_JS = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  traces: (gd.data || []).length,
  points: (gd.calcdata || []).reduce((n, cd) => n + ((cd && cd.length) || 0), 0),
  drawn: gd.querySelectorAll('.main-svg').length > 0}))"""
"""Per chart: traces, points plotly computed from the data (``calcdata``: decoded arrays,
including plotly 6's base64 typed arrays), and whether an SVG was drawn."""
PLOT_DIVS_JS = "document.querySelectorAll('div.plotly-graph-div').length"
LINKS_JS = "Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"


@pytest.fixture(scope="module")
def real_nightly(tmp_path_factory, test_data, binance_ws):
    from tradelab.backtest.event.config import EventBacktestConfig
    from tradelab.backtest.event.run import run_backtest

    store = tmp_path_factory.mktemp("real_store")
    import_ws(store, binance_ws / "usdm_btcusdt_20240808.gz")
    run = ImportRun("freqtrade", store, {})
    FreqtradeImporter(run, "BINANCE").import_dir(test_data / "ohlcv" / "binance_spot_2025q2q3")
    run.finish()
    cfg = parse_sweep_config(
        {
            "name": "browser",
            "strategy": "ma_crossover",
            "family": "browser_ma",
            "exchange": "BINANCE",
            "symbols": ["BTC-USDT"],
            "start": "2025-06-02",
            "end": "2025-06-16",
            "interval": "1m",
            "grid": {"fast": [5, 20, 60], "slow": [120, 240, 480]},
            "period": "1h",
            "workers": 1,
        }
    )
    (res,) = run_sweep(cfg, store)
    walk_forward_run(res.run_id, train=96, test=24, store=store)
    run_backtest(
        EventBacktestConfig.model_validate(
            dict(
                name="mm",
                exchange="BINANCE_FUTURES",
                symbol="BTC-USDT-PERP",
                end="2024-08-09T00:00:00Z",
                params=dict(
                    half_spread_bps=0.0, skew_bps=1.0, max_position=0.02, qty=0.002, requote_ms=100
                ),
                instrument=dict(tick=0.1, lot=0.001, maker_fee=0.0002, taker_fee=0.0005),
                queue=dict(model="power", n=3),
                latency=dict(entry_ms=10, response_ms=10),
                chunk="1m",
            )
        ),
        store,
    )
    jobs = [
        NightlyJob(
            name="data_tour",
            notebook=NOTEBOOKS / "data_tour.ipynb",
            parameters={
                "exchange": "BINANCE_FUTURES",
                "symbol": "BTC-USDT-PERP",
                "interval": "5m",
                "book_exchange": "BINANCE_FUTURES",
                "book_symbol": "BTC-USDT-PERP",
            },
        ),
        NightlyJob(
            name="sweep", notebook=NOTEBOOKS / "sweep.ipynb", parameters={"run_id": res.run_id}
        ),
        NightlyJob(
            name="walkforward",
            notebook=NOTEBOOKS / "walkforward.ipynb",
            tearsheet=True,
            parameters={"run_id": res.run_id, "train": 96, "test": 24},
        ),
        NightlyJob(
            name="event_backtest",
            run_kind="event",
            notebook=NOTEBOOKS / "event_backtest.ipynb",
            parameters={"run_id": "latest"},
        ),
        NightlyJob(
            name="promotion",
            notebook=NOTEBOOKS / "promotion.ipynb",
            parameters={"run_id": res.run_id},
        ),
    ]
    out = tmp_path_factory.mktemp("browser_reports")
    summary = run_nightly(
        NightlyConfig(store=store, out=out, parallel=2, jobs=jobs), date="2026-02-03"
    )
    return summary, out


def test_every_page_of_a_real_nightly_in_chromium(real_nightly, tmp_path):
    summary, out = real_nightly
    failed = {r["name"]: r["error"] for r in summary["jobs"] if r["status"] != "ok"}
    assert not failed, failed
    binary = chromium_binary()
    day = out / summary["date"]
    pages = [out / "index.html", day / "index.html"]
    for r in summary["jobs"]:
        pages += [day / r[k] for k in ("html", "tearsheet") if r.get(k)]
    browser = Browser(binary, tmp_path / "profile")
    try:
        seen_charts = 0
        for page in pages:
            browser.open(page.as_uri())
            assert browser.errors() == [], (page.name, browser.errors())
            charts = browser.js(CHARTS_JS)
            assert len(charts) == browser.js(PLOT_DIVS_JS), page.name  # every div became a plot
            for c in charts:
                assert c["drawn"] and c["traces"] > 0 and c["points"] > 0, (page.name, c)
            seen_charts += len(charts)
            for link in browser.js(LINKS_JS):
                u = urlparse(link)
                if u.scheme == "file":
                    assert Path(unquote(u.path)).is_file(), (page.name, link)
                else:  # the only external links allowed are ones nobody follows here
                    assert u.scheme in ("http", "https") and page.name.endswith("tearsheet.html"), (
                        page.name,
                        link,
                    )
            if page == out / "index.html":
                browser.screenshot(ARTIFACTS / "index.png")
            elif page.name == "walkforward.html":
                browser.screenshot(ARTIFACTS / "walkforward.png")
        assert browser.blocked == [], browser.blocked  # nothing tried to leave the machine
        assert seen_charts >= 10
        ev = next(r for r in summary["jobs"] if r["name"] == "event_backtest")
        assert {p["table"] for p in ev["provenance"]["partitions"]} >= {"book", "trades"}
    finally:
        browser.close()
    assert (ARTIFACTS / "index.png").stat().st_size > 10_000
    assert (ARTIFACTS / "walkforward.png").stat().st_size > 10_000
