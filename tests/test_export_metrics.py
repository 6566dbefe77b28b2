"""Report, eval and drift summaries as OTLP gauges, checked at a real OTLP/HTTP receiver on
127.0.0.1 (protobuf decoded with opentelemetry-proto): every point is the JSON document's
own figure, with its group attributes and window time, once, whatever the retries."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from http_receiver import Receiver
from llmobs_cli.core.export.metrics import METRICS, detect, resource_attributes
from openai_stub import OpenAIStub
from test_eval_support import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces" / "traces.parquet"
TOKEN = "Bearer metrics-SECRET-4711"
HEADERS = {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20metrics-SECRET-4711,x-t=1"}


def _ns(text: str) -> int:
    dt = datetime.fromisoformat(text)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _value(dp: Any) -> float:
    return dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in kvs}


def _decode(rx: Receiver) -> tuple[dict[tuple, tuple[float, int, int]], list[dict], int]:
    """(name, attributes) → (value, time, start) of every accepted point; the resources;
    the number of points (to catch a point sent twice)."""
    got: dict[tuple, tuple[float, int, int]] = {}
    resources = []
    n = 0
    for req in rx.accepted:
        msg = metrics_service_pb2.ExportMetricsServiceRequest()
        msg.ParseFromString(req.body)
        for rm in msg.resource_metrics:
            resources.append(_attrs(rm.resource.attributes))
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    assert m.WhichOneof("data") == "gauge"
                    assert m.unit == METRICS[m.name][0]
                    for dp in m.gauge.data_points:
                        n += 1
                        key = (m.name, frozenset(_attrs(dp.attributes).items()))
                        t = (dp.time_unix_nano, dp.start_time_unix_nano)
                        got[(*key, t[0])] = (_value(dp), *t)
    return got, resources, n


def _key(key: dict[str, Any] | None) -> dict[str, Any]:
    names = {"model": "gen_ai.request.model", "route": "llmobs.route"}
    return {names.get(k, f"llmobs.{k}"): v for k, v in (key or {}).items()}


def _expect_report(doc: dict) -> dict[tuple, float]:
    """The figures a report's gauges must carry, read straight from its JSON."""
    out: dict[tuple, float] = {}

    def add(m: dict, attrs: dict, t: int) -> None:
        simple = {
            "calls": "llmobs.calls",
            "sampled": "llmobs.sampled",
            "cost_usd": "llmobs.cost_usd",
            "error_rate": "llmobs.error_rate",
            "cached_tokens": "llmobs.tokens.cached",
        }
        for k, name in simple.items():
            out[(name, frozenset(attrs.items()), t)] = m[k]
        for k, kind in (("input_tokens", "input"), ("output_tokens", "output")):
            a = {**attrs, "gen_ai.token.type": kind}
            out[("llmobs.tokens", frozenset(a.items()), t)] = m[k]
        for q, level in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            a = {**attrs, "quantile": level}
            out[("llmobs.latency_ms", frozenset(a.items()), t)] = m["latency_ms"][q]
        out[("llmobs.latency_ms.mean", frozenset(attrs.items()), t)] = m["latency_ms"]["mean"]

    end = _ns(doc["window"]["end"])
    add(doc["overall"], {"llmobs.scope": "overall"}, end)
    for g in doc["groups"]:
        add(g, {"llmobs.scope": "group", **_key(g["key"])}, end)
    for b in doc["buckets"]:
        tag = {"llmobs.bucket": doc["bucket"]}
        add(b["overall"], {"llmobs.scope": "overall", **tag}, _ns(b["end"]))
        for g in b["groups"]:
            add(g, {"llmobs.scope": "group", **tag, **_key(g["key"])}, _ns(b["end"]))
    return out


def _check(expect: dict[tuple, float], got: dict[tuple, tuple]) -> None:
    assert expect
    for key, figure in expect.items():
        assert key in got, key
        assert got[key][0] == pytest.approx(figure, rel=1e-12), key


