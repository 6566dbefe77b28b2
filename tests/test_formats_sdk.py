"""Exports written by the platforms' own SDKs (tests/fixtures/sdk, see PROVENANCE.md).

Every file records the same four known calls of one app (``support_chat``), traced with
Langfuse, LangSmith, Arize Phoenix (OpenInference), MLflow and OpenLLMetry, or laid out as
the platforms' exports. The expectations below are those calls, stated once, not read
from the files: what each reader must find, call by call.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.ingest.readers.formats import detect_format
from llmobs_cli.errors import InputError, InputWarning
from test_cli_foundation import run

SDK = Path(__file__).parent / "fixtures" / "sdk"

# question → (requested model, dated response model, input, output, cached, reasoning, ok)
CALLS = {
    "Where is my order?": ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", 120, 30, 64, 0, True),
    "Plan a refund.": ("o3-mini", "o3-mini-2025-01-31", 200, 150, 0, 100, True),
    "Cancel it.": ("gpt-4o-mini", None, None, None, None, None, False),
    "Thanks!": ("gpt-4o", "gpt-4o-2024-08-06", 80, 12, 0, 0, True),
}
ORDER = list(CALLS)
#: From configs/prices.yaml: gpt-4o-mini 56 x 0.15 + 64 x 0.075 + 30 x 0.60; o3-mini
#: 200 x 1.10 + 150 x 4.40; gpt-4o 80 x 2.50 + 12 x 10.00 (USD per million tokens).
COST = (56 * 0.15 + 64 * 0.075 + 30 * 0.60 + 200 * 1.10 + 150 * 4.40 + 80 * 2.50 + 12 * 10.0) / 1e6

#: file → (detected format, which model a record names: response or requested)
FULL = {
    "langfuse-otel.jsonl": ("otlp", "response"),
    "langsmith-batches.jsonl": ("langsmith", "requested"),
    "phoenix-otel.jsonl": ("otlp", "response"),
    "phoenix-otlpv1.json": ("otlp", "response"),
    "phoenix-rest-spans.json": ("openinference", "response"),
    "phoenix-spans-dataframe.parquet": ("openinference", "response"),
    "mlflow-traces.jsonl": ("otlp", "response"),
    "mlflow-cli-search.json": ("otlp", "response"),
    "mlflow-search-traces.json": ("otlp", "response"),
    "openllmetry-spans.json": ("otlp", "response"),
}


def _expected(which: str, questions: list[str]) -> list[tuple]:
    out = []
    for q in questions:
        req, resp, i, o, c, r, ok = CALLS[q]
        model = req if (which == "requested" or resp is None) else resp
        out.append((model, i, o, c, r, "ok" if ok else "error"))
    return out


def _read(name: str) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # nothing tolerated in these files
        return load([str(SDK / name)]).frame.sort("timestamp")


def _rows(f: pl.DataFrame) -> list[tuple]:
    cols = ["model", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"]
    return [tuple(r) for r in f.select(*cols, "status").iter_rows()]


@pytest.mark.parametrize("name", sorted(FULL))
def test_sdk_export_reads_the_four_known_calls(name: str) -> None:
    fmt, which = FULL[name]
    assert detect_format(SDK / name) == fmt
    f = _read(name)
    assert _rows(f) == _expected(which, ORDER)
    assert f["route"].to_list() == ["support_chat"] * 4
    assert f["prompt"].to_list() == ORDER
    assert f["response"].to_list()[:2] == [f"Answer to: {q}" for q in ORDER[:2]]
    err = f.filter(pl.col("status") == "error")["error"].to_list()
    assert len(err) == 1 and "upstream overloaded" in err[0]
    assert f["latency_ms"].is_not_null().all() and (f["latency_ms"] > 0).all()
    assert f["span_id"].n_unique() == 4 and f["trace_id"].n_unique() == 4


@pytest.mark.parametrize("name", ["langfuse-otel.jsonl", "langsmith-batches.jsonl"])
def test_sdk_export_report_cost_and_errors(name: str) -> None:
    res = run("report", str(SDK / name), "--format", "json")
    assert res.returncode == 0, res.stderr
    overall = json.loads(res.stdout)["overall"]
    assert overall["calls"] == 4 and overall["error_rate"] == 0.25
    assert overall["input_tokens"] == 400 and overall["output_tokens"] == 192
    assert overall["cached_tokens"] == 64 and overall["reasoning_tokens"] == 100
    assert overall["cost_usd"] == pytest.approx(COST, rel=1e-9)
    assert overall["cost_complete"] is True


def test_langfuse_otel_trace_attributes() -> None:
    f = _read("langfuse-otel.jsonl")
    assert set(f["session_id"]) == {"sess-42"} and set(f["user_id"]) == {"user-7"}
    assert f["tags"].to_list() == [["prod"]] * 4
    assert json.loads(f["params"][0])["temperature"] == 0.2


def test_single_and_partial_documents() -> None:
    # Trace.to_json(pretty=True) of the failed call: one pretty-printed document
    f = _read("mlflow-trace.json")
    assert _rows(f) == _expected("response", ["Cancel it."])
    # a JSON array of bare protobuf-JSON spans; pretty documents written back to back
    for name in ("otlp-bare-spans.json", "otlp-pretty-concatenated.json"):
        assert detect_format(SDK / name) == "otlp"
        assert _rows(_read(name)) == _expected("response", ORDER[:2])


def test_unfinished_copies_and_opaque_ids() -> None:
    p = SDK / "span-dump-unfinished.jsonl"
    with pytest.warns(InputWarning) as got:
        f = load([str(p)]).frame.sort("timestamp")
    assert _rows(f) == _expected("response", ORDER[:2])
    assert sorted(f["trace_id"]) == ["trace-1", "trace-2"]  # kept as they are
    assert sorted(f["span_id"]) == ["span-0", "span-2"]
    said = sorted(str(w.message) for w in got)
    assert said == [
        f"{p}: 1 unfinished span(s) skipped (no end time, no finished copy)",
        f"{p}: 2 unfinished span copy(ies) replaced by their finished copy",
    ]


def test_openllmetry_legacy_vocabulary() -> None:
    # llm.usage.*, llm.request/response.model, gen_ai.usage.prompt_tokens (hand-written)
    f = _read("openllmetry-legacy-spans.json")
    assert _rows(f) == [
        ("gpt-4o-mini-2024-07-18", 120, 30, 64, None, "ok"),
        ("o3-mini-2025-01-31", 200, 150, None, None, "ok"),
        ("gpt-4o-mini", None, None, None, None, "error"),
    ]
    assert f["provider"].to_list()[:2] == ["OpenAI", "OpenAI"]


# ------------------------------------------------------------------ zero is an error


def test_a_file_with_no_llm_call_is_exit_2_naming_format_and_why(tmp_path: Path) -> None:
    canon = tmp_path / "calls.jsonl"
    canon.write_text(
        json.dumps({"trace_id": "t1", "timestamp": "2025-01-01T00:00:00Z", "model": "m"}) + "\n"
    )
    res = run("validate", str(canon), "--from", "langfuse")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"{canon}: read as langfuse: 1 observation(s)/row(s), none of type GENERATION "
        "(no Langfuse trace export or observation rows)"
    )
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps([{"id": "r1", "run_type": "chain", "inputs": {}}]))
    with pytest.raises(InputError, match="read as langsmith: 1 run"):
        load([runs])


# ------------------------------------------------------------ the one wrapper rule


def _wrapped_app() -> dict[str, object]:
    """One call, recorded as a wrapper LLM span whose usage repeats its child's."""
    return {"in": 50, "out": 7, "model": "gpt-4o-mini"}


