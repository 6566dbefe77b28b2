"""Real spans: the official OpenTelemetry OpenAI instrumentation and the OpenInference
OpenAI instrumentor around the real ``openai`` client, talking to the test stub server.

The spans are encoded exactly as the OTLP exporters and the Collector do
(``trace_encoder.encode_spans`` → protobuf JSON mapping: base64 ids, 64-bit ints as strings,
enums as numbers), written as JSON lines (and as hex-id lines, the Collector file exporter's
form, and as one pretty document), then read back through ``load``, ``convert`` and
``report``. Instrumentors patch the ``openai`` module globally, so each run is a subprocess.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from llmobs_cli.cli.app import main
from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.ingest.readers.formats import detect_format

pytest.importorskip("opentelemetry.instrumentation.openai_v2")
pytest.importorskip("openinference.instrumentation.openai")

WORKER = r"""
import json, sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from google.protobuf.json_format import MessageToJson

which, base_url, out_dir, plan = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({
    "service.name": "live-" + which, "service.version": "1.2.3",
    "deployment.environment.name": "ci"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
if which == "genai":
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
else:
    from openinference.instrumentation.openai import OpenAIInstrumentor
OpenAIInstrumentor().instrument(tracer_provider=provider)
import openai
client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
tracer = provider.get_tracer("app")
for call in plan:
    with tracer.start_as_current_span(call["route"]):
        client.chat.completions.create(
            model=call["model"],
            messages=[{"role": "system", "content": call["system"]},
                      {"role": "user", "content": call["prompt"]}],
            temperature=0.2, max_tokens=64,
        )
spans = list(exporter.get_finished_spans())
half = len(spans) // 2
with open(f"{out_dir}/{which}.otlp.jsonl", "w") as fh:   # two requests, one per line
    for part in (spans[:half], spans[half:]):
        fh.write(MessageToJson(encode_spans(part), indent=None) + "\n")
with open(f"{out_dir}/{which}.pretty.json", "w") as fh:  # one pretty document
    fh.write(MessageToJson(encode_spans(spans)))
"""

PLAN = [
    {
        "route": "answer_question",
        "model": "gpt-4o-mini",
        "system": "Be brief.",
        "prompt": "What is the capital of France?",
    },
    {
        "route": "answer_question",
        "model": "gpt-4o-mini",
        "system": "Be brief.",
        "prompt": "How tall is Mont Blanc?",
    },
    {
        "route": "summarize",
        "model": "gpt-4o",
        "system": "Summarise.",
        "prompt": "Summarise: the cat sat on the mat.",
    },
    {
        "route": "answer_question",
        "model": "gpt-4o",
        "system": "Be brief.",
        "prompt": "Who wrote Faust?",
    },
    {
        "route": "summarize",
        "model": "gpt-4o-mini",
        "system": "Summarise.",
        "prompt": "Summarise: rain in Spain.",
    },
]


def _responder(req: dict[str, Any]) -> dict[str, Any]:
    """Deterministic answers and usage (with cached tokens) derived from the request."""
    prompt = req["messages"][-1]["content"]
    n = len(prompt.split())
    return {
        "id": "chatcmpl-live",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": req["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"Answer to: {prompt}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 20 + n,
            "completion_tokens": 3 + n,
            "total_tokens": 23 + 2 * n,
            "prompt_tokens_details": {"cached_tokens": 16},
        },
    }


def _expected() -> dict[str, Any]:
    n = [len(c["prompt"].split()) for c in PLAN]
    models: dict[str, int] = {}
    for c in PLAN:
        models[c["model"]] = models.get(c["model"], 0) + 1
    return {"input": sum(20 + k for k in n), "output": sum(3 + k for k in n), "models": models}


def _run(which: str, stub: Any, tmp: Path) -> None:
    stub.responder = _responder
    env = {
        **os.environ,
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OPENAI_API_KEY": "sk-test",
    }
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, which, stub.base_url, str(tmp), json.dumps(PLAN)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(stub.requests) == len(PLAN)


def _hex_copy(src: Path, dst: Path) -> None:
    """The Collector file exporter's form: same documents, hex ids."""
    with dst.open("w") as out:
        for line in src.read_text().splitlines():
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        for k in ("traceId", "spanId", "parentSpanId"):
                            if sp.get(k):
                                sp[k] = base64.b64decode(sp[k]).hex().upper()
            out.write(json.dumps(doc) + "\n")


def _check(frame: pl.DataFrame, which: str) -> None:
    want = _expected()
    assert frame.height == len(PLAN)
    assert dict(frame.group_by("model").len().iter_rows()) == want["models"]
    assert frame["input_tokens"].sum() == want["input"]
    assert frame["output_tokens"].sum() == want["output"]
    f = frame.sort("timestamp")
    assert f["prompt"].to_list() == [c["prompt"] for c in PLAN]
    assert f["response"].to_list() == [f"Answer to: {c['prompt']}" for c in PLAN]
    assert f["system"].to_list() == [c["system"] for c in PLAN]
    assert f["route"].to_list() == [c["route"] for c in PLAN]
    assert f["finish_reason"].to_list() == ["stop"] * len(PLAN)
    assert f["release"].to_list() == ["1.2.3"] * len(PLAN)
    assert f["environment"].to_list() == ["ci"] * len(PLAN)
    assert (f["latency_ms"] > 0).all()
    assert f["trace_id"].n_unique() == len(PLAN)
    meta = json.loads(f["metadata"][0])
    assert meta["service.name"] == f"live-{which}"
    params = json.loads(f["params"][0])
    assert params["temperature"] == 0.2
    cached = f["cached_tokens"].drop_nulls()
    if cached.len():  # when the instrumentation records cache reads, they are exact
        assert cached.to_list() == [16] * len(PLAN)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["genai", "openinference"])
def test_live_spans_read_back(
    which: str, openai_stub: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(which, openai_stub, tmp_path)
    b64 = tmp_path / f"{which}.otlp.jsonl"
    hexed = tmp_path / f"{which}.hex.jsonl"
    pretty = tmp_path / f"{which}.pretty.json"
    _hex_copy(b64, hexed)
    assert len(b64.read_text().splitlines()) == 2
    frames = []
    for path in (b64, hexed, pretty):
        assert detect_format(path) == "otlp"
        res = load([str(path)])
        _check(res.frame, which)
        frames.append(res.frame.sort("span_id"))
    # base64 and hex ids decode to the same canonical ids
    assert (
        frames[0]["span_id"].to_list()
        == frames[1]["span_id"].to_list()
        == frames[2]["span_id"].to_list()
    )

    # convert → canonical Parquet, then report over it and over the OTLP file directly
    out = tmp_path / "canonical.parquet"
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(b64), "-o", str(out)])
    assert (exc.value.code or 0) == 0
    _check(pl.read_parquet(out), which)
    capsys.readouterr()
    for source in (str(b64), str(out)):
        with pytest.raises(SystemExit) as exc:
            main(["report", source, "--by", "model", "--format", "json"])
        assert (exc.value.code or 0) == 0
        report = json.loads(capsys.readouterr().out)
        want = _expected()
        assert report["overall"]["calls"] == len(PLAN)
        assert report["overall"]["input_tokens"] == want["input"]
        assert report["overall"]["output_tokens"] == want["output"]
        assert {g["key"]["model"]: g["calls"] for g in report["groups"]} == want["models"]
