"""``llmobs export`` and ``--notify``: judgments delivered to real receivers on 127.0.0.1
(OTLP/HTTP decoded with opentelemetry-proto, Langfuse- and LangSmith-shaped stubs, a
webhook), exactly once per judgment under injected failures, secrets never shown."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import polars as pl
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from http_receiver import Answer, Receiver
from llmobs_cli.core.export import http as xhttp
from llmobs_cli.core.export import otlp
from llmobs_cli.core.export.evaluations import iter_events
from openai_stub import OpenAIStub
from test_eval_support import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces" / "traces.parquet"
SECRET = "sk-lf-secret-DO-NOT-SHOW-123"
PUBLIC = "pk-lf-public-456"
LS_KEY = "lsv2_sk_secret_DO_NOT_SHOW_789"


@pytest.fixture(scope="module")
def evals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Judgments from a real eval run on the committed sample against the stub judge."""
    tmp = tmp_path_factory.mktemp("evals")
    out = tmp / "evals.parquet"
    with OpenAIStub() as stub:
        r = run_cli(
            "eval",
            str(SAMPLE),
            "--base-url",
            stub.base_url,
            "--evaluators",
            "relevance,completeness",
            "--budget",
            "6",
            "--cache-dir",
            str(tmp / "cache"),
            "-o",
            str(out),
            "--format",
            "json",
            env={"OPENAI_API_KEY": "sk-test"},
        )
    assert r.returncode in (0, 1), r.stderr
    return out


def _judged(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)


def _records(receiver: Receiver) -> list:
    out = []
    for req in receiver.accepted:
        msg = logs_service_pb2.ExportLogsServiceRequest()
        msg.ParseFromString(req.body)
        for rl in msg.resource_logs:
            for sl in rl.scope_logs:
                out.extend(sl.log_records)
    return out


def _attrs(rec) -> dict:
    out = {}
    for kv in rec.attributes:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def test_otlp_http_one_event_per_judgment_parented_and_no_duplicates_after_500s(
    evals: Path,
) -> None:
    frame = _judged(evals)
    with Receiver() as rx:
        rx.fail_next(500, 2)
        r = run_cli(
            "export",
            str(evals),
            "--to",
            "otlp",
            "--endpoint",
            rx.url,
            "--format",
            "json",
            env={"OTEL_EXPORTER_OTLP_HEADERS": "x-team=obs,authorization=Bearer%20tok"},
        )
        assert r.returncode == 0, r.stderr
        assert len(rx.requests) >= 3  # two injected failures, then the retry
        assert all(q.path == "/v1/logs" for q in rx.requests)
        assert rx.accepted[0].headers["content-type"] == "application/x-protobuf"
        assert rx.accepted[0].headers["content-encoding"] == "gzip"
        assert rx.accepted[0].headers["authorization"] == "Bearer tok"
        assert rx.accepted[0].headers["x-team"] == "obs"
        recs = _records(rx)
    assert len(recs) == frame.height
    doc = json.loads(r.stdout)
    assert doc["sent"] == frame.height and doc["failed"] == 0
    seen = set()
    for rec in recs:
        a = _attrs(rec)
        assert rec.event_name == "gen_ai.evaluation.result"
        key = (rec.trace_id.hex(), rec.span_id.hex(), a["gen_ai.evaluation.name"])
        assert key not in seen
        seen.add(key)
    # every judgment is there with its ids, name and score
    expect = {
        (t, s, c or e): sc
        for t, s, c, e, sc in frame.select(
            "trace_id", "span_id", "criterion", "evaluator", "score"
        ).iter_rows()
    }
    got = {}
    for rec in recs:
        a = _attrs(rec)
        got[(rec.trace_id.hex(), rec.span_id.hex(), a["gen_ai.evaluation.name"])] = a.get(
            "gen_ai.evaluation.score.value"
        )
    assert got.keys() == expect.keys()
    for k, v in expect.items():
        assert got[k] == pytest.approx(v)


