"""Langfuse blob-storage exports (JSONL/CSV/Parquet), LangSmith runs, Helicone requests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.ingest.readers.formats import detect_format
from llmobs_cli.core.ingest.readers.langfuse import normalise_usage

EXT = Path(__file__).parent / "fixtures" / "external" / "langfuse-framework-traces"


def _snake(k: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower()


def _blob_rows() -> list[dict[str, Any]]:
    """The UI exports' observations as blob-storage rows (snake_case, with trace fields)."""
    rows = []
    for p in sorted(EXT.glob("*.json")):
        d = json.loads(p.read_text())
        t = d["trace"]
        for o in d["observations"]:
            row = {_snake(k): v for k, v in o.items()}
            row.update(
                user_id=t.get("userId"),
                session_id=t.get("sessionId"),
                trace_name=t["name"],
                tags=t.get("tags"),
                release=t.get("release"),
            )
            for k in (
                "input",
                "output",
                "metadata",
                "usage_details",
                "cost_details",
                "model_parameters",
                "provided_usage_details",
                "provided_cost_details",
                "tags",
            ):
                if not isinstance(row.get(k), (str, type(None))):
                    row[k] = json.dumps(row[k])
            # blob storage writes "YYYY-MM-DD HH:MM:SS.ffffff" UTC times
            for k in ("start_time", "end_time", "completion_start_time"):
                if row.get(k):
                    row[k] = row[k].replace("T", " ").replace("Z", "000")
            row.pop("latency", None)
            rows.append(row)
    return rows


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_langfuse_blob_exports(tmp_path: Path, ext: str) -> None:
    rows = _blob_rows()
    gens = [r for r in rows if r["type"] == "GENERATION"]
    assert len(gens) == 28
    frame = pl.DataFrame(rows, infer_schema_length=None).select(
        [
            pl.col(c).cast(pl.String)
            for c in (
                "id",
                "trace_id",
                "type",
                "parent_observation_id",
                "start_time",
                "end_time",
                "name",
                "model",
                "input",
                "output",
                "usage_details",
                "cost_details",
                "total_cost",
                "level",
                "user_id",
                "session_id",
                "trace_name",
                "tags",
                "metadata",
                "model_parameters",
                "completion_start_time",
                "input_usage",
                "output_usage",
                "total_usage",
            )
        ]
    )
    path = tmp_path / f"observations.{ext}"
    if ext == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif ext == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    assert detect_format(path) == "langfuse"
    f = load([str(path)]).frame
    assert f.height == 28
    assert sorted(f["span_id"].to_list()) == sorted(g["id"] for g in gens)
    assert f["route"].drop_nulls().len() == 28
    want_in = sum(
        json.loads(g["usage_details"]).get("input", 0)
        if g.get("usage_details")
        else g["input_usage"]
        for g in gens
    )
    assert f["input_tokens"].sum() == want_in
    assert f["cost_usd"].sum() == pytest.approx(sum(float(g["total_cost"]) for g in gens))
    u = f.filter(pl.col("trace_id") == "1b72c51fabed12ae7df83bfd4a09f545")  # autogen
    assert (u["user_id"][0], u["session_id"][0], u["tags"][0].to_list()) == (
        "user_123",
        "session_abc",
        ["autogen", "dev"],
    )


def test_langfuse_usage_conventions() -> None:
    # OpenAI via Langfuse SDK: input excludes cached tokens; total is the sum of all keys
    assert normalise_usage(
        {"input": 200, "input_cached_tokens": 800, "output": 50, "total": 1050}
    ) == {
        "input_tokens": 1000,
        "output_tokens": 50,
        "cached_tokens": 800,
        "cache_write_tokens": None,
        "reasoning_tokens": None,
    }
    # OTel ingestion: reasoning is inside output (total = input + output)
    got = normalise_usage(
        {"input": 6, "output": 2055, "completion_details.reasoning": 1104, "total": 2061}
    )
    assert (got["output_tokens"], got["reasoning_tokens"]) == (2055, 1104)
    # Anthropic: cache reads and writes are separate keys
    got = normalise_usage(
        {"input": 10, "input_cache_read": 500, "input_cache_creation": 90, "output": 7}
    )
    assert (got["input_tokens"], got["cached_tokens"], got["cache_write_tokens"]) == (600, 500, 90)


LANGSMITH = [
    {
        "id": "r-root",
        "trace_id": "r-root",
        "parent_run_id": None,
        "name": "support_bot",
        "run_type": "chain",
        "start_time": "2026-02-01T10:00:00.000000",
        "end_time": "2026-02-01T10:00:03.000000",
        "status": "success",
        "inputs": {"question": "Refund?"},
        "outputs": {"answer": "Yes"},
        "extra": {"metadata": {"user_id": "u1"}},
        "tags": ["prod"],
    },
    {
        "id": "r-llm",
        "trace_id": "r-root",
        "parent_run_id": "r-root",
        "name": "ChatOpenAI",
        "run_type": "llm",
        "start_time": "2026-02-01T10:00:00.500000",
        "end_time": "2026-02-01T10:00:02.000000",
        "first_token_time": "2026-02-01T10:00:00.800000",
        "status": "success",
        "inputs": {
            "messages": [
                [
                    {
                        "lc": 1,
                        "type": "constructor",
                        "id": ["langchain", "schema", "messages", "SystemMessage"],
                        "kwargs": {"content": "Be kind."},
                    },
                    {
                        "lc": 1,
                        "type": "constructor",
                        "id": ["langchain", "schema", "messages", "HumanMessage"],
                        "kwargs": {"content": "Can I get a refund?"},
                    },
                ]
            ]
        },
        "outputs": {
            "generations": [
                [
                    {
                        "text": "Yes, within 30 days.",
                        "generation_info": {"finish_reason": "stop"},
                        "message": {"kwargs": {"content": "Yes, within 30 days."}},
                    }
                ]
            ]
        },
        "extra": {
            "invocation_params": {"model": "gpt-4o-mini", "temperature": 0.1},
            "metadata": {
                "ls_provider": "openai",
                "ls_model_name": "gpt-4o-mini",
                "thread_id": "th-1",
                "user_id": "u1",
            },
        },
        "prompt_tokens": 120,
        "completion_tokens": 9,
        "total_tokens": 129,
        "prompt_token_details": {"cache_read": 64},
        "completion_token_details": {"reasoning": 0},
        "prompt_cost": 0.000018,
        "completion_cost": 0.0000054,
        "total_cost": 0.0000234,
        "tags": ["prod"],
    },
    {
        "id": "r-tool",
        "trace_id": "r-root",
        "parent_run_id": "r-root",
        "name": "lookup",
        "run_type": "tool",
        "start_time": "2026-02-01T10:00:02.000000",
        "end_time": "2026-02-01T10:00:02.500000",
        "status": "error",
        "error": "timeout",
        "inputs": {},
        "outputs": None,
        "extra": {},
    },
]


