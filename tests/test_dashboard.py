"""The dashboard and the HTML pages: content, escaping, self-containment, size, CLI.

The browser-side checks (charts drew, nothing ran) are in ``test_dashboard_browser.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from llmobs_cli.render import html as H
from test_dashboard_fixtures import (
    HOSTILE,
    XSS_IMG,
    XSS_SCRIPT,
    dashboard_doc,
    drift_doc,
    eval_doc,
    releases_doc,
    report_doc,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces" / "traces.parquet"
DATA_RE = re.compile(r'<script type="application/json" id="llmobs-data">(.*?)</script>', re.S)


def data_of(page: str) -> dict[str, Any]:
    m = DATA_RE.search(page)
    assert m is not None
    return json.loads(m.group(1))


class Tags(HTMLParser):
    """Every element and attribute the HTML parser sees (script bodies are opaque)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parse(page: str) -> Tags:
    t = Tags()
    t.feed(page)
    return t


# --- escaping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [*HOSTILE, "</SCRIPT >", "<!-- <script>", "a\u2028b\u2029c", "&lt;b&gt; & ' \" \\"],
)
def test_script_json_cannot_leave_its_block_and_round_trips(text: str) -> None:
    out = H.script_json({"k": text, text: [text]})
    assert "<" not in out and ">" not in out and "&" not in out
    assert "\u2028" not in out and "\u2029" not in out
    assert json.loads(out) == {"k": text, text: [text]}


def test_script_json_nan_and_dates() -> None:
    out = json.loads(H.script_json({"a": float("nan"), "b": datetime(2026, 1, 2, tzinfo=UTC)}))
    assert out == {"a": None, "b": "2026-01-02T00:00:00+00:00"}


def test_hostile_names_reach_the_page_only_as_data() -> None:
    page = H.dashboard_html(dashboard_doc(hostile=True))
    tags = parse(page)
    names = [t for t, _ in tags.tags]
    # Exactly the page's own elements: three scripts (data, Plotly, page), no injected ones.
    assert names.count("script") == 3
    assert not {"img", "svg", "a", "iframe", "object", "embed", "link", "base"} & set(names)
    for tag, attrs in tags.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert "src" not in attrs and "href" not in attrs
    data = data_of(page)
    # The hostile strings are all there, intact, as data.
    blob = json.dumps(data, ensure_ascii=False)
    for text in HOSTILE:
        assert json.dumps(text, ensure_ascii=False)[1:-1] in blob
    # The title is escaped where it is markup.
    assert f"<title>Dashboard {XSS_SCRIPT}" not in page
    assert "<title>Dashboard &lt;script&gt;window.__llmobs_pwned = 1&lt;/script&gt;</title>" in page