def test_wrapper_rule_is_the_same_in_every_reader(tmp_path: Path) -> None:
    c = _wrapped_app()
    t0, t1 = "2025-03-01T10:00:00.000Z", "2025-03-01T10:00:01.000Z"
    # Langfuse UI export: ai.generateText GENERATION around its doGenerate GENERATION
    gen = {"type": "GENERATION", "model": c["model"], "startTime": t0, "endTime": t1}
    usage = {"input": c["in"], "output": c["out"], "total": c["in"] + c["out"]}
    lf = {
        "trace": {"id": "tr1", "name": "app"},
        "observations": [
            {**gen, "id": "w", "traceId": "tr1", "name": "ai.generateText", "usageDetails": usage},
            {
                **gen,
                "id": "leaf",
                "traceId": "tr1",
                "parentObservationId": "w",
                "name": "ai.generateText.doGenerate",
                "usageDetails": usage,
            },
        ],
    }
    (tmp_path / "lf.json").write_text(json.dumps(lf))

    # Langfuse SDK OTLP: the same two observations as langfuse.observation.* spans
    def lf_span(sid: str, parent: str | None) -> dict[str, object]:
        attrs = {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": c["model"],
            "langfuse.observation.usage_details": json.dumps(
                {"input": c["in"], "output": c["out"]}
            ),
        }
        return {
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": sid,
            **({"parentSpanId": parent} if parent else {}),
            "name": "ai.generateText",
            "startTimeUnixNano": "1740823200000000000",
            "endTimeUnixNano": "1740823201000000000",
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
        }

    otlp = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            lf_span("b7ad6b7169203331", None),
                            lf_span("00f067aa0ba902b7", "b7ad6b7169203331"),
                        ]
                    }
                ]
            }
        ]
    }
    (tmp_path / "otlp.json").write_text(json.dumps(otlp))
    # LangSmith: an llm run around the chat model's llm run
    run = {"run_type": "llm", "trace_id": "tr1", "start_time": t0, "end_time": t1}
    um = {"input_tokens": c["in"], "output_tokens": c["out"]}
    ls = [
        {
            **run,
            "id": "w",
            "name": "agent_llm",
            "outputs": {"usage_metadata": um},
            "extra": {"metadata": {"ls_model_name": c["model"]}},
        },
        {
            **run,
            "id": "leaf",
            "parent_run_id": "w",
            "name": "ChatOpenAI",
            "outputs": {"usage_metadata": um},
            "extra": {"metadata": {"ls_model_name": c["model"]}},
        },
    ]
    (tmp_path / "ls.json").write_text(json.dumps(ls))
    for name, fmt in (("lf.json", "langfuse"), ("otlp.json", "otlp"), ("ls.json", "langsmith")):
        with pytest.warns(InputWarning, match="not counted"):
            res = load([tmp_path / name])
        assert res.formats == {str(tmp_path / name): fmt}
        f = res.frame
        assert f.height == 1, name
        assert (f["input_tokens"][0], f["output_tokens"][0]) == (c["in"], c["out"])
    # a parent whose usage differs from its child's is a call of its own: both count
    lf["observations"][0]["usageDetails"] = {"input": 900, "output": 10, "total": 910}
    (tmp_path / "lf2.json").write_text(json.dumps(lf))
    assert load([tmp_path / "lf2.json"]).frame.height == 2


