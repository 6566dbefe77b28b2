"""End-to-end: open dashboards in headless Chromium through the DevTools protocol.

Checks that every chart drew (each ``.chart`` holds Plotly's ``svg.main-svg``), that no
console error or uncaught exception occurred, that no network request left the file, and
that hostile text in routes, models, releases, customers and categories ran nothing (the
injected scripts would set ``window.__llmobs_pwned``).

Needs Debian's ``chromium`` (or ``chromium-browser``/``google-chrome``) and the
``websocket-client`` package; skipped with the reason when either is missing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmobs_cli.render.html import dashboard_html, drift_html, eval_html, report_html
from test_dashboard_fixtures import dashboard_doc, drift_doc, eval_doc, report_doc

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
try:
    import websocket  # websocket-client
except ImportError:  # pragma: no cover - depends on the environment
    websocket = None

needs_browser = pytest.mark.skipif(
    CHROMIUM is None or websocket is None,
    reason="headless Chromium end-to-end test needs the `chromium` package (apt-get install "
    "chromium) and `websocket-client` (pip install -e '.[test]')",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """A headless Chromium driven over the DevTools protocol (one page target)."""

    def __init__(self, binary: str) -> None:
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="llmobs-chromium-")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={self.profile}",
                f"--remote-debugging-port={self.port}",
                "--window-size=1400,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.ws = self._connect()
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")

    def _connect(self) -> Any:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/json/list", timeout=2
                ) as r:
                    targets = json.loads(r.read())
                page = next(t for t in targets if t.get("type") == "page")
                return websocket.create_connection(
                    page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
                )
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def eval(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for(
            "document.readyState === 'complete' && document.body.hasAttribute('data-rendered')"
        )
        time.sleep(0.3)  # let late console messages arrive
        self.eval("1")

    def open_raw(self, path: Path) -> None:
        """Navigate and wait for the load event only (the page may be broken on purpose)."""
        self.events.clear()
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("document.readyState === 'complete'")
        time.sleep(0.3)

    def problems(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + json.dumps(p.get("args", []))[:500])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + str(p["entry"].get("text"))[:500])
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None or websocket is None:
        pytest.skip("needs chromium and websocket-client")
    b = Browser(CHROMIUM)
    try:
        yield b
    finally:
        b.close()


CHART_STATE = """(() => {
  const charts = [...document.querySelectorAll('.chart')];
  return {
    charts: charts.length,
    drawn: charts.filter(c => c.querySelector('svg.main-svg')).length,
    undrawn: charts.filter(c => !c.querySelector('svg.main-svg')).map(c => c.id),
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    pwned: window.__llmobs_pwned === undefined ? null : String(window.__llmobs_pwned),
    injected: document.querySelectorAll('main script, main img, main svg a, main iframe').length,
    text: document.body.innerText,
  };
})()"""


def check_page(browser: Browser, path: Path) -> dict[str, Any]:
    browser.open(path)
    state = browser.eval(CHART_STATE)
    assert browser.problems() == []
    assert state["pwned"] is None
    # Only the file itself: no CDN, no image probe from an injected <img src=x>.
    assert [u for u in browser.requests() if not u.startswith("file://")] == []
    assert state["charts"] > 0
    assert state["undrawn"] == []
    return state


@needs_browser
def test_dashboard_with_hostile_text_draws_and_runs_nothing(
    browser: Browser, tmp_path: Path
) -> None:
    path = tmp_path / "dash.html"
    path.write_text(dashboard_html(dashboard_doc(hostile=True)), encoding="utf-8")
    state = check_page(browser, path)
    assert state["sections"] == ["overview", "latency", "cost", "quality", "drift", "releases"]
    # The hostile names are shown as text.
    assert "<script>window.__llmobs_pwned = 1</script>" in state["text"]
    assert '<img src=x onerror="window.__llmobs_pwned = 2">' in state["text"]
    # Plotly labels (legend entries, marker labels) hold the text, not markup.
    legend = browser.eval(
        "[...document.querySelectorAll('#chart-latency .legendtext')].map(e => e.textContent)"
    )
    assert "<script>window.__llmobs_pwned = 1</script>" in legend
    notes = browser.eval(
        "[...document.querySelectorAll('#chart-latency .annotation-text')].map(e => e.textContent)"
    )
    assert any(n.startswith("<img src=x") or n.startswith("<script>") for n in notes)
    # Switching the dimension redraws with the other keys (customers, 12 + other).
    browser.eval(
        "(() => { const s = document.querySelector('#cost select'); s.value = 'customer_id';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    names = browser.eval(
        "[...document.querySelectorAll('#chart-cost-total .legendtext')].map(e => e.textContent)"
    )
    assert {"release change", "model change"} <= set(names)  # the marker legend entries
    keys = [n for n in names if not n.endswith(" change")]
    assert "(other)" in keys and len(keys) == 13
    assert browser.problems() == []
    assert browser.eval("window.__llmobs_pwned === undefined")


@needs_browser
def test_report_eval_drift_pages_draw(browser: Browser, tmp_path: Path) -> None:
    pages = {
        "report.html": report_html(report_doc("route", ["chat", "<b>x</b>"])),
        "eval.html": eval_html(eval_doc(["chat", "search_qa"])),
        "drift.html": drift_html(drift_doc()),
    }
    for name, text in pages.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        check_page(browser, path)


@needs_browser
def test_sample_dashboard_in_browser(browser: Browser, tmp_path: Path) -> None:
    from test_dashboard import SAMPLE, render_sample_dashboard

    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is not in the tree yet")
    path = tmp_path / "sample.html"
    doc = render_sample_dashboard(path)
    state = check_page(browser, path)
    assert state["sections"] == ["overview", "latency", "cost", "quality", "drift", "releases"]
    # Each section shows data: a drawn chart with at least one trace, or table rows.
    for section in ("latency", "cost", "quality", "drift"):
        n = browser.eval(
            f"document.querySelectorAll('#{section} .chart .scatterlayer .trace,"
            f" #{section} .chart .barlayer .trace').length"
        )
        assert n > 0, section
    assert browser.eval("document.querySelectorAll('#releases tbody tr').length") > 10
    # The sample's releases are drawn on the time charts (one triangle per marker).
    n_markers = len(doc["releases"]["markers"])
    assert n_markers > 0
    for chart in ("chart-latency", "chart-cost-total", "chart-tokens"):
        drawn = browser.eval(
            f"(() => {{ const g = document.getElementById('{chart}');"
            " const t = g.data.filter(d => d.name === 'release change')[0];"
            " return [t ? t.x.length : 0, g.layout.shapes.length,"
            " g.querySelectorAll('.shapelayer path').length]; })()"
        )
        assert drawn == [n_markers, n_markers, n_markers], chart


@needs_browser
def test_dashboard_of_hostile_traces_runs_nothing(browser: Browser, tmp_path: Path) -> None:
    from llmobs_cli.core.dashboard.build import DashboardOptions, build
    from test_dashboard import hostile_traces

    result = build([hostile_traces(tmp_path)], DashboardOptions(drift=False))
    path = tmp_path / "hostile.html"
    path.write_text(dashboard_html(result.as_dict()), encoding="utf-8")
    state = check_page(browser, path)
    assert "<script>window.__llmobs_pwned = 1</script>" in state["text"]