def test_page_is_self_contained_and_locked_down_by_csp() -> None:
    page = H.dashboard_html(dashboard_doc(hostile=False))
    tags = parse(page)
    scripts = [a for t, a in tags.tags if t == "script"]
    assert all("src" not in a for a in scripts)
    assert not any(t == "link" for t, _ in tags.tags)
    (csp,) = [
        a["content"]
        for t, a in tags.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    # Each executable inline script is allowed by its hash, and nothing else is.
    executable = [
        s
        for (t, a), s in zip([x for x in tags.tags if x[0] == "script"], tags.scripts, strict=True)
        if a.get("type") != "application/json"
    ]
    assert len(executable) == 2
    for body in executable:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


# --- views -------------------------------------------------------------------------------


def test_dashboard_view_sections_and_markers() -> None:
    doc = dashboard_doc(hostile=False)
    view = H.dashboard_view(doc)
    assert view["ops"] is not None and view["quality"] is not None and view["drift"] is not None
    ops = view["ops"]
    assert len(ops["t"]) == 42
    dims = {d["id"]: d for d in ops["dims"]}
    assert list(dims) == ["route", "model", "customer_id", "feature"]
    # 15 customers: the 12 largest by calls drawn, the rest folded into (other) for sums.
    cust = dims["customer_id"]
    assert len(cust["keys"]) == 13 and cust["keys"][-1] == H.OTHER
    rep = doc["reports"][2]["report"]
    day0 = [b for b in rep["buckets"] if b["start"].startswith("2026-10-01")]
    assert sum(b["cost_usd"] for b in day0) == pytest.approx(
        sum(row[0] or 0.0 for row in cust["series"]["cost_usd"]), rel=1e-5
    )
    # A percentile cannot be merged: no (other) line for it.
    assert len(cust["series"]["latency_p95"]) == 12
    # Route latency series equal the report's bucket values.
    route_rep = doc["reports"][0]["report"]
    i = dims["route"]["keys"].index("chat")
    chat = [b for b in route_rep["buckets"] if b["key"]["route"] == "chat"]
    assert dims["route"]["series"]["latency_p99"][i] == pytest.approx(
        [b["latency_ms"]["p99"] for b in chat], rel=1e-5
    )
    # Markers from the releases document.
    assert [m["kind"] for m in view["markers"]] == ["release", "model"]
    assert view["markers"][0]["x"] == "2026-11-04 10:00:00"
    # Unpriced calls shown loudly.
    assert view["ops"]["tables"]["unpriced"]["rows"][0][0] == "gemini-1.5-pro"


def test_drift_view_compares_distributions_of_drifted_features_only() -> None:
    v = H.drift_view(drift_doc("de"))
    assert v["drifted"] == ["response_length", "language"]
    titles = [d["title"] for d in v["distributions"]]
    assert titles == ["language", "response_length"]  # drifted first, then by name
    lang = v["distributions"][0]
    # Counts became shares.
    assert sum(lang["baseline"]) == pytest.approx(1.0) and lang["baseline"][0] == pytest.approx(0.9)
    length = v["distributions"][1]
    assert length["labels"][0] == "0–200" and len(length["labels"]) == 5
    status = {r[0]: r[-1] for r in v["table"]["rows"]}
    assert status["prompt_length"]["t"] == "ok" and status["language"]["t"] == "DRIFT"


def test_quality_view_bands_and_regression_marks() -> None:
    v = H.quality_view(eval_doc(["chat", "search_qa"]))
    assert [c["evaluator"] for c in v["charts"]] == ["faithfulness", "relevance"]
    s = v["charts"][1]["series"][0]
    assert len(s["t"]) == 42 and all(
        lo <= sc <= hi for lo, sc, hi in zip(s["lo"], s["score"], s["hi"], strict=True)
    )
    assert v["regressions"] == 1
    (mark,) = v["regression_marks"]
    assert (mark["key"], mark["evaluator"], mark["y"]) == ("chat", "relevance", 0.61)
    statuses = [r[-1]["t"] for r in v["regressions_table"]["rows"]]
    assert statuses == ["REGRESSION", "ok"]


def test_releases_view_tables() -> None:
    v = H.releases_view(releases_doc(["chat", "search_qa"], "v2.0.0"))
    assert [r[1] for r in v["changes_table"]["rows"]] == ["release", "model"]
    row = v["compare_table"]["rows"][0]
    assert row[0] == "chat" and row[1] == "release v1.2.0 → v2.0.0"
    assert row[4] == "500ms → 650ms (+30%)"
    q = v["quality_table"]["rows"][0]
    assert q[5] == {"t": "-0.210", "c": "bad"}


def test_report_eval_drift_pages() -> None:
    rep = report_doc("route", ["chat", "search_qa"])
    d = data_of(H.report_html(rep))
    assert d["kind"] == "report"
    assert sorted(d["ops"]["dims"][0]["keys"]) == ["chat", "search_qa"]
    assert d["ops"]["tables"]["latency"]["rows"][0][0] == "all"
    e = data_of(H.eval_html(eval_doc(["chat", "search_qa"])))
    assert e["kind"] == "eval" and e["quality"]["regressions"] == 1
    dr = data_of(H.drift_html(drift_doc("de")))
    assert dr["kind"] == "drift" and dr["cards"][1]["value"] == "2"


def test_report_html_accepts_the_report_cores_nested_buckets() -> None:
    flat = report_doc("route", ["chat"], days=3)
    nested = {
        **flat,
        "buckets": [
            {"start": b["start"], "end": b["end"], "overall": b, "groups": [b]}
            for b in flat["buckets"]
        ],
    }
    a = H.ops_series([("route", "route", flat)])
    b = H.ops_series([("route", "route", nested)])
    assert a["dims"] == b["dims"] and a["t"] == b["t"]
    no_groups = {**flat, "groups": [], "buckets": [{**x, "groups": []} for x in nested["buckets"]]}
    c = H.ops_series([("all", "all", no_groups)])
    assert c["dims"][0]["keys"] == ["all"] and len(c["t"]) == 3


def test_a_year_of_daily_buckets_stays_a_few_megabytes() -> None:
    doc = dashboard_doc(hostile=False)
    routes = [f"route-{i}" for i in range(8)]
    doc["reports"] = [
        {"id": "route", "label": "route", "report": report_doc("route", routes, days=365, seed=1)},
        {
            "id": "model",
            "label": "model",
            "report": report_doc("model", [f"m{i}" for i in range(10)], days=365, seed=2),
        },
        {
            "id": "customer_id",
            "label": "customer",
            "report": report_doc("customer_id", [f"c{i}" for i in range(30)], days=365, seed=3),
        },
    ]
    doc["quality"] = eval_doc(routes, days=365)
    page = H.dashboard_html(doc)
    plotly_size = len(H._plotly_js().encode())
    data_size = len(DATA_RE.search(page).group(1).encode())  # type: ignore[union-attr]
    assert data_size < 2_500_000, data_size
    assert len(page.encode()) < plotly_size + 2_700_000


# --- from traces --------------------------------------------------------------------------


def _traces(tmp_path: Path, rows: int = 3000) -> tuple[Path, pl.DataFrame]:
    from llmobs_cli.core.synth.generate import RegressionSpec, generate

    start = datetime(2026, 10, 12, tzinfo=UTC)
    df = generate(
        rows,
        seed=5,
        start=start,
        days=42,
        regression=RegressionSpec(after=start + timedelta(days=35)),
    )
    path = tmp_path / "traces.parquet"
    df.write_parquet(path)
    return path, df


def _expected_release_changes(df: pl.DataFrame) -> set[tuple[str, str]]:
    """(route, release) of every release that replaced another on a route (independent)."""
    firsts = (
        df.group_by("route", "release").agg(pl.col("timestamp").min()).sort("route", "timestamp")
    )
    out = set()
    for (route,), part in firsts.group_by("route", maintain_order=True):
        for rel in part["release"].to_list()[1:]:
            out.add((str(route), str(rel)))
    return out


def sample_evals(path: Path) -> Path:
    """Judgments of the sample by the reference comparison (no judge endpoint needed):
    ``llmobs eval --current last_week --baseline last_month`` with the ``reference``
    evaluator only."""
    from llmobs_cli.core.eval.options import EvalOptions
    from llmobs_cli.core.eval.run import run_eval

    def no_judge(_settings: Any) -> Any:
        raise AssertionError("the reference comparison calls no judge")

    run = run_eval(
        [SAMPLE],
        EvalOptions(
            evaluators=["reference"], current="last_week", baseline="last_month", budget=400
        ),
        cache_dir=path.parent / "judge-cache",
        client_factory=no_judge,
    )
    run.frame.write_parquet(path)
    return path


def render_sample_dashboard(path: Path, drift: bool = True, evals: bool = True) -> dict[str, Any]:
    """The sample dashboard (``sample_traces/traces.parquet``) written to ``path``."""
    from llmobs_cli.core.dashboard.build import DashboardOptions, build

    ev = sample_evals(path.parent / "evals.parquet") if evals else None
    result = build(
        [SAMPLE], DashboardOptions(title="llmobs sample dashboard", drift=drift, evals=ev)
    )
    doc = result.as_dict()
    path.write_text(H.dashboard_html(doc), encoding="utf-8")
    return doc


@pytest.mark.slow
def test_dashboard_cli_on_generated_traces(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llmobs_cli.cli.app import app

    path, df = _traces(tmp_path)
    out = tmp_path / "dash.html"
    res = CliRunner().invoke(app, ["dashboard", str(path), "-o", str(out), "--no-drift"])
    assert res.exit_code in (0, 1), res.output
    page = out.read_text(encoding="utf-8")
    data = data_of(page)
    assert data["drift"] is None and data["quality"] is None
    got = {m["short"] for m in data["markers"] if m["kind"] == "release"}
    # Every release that replaced another is a marker (markers merge routes at one moment).
    expected = _expected_release_changes(df)
    changes = {(r[2], r[4]) for r in data["releases"]["changes_table"]["rows"]}
    assert changes == expected
    assert got == {after for _, after in expected}
    # Sections with data: every route has latency points.
    route_dim = data["ops"]["dims"][0]
    assert set(route_dim["keys"]) == set(df["route"].unique().to_list())
    assert all(any(v is not None for v in row) for row in route_dim["series"]["latency_p50"])


def test_dashboard_cli_errors(tmp_path: Path) -> None:
    from llmobs_cli.cli.app import main

    def run(*args: str) -> tuple[int, str]:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
            main(list(args))
        return int(exc.value.code or 0), err.getvalue()

    code, err = run("dashboard", str(tmp_path / "missing.parquet"), "-o", str(tmp_path / "d.html"))
    assert code == 2 and "missing.parquet: no such file or directory" in err
    code, err = run("dashboard", "x.parquet", "-o", str(tmp_path / "d.pdf"))
    assert code == 2 and "--output: unknown extension" in err
    code, err = run("dashboard", "x.parquet", "-o", str(tmp_path / "nodir" / "d.html"))
    assert code == 2 and "does not exist" in err


@pytest.mark.slow
def test_sample_dashboard_content(tmp_path: Path) -> None:
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is not in the tree")
    doc = render_sample_dashboard(tmp_path / "sample.html")
    page = (tmp_path / "sample.html").read_text(encoding="utf-8")
    view = data_of(page)
    df = pl.read_parquet(SAMPLE, columns=["route", "release", "timestamp"])
    expected = _expected_release_changes(df)
    assert {
        (c["route"], c["after"]) for c in doc["releases"]["changes"] if c["kind"] == "release"
    } == expected
    assert ("search_qa", "v2.0.0") in expected
    assert {m["short"] for m in view["markers"]} >= {"v2.0.0"}
    assert view["ops"]["dims"][0]["id"] == "route"
    for key in ("latency_p50", "cost_usd", "cache_hit_rate"):
        assert any(v is not None for row in view["ops"]["dims"][0]["series"][key] for v in row)
    assert view["releases"]["compare_table"]["rows"]
    # Drift of the last week (injected in the sample) against the month before.
    assert doc["drift"] is not None and doc["drift"]["drifted"]
    assert view["drift"]["distributions"]
    assert len(view["drift"]["distributions"]) == len(doc["drift"]["drifted"])
    # Quality: the search_qa v2.0.0 regression is flagged and marked; its release's
    # before/after quality shows the drop.
    assert any(r["key"] == {"route": "search_qa"} for r in doc["quality"]["regressions"])
    assert any(m["key"] == "search_qa" for m in view["quality"]["regression_marks"])
    (v2,) = [c for c in doc["releases"]["comparisons"] if c["after"] == "v2.0.0"]
    (ref,) = [q for q in v2["quality"] if q["evaluator"] == "reference"]
    assert ref["delta"] < 0
    assert XSS_IMG not in page  # nothing hostile in the sample, and the fixture is separate


def hostile_traces(tmp_path: Path) -> Path:
    """Generated traces whose route, model, release, customer, feature and prompt hold
    script and event-handler injections (the release changes half-way, so it is drawn)."""
    from llmobs_cli.core.synth.generate import generate

    df = generate(1500, seed=9, start=datetime(2026, 10, 12, tzinfo=UTC), days=21)
    mid = datetime(2026, 10, 22, tzinfo=UTC)
    df = df.with_columns(
        pl.when(pl.col("route") == "chat")
        .then(pl.lit(XSS_SCRIPT))
        .otherwise(pl.col("route"))
        .alias("route"),
        pl.when(pl.col("model") == "gpt-4o")
        .then(pl.lit(XSS_IMG))
        .otherwise(pl.col("model"))
        .alias("model"),
        pl.when(pl.col("timestamp") >= mid)
        .then(pl.lit(HOSTILE[2]))
        .otherwise(pl.lit("v1"))
        .alias("release"),
        pl.lit(HOSTILE[3]).alias("customer_id"),
        pl.lit(XSS_SCRIPT).alias("feature"),
        (pl.lit(XSS_IMG) + pl.col("prompt")).alias("prompt"),
    )
    path = tmp_path / "hostile.parquet"
    df.write_parquet(path)
    return path


def test_hostile_traces_through_the_whole_pipeline(tmp_path: Path) -> None:
    from llmobs_cli.core.dashboard.build import DashboardOptions, build

    result = build([hostile_traces(tmp_path)], DashboardOptions(drift=False))
    page = H.dashboard_html(result.as_dict())
    tags = parse(page)
    assert [t for t, _ in tags.tags].count("script") == 3
    assert not {"img", "svg", "a", "iframe"} & {t for t, _ in tags.tags}
    data = data_of(page)
    assert XSS_SCRIPT in data["ops"]["dims"][0]["keys"]
    assert any(m["short"].startswith("</script>") for m in data["markers"])


def test_dimension_views_equal_the_report_by_that_dimension(tmp_path: Path) -> None:
    """The shared pass for model, route × model, customer and feature gives the report
    core's own figures (it uses the report's preparation and partials): compared with
    ``build_report(by=[...], bucket="day")`` on the same rows."""
    from llmobs_cli.core.dashboard import build as dash
    from llmobs_cli.core.ingest.readers import load
    from llmobs_cli.core.report import pricing
    from llmobs_cli.core.report.engine import build_report

    path, _ = _traces(tmp_path, rows=1200)
    frame = load([path], columns=dash.columns_needed()).frame
    table = pricing.build_price_table()
    dims = [d for d in dash.DIMENSIONS if d[0] != "route"]
    res = dash.build([path], dash.DashboardOptions(drift=False, bucket="day"))
    docs = {d["id"]: d["report"] for d in res.reports}
    keys = (
        "calls",
        "sampled",
        "cost_usd",
        "cost_per_call_usd",
        "input_tokens",
        "cache_hit_rate",
        "error_rate",
        "unpriced_calls",
    )
    for dim_id, _, fields in dims:
        ref = build_report(frame, by=list(fields), bucket="day", prices=table).as_dict()
        got = docs[dim_id]
        ref_groups = {json.dumps(g["key"], default=str): g for g in ref["groups"]}
        assert len(got["groups"]) == len(ref_groups)
        for g in got["groups"]:
            r = ref_groups[json.dumps(g["key"], default=str)]
            for k in keys:
                if r[k] is None:
                    assert g[k] is None, (dim_id, g["key"], k)
                else:
                    assert g[k] == pytest.approx(r[k], rel=1e-9, abs=1e-12), (dim_id, g["key"], k)
        if dim_id in dash.LATENCY_DIMENSIONS:
            ref_b = {
                (b["start"], json.dumps(g["key"], default=str)): g
                for b in ref["buckets"]
                for g in b["groups"]
            }
            n = 0
            for b in got["buckets"]:
                for g in b["groups"]:
                    if H.OTHER in g["key"].values():
                        continue
                    r = ref_b[(b["start"], json.dumps(g["key"], default=str))]
                    for col in ("latency_ms", "ttft_ms"):
                        for q in ("p50", "p95", "p99"):  # same rows, same order statistic
                            assert g[col][q] == r[col][q]
                        if r[col]["mean"] is None:
                            assert g[col]["mean"] is None
                        else:
                            assert g[col]["mean"] == pytest.approx(r[col]["mean"], rel=1e-9)
                    assert g["cost_usd"] == pytest.approx(r["cost_usd"], rel=1e-9)
                    n += 1
            assert n > 0


@pytest.mark.slow
def test_html_output_of_report_drift_and_eval_summarize(tmp_path: Path) -> None:
    """``-o x.html`` of the other commands writes their own part (render.html)."""
    from typer.testing import CliRunner

    from llmobs_cli.cli.app import app

    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is not in the tree")
    runner = CliRunner()
    evals = sample_evals(tmp_path / "evals.parquet")
    cases = {
        "report": (["report", str(SAMPLE), "--bucket", "day"], "report", "ops"),
        "drift": (["drift", str(SAMPLE)], "drift", "drift"),
        "eval": (["eval", "summarize", str(evals), "--bucket", "week"], "eval", "quality"),
    }
    for name, (args, kind, part) in cases.items():
        out = tmp_path / f"{name}.html"
        res = runner.invoke(app, [*args, "-o", str(out)])
        assert res.exit_code in (0, 1), (name, res.output)
        data = data_of(out.read_text(encoding="utf-8"))
        assert data["kind"] == kind and data[part], name
    assert data_of((tmp_path / "drift.html").read_text())["drift"]["distributions"]
    assert data_of((tmp_path / "eval.html").read_text())["quality"]["regressions"] >= 1


def test_drift_section_ranks_where_and_folds_quiet_slices() -> None:
    """The page's drift section shows the slice tests that found something (not the quiet
    ones) and the where ranking of the drift result, in its order."""
    from llmobs_cli.core.dashboard.build import DashboardOptions, build
    from llmobs_cli.core.drift import run_drift

    result = build([SAMPLE], DashboardOptions())
    data = data_of(H.dashboard_html(result.as_dict()))
    rows = data["drift"]["table"]["rows"]
    drift = run_drift([SAMPLE])  # the page's default windows
    shown_slices = [r for r in rows if r[1] != "all"]
    quiet = [
        f for f in drift.features if f["slice"] and f["status"] not in ("DRIFT", "small effect")
    ]
    assert quiet and len(shown_slices) < len([f for f in drift.features if f["slice"]])
    where = data["drift"]["where"]["rows"]
    assert [r[0] for r in where] == [w["feature"] for w in drift.where]
    assert len(where) == len(drift.where) > 0