# ---------------------------------------------------- folders and duplicate spans


def test_a_folder_counts_every_file_and_duplicates_count_once(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(SDK / "phoenix-spans-dataframe.parquet", folder / "a.parquet")
    shutil.copy(SDK / "langfuse-otel.jsonl", folder / "b.jsonl")
    res = load([folder])
    assert res.frame.height == 8
    assert [(f.format, f.calls) for f in res.files] == [("openinference", 4), ("otlp", 4)]
    # The same spans given twice (the file and a copy of it) are counted once, with a word
    shutil.copy(SDK / "langfuse-otel.jsonl", tmp_path / "again.jsonl")
    with pytest.warns(InputWarning, match="^4 duplicate span_id row"):
        res = load([folder, tmp_path / "again.jsonl"])
    assert res.frame.height == 8 and res.duplicates == 4
    out = run("validate", str(folder), str(tmp_path / "again.jsonl"), "-f", "json")
    assert out.returncode == 0, out.stderr
    assert out.stderr == (
        "warning: 4 duplicate span_id row(s) counted once "
        "(the same call read twice; --keep-duplicates keeps them)\n"
    )
    body = json.loads(out.stdout)
    assert body["rows"] == 8 and body["duplicates"] == 4
    assert [(f["format"], f["calls"]) for f in body["files"]] == [
        ("openinference", 4),
        ("otlp", 4),
        ("otlp", 4),
    ]
    kept = run(
        "validate", str(folder), str(tmp_path / "again.jsonl"), "-f", "json", "--keep-duplicates"
    )
    assert json.loads(kept.stdout)["rows"] == 12


def test_collector_debug_exporter_text() -> None:
    # hand-written in the debug exporter's detailed layout (see PROVENANCE.md)
    p = SDK / "collector-debug.log"
    assert detect_format(p) == "otlp"
    f = load([p]).frame.sort("timestamp")
    assert _rows(f) == [
        ("gpt-4o-mini-2024-07-18", 120, 30, None, None, "ok"),
        ("gpt-4o-mini", None, None, None, None, "error"),
    ]
    assert f["route"].to_list() == ["support_chat"] * 2
    assert f["latency_ms"].to_list() == [1250.0, 500.0]
    assert f["environment"].to_list() == ["prod", "prod"]
    assert f["error"][1] == "Error code: 500 - upstream overloaded"


def test_failed_call_takes_its_parents_model_else_unknown(tmp_path: Path) -> None:
    def span(sid: str, parent: str | None, attrs: dict[str, str], error: bool) -> dict:
        return {
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": sid,
            **({"parentSpanId": parent} if parent else {}),
            "name": "x",
            "startTimeUnixNano": "1740823200000000000",
            "endTimeUnixNano": "1740823201000000000",
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
            "status": {"code": 2 if error else 0},
        }

    chat = {"gen_ai.operation.name": "chat"}
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "claude-sonnet-4"}
    doc = [
        span("b7ad6b7169203331", None, agent, False),
        span("00f067aa0ba902b7", "b7ad6b7169203331", chat, True),  # under the agent
        span("00f067aa0ba902b8", None, chat, True),  # nothing names its model
    ]
    p = tmp_path / "spans.json"
    p.write_text(json.dumps(doc))
    f = load([p]).frame.sort("span_id")
    assert f.select("model", "status").rows() == [
        ("claude-sonnet-4", "error"),
        ("unknown", "error"),
    ]