def test_otlp_json_file_uses_hex_ids_and_camel_case(evals: Path, tmp_path: Path) -> None:
    out = tmp_path / "evals.otlp.jsonl"
    r = run_cli("export", str(evals), "--to", "otlp", "-o", str(out))
    assert r.returncode == 0, r.stderr
    frame = _judged(evals)
    recs = [
        rec
        for line in out.read_text().splitlines()
        for rl in json.loads(line)["resourceLogs"]
        for sl in rl["scopeLogs"]
        for rec in sl["logRecords"]
    ]
    assert len(recs) == frame.height
    assert {r["traceId"] for r in recs} == set(frame["trace_id"].to_list())
    first = recs[0]
    assert first["eventName"] == "gen_ai.evaluation.result"
    assert isinstance(first["timeUnixNano"], str)  # 64-bit integers as strings
    names = {kv["key"] for kv in first["attributes"]}
    assert {"gen_ai.evaluation.name", "gen_ai.evaluation.score.label"} <= names


def test_otlp_json_protocol_over_http(evals: Path) -> None:
    with Receiver() as rx:
        r = run_cli(
            "export", str(evals), "--to", "otlp", "--endpoint", rx.url + "/", "--protocol", "json"
        )
        assert r.returncode == 0, r.stderr
        body = json.loads(rx.accepted[0].body)
        assert rx.accepted[0].headers["content-type"] == "application/json"
    rec = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert len(rec["traceId"]) == 32 and len(rec["spanId"]) == 16


