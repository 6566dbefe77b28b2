"""Every file in tests/fixtures/external (real public exports, see PROVENANCE.md) reads.

Expectations are computed here from the raw JSON with the simplest reading of each
upstream format (independent of the readers), plus the facts PROVENANCE.md counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.ingest.readers.formats import READERS, ReadOptions, detect_format
from llmobs_cli.core.record.schema import normalize
from llmobs_cli.errors import InputError, InputWarning

EXT = Path(__file__).parent / "fixtures" / "external"
LANGFUSE = sorted((EXT / "langfuse-framework-traces").glob("*.json"))
ANY_AGENT = sorted((EXT / "any-agent-traces").glob("*_trace.json"))
VERCEL = EXT / "openinference-fixtures" / "vercel-ai-sdk-v6-all-spans.json"
ATTR_DICTS = sorted((EXT / "openinference-fixtures").glob("*_client_span_tool_calls.json"))
PROTO = EXT / "otlp-proto-example" / "trace.json"


def test_every_fixture_file_is_covered() -> None:
    data = {p for p in EXT.rglob("*.json")}
    assert data == {*LANGFUSE, *ANY_AGENT, VERCEL, *ATTR_DICTS, PROTO}
    for folder in EXT.iterdir():
        if folder.is_dir():
            assert list(folder.glob("LICENSE.*")), f"{folder} lacks its upstream licence"
    assert (EXT / "PROVENANCE.md").exists() and (EXT / "SHA256SUMS").exists()


# ----------------------------------------------------------------------- Langfuse


def _generations() -> list[tuple[dict, dict]]:
    out = []
    for p in LANGFUSE:
        doc = json.loads(p.read_text())
        out.extend((o, doc["trace"]) for o in doc["observations"] if o["type"] == "GENERATION")
    return out


def test_langfuse_exports_read_as_their_28_generations() -> None:
    gens = _generations()
    assert len(gens) == 28  # PROVENANCE.md
    res = load([str(p) for p in LANGFUSE])
    f = res.frame
    assert set(res.formats.values()) == {"langfuse"}
    assert f.height == 28
    assert sorted(f["span_id"].to_list()) == sorted(o["id"] for o, _ in gens)
    # per-model counts, from the raw observations
    want_models: dict[str, int] = {}
    for o, _ in gens:
        want_models[o["model"]] = want_models.get(o["model"], 0) + 1
    got = dict(f.group_by("model").len().iter_rows())
    assert got == want_models
    # trace fields carried down: the route is the trace name; user/session/tags copied
    by_id = {o["id"]: t for o, t in gens}
    for span_id, route, user, session, tags in f.select(
        "span_id", "route", "user_id", "session_id", "tags"
    ).iter_rows():
        t = by_id[span_id]
        assert route == t["name"]
        assert user == t.get("userId")
        assert session == t.get("sessionId")
        assert (tags or []) == (t.get("tags") or [])


def test_langfuse_provider_from_raw_attributes() -> None:
    f = load([str(p) for p in LANGFUSE]).frame
    want: dict[str | None, int] = {}
    for o, _ in _generations():
        meta = o.get("metadata")
        meta = json.loads(meta) if isinstance(meta, str) else meta
        attrs = (meta or {}).get("attributes") or {}
        keys = ("gen_ai.provider.name", "llm.provider", "gen_ai.system", "llm.system")
        value = next((attrs[k].lower() for k in keys if attrs.get(k)), None)
        want[value] = want.get(value, 0) + 1
    assert dict(f.group_by("provider").len().iter_rows()) == want
    assert want[None] == 7 and want["openai"] == 18 and want["google"] == 3


def test_langfuse_usage_and_cost_totals() -> None:
    gens = _generations()
    f = load([str(p) for p in LANGFUSE]).frame
    # Usage: these exports have no cached/reasoning split except gemini (reasoning inside
    # output: 6 + 2055 == total 2061), so input/output equal the plain keys; the old
    # schema (no usageDetails) gives inputUsage/outputUsage.
    want_in = sum(
        (o.get("usageDetails") or {}).get("input", o.get("inputUsage") or 0) for o, _ in gens
    )
    want_out = sum(
        (o.get("usageDetails") or {}).get("output", o.get("outputUsage") or 0) for o, _ in gens
    )
    assert f["input_tokens"].sum() == want_in
    assert f["output_tokens"].sum() == want_out
    gem = f.filter(pl.col("model") == "gemini-2.5-flash", pl.col("route") == "GenerateContent")
    assert gem["reasoning_tokens"].to_list() == [1104]
    assert gem["output_tokens"].to_list() == [2055]
    want_cost = sum(o["totalCost"] for o, _ in gens)
    assert f["cost_usd"].sum() == pytest.approx(want_cost, rel=1e-12)


def test_langfuse_latency_units_per_export_version() -> None:
    f = load([str(p) for p in LANGFUSE]).frame
    # Old schema: latency in seconds (1.874 s) — read from start/end times as 1874 ms.
    vertex = f.filter(pl.col("route") == "Google Vertex AI Gemini Test Trace")
    assert vertex["latency_ms"].to_list() == [pytest.approx(1874.0)]
    # The generation logged without an end time is an instant with unknown latency.
    tutor = f.filter(pl.col("route") == "run_math_tutor")
    assert tutor["latency_ms"].to_list() == [0.0]
    assert json.loads(tutor["metadata"][0])["latency_unknown"] is True
    # Every other latency equals the export's own millisecond latency.
    gens = {o["id"]: o for o, _ in _generations()}
    for sid, lat in f.select("span_id", "latency_ms").iter_rows():
        o = gens[sid]
        if o.get("usageDetails") is not None and o["latency"] is not None:
            assert lat == pytest.approx(o["latency"], abs=1.0)


def test_langfuse_text() -> None:
    """Prompts and responses in GenAI ``parts`` messages, plain strings and tool calls."""
    f = load([str(p) for p in LANGFUSE]).frame
    checked_parts = checked_str = checked_tools = 0
    for o, _ in _generations():
        row = f.filter(pl.col("span_id") == o["id"])
        out = o["output"]
        if isinstance(out, str):
            assert row["response"][0] == out
            checked_str += 1
        elif isinstance(out, list) and out and isinstance(out[0], dict) and "parts" in out[0]:
            texts = [p["content"] for m in out for p in m["parts"] if p.get("type") == "text"]
            calls = [p["name"] for m in out for p in m["parts"] if p.get("type") == "tool_call"]
            if texts:
                assert row["response"][0] == "\n".join(texts)
                checked_parts += 1
            elif calls:
                assert all(json.dumps(c) in row["response"][0] for c in calls)
                checked_tools += 1
        inp = o["input"]
        if isinstance(inp, list) and inp and isinstance(inp[0], dict) and "parts" in inp[0]:
            users = [
                "\n".join(p["content"] for p in m["parts"] if p.get("type") == "text")
                for m in inp
                if m["role"] == "user" and any(p.get("type") == "text" for p in m["parts"])
            ]
            assert row["prompt"][0] == (users[-1] if users else None)
    assert checked_parts and checked_str and checked_tools


# ---------------------------------------------------------------------- any-agent


def test_any_agent_traces() -> None:
    spans = [s for p in ANY_AGENT for s in json.loads(p.read_text())["spans"]]
    llm = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "call_llm"]
    assert len(spans) == 50 and len(llm) == 25  # PROVENANCE.md
    res = load([str(p) for p in ANY_AGENT])
    f = res.frame
    assert set(res.formats.values()) == {"otlp"}
    assert f.height == 25
    assert f["model"].unique().to_list() == ["mistral/mistral-small-latest"]
    assert f["input_tokens"].sum() == sum(s["attributes"]["gen_ai.usage.input_tokens"] for s in llm)
    assert f["output_tokens"].sum() == sum(
        s["attributes"]["gen_ai.usage.output_tokens"] for s in llm
    )
    want_cost = sum(
        s["attributes"].get("gen_ai.usage.input_cost", 0)
        + s["attributes"].get("gen_ai.usage.output_cost", 0)
        for s in llm
    )
    assert f["cost_usd"].sum() == pytest.approx(want_cost, rel=1e-9)
    # decimal integer ids → zero-padded hex
    want_ids = {format(s["context"]["span_id"], "016x") for s in llm}
    assert set(f["span_id"].to_list()) == want_ids
    assert set(f["trace_id"].to_list()) == {format(s["context"]["trace_id"], "032x") for s in llm}
    # route: the root span (invoke_agent) name of each trace
    roots = {
        s["name"] for s in spans if s["attributes"].get("gen_ai.operation.name") == "invoke_agent"
    }
    assert set(f["route"].unique().to_list()) <= roots
    # latency from nanosecond start/end
    lat = {
        format(s["context"]["span_id"], "016x"): (s["end_time"] - s["start_time"]) / 1e6
        for s in llm
    }
    for sid, ms in f.select("span_id", "latency_ms").iter_rows():
        assert ms == pytest.approx(lat[sid])
    # resource attributes addressable as metadata
    meta = json.loads(f["metadata"][0])
    assert meta["service.name"] == "unknown_service"


def test_any_agent_prompt_text() -> None:
    doc = json.loads((EXT / "any-agent-traces" / "OPENAI_trace.json").read_text())
    first = doc["spans"][0]
    msgs = json.loads(first["attributes"]["gen_ai.input.messages"])
    f = load([str(EXT / "any-agent-traces" / "OPENAI_trace.json")]).frame
    row = f.filter(pl.col("span_id") == format(first["context"]["span_id"], "016x"))
    assert row["prompt"][0] == [m["content"] for m in msgs if m["role"] == "user"][-1]
    assert row["system"][0] == next(m["content"] for m in msgs if m["role"] == "system")
    assert [m["role"] for m in row["messages"][0]] == [m["role"] for m in msgs]


# ------------------------------------------------------------------- Vercel AI SDK


def test_vercel_ai_sdk_spans() -> None:
    spans = json.loads(VERCEL.read_text())
    llm = [s for s in spans if s["name"].endswith((".doGenerate", ".doStream"))]
    assert len(llm) == 4
    f = load([str(VERCEL)]).frame
    assert f.height == 4
    assert sorted(f["span_id"].to_list()) == sorted(s["spanContext"]["spanId"] for s in llm)
    assert f["input_tokens"].sum() == sum(s["attributes"]["gen_ai.usage.input_tokens"] for s in llm)
    assert f["output_tokens"].sum() == sum(
        s["attributes"]["gen_ai.usage.output_tokens"] for s in llm
    )
    assert set(f["model"].to_list()) == {s["attributes"]["gen_ai.response.model"] for s in llm}
    assert set(f["provider"].to_list()) == {"openai"}
    for s in llm:
        row = f.filter(pl.col("span_id") == s["spanContext"]["spanId"])
        start = s["startTime"][0] * 1e9 + s["startTime"][1]
        end = s["endTime"][0] * 1e9 + s["endTime"][1]
        assert row["latency_ms"][0] == pytest.approx((end - start) / 1e6)
        a = s["attributes"]
        assert row["response"][0] == a.get("ai.response.text", a.get("ai.response.object"))
        msgs = json.loads(a["ai.prompt.messages"])
        assert row["prompt"][0] == msgs[-1]["content"][0]["text"]
        assert row["route"][0] == a["ai.telemetry.functionId"]  # the flow's own name
    stream = f.filter(pl.col("span_id") == llm[-1]["spanContext"]["spanId"])
    assert stream["ttft_ms"][0] == pytest.approx(
        llm[-1]["attributes"]["ai.response.msToFirstChunk"]
    )
    # the embedding span is a record only when asked for
    with_emb = load([str(VERCEL)], options=ReadOptions(include_embeddings=True)).frame
    assert with_emb.height == 5
    assert "text-embedding-3-small" in with_emb["model"].to_list()


# ------------------------------------------------------------- attribute dicts


@pytest.mark.parametrize("path", ATTR_DICTS, ids=lambda p: p.name)
def test_attribute_dicts(path: Path) -> None:
    attrs = json.loads(path.read_text())
    assert detect_format(path) == "otlp"
    raw = READERS["otlp"](path, ReadOptions())
    n = normalize(raw.frame, check_required=("trace_id", "model"))
    f = n.frame
    assert f.height == 1 and n.problems.height == 0
    assert f["model"][0] == attrs.get("gen_ai.response.model", attrs.get("llm.model_name"))
    assert f["input_tokens"][0] == attrs.get(
        "gen_ai.usage.input_tokens", attrs.get("llm.token_count.prompt")
    )
    assert f["output_tokens"][0] == attrs.get(
        "gen_ai.usage.output_tokens", attrs.get("llm.token_count.completion")
    )
    assert f["provider"][0] == "openai"
    assert f["prompt"][0] == "Weather in Paris?"
    assert f["response"][0] == "The weather in Paris is currently rainy with a temperature of 57°F."
    roles = [m["role"] for m in f["messages"][0]]
    assert roles == ["user", "assistant", "tool"]
    params = json.loads(f["params"][0])
    assert params["temperature"] == 0.5 and params["top_p"] == 0.9
    # No span times in a bare attribute dict: the contract's required timestamp is missing.
    full = normalize(raw.frame)
    assert "timestamp" in set(full.problems["field"].to_list())


def test_otlp_proto_example_has_no_llm_calls() -> None:
    # The official example holds one span and no LLM call: reading it is not a green run
    # (issue 20) but exit 2 saying what was found.
    assert detect_format(PROTO) == "otlp"
    with pytest.raises(InputError) as exc:
        load([str(PROTO)])
    assert exc.value.lines() == [
        f"{PROTO}: read as otlp: 1 span(s) (1 other), none an LLM call: no gen_ai.*, llm.*, "
        "openinference, Vercel ai.*, langfuse.observation.* or mlflow LLM span"
    ]
    # Beside a file that holds calls it is a warning, not an error.
    with pytest.warns(InputWarning, match="trace.json: read as otlp"):
        res = load([str(PROTO), str(VERCEL)])
    assert res.frame.height == 4