def test_a_damaged_export_is_exit_2_naming_file_and_format(tmp_path: Path) -> None:
    # shapes no reader expects (hand-edited, truncated by a tool): one line, never exit 70
    p = tmp_path / "damaged.json"
    p.write_text(json.dumps({"resourceSpans": [{"resource": 5, "scopeSpans": [{"spans": 7}]}]}))
    res = run("report", str(p))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{p}: cannot be read as otlp (")


def test_ttft_from_phoenix_first_token_event_and_langfuse_completion_start(
    tmp_path: Path,
) -> None:
    start = 1740823200000000000
    kv = lambda k, v: {"key": k, "value": {"stringValue": v}}  # noqa: E731
    phoenix = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "ChatCompletion",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 2_000_000_000),
        "attributes": [kv("openinference.span.kind", "LLM"), kv("llm.model_name", "gpt-4o")],
        "events": [{"name": "First Token Stream Event", "timeUnixNano": str(start + 250_000_000)}],
    }
    langfuse = {
        **phoenix,
        "spanId": "00f067aa0ba902b7",
        "attributes": [
            kv("langfuse.observation.type", "generation"),
            kv("langfuse.observation.model.name", "gpt-4o"),
            # the SDK JSON-encodes the time (2025-03-01T10:00:00.4Z = start + 400 ms)
            kv("langfuse.observation.completion_start_time", '"2025-03-01T10:00:00.400000Z"'),
        ],
        "events": [],
    }
    p = tmp_path / "spans.json"
    p.write_text(json.dumps([phoenix, langfuse]))
    f = load([p]).frame.sort("span_id", descending=True)
    assert f["ttft_ms"].to_list() == [250.0, 400.0]