@pytest.fixture(scope="module")
def report_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.json"
    r = run_cli(
        "report", str(SAMPLE), "--by", "route,model", "--bucket", "week", "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    path.write_text(r.stdout)
    return path


def test_report_gauges_equal_the_json_figures_once_despite_500s(report_json: Path) -> None:
    doc = json.loads(report_json.read_text())
    env = {
        **HEADERS,
        "OTEL_SERVICE_NAME": "checkout-llm",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment.name=prod",
    }
    with Receiver() as rx:
        rx.fail_next(500, 2)
        r = run_cli(
            "export",
            str(report_json),
            "--to",
            "otlp-metrics",
            "--endpoint",
            rx.url,
            "--format",
            "json",
            env=env,
        )
        assert r.returncode == 0, r.stderr
        assert len(rx.requests) == len(rx.accepted) + 2
        assert all(q.path == "/v1/metrics" for q in rx.requests)
        first = rx.accepted[0].headers
        assert first["content-type"] == "application/x-protobuf"
        assert first["content-encoding"] == "gzip"
        assert first["authorization"] == TOKEN
        got, resources, n = _decode(rx)
    assert n == len(got)  # no point twice
    out = json.loads(r.stdout)
    assert out["summary"] == "report" and out["sent"] == n and out["failed"] == 0
    assert resources[0] == {"service.name": "checkout-llm", "deployment.environment.name": "prod"}
    _check(_expect_report(doc), got)
    # the window's end is the time, its start the start time
    t_end, t_start = _ns(doc["window"]["end"]), _ns(doc["window"]["start"])
    calls = got[("llmobs.calls", frozenset({("llmobs.scope", "overall")}), t_end)]
    assert calls[1:] == (t_end, t_start)
    for secret in ("metrics-SECRET-4711",):
        assert secret not in r.stdout + r.stderr


def test_report_export_metrics_option_sends_the_printed_figures() -> None:
    with Receiver() as rx:
        r = run_cli(
            "report",
            str(SAMPLE),
            "--by",
            "model",
            "--export-metrics",
            "--format",
            "json",
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url},
        )
        assert r.returncode == 0, r.stderr
        got, _, n = _decode(rx)
    doc = json.loads(r.stdout)  # stdout is still exactly the report
    assert n == len(got)
    _check(_expect_report(doc), got)
    assert "report metric point(s) to http://127.0.0.1" in r.stderr


