"""``llmobs calls``: ranking checked against DuckDB on the same file, filters, judgments
joined, the table at fixed widths, and the exit-2 lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from llmobs_cli.core.eval.run import JUDGMENT_SCHEMA
from test_eval_support import run_cli

SAMPLE = Path(__file__).parent.parent / "sample_traces"


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dump nobody hand-picked: generated rows, ties at the timeout latency included."""
    out = tmp_path_factory.mktemp("calls") / "dump.parquet"
    res = run_cli("generate", str(out), "--rows", "6000", "--seed", "11")
    assert res.returncode == 0, res.stderr
    return out


def _duck(sql: str, path: Path) -> list[tuple]:
    con = duckdb.connect()
    return con.execute(sql.replace("FILE", f"read_parquet('{path}')")).fetchall()


@pytest.mark.parametrize("field", ["latency_ms", "output_tokens", "cost_usd"])
def test_top5_equals_duckdb(dump: Path, field: str) -> None:
    res = run_cli("calls", str(dump), "--sort", field, "--top", "5", "--format", "json")
    assert res.returncode == 0, res.stderr
    got = [(c["trace_id"], c["span_id"], c[field]) for c in json.loads(res.stdout)["calls"]]
    want = _duck(
        f"SELECT trace_id, span_id, {field} FROM FILE WHERE {field} IS NOT NULL "
        f"ORDER BY {field} DESC, trace_id, span_id LIMIT 5",
        dump,
    )
    assert got == [(t, s, pytest.approx(v)) for t, s, v in want]