def test_langsmith_runs(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in LANGSMITH))
    assert detect_format(p) == "langsmith"
    f = load([str(p)]).frame
    assert f.height == 1
    r = f.row(0, named=True)
    assert (r["trace_id"], r["span_id"], r["route"], r["model"], r["provider"]) == (
        "r-root",
        "r-llm",
        "support_bot",
        "gpt-4o-mini",
        "openai",
    )
    assert (r["input_tokens"], r["output_tokens"], r["cached_tokens"]) == (120, 9, 64)
    assert r["cost_usd"] == pytest.approx(0.0000234)
    assert (r["system"], r["prompt"], r["response"], r["finish_reason"]) == (
        "Be kind.",
        "Can I get a refund?",
        "Yes, within 30 days.",
        "stop",
    )
    assert r["latency_ms"] == pytest.approx(1500.0) and r["ttft_ms"] == pytest.approx(300.0)
    assert (r["session_id"], r["user_id"]) == ("th-1", "u1")
    q = tmp_path / "runs.json"
    q.write_text(json.dumps({"runs": LANGSMITH}))
    assert load([str(q)], fmt="langsmith").frame["span_id"].to_list() == ["r-llm"]


HELICONE = [
    {
        "request_id": "h1",
        "request_created_at": "2026-03-01T09:00:00.000Z",
        "response_created_at": "2026-03-01T09:00:01.200Z",
        "request_path": "/v1/chat/completions",
        "request_user_id": "alice",
        "provider": "OPENAI",
        "request_model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "model": "gpt-4o-2024-08-06",
        "delay_ms": 1200,
        "time_to_first_token": 300,
        "prompt_tokens": 900,
        "completion_tokens": 40,
        "total_tokens": 940,
        "prompt_cache_read_tokens": 512,
        "prompt_cache_write_tokens": 0,
        "cost": 0.0031,
        "response_status": 200,
        "properties": {"Helicone-Session-Id": "sess-1", "route": "faq", "environment": "prod"},
        "request_body": {
            "model": "gpt-4o",
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": "FAQ bot"},
                {"role": "user", "content": "Opening hours?"},
            ],
        },
        "response_body": {
            "choices": [
                {"message": {"role": "assistant", "content": "9 to 5."}, "finish_reason": "stop"}
            ]
        },
    },
    {
        "request_id": "h2",
        "request_created_at": "2026-03-01T09:05:00.000Z",
        "request_path": "/v1/messages",
        "provider": "ANTHROPIC",
        "model": "claude-3-5-haiku",
        "delay_ms": 800,
        "time_to_first_token": 0,
        "prompt_tokens": 20,
        "completion_tokens": 5,
        "prompt_cache_read_tokens": 1000,
        "prompt_cache_write_tokens": 100,
        "cost": 0.0004,
        "response_status": 529,
        "properties": {},
        "request_body": {
            "model": "claude-3-5-haiku",
            "system": "Terse.",
            "messages": [{"role": "user", "content": "Hi"}],
        },
        "response_body": {"error": {"type": "overloaded_error", "message": "Overloaded"}},
    },
]


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_helicone_requests(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"helicone.{ext}"
    if ext == "jsonl":
        p.write_text("".join(json.dumps(r) + "\n" for r in HELICONE))
    else:
        pl.DataFrame(
            [
                {k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()}
                for r in HELICONE
            ],
            infer_schema_length=None,
        ).write_csv(p)
    assert detect_format(p) == "helicone"
    f = load([str(p)]).frame.sort("span_id")
    a, b = f.row(0, named=True), f.row(1, named=True)
    assert (a["model"], a["route"], a["session_id"], a["user_id"], a["environment"]) == (
        "gpt-4o-2024-08-06",
        "faq",
        "sess-1",
        "alice",
        "prod",
    )
    # OpenAI counts cache reads inside prompt tokens; Anthropic does not (added here)
    assert (a["input_tokens"], a["cached_tokens"]) == (900, 512)
    assert (b["input_tokens"], b["cached_tokens"], b["cache_write_tokens"]) == (1120, 1000, 100)
    assert (a["latency_ms"], a["ttft_ms"], a["cost_usd"]) == (1200.0, 300.0, 0.0031)
    assert (a["system"], a["prompt"], a["response"], a["finish_reason"]) == (
        "FAQ bot",
        "Opening hours?",
        "9 to 5.",
        "stop",
    )
    assert (b["status"], b["error"], b["system"], b["route"]) == (
        "error",
        "Overloaded",
        "Terse.",
        "/v1/messages",
    )
    assert json.loads(a["params"]) == {"temperature": 0.2}