def test_file_output_is_otlp_json_with_the_same_points(report_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.jsonl"
    r = run_cli("export", str(report_json), "--to", "otlp-metrics", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(report_json.read_text())
    points = {}
    for line in out.read_text().splitlines():
        for rm in json.loads(line)["resourceMetrics"]:
            assert rm["resource"]["attributes"][0]["value"]["stringValue"] == "llmobs"
            for sm in rm["scopeMetrics"]:
                for m in sm["metrics"]:
                    for dp in m["gauge"]["dataPoints"]:
                        attrs = {
                            a["key"]: next(iter(a["value"].values())) for a in dp["attributes"]
                        }
                        value = float(dp["asInt"]) if "asInt" in dp else dp["asDouble"]
                        assert isinstance(dp["timeUnixNano"], str)  # 64-bit as strings
                        points[(m["name"], frozenset(attrs.items()), int(dp["timeUnixNano"]))] = (
                            value,
                        )
    _check(_expect_report(doc), points)


def _expect_eval(doc: dict) -> dict[tuple, float]:
    t = _ns(doc["windows"]["current"]["end"])
    expect: dict[tuple, float] = {}
    for g in doc["groups"]:
        attrs = {
            "llmobs.scope": "group",
            **_key(g["key"]),
            "gen_ai.evaluation.name": g["evaluator"],
        }
        for field, name in (
            ("score", "llmobs.eval.score"),
            ("ci_low", "llmobs.eval.score.ci_low"),
            ("ci_high", "llmobs.eval.score.ci_high"),
            ("judged", "llmobs.eval.n"),
        ):
            if g[field] is not None:
                expect[(name, frozenset(attrs.items()), t)] = g[field]
    for test in doc["tests"]:
        attrs = {
            "llmobs.scope": "group",
            **_key(test["key"]),
            "gen_ai.evaluation.name": test["evaluator"],
            "llmobs.eval.test": test["kind"],
        }
        expect[("llmobs.eval.regression", frozenset(attrs.items()), t)] = int(test["regression"])
    overall = frozenset({("llmobs.scope", "overall")})
    expect[("llmobs.judge.calls", overall, t)] = doc["judge"]["calls"]
    return expect


def test_eval_gauges_carry_scores_intervals_and_regressions(tmp_path: Path) -> None:
    evals = tmp_path / "evals.parquet"
    with OpenAIStub() as stub, Receiver() as rx:
        r = run_cli(
            "eval",
            str(SAMPLE),
            "--base-url",
            stub.base_url,
            "--evaluators",
            "relevance",
            "--budget",
            "8",
            "--baseline",
            "last_month",
            "--current",
            "last_week",
            "--cache-dir",
            str(tmp_path / "c"),
            "-o",
            str(evals),
            "--export-metrics",
            "--format",
            "json",
            env={"OPENAI_API_KEY": "sk-test", "OTEL_EXPORTER_OTLP_ENDPOINT": rx.url},
        )
        assert r.returncode in (0, 1), r.stderr
        got, _, n = _decode(rx)
    doc = json.loads(r.stdout)
    assert detect(doc) == "eval" and doc["tests"]
    assert n == len(got)
    _check(_expect_eval(doc), got)
    # eval summarize of the saved judgments sends its own figures the same way
    with Receiver() as rx:
        r = run_cli(
            "eval",
            "summarize",
            str(evals),
            "--export-metrics",
            "--format",
            "json",
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url},
        )
        assert r.returncode in (0, 1), r.stderr
        got, _, n = _decode(rx)
    assert n == len(got)
    _check(_expect_eval(json.loads(r.stdout)), got)


def test_drift_gauges_name_each_feature_and_keep_the_exit_code() -> None:
    with Receiver() as rx:
        r = run_cli(
            "drift",
            str(SAMPLE),
            "--by",
            "model",
            "--export-metrics",
            "--format",
            "json",
            env={
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": rx.url + "/otlp/metrics",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            },
        )
        assert r.returncode == 1, r.stderr  # drift fired: the verdict stands
        assert {q.path for q in rx.requests} == {"/otlp/metrics"}  # signal endpoint as given
        assert rx.accepted[0].headers["content-type"] == "application/json"
        bodies = [json.loads(q.body) for q in rx.accepted]
    doc = json.loads(r.stdout)
    t = str(_ns(doc["current"]["end"]))
    got = {}
    for body in bodies:
        for m in body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
            for dp in m["gauge"]["dataPoints"]:
                assert dp["timeUnixNano"] == t
                attrs = {a["key"]: next(iter(a["value"].values())) for a in dp["attributes"]}
                key = (m["name"], frozenset(attrs.items()))
                assert key not in got
                got[key] = float(dp["asInt"]) if "asInt" in dp else dp["asDouble"]
    for f in doc["features"]:
        scope = "overall" if not f["group"] else "slice" if f["slice"] else "group"
        attrs = {"llmobs.scope": scope, **_key(f["group"]), "llmobs.drift.feature": f["feature"]}
        assert got[("llmobs.drift.drifted", frozenset(attrs.items()))] == int(f["drifted"])
        if f["p_adjusted"] is not None:
            assert got[("llmobs.drift.p_adjusted", frozenset(attrs.items()))] == pytest.approx(
                f["p_adjusted"]
            )
        if f["effect_size"] is not None:
            eff = {**attrs, "llmobs.drift.effect": f["effect_name"]}
            assert got[("llmobs.drift.effect_size", frozenset(eff.items()))] == pytest.approx(
                f["effect_size"]
            )
    count = got[("llmobs.drift.features_drifted", frozenset({("llmobs.scope", "overall")}))]
    assert count == len(doc["drifted"]) > 0


def test_failures_and_bad_input_have_clear_exit_codes(report_json: Path, tmp_path: Path) -> None:
    # no endpoint: exit 2 before any work
    r = run_cli("report", str(SAMPLE), "--export-metrics", env={"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert r.returncode == 2 and "OTEL_EXPORTER_OTLP_ENDPOINT" in r.stderr
    assert r.stdout == ""
    # receiver down: exit 3 naming the endpoint without credentials; a firing drift stays 1
    env = {**HEADERS, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:pw-SECRET@127.0.0.1:9"}
    r = run_cli("report", str(SAMPLE), "--export-metrics", "--format", "json", env=env)
    assert r.returncode == 3
    assert "127.0.0.1:9/v1/metrics" in r.stderr
    json.loads(r.stdout)
    r2 = run_cli("drift", str(SAMPLE), "--export-metrics", "--format", "json", env=env)
    assert r2.returncode == 1 and "not delivered" in r2.stderr
    for out in (r, r2):
        assert "SECRET" not in out.stdout + out.stderr
    # not a summary: one line, exit 2
    evals = tmp_path / "x.json"
    evals.write_text('{"calls": []}')
    r = run_cli("export", str(evals), "--to", "otlp-metrics", "-o", str(tmp_path / "m.jsonl"))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "not the JSON of llmobs" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run_cli("export", str(bad), "--to", "otlp-metrics", "-o", str(tmp_path / "m.jsonl"))
    assert r.returncode == 2 and "not a JSON document" in r.stderr
    r = run_cli("export", str(report_json), "--to", "otlp-metrics")
    assert r.returncode == 2 and "OTEL_EXPORTER_OTLP_ENDPOINT" in r.stderr


def test_resource_attributes_follow_the_sdk_rules() -> None:
    assert resource_attributes(None, None) == {"service.name": "llmobs"}
    assert resource_attributes(None, "service.name=a,team=x%2Cy") == {
        "service.name": "a",
        "team": "x,y",
    }
    assert resource_attributes("b", "service.name=a")["service.name"] == "b"


def test_judgment_events_share_the_resource_settings(tmp_path: Path) -> None:
    import polars as pl

    evals = tmp_path / "evals.parquet"
    pl.DataFrame(
        {
            "trace_id": ["0af7651916cd43dd8448eb211c80319c"],
            "evaluator": ["relevance"],
            "score": [0.5],
            "weight": [1.0],
            "route": ["qa"],
            "timestamp": [datetime(2026, 1, 1)],
        }
    ).write_parquet(evals)
    out = tmp_path / "logs.jsonl"
    env = {"OTEL_SERVICE_NAME": "svc-a", "OTEL_RESOURCE_ATTRIBUTES": "team=obs"}
    r = run_cli("export", str(evals), "--to", "otlp", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())["resourceLogs"][0]["resource"]["attributes"]
    assert {a["key"]: a["value"]["stringValue"] for a in res} == {
        "team": "obs",
        "service.name": "svc-a",
    }
