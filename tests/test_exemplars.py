"""Exemplars behind moved numbers, checked against DuckDB on the same file: drift's grown
side, the judged calls pulling a score down, a report group's worst calls."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from fitted_fixtures import SAMPLE, sample_evals
from llmobs_cli.core.explore import exemplars as ex
from llmobs_cli.core.ingest.readers import load
from test_eval_support import run_cli

PARQUET = SAMPLE / "traces.parquet"


@pytest.fixture(scope="module")
def drift_doc() -> dict:
    res = run_cli("drift", str(PARQUET), "-f", "json")
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def calls() -> pl.LazyFrame:
    return load([PARQUET]).frame.lazy()


def _duck(sql: str) -> list[tuple]:
    return duckdb.connect().execute(sql.replace("FILE", f"read_parquet('{PARQUET}')")).fetchall()


def _window(doc: dict) -> tuple[datetime, datetime]:
    c = doc["current"]
    return datetime.fromisoformat(c["start"]), datetime.fromisoformat(c["end"])


def _feature(doc: dict, name: str) -> dict:
    return next(f for f in doc["features"] if f["feature"] == name and f["group"] is None)


def _between(doc: dict) -> str:
    a, b = _window(doc)
    return f"timestamp >= '{a.isoformat()}' AND timestamp < '{b.isoformat()}'"


def test_longest_new_answers(drift_doc: dict, calls: pl.LazyFrame) -> None:
    f = _feature(drift_doc, "response_length")
    assert f["current"]["median"] > f["baseline"]["median"]  # grew: the longest are shown
    got = ex.drift_exemplars(calls, f, current=_window(drift_doc))
    want = _duck(
        "SELECT trace_id, length(response) AS n FROM FILE WHERE response IS NOT NULL AND "
        f"{_between(drift_doc)} ORDER BY n DESC, trace_id LIMIT 3"
    )
    assert [(r["trace_id"], r["value"]) for r in got] == want


def test_weakest_top1_retrievals(drift_doc: dict, calls: pl.LazyFrame) -> None:
    f = _feature(drift_doc, "retrieval_top1_score")
    assert f["drifted"] and f["current"]["median"] < f["baseline"]["median"]
    got = ex.drift_exemplars(calls, f, current=_window(drift_doc))
    want = _duck(
        "SELECT trace_id, retrieved[1].score AS s FROM FILE WHERE len(retrieved) > 0 AND "
        f"{_between(drift_doc)} ORDER BY s, trace_id LIMIT 3"
    )
    assert [(r["trace_id"], r["value"]) for r in got] == [(t, pytest.approx(s)) for t, s in want]


def test_category_that_grew(drift_doc: dict, calls: pl.LazyFrame) -> None:
    f = _feature(drift_doc, "finish_reason")
    grown = max(f["current"], key=lambda c: f["current"][c] - (f["baseline"].get(c) or 0.0))
    got = ex.drift_exemplars(calls, f, current=_window(drift_doc))
    want = _duck(
        f"SELECT trace_id FROM FILE WHERE finish_reason = '{grown}' AND {_between(drift_doc)} "
        "ORDER BY timestamp DESC, trace_id LIMIT 3"
    )
    assert [r["trace_id"] for r in got] == [t for (t,) in want]
    assert all(r["value"] == grown for r in got)


def test_report_group_worst_calls(calls: pl.LazyFrame) -> None:
    got = ex.report_exemplars(calls, key={"route": "search_qa"}, metric="latency_ms.p99", k=4)
    want = _duck(
        "SELECT trace_id, latency_ms FROM FILE WHERE route = 'search_qa' "
        "ORDER BY latency_ms DESC, trace_id, span_id LIMIT 4"
    )
    assert [(r["trace_id"], r["value"]) for r in got] == want
    errs = ex.report_exemplars(calls, key={"route": "chat"}, metric="error_rate")
    want_err = _duck(
        "SELECT trace_id FROM FILE WHERE route = 'chat' AND status = 'error' "
        "ORDER BY timestamp DESC, trace_id LIMIT 3"
    )
    assert [r["trace_id"] for r in errs] == [t for (t,) in want_err]
    meta = ex.report_exemplars(calls, key={"metadata.tier": "enterprise"}, metric="cost_usd")
    want_meta = _duck(
        "SELECT trace_id FROM FILE WHERE json_extract_string(metadata, '$.tier') = "
        "'enterprise' ORDER BY cost_usd DESC, trace_id LIMIT 3"
    )
    assert [r["trace_id"] for r in meta] == [t for (t,) in want_meta]


def test_eval_calls_pulling_the_score_down(tmp_path: Path) -> None:
    evals = pl.read_parquet(sample_evals(tmp_path))
    got = ex.eval_exemplars(
        evals, key={"route": "search_qa"}, evaluator="relevance", window="current", k=5
    )
    want = (
        evals.filter(
            (pl.col("route") == "search_qa")
            & (pl.col("evaluator") == "relevance")
            & (pl.col("window") == "current")
        )
        .sort(["score", "weight", "trace_id"], descending=[False, True, False])
        .head(5)
    )
    assert [r["trace_id"] for r in got] == want["trace_id"].to_list()
    assert all(r["value"] == 0.0 for r in got)  # the failed judgments come first


def test_show_command_is_quoted() -> None:
    line = ex.show_command("abc123", ["dumps/a b.parquet", "x.jsonl"])
    assert line == "llmobs show abc123 'dumps/a b.parquet' x.jsonl"


def test_drift_json_names_calls_of_each_drifted_feature(drift_doc: dict) -> None:
    fired = [f for f in drift_doc["features"] if f["drifted"]]
    assert fired
    a, b = _window(drift_doc)
    for f in fired:
        ex = f.get("exemplars")
        assert ex, f["feature"]
        for r in ex:
            assert a <= datetime.fromisoformat(r["timestamp"]) < b
    top1 = _feature(drift_doc, "retrieval_top1_score")["exemplars"]
    assert [r["value"] for r in top1] == sorted(r["value"] for r in top1)  # weakest first
    # wide enough that the show line (with the checkout's path) is never wrapped
    text = run_cli("drift", str(PARQUET), env={"COLUMNS": "400"}).stdout
    assert f"  retrieval_top1_score: {top1[0]['trace_id'][:12]} " in text
    first = next(f for f in drift_doc["features"] if f.get("exemplars"))["exemplars"][0]
    assert f"open one: llmobs show {first['trace_id']} {PARQUET}" in text


def test_report_fail_on_names_the_worst_calls() -> None:
    res = run_cli(
        "report", str(PARQUET), "--fail-on", "route=refunds:latency_ms.p99 > 2000", "-f", "json"
    )
    assert res.returncode == 1
    alert = json.loads(res.stdout)["alerts"][0]
    want = _duck(
        "SELECT trace_id, latency_ms FROM FILE WHERE route = 'refunds' "
        "ORDER BY latency_ms DESC, trace_id, span_id LIMIT 3"
    )
    assert [(r["trace_id"], r["value"]) for r in alert["exemplars"]] == want
    assert f"  open one: llmobs show {want[0][0]} {PARQUET}" in res.stderr


def test_eval_regression_names_the_calls_pulling_it_down(tmp_path: Path) -> None:
    path = sample_evals(tmp_path)
    res = run_cli("eval", "summarize", str(path), "-f", "json")
    assert res.returncode == 1
    reg = json.loads(res.stdout)["regressions"][0]
    assert (reg["key"], reg["evaluator"]) == ({"route": "search_qa"}, "relevance")
    evals = pl.read_parquet(path)
    want = ex.eval_exemplars(evals, key=reg["key"], evaluator="relevance", k=5)
    assert [r["trace_id"] for r in reg["exemplars"]] == [r["trace_id"] for r in want]
    assert "  lowest-scored calls: " in res.stderr


def test_dashboard_shows_exemplars_in_page_and_stays_inert(tmp_path: Path) -> None:
    """Drift and regression exemplars reach the page as plain-text table cells with a
    copyable llmobs show line, even when the prompts hold markup."""
    from llmobs_cli.core.dashboard.build import DashboardOptions, build
    from llmobs_cli.render import html as H
    from test_dashboard import data_of, parse
    from test_dashboard_fixtures import XSS_SVG

    hostile = tmp_path / "hostile.parquet"
    pl.read_parquet(PARQUET).with_columns(
        (pl.lit(XSS_SVG) + pl.col("prompt")).alias("prompt")
    ).write_parquet(hostile)
    evals = sample_evals(tmp_path)
    result = build([hostile], DashboardOptions(evals=evals))
    page = H.dashboard_html(result.as_dict())
    tags = parse(page)
    assert [t for t, _ in tags.tags].count("script") == 3
    assert not {"img", "svg", "a", "iframe"} & {t for t, _ in tags.tags}
    data = data_of(page)
    drift_rows = data["drift"]["examples"]["rows"]
    # every drifted test of the page's drift run, overall or in a route slice, has rows
    drifted = (
        {
            f["feature"] + (f" ({next(iter(f['group'].values()))})" if f["group"] else "")
            for f in data["drift"]["features"]
            if f["drifted"]
        }
        if "features" in data["drift"]
        else None
    )
    assert {"retrieval_top1_score", "retrieval_mean_score"} <= {r[0] for r in drift_rows}
    if drifted is not None:
        assert {r[0] for r in drift_rows} == drifted
    assert drift_rows[0][4] == f"llmobs show {drift_rows[0][1]} {hostile}"
    assert any(XSS_SVG in r[3] for r in drift_rows)  # the text is there, as text
    reg_rows = data["quality"]["regression_examples"]["rows"]
    assert reg_rows and reg_rows[0][0] == "search_qa relevance"
