"""OTLP/JSON encodings, GenAI/OpenInference conventions, Phoenix shapes, errors.

Documents are built here by hand in each encoding real files use, so every expectation is
the value written into the document.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.ingest.readers.formats import ReadOptions, detect_format
from llmobs_cli.errors import InputError

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, LLM, RET, EMB, TOOL = (
    "eee19b7ec3c1b173",
    "eee19b7ec3c1b174",
    "eee19b7ec3c1b175",
    "eee19b7ec3c1b176",
    "eee19b7ec3c1b177",
)


def kv(key: str, value: Any, *, ints_as_str: bool = True) -> dict[str, Any]:
    def enc(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v) if ints_as_str else v}
        if isinstance(v, float):
            return {"doubleValue": v}
        if isinstance(v, list):
            return {"arrayValue": {"values": [enc(x) for x in v]}}
        if isinstance(v, dict):
            return {"kvlistValue": {"values": [{"key": k, "value": enc(x)} for k, x in v.items()]}}
        if isinstance(v, bytes):
            return {"bytesValue": base64.b64encode(v).decode()}
        return {"stringValue": v}

    return {"key": key, "value": enc(value)}


def span(
    span_id: str,
    name: str,
    attrs: dict[str, Any],
    *,
    parent: str | None = None,
    start_ms: int = 0,
    dur_ms: int = 100,
    b64: bool = False,
    ints_as_str: bool = True,
    status: Any = None,
    events: list | None = None,
    upper: bool = False,
) -> dict[str, Any]:
    def ident(h: str | None) -> str | None:
        if h is None:
            return None
        if b64:
            return base64.b64encode(bytes.fromhex(h)).decode()
        return h.upper() if upper else h

    start = T0 + start_ms * 1_000_000
    s: dict[str, Any] = {
        "traceId": ident(TRACE),
        "spanId": ident(span_id),
        "name": name,
        "kind": "SPAN_KIND_CLIENT" if b64 else 3,
        "startTimeUnixNano": str(start) if ints_as_str else start,
        "endTimeUnixNano": str(start + dur_ms * 1_000_000)
        if ints_as_str
        else start + dur_ms * 1_000_000,
        "attributes": [kv(k, v, ints_as_str=ints_as_str) for k, v in attrs.items()],
    }
    if parent:
        s["parentSpanId"] = ident(parent)
    if status is not None:
        s["status"] = status
    if events:
        s["events"] = events
    return s


def doc(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    res = resource or {
        "service.name": "shop",
        "service.version": "2.0.1",
        "deployment.environment.name": "prod",
    }
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv(k, v) for k, v in res.items()]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
        ]
    }


GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.request.temperature": 0.3,
    "gen_ai.request.max_tokens": 256,
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 80,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.conversation.id": "conv-7",
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You help shoppers."}]),
    "gen_ai.input.messages": json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}]
    ),
    "gen_ai.output.messages": json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "It ships today."}],
                "finish_reason": "stop",
            }
        ]
    ),
    "user.id": "u-1",
}


def write_lines(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_jsonl_of_requests_with_context_spans(tmp_path: Path) -> None:
    root = span(ROOT, "checkout_assistant", {"gen_ai.operation.name": "invoke_agent"}, dur_ms=900)
    llm = span(LLM, "chat gpt-4o", GENAI, parent=ROOT, start_ms=100)
    tool = span(
        TOOL,
        "execute_tool lookup",
        {"gen_ai.operation.name": "execute_tool"},
        parent=ROOT,
        start_ms=300,
    )
    emb = span(
        EMB,
        "embeddings",
        {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 12,
        },
        parent=ROOT,
        start_ms=5,
    )
    # a trace split over two lines, as a batching exporter writes it
    p = write_lines(tmp_path / "spans.json", [doc([llm, emb]), doc([root, tool])])
    assert detect_format(p) == "otlp"
    f = load([str(p)]).frame
    assert f.height == 1  # only the chat span; agent/tool are context, embeddings skipped
    r = f.row(0, named=True)
    assert r["trace_id"] == TRACE and r["span_id"] == LLM and r["parent_span_id"] == ROOT
    assert r["route"] == "checkout_assistant"
    assert r["model"] == "gpt-4o-2024-08-06" and r["provider"] == "openai"
    assert (r["input_tokens"], r["output_tokens"], r["cached_tokens"]) == (1200, 80, 1024)
    assert r["system"] == "You help shoppers." and r["prompt"] == "Where is my order?"
    assert r["response"] == "It ships today." and r["finish_reason"] == "stop"
    assert r["session_id"] == "conv-7" and r["user_id"] == "u-1"
    assert (r["release"], r["environment"]) == ("2.0.1", "prod")
    assert r["latency_ms"] == pytest.approx(100.0)
    assert json.loads(r["params"]) == {"temperature": 0.3, "max_tokens": 256}
    meta = json.loads(r["metadata"])
    assert meta["service.name"] == "shop" and meta["gen_ai.request.model"] == "gpt-4o"
    # embeddings when asked for
    g = load([str(p)], options=ReadOptions(include_embeddings=True)).frame
    assert sorted(g["model"].to_list()) == ["gpt-4o-2024-08-06", "text-embedding-3-small"]


@pytest.mark.parametrize("b64", [False, True])
@pytest.mark.parametrize("ints_as_str", [False, True])
@pytest.mark.parametrize("upper", [False, True])
def test_encodings(tmp_path: Path, b64: bool, ints_as_str: bool, upper: bool) -> None:
    d = doc(
        [
            span(
                LLM,
                "chat",
                GENAI,
                b64=b64,
                ints_as_str=ints_as_str,
                upper=upper,
                status={"code": "STATUS_CODE_ERROR" if b64 else 2, "message": "boom"},
            )
        ]
    )
    p = tmp_path / "one.json"
    p.write_text(json.dumps(d, indent=2))  # a single pretty document
    f = load([str(p)]).frame
    r = f.row(0, named=True)
    assert r["trace_id"] == TRACE and r["span_id"] == LLM
    assert r["input_tokens"] == 1200 and r["status"] == "error" and r["error"] == "boom"
    assert r["timestamp"].isoformat() == "2026-01-01T00:00:00+00:00"


def test_every_anyvalue_kind_survives_into_metadata(tmp_path: Path) -> None:
    attrs = {
        **GENAI,
        "app.flag": True,
        "app.n": 7,
        "app.x": 1.5,
        "app.list": ["a", "b"],
        "app.kv": {"k": "v", "n": 2},
        "app.raw": b"\x01\x02",
    }
    p = write_lines(tmp_path / "a.jsonl", [doc([span(LLM, "chat", attrs)])])
    meta = json.loads(load([str(p)]).frame["metadata"][0])
    assert meta["app.flag"] is True and meta["app.n"] == 7 and meta["app.x"] == 1.5
    assert meta["app.list"] == ["a", "b"] and meta["app.kv"] == {"k": "v", "n": 2}
    assert meta["app.raw"] == base64.b64encode(b"\x01\x02").decode()


def test_deprecated_genai_names_and_event_content(tmp_path: Path) -> None:
    attrs = {
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-sonnet",
        "gen_ai.usage.prompt_tokens": 100,
        "gen_ai.usage.completion_tokens": 9,
        "gen_ai.usage.cache_read_input_tokens": 400,
    }
    events = [
        {
            "name": "gen_ai.system.message",
            "timeUnixNano": str(T0),
            "attributes": [kv("content", "Be terse.")],
        },
        {
            "name": "gen_ai.user.message",
            "timeUnixNano": str(T0),
            "attributes": [kv("content", "Hi there")],
        },
        {
            "name": "gen_ai.choice",
            "timeUnixNano": str(T0),
            "attributes": [
                kv("finish_reason", "end_turn"),
                kv("message", json.dumps({"role": "assistant", "content": "Hello."})),
            ],
        },
    ]
    p = write_lines(
        tmp_path / "old.jsonl", [doc([span(LLM, "anthropic.chat", attrs, events=events)])]
    )
    r = load([str(p)]).frame.row(0, named=True)
    assert r["provider"] == "anthropic" and r["model"] == "claude-3-5-sonnet"
    # Anthropic-style counting: cache reads (400) exceed the input count → added to it
    assert (r["input_tokens"], r["cached_tokens"], r["output_tokens"]) == (500, 400, 9)
    assert r["system"] == "Be terse." and r["prompt"] == "Hi there"
    assert r["response"] == "Hello." and r["finish_reason"] == "end_turn"


def test_openinference_flattened_with_retriever_join(tmp_path: Path) -> None:
    chain = span(
        ROOT, "rag_answer", {"openinference.span.kind": "CHAIN", "session.id": "s-9"}, dur_ms=2000
    )
    ret = span(
        RET,
        "retrieve",
        {
            "openinference.span.kind": "RETRIEVER",
            "retrieval.documents.0.document.id": "d1",
            "retrieval.documents.0.document.content": "Paris is in France.",
            "retrieval.documents.0.document.score": 0.4,
            "retrieval.documents.1.document.id": "d2",
            "retrieval.documents.1.document.content": "Paris, capital.",
            "retrieval.documents.1.document.score": 0.9,
        },
        parent=ROOT,
        start_ms=10,
        dur_ms=50,
    )
    llm = span(
        LLM,
        "ChatCompletion",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai",
            "llm.token_count.prompt": 300,
            "llm.token_count.completion": 12,
            "llm.token_count.prompt_details.cache_read": 256,
            "llm.token_count.completion_details.reasoning": 4,
            "llm.invocation_parameters": json.dumps({"temperature": 0, "model": "gpt-4o-mini"}),
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Use the context.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.contents.0.message_content.type": "text",
            "llm.input_messages.1.message.contents.0.message_content.text": "Capital of France?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "Paris.",
            "session.id": "s-9",
            "user.id": "u-3",
            "metadata": json.dumps({"tenant": "acme"}),
            "tag.tags": ["rag", "beta"],
        },
        parent=ROOT,
        start_ms=100,
    )
    p = write_lines(tmp_path / "oi.jsonl", [doc([chain, ret, llm])])
    r = load([str(p)]).frame.row(0, named=True)
    assert r["route"] == "rag_answer" and r["model"] == "gpt-4o-mini"
    assert (r["input_tokens"], r["output_tokens"], r["cached_tokens"], r["reasoning_tokens"]) == (
        300,
        12,
        256,
        4,
    )
    assert [m["role"] for m in r["messages"]] == ["system", "user"]
    assert (
        r["system"] == "Use the context."
        and r["prompt"] == "Capital of France?"
        and r["response"] == "Paris."
    )
    assert [d["id"] for d in r["retrieved"]] == ["d2", "d1"]  # best first
    assert [d["score"] for d in r["retrieved"]] == [0.9, 0.4]
    assert r["session_id"] == "s-9" and r["user_id"] == "u-3" and r["tags"] == ["rag", "beta"]
    assert json.loads(r["metadata"])["tenant"] == "acme"
    assert json.loads(r["params"]) == {"temperature": 0}
    # --route-from an attribute (on the call, else its trace)
    g = load([str(p)], options=ReadOptions(route_from="session.id")).frame
    assert g["route"].to_list() == ["s-9"]
    h = load([str(p)], options=ReadOptions(route_from="metadata.tenant")).frame
    assert h["route"].to_list() == ["acme"]


def test_sdk_span_shapes(tmp_path: Path) -> None:
    py = {  # Python ReadableSpan.to_json()
        "name": "chat gpt-4o",
        "context": {"trace_id": "0x" + TRACE, "span_id": "0x" + LLM, "trace_state": "[]"},
        "kind": "SpanKind.CLIENT",
        "parent_id": None,
        "start_time": "2026-01-01T00:00:00.000000Z",
        "end_time": "2026-01-01T00:00:01.500000Z",
        "status": {"status_code": "UNSET"},
        "attributes": GENAI,
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "py"}, "schema_url": ""},
    }
    p = tmp_path / "console.txt"
    p.write_text(
        json.dumps(py, indent=4)
        + "\n"
        + json.dumps({**py, "context": {**py["context"], "span_id": "0x" + ROOT}}, indent=4)
        + "\n"
    )
    f = load([str(p)]).frame
    assert f.height == 2 and set(f["span_id"]) == {LLM, ROOT}
    assert f["latency_ms"].to_list() == [1500.0, 1500.0]
    js = [
        {
            "name": "ai.generateText.doGenerate",
            "spanContext": {"traceId": TRACE, "spanId": LLM},
            "parentSpanId": ROOT,
            "startTime": [1767225600, 5_000_000],
            "endTime": [1767225601, 0],
            "status": {"code": 0},
            "attributes": {
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.model.id": "gpt-4o-mini",
                "ai.model.provider": "openai.chat",
                "ai.usage.promptTokens": 5,
                "ai.usage.completionTokens": 2,
                "ai.response.text": "ok",
            },
            "events": [],
        }
    ]
    q = tmp_path / "js.json"
    q.write_text(json.dumps(js))
    r = load([str(q)]).frame.row(0, named=True)
    assert (r["model"], r["provider"], r["input_tokens"], r["response"]) == (
        "gpt-4o-mini",
        "openai",
        5,
        "ok",
    )
    assert r["latency_ms"] == pytest.approx(995.0)


def test_phoenix_dataframe_parquet_and_rest_json(tmp_path: Path) -> None:
    rows = [
        {
            "name": "retrieve",
            "span_kind": "RETRIEVER",
            "parent_id": ROOT,
            "context.trace_id": TRACE,
            "context.span_id": RET,
            "start_time": "2026-01-01T00:00:00+00:00",
            "end_time": "2026-01-01T00:00:00.050+00:00",
            "status_code": "OK",
            "attributes.retrieval.documents": [
                {"document.id": "a", "document.content": "A", "document.score": 0.7}
            ],
            "attributes.llm.model_name": None,
            "attributes.llm.token_count.prompt": None,
            "attributes.llm.input_messages": None,
        },
        {
            "name": "llm",
            "span_kind": "LLM",
            "parent_id": ROOT,
            "context.trace_id": TRACE,
            "context.span_id": LLM,
            "start_time": "2026-01-01T00:00:01+00:00",
            "end_time": "2026-01-01T00:00:02+00:00",
            "status_code": "ERROR",
            "status_message": "rate limited",
            "attributes.retrieval.documents": None,
            "attributes.llm.model_name": "gpt-4o",
            "attributes.llm.token_count.prompt": 50,
            "attributes.llm.input_messages": [{"message.role": "user", "message.content": "q?"}],
        },
        {
            "name": "agent",
            "span_kind": "AGENT",
            "parent_id": None,
            "context.trace_id": TRACE,
            "context.span_id": ROOT,
            "start_time": "2026-01-01T00:00:00+00:00",
            "end_time": "2026-01-01T00:00:03+00:00",
            "status_code": "OK",
            "attributes.retrieval.documents": None,
            "attributes.llm.model_name": None,
            "attributes.llm.token_count.prompt": None,
            "attributes.llm.input_messages": None,
        },
    ]
    pq = tmp_path / "spans.parquet"
    pl.DataFrame(rows).write_parquet(pq)
    assert detect_format(pq) == "openinference"
    r = load([str(pq)]).frame.row(0, named=True)
    assert (r["route"], r["model"], r["input_tokens"], r["prompt"]) == ("agent", "gpt-4o", 50, "q?")
    assert (r["status"], r["error"]) == ("error", "rate limited")
    assert [d["id"] for d in r["retrieved"]] == ["a"]
    rest = {
        "data": [
            {
                "id": "x",
                "name": "llm",
                "context": {"trace_id": TRACE, "span_id": LLM},
                "span_kind": "LLM",
                "parent_id": None,
                "start_time": "2026-01-01T00:00:01Z",
                "end_time": "2026-01-01T00:00:02Z",
                "status_code": "OK",
                "attributes": {
                    "openinference": {"span": {"kind": "LLM"}},
                    "llm": {"model_name": "gpt-4o", "token_count": {"prompt": 7}},
                },
            },
        ],
        "next_cursor": None,
    }
    j = tmp_path / "rest.json"
    j.write_text(json.dumps(rest))
    assert detect_format(j) == "openinference"
    r = load([str(j)]).frame.row(0, named=True)
    assert (r["model"], r["input_tokens"], r["route"]) == ("gpt-4o", 7, "llm")


def test_broken_line_names_file_line_and_field(tmp_path: Path) -> None:
    good = json.dumps(doc([span(LLM, "chat", GENAI)]))
    bad_id = doc([span(ROOT, "chat", GENAI)])
    bad_id["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = ["not", "an", "id"]
    p = tmp_path / "t.otlp.jsonl"
    p.write_text(good + "\n" + '{"resourceSpans": [' + "\n" + json.dumps(bad_id) + "\n")
    with pytest.raises(InputError) as exc:
        load([str(p)])
    lines = exc.value.problems
    assert lines[0].startswith(f"{p}:2: (line): invalid JSON")
    where = "resourceSpans[0].scopeSpans[0].spans[0].traceId"
    assert lines[1] == f"{p}:3: {where}: expected an id, got list"
    kept = load([str(p)], on_error="skip")
    assert kept.frame.height == 1 and kept.skipped == 2
    # --from forces a format; a field problem after normalisation names the line too
    nomodel = dict(GENAI)
    del nomodel["gen_ai.request.model"], nomodel["gen_ai.response.model"]
    q = write_lines(tmp_path / "m.jsonl", [doc([span(LLM, "chat", nomodel)])])
    with pytest.raises(InputError) as exc2:
        load([str(q)], fmt="otlp")
    assert exc2.value.problems == [f"{q}:1: model: missing"]


def test_parallel_byte_ranges_match_sequential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmobs_cli.core.ingest.readers.otlp as otlp

    docs = []
    for i in range(30):
        s = span(f"{i + 1:016x}", "chat", {**GENAI, "gen_ai.usage.input_tokens": i + 1}, start_ms=i)
        s["traceId"] = f"{i + 1:032x}"
        docs.append(doc([s]))
    p = tmp_path / "many.jsonl"
    lines = [json.dumps(d) for d in docs]
    lines.insert(17, "{broken")
    p.write_text("\n".join(lines) + "\n")
    seq = load([str(p)], on_error="skip")
    monkeypatch.setattr(otlp, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(otlp, "CHUNK_BYTES", 2000)
    if (__import__("os").cpu_count() or 1) < 2:
        pytest.skip("one CPU: no worker processes")
    par = load([str(p)], on_error="skip")
    assert par.frame.height == seq.frame.height == 30
    assert (
        par.frame["input_tokens"].to_list()
        == seq.frame["input_tokens"].to_list()
        == [i + 1 + 1024 for i in range(30)]
    )  # cache reads > input: added
    assert par.problems == seq.problems and par.problems[0].startswith(
        f"{p}:18: (line): invalid JSON"
    )