def test_where_and_ascending_equal_duckdb(dump: Path) -> None:
    res = run_cli(
        "calls",
        str(dump),
        "--where",
        "route in (chat, search_qa) and status = ok and latency_ms > 2s",
        "--sort",
        "+latency_ms",
        "--top",
        "7",
        "--format",
        "json",
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    want = _duck(
        "SELECT trace_id, latency_ms FROM FILE WHERE route IN ('chat', 'search_qa') AND "
        "status = 'ok' AND latency_ms > 2000 ORDER BY latency_ms, trace_id, span_id LIMIT 7",
        dump,
    )
    assert [(c["trace_id"], c["latency_ms"]) for c in doc["calls"]] == want
    count = _duck(
        "SELECT count(*) FROM FILE WHERE route IN ('chat', 'search_qa') AND status = 'ok' "
        "AND latency_ms > 2000",
        dump,
    )[0][0]
    assert doc["matched"] == count
    assert doc["scanned"] == _duck("SELECT count(*) FROM FILE", dump)[0][0]
    assert doc["sort"] == "+latency_ms"


def test_metadata_and_text_filters_equal_duckdb() -> None:
    path = SAMPLE / "traces.parquet"
    res = run_cli(
        "calls",
        str(path),
        "--where",
        "metadata.tier = enterprise and prompt ~ refund",
        "--sort",
        "timestamp",
        "--top",
        "1000",
        "--format",
        "json",
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    want = _duck(
        "SELECT count(*) FROM FILE WHERE json_extract_string(metadata, '$.tier') = 'enterprise'"
        " AND regexp_matches(prompt, '(?i)refund')",
        path,
    )[0][0]
    assert doc["matched"] == want == len(doc["calls"])
    assert all("refund" in c["prompt_excerpt"].lower() for c in doc["calls"])


def test_jsonl_and_parquet_agree_and_since() -> None:
    a = run_cli(
        "calls",
        str(SAMPLE / "traces.jsonl"),
        "--sort",
        "cost_usd",
        "--since",
        "7d",
        "--top",
        "3",
        "--format",
        "json",
    )
    b = run_cli(
        "calls",
        str(SAMPLE / "traces.parquet"),
        "--sort",
        "cost_usd",
        "--since",
        "7d",
        "--top",
        "3",
        "--format",
        "json",
    )
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)
    doc = json.loads(a.stdout)
    assert doc["window"]["start"].startswith("2026-11-15T21:36:31")
    assert all(c["timestamp"] >= "2026-11-15T21:36" for c in doc["calls"])


def _evals(path: Path, trace_ids: list[str]) -> Path:
    rows = []
    spec = [  # trace index, evaluator, score, explanation
        (0, "relevance", 0.2, "misses the question"),
        (0, "reference", 1.0, None),
        (1, "relevance", 0.5, "half right"),
        (2, "relevance", 1.0, "fine"),
        (2, "faithfulness", 0.75, "mostly grounded"),
    ]
    for i, ev, score, why in spec:
        row = {c: None for c in JUDGMENT_SCHEMA}
        row.update(
            trace_id=trace_ids[i],
            span_id=None,
            route="chat",
            timestamp=datetime(2026, 11, 1, tzinfo=UTC),
            evaluator=ev,
            criterion=ev,
            score=score,
            weight=1.0,
            sample_rate=1.0,
            eval_rate=1.0,
            window="current",
            explanation=why,
            flagged=ev == "relevance" and 0.4 <= score <= 0.6,
        )
        rows.append(row)
    out = path / "evals.parquet"
    pl.DataFrame(rows, schema=JUDGMENT_SCHEMA).write_parquet(out)
    return out


def test_evals_join_worst_first(tmp_path: Path) -> None:
    recs = [
        {
            "trace_id": f"t{i}",
            "timestamp": f"2026-11-0{i + 1}T00:00:00Z",
            "model": "m",
            "latency_ms": 100 + i,
            "route": "chat",
            "prompt": f"question {i}",
            "response": f"answer {i}",
        }
        for i in range(4)
    ]
    traces = tmp_path / "t.jsonl"
    traces.write_text("".join(json.dumps(r) + "\n" for r in recs))
    evals = _evals(tmp_path, ["t0", "t1", "t2"])
    res = run_cli("calls", str(traces), "--evals", str(evals), "--format", "json")
    assert res.returncode == 0, res.stderr
    calls = json.loads(res.stdout)["calls"]
    assert [c["trace_id"] for c in calls] == ["t0", "t1", "t2"]  # t3 has no judgment
    first = calls[0]
    assert first["score"] == 0.2 and first["evaluator"] == "relevance"
    assert first["explanation"] == "misses the question"
    assert first["judgments"] == 2 and first["spread"] == pytest.approx(0.8)
    assert first["review"] == "judge_reference_disagree"
    assert calls[1]["flagged"] is True and calls[1]["review"] == "borderline"
    res = run_cli(
        "calls",
        str(traces),
        "--evals",
        str(evals),
        "--where",
        "spread >= 0.5 or flagged = true",
        "--format",
        "json",
    )
    assert [c["trace_id"] for c in json.loads(res.stdout)["calls"]] == ["t0", "t1"]
    res = run_cli("calls", str(traces), "--where", "score < 0.5")
    assert res.returncode == 2
    assert res.stderr == "llmobs: --where: score needs --evals EVALS (judgments to join)\n"


def test_usage_errors_are_one_line_exit_2() -> None:
    path = str(SAMPLE / "traces.parquet")
    res = run_cli("calls", path, "--where", "latncy_ms > 5s")
    assert res.returncode == 2
    assert res.stderr == (
        "llmobs: --where: position 1: unknown field 'latncy_ms' (did you mean latency_ms?)\n"
    )
    res = run_cli("calls", path, "--sort", "latenc_ms")
    assert (res.returncode, res.stderr) == (
        2,
        "llmobs: --sort: unknown field 'latenc_ms' (did you mean latency_ms?)\n",
    )
    res = run_cli("calls", path, "--sort", "score")
    assert res.stderr == "llmobs: --sort: unknown field 'score' (it needs --evals EVALS)\n"
    res = run_cli("calls", path, "--top", "0")
    assert res.stderr == "llmobs: --top: expected a positive number of calls, got 0\n"
    res = run_cli("calls", path, "--since", "2030-01-01")
    assert (res.returncode, res.stderr) == (
        2,
        "llmobs: no calls in the input and window (nothing to list)\n",
    )


def test_no_match_is_exit_0_with_empty_list() -> None:
    res = run_cli(
        "calls", str(SAMPLE / "traces.parquet"), "--where", "route = nowhere", "--format", "json"
    )
    assert res.returncode == 0
    assert json.loads(res.stdout)["calls"] == []


@pytest.mark.parametrize("width", [80, 100, 200])
def test_table_fits_and_keeps_numbers_whole(width: int) -> None:
    res = run_cli(
        "calls",
        str(SAMPLE / "traces.parquet"),
        "--sort",
        "cost_usd",
        "--top",
        "5",
        env={"COLUMNS": str(width)},
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    js = run_cli(
        "calls",
        str(SAMPLE / "traces.parquet"),
        "--sort",
        "cost_usd",
        "--top",
        "5",
        "--format",
        "json",
    )
    costs = [c["cost_usd"] for c in json.loads(js.stdout)["calls"]]
    for cost in costs:
        assert f"${cost:,.2f}" in res.stdout  # whole, never "$0.0…"
    body = [ln for ln in lines if ln.startswith("│")]
    assert len(body) == 5
    for ln in body:  # no ellipsis anywhere but in the excerpt (the last column)
        assert "…" not in "│".join(ln.split("│")[:-2])


def test_lazy_scan_falls_back_to_the_reader_on_bad_rows_and_duplicates(tmp_path: Path) -> None:
    """Canonical Parquet is ranked by one lazy scan; a bad row or a call read twice sends
    the command through the validating reader, which names the row / counts it once."""
    from llmobs_cli.core.explore import fastscan

    frame = pl.read_parquet(SAMPLE / "traces.parquet")
    good = tmp_path / "good.parquet"
    frame.write_parquet(good)
    assert fastscan.canonical_sources([str(good)], None) == [good]
    bad = tmp_path / "bad.parquet"
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 6)
        .then(-5.0)
        .otherwise(pl.col("latency_ms"))
        .alias("latency_ms")
    ).write_parquet(bad)
    res = run_cli("calls", str(bad), "--sort", "latency_ms")
    assert res.returncode == 2
    assert res.stderr.startswith(f"{bad}: row 7: latency_ms: must be >= 0, got -5.0")
    dup = tmp_path / "dup.parquet"
    pl.concat([frame, frame.head(10)]).write_parquet(dup)
    a = json.loads(run_cli("calls", str(dup), "--sort", "+timestamp", "-f", "json").stdout)
    b = json.loads(run_cli("calls", str(good), "--sort", "+timestamp", "-f", "json").stdout)
    assert a["matched"] == b["matched"] == frame.height
    assert a["calls"] == b["calls"]
    aliased = tmp_path / "aliased.parquet"
    frame.rename({"input_tokens": "prompt_tokens"}).write_parquet(aliased)
    assert fastscan.canonical_sources([str(aliased)], None) is None  # the reader renames