def test_non_hex_ids_ride_as_attributes_and_errors_are_labelled(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "trace_id": ["run-7", "0af7651916cd43dd8448eb211c80319c"],
            "span_id": ["step-1", "b7ad6b7169203331"],
            "timestamp": [None, None],
            "evaluator": ["relevance", "relevance"],
            "criterion": ["relevance", "relevance"],
            "score": [0.75, None],
            "error": [None, "HTTP 500: upstream"],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    events = list(iter_events(frame))
    assert [e.label for e in events] == ["pass", "error"]
    req = next(otlp.requests(events))
    recs = req.resource_logs[0].scope_logs[0].log_records
    a0 = _attrs(recs[0])
    assert recs[0].trace_id == b"" and a0["llmobs.trace_id"] == "run-7"
    assert a0["llmobs.span_id"] == "step-1"
    a1 = _attrs(recs[1])
    assert recs[1].trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert a1["error.type"] == "llmobs.judge_error"
    assert "gen_ai.evaluation.score.value" not in a1
    assert recs[1].severity_text == "WARN"


def test_langfuse_scores_are_idempotent_under_429_and_reruns(evals: Path) -> None:
    stored: dict[str, dict] = {}

    def handler(req) -> Answer:
        assert req.path == "/api/public/ingestion"
        token = base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
        assert req.headers["authorization"] == f"Basic {token}"
        doc = json.loads(req.body)
        for ev in doc["batch"]:
            assert ev["type"] == "score-create"
            stored[ev["body"]["id"]] = ev["body"]  # Langfuse upserts scores by id
        ok = [{"id": ev["id"], "status": 201} for ev in doc["batch"]]
        return Answer(207, json.dumps({"successes": ok, "errors": []}).encode())

    env = {"LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET}
    frame = _judged(evals)
    scored = frame.filter(pl.col("score").is_not_null())
    with Receiver() as rx:
        rx.handler = handler
        rx.fail_next(429, 1, {"Retry-After": "0"})
        env["LANGFUSE_HOST"] = rx.url
        for _ in range(2):
            r = run_cli("export", str(evals), "--to", "langfuse", "--all-traces", env=env)
            assert r.returncode == 0, r.stderr
    assert len(stored) == scored.height
    body = next(iter(stored.values()))
    assert body["dataType"] == "NUMERIC" and 0 <= body["value"] <= 1
    assert body["name"] in {"relevance", "completeness"}
    assert SECRET not in r.stderr + r.stdout


def test_langfuse_partial_errors_are_not_counted_as_sent(evals: Path) -> None:
    def handler(req) -> Answer:
        doc = json.loads(req.body)
        errs = [{"id": doc["batch"][0]["id"], "status": 400, "message": "trace not found"}]
        return Answer(207, json.dumps({"successes": [], "errors": errs}).encode())

    with Receiver() as rx:
        rx.handler = handler
        r = run_cli(
            "export",
            str(evals),
            "--to",
            "langfuse",
            "--all-traces",
            env={
                "LANGFUSE_HOST": rx.url,
                "LANGFUSE_PUBLIC_KEY": PUBLIC,
                "LANGFUSE_SECRET_KEY": SECRET,
            },
        )
    assert r.returncode == 3
    assert "trace not found" in r.stderr
    assert SECRET not in r.stderr


def test_langsmith_feedback_409_on_rerun_counts_as_delivered(tmp_path: Path) -> None:
    run_ids = [str(uuid.uuid4()) for _ in range(3)]
    frame = pl.DataFrame(
        {
            "trace_id": [*run_ids[:2], "not-a-langsmith-id"],
            "span_id": [*run_ids[:2], "x"],
            "timestamp": [None] * 3,
            "evaluator": ["relevance"] * 3,
            "criterion": ["relevance"] * 3,
            "score": [1.0, 0.25, 0.5],
            "weight": [10.0, 10.0, 10.0],
            "route": ["qa"] * 3,
            "explanation": ["fine", "off topic", "ok"],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    path = tmp_path / "evals.parquet"
    frame.write_parquet(path)
    ids: set[str] = set()

    def handler(req) -> Answer:
        assert req.headers["x-api-key"] == LS_KEY
        body = json.loads(req.body)
        if body["id"] in ids:
            return Answer(409, b'{"detail": "already exists"}')
        ids.add(body["id"])
        assert body["run_id"] in run_ids and body["key"] == "relevance"
        return Answer(200, b"{}")

    with Receiver() as rx:
        rx.handler = handler
        rx.fail_next(500, 1)
        env = {"LANGSMITH_ENDPOINT": rx.url, "LANGSMITH_API_KEY": LS_KEY}
        for _ in range(2):
            r = run_cli(
                "export",
                str(path),
                "--to",
                "langsmith",
                "--all-traces",
                "--format",
                "json",
                env=env,
            )
            assert r.returncode == 0, r.stderr
            doc = json.loads(r.stdout)
            assert doc["sent"] == 2 and doc["skipped"] == 1
    assert len(ids) == 2
    assert LS_KEY not in r.stdout + r.stderr


def test_dry_run_writes_bodies_without_secrets(evals: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    r = run_cli(
        "export",
        str(evals),
        "--to",
        "langfuse",
        "--dry-run",
        "--all-traces",
        "-o",
        str(out),
        env={"LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET},
    )
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert SECRET not in text and PUBLIC not in text
    batches = [json.loads(line) for line in text.splitlines()]
    n = sum(len(b["batch"]) for b in batches)
    assert n == _judged(evals).filter(pl.col("score").is_not_null()).height


def test_unreachable_receiver_is_exit_3_naming_the_endpoint_without_credentials(
    evals: Path,
) -> None:
    r = run_cli(
        "export",
        str(evals),
        "--to",
        "otlp",
        "--endpoint",
        "http://user:hunter2@127.0.0.1:9/otlp?token=abc",
        env={"OTEL_EXPORTER_OTLP_HEADERS": "api-key=hunter3"},
    )
    assert r.returncode == 3
    assert "127.0.0.1:9/otlp/v1/logs" in r.stderr
    for secret in ("hunter2", "hunter3", "token=abc"):
        assert secret not in r.stderr + r.stdout


def test_bad_inputs_are_exit_2(tmp_path: Path, evals: Path) -> None:
    r = run_cli("export", str(tmp_path / "nope.parquet"), "--to", "otlp", "-o", "x.jsonl")
    assert r.returncode == 2 and "file not found" in r.stderr
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"trace_id": ["a"]}).write_parquet(bad)
    r = run_cli("export", str(bad), "--to", "otlp", "-o", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "missing column" in r.stderr
    r = run_cli("export", str(evals), "--to", "langfuse", env={"LANGFUSE_PUBLIC_KEY": ""})
    assert r.returncode == 2 and "LANGFUSE_SECRET_KEY" in r.stderr
    r = run_cli("export", str(evals), "--to", "otlp")
    assert r.returncode == 2 and "output" in r.stderr


def test_headers_and_retry_after_parsing() -> None:
    assert otlp.parse_headers("a=1, b=x%3Dy ,") == {"a": "1", "b": "x=y"}
    assert xhttp.retry_after({"retry-after": "3"}) == 3
    assert xhttp.retry_after({"retry-after-ms": "1500"}) == 1.5
    assert xhttp.retry_after({"retry-after": "soon"}) is None
    assert otlp.hex_id("0AF7651916CD43DD8448EB211C80319C", 16) is not None
    assert otlp.hex_id("00000000000000000000000000000000", 16) is None  # invalid per OTLP
    assert otlp.hex_id("6ba7b810-9dad-11d1-80b4-00c04fd430c8", 16) is not None
    assert xhttp.redact_url("https://u:p@h:1/x?k=s") == "https://h:1/x"


# --- notifications -----------------------------------------------------------------------


def test_drift_that_fires_posts_exactly_one_message_naming_the_feature() -> None:
    with Receiver() as rx:
        r = run_cli("drift", str(SAMPLE), "--notify", rx.url + "/hook", "--format", "json")
        assert r.returncode == 1, r.stderr
        drifted = json.loads(r.stdout)["drifted"]
        assert drifted
        assert len(rx.accepted) == 1
        msg = json.loads(rx.accepted[0].body)
    assert msg["text"].startswith("llmobs drift:")
    assert any(name in msg["text"] for name in drifted)
    assert msg["blocks"][0]["type"] == "header"


def test_webhook_down_keeps_the_exit_code_and_warns() -> None:
    r = run_cli("drift", str(SAMPLE), "--notify", "http://127.0.0.1:9/hook", "--format", "json")
    assert r.returncode == 1
    assert "notification not delivered" in r.stderr
    json.loads(r.stdout)  # stdout is still exactly the JSON document


def test_report_gate_posts_generic_json_and_quiet_runs_post_nothing() -> None:
    with Receiver() as rx:
        r = run_cli(
            "report",
            str(SAMPLE),
            "--fail-on",
            "latency_ms.p99 > 1ms",
            "--notify",
            rx.url,
            "--notify-format",
            "json",
            "--format",
            "json",
        )
        assert r.returncode == 1
        assert len(rx.accepted) == 1
        msg = json.loads(rx.accepted[0].body)
        assert msg["command"] == "report" and msg["verdict"] == "alert"
        assert msg["findings"][0]["detail"].startswith("latency_ms.p99")
        assert "prompt" not in json.dumps(msg).lower() or "excerpt" not in msg["findings"][0]
        r = run_cli("report", str(SAMPLE), "--notify", rx.url, "--format", "json")
        assert r.returncode == 0
        assert len(rx.accepted) == 1  # nothing fired, nothing posted


def test_eval_export_otlp_sends_every_judgment_and_checks_first(tmp_path: Path) -> None:
    with OpenAIStub() as stub, Receiver() as rx:
        base = [
            "eval",
            str(SAMPLE),
            "--base-url",
            stub.base_url,
            "--evaluators",
            "relevance",
            "--budget",
            "3",
            "--cache-dir",
            str(tmp_path / "c"),
            "--export",
            "otlp",
        ]
        r = run_cli(*base, env={"OPENAI_API_KEY": "sk-test", "OTEL_EXPORTER_OTLP_ENDPOINT": ""})
        assert r.returncode == 2 and "OTEL_EXPORTER_OTLP_ENDPOINT" in r.stderr
        assert stub.calls == 0  # refused before any judge call
        out = tmp_path / "e.parquet"
        r = run_cli(
            *base,
            "-o",
            str(out),
            env={"OPENAI_API_KEY": "sk-test", "OTEL_EXPORTER_OTLP_ENDPOINT": rx.url},
        )
        assert r.returncode in (0, 1), r.stderr
        assert len(_records(rx)) == pl.read_parquet(out).height > 0
