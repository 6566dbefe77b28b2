"""``llmobs show``: span trees from OTLP (any-agent) and Langfuse exports, with per-span and
rolled-up tokens checked against the raw files; sessions, judgments, prefixes, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.core.eval.run import JUDGMENT_SCHEMA
from test_eval_support import run_cli

EXT = Path(__file__).parent / "fixtures" / "external"
SAMPLE = Path(__file__).parent.parent / "sample_traces"


def _any_agent_truth(path: Path) -> tuple[str, dict[str, tuple[int, int]], dict[str, str | None]]:
    """trace id (hex), per-span (input, output) tokens of the LLM spans, parent of each span,
    straight from the raw file (ids are big integers there)."""
    doc = json.loads(path.read_text())
    tokens: dict[str, tuple[int, int]] = {}
    parents: dict[str, str | None] = {}
    trace = None
    for sp in doc["spans"]:
        sid = f"{sp['context']['span_id']:016x}"
        trace = f"{sp['context']['trace_id']:032x}"
        parent = sp.get("parent") or {}
        parents[sid] = f"{parent['span_id']:016x}" if parent.get("span_id") else None
        a = sp["attributes"]
        if a.get("gen_ai.operation.name") == "call_llm":
            tokens[sid] = (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"])
    assert trace is not None
    return trace, tokens, parents


def _langfuse_truth(path: Path) -> tuple[str, dict[str, tuple[int, int]], dict[str, str | None]]:
    doc = json.loads(path.read_text())
    tokens = {}
    for o in doc["observations"]:
        if o["type"] == "GENERATION":
            u = o["usageDetails"]
            # Langfuse counts cache reads apart from input; the record contract inside it.
            cached = sum(v for k, v in u.items() if "cache_read" in k)
            tokens[o["id"]] = (u["input"] + cached, u["output"])
    parents = {o["id"]: o.get("parentObservationId") for o in doc["observations"]}
    return doc["trace"]["id"], tokens, parents


def _descendants(span: str, parents: dict[str, str | None]) -> set[str]:
    out = {span}
    changed = True
    while changed:
        changed = False
        for s, p in parents.items():
            if p in out and s not in out:
                out.add(s)
                changed = True
    return out


@pytest.mark.parametrize(
    ("path", "truth"),
    [
        (EXT / "any-agent-traces" / "OPENAI_trace.json", _any_agent_truth),
        (EXT / "any-agent-traces" / "LANGCHAIN_trace.json", _any_agent_truth),
        (EXT / "langfuse-framework-traces" / "langgraph-2025-08-22.json", _langfuse_truth),
        (EXT / "langfuse-framework-traces" / "openai-agents-2025-09-30.json", _langfuse_truth),
    ],
)
def test_tree_tokens_equal_the_file(path: Path, truth) -> None:  # type: ignore[no-untyped-def]
    trace, tokens, parents = truth(path)
    res = run_cli("show", trace, str(path), "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    spans = {s["span_id"]: s for s in doc["spans"]}
    assert set(spans) == set(parents)  # every span of the file, context spans included
    assert len(spans) > len(tokens) >= 1  # a real tree: more spans than LLM calls
    for sid, s in spans.items():
        assert s["parent_span_id"] == parents[sid]
        own = tokens.get(sid, (0, 0))
        assert (s["input_tokens"], s["output_tokens"]) == own
        below = _descendants(sid, parents)
        want = tuple(sum(tokens.get(x, (0, 0))[i] for x in below) for i in (0, 1))
        assert (s["rolled_up"]["input_tokens"], s["rolled_up"]["output_tokens"]) == want
        assert s["depth"] == (0 if parents[sid] is None else spans[parents[sid]]["depth"] + 1)
    total = tuple(sum(v[i] for v in tokens.values()) for i in (0, 1))
    assert (doc["totals"]["input_tokens"], doc["totals"]["output_tokens"]) == total
    assert doc["totals"]["calls"] == len(tokens)
    # The terminal view shows the tree and the totals.
    table = run_cli("show", trace[:10], str(path), env={"COLUMNS": "100"})
    assert table.returncode == 0, table.stderr
    assert f"tokens {total[0]:,}→{total[1]:,}" in table.stdout
    assert "└─ " in table.stdout


def test_otlp_tree_nests_agent_tool_llm() -> None:
    path = EXT / "any-agent-traces" / "OPENAI_trace.json"
    res = run_cli("show", "4bedea77", str(path), "--format", "json")
    doc = json.loads(res.stdout)
    kinds = [(s["depth"], s["kind"]) for s in doc["spans"]]
    assert kinds[0] == (0, "invoke_agent")
    assert (1, "execute_tool") in kinds and (1, "llm") in kinds
    offsets = [s["offset_ms"] for s in doc["spans"]]
    assert offsets[0] == 0 and all(o >= 0 for o in offsets)


def test_session_in_order_and_prefix_and_markdown() -> None:
    path = str(SAMPLE / "traces.parquet")
    res = run_cli("show", "9eb384a1", path, "--session", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["trace_id"] == "9eb384a1ec3e391a6388a33ed5a928cf"
    frame = pl.read_parquet(path)
    sid = frame.filter(pl.col("trace_id") == doc["trace_id"])["session_id"][0]
    want = frame.filter(pl.col("session_id") == sid).sort("timestamp")["trace_id"].to_list()
    assert [r["trace_id"] for r in doc["session"]] == want
    call = doc["spans"][0]["call"]
    row = frame.filter(pl.col("trace_id") == doc["trace_id"]).row(0, named=True)
    assert call["prompt"] == row["prompt"] and call["response"] == row["response"]
    assert doc["totals"]["cost_usd"] == pytest.approx(row["cost_usd"])
    md = run_cli("show", "9eb384a1", "--traces", path, "--format", "markdown")
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("### trace `9eb384a1ec3e391a6388a33ed5a928cf`")
    assert "**response:** Thanks for your patience." in md.stdout


def test_retrieved_documents_and_judgments(tmp_path: Path) -> None:
    path = str(SAMPLE / "traces.parquet")
    frame = pl.read_parquet(path)
    row = frame.filter(pl.col("retrieved").list.len() > 1).row(0, named=True)
    j = {c: None for c in JUDGMENT_SCHEMA}
    j.update(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        route=row["route"],
        timestamp=datetime(2026, 11, 1, tzinfo=UTC),
        evaluator="faithfulness",
        score=0.25,
        weight=1.0,
        explanation="claims a 30-day window the documents do not state",
    )
    evals = tmp_path / "evals.parquet"
    pl.DataFrame([j], schema=JUDGMENT_SCHEMA).write_parquet(evals)
    res = run_cli("show", row["trace_id"], path, "--evals", str(evals), env={"COLUMNS": "120"})
    assert res.returncode == 0, res.stderr
    first = row["retrieved"][0]
    assert f"doc 1 {first['id']} (score {first['score']:.3f})" in res.stdout
    assert "claims a 30-day window" in res.stdout
    js = json.loads(
        run_cli("show", row["trace_id"], path, "--evals", str(evals), "-f", "json").stdout
    )
    assert js["judgments"][0]["score"] == 0.25


def test_unknown_and_ambiguous_ids_exit_2() -> None:
    path = str(SAMPLE / "traces.parquet")
    res = run_cli("show", "9eb384a1ec3e391a6388a33ed5a928cX", path)
    assert res.returncode == 2
    assert res.stderr == (
        "llmobs: no trace '9eb384a1ec3e391a6388a33ed5a928cX' in the input "
        "(closest: 9eb384a1ec3e391a6388a33ed5a928cf)\n"
    )
    res = run_cli("show", "9", path)
    assert res.returncode == 2
    assert res.stderr.startswith("llmobs: trace id '9' is ambiguous: it starts ")
    res = run_cli("show", "9eb384a1")
    assert (res.returncode, res.stderr) == (
        2,
        "llmobs: show: name the trace files (llmobs show TRACE_ID TRACES...)\n",
    )
    res = run_cli("show", "9eb384a1", path, "--session", "--format", "csv")
    assert res.returncode == 2
