"""``llmobs eval`` end to end: the bar scenario (a release-tied drop on one route is the
only regression, exit 1), dry run with zero calls, exit 3 with partial results kept,
cached reruns, ``eval summarize``, and resume after the process is killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from openai_stub import Reply, auth_error, slow
from test_eval_support import START, marker_judge, records, run_cli, write_jsonl

ENV = {"OPENAI_API_KEY": "sk-cli-test-key-000000"}


@pytest.fixture
def bar_traces(tmp_path: Path) -> Path:
    """4 weeks; from day 21 release v2 on route qa answers 40 % worse."""
    recs = records(
        11,
        per_route=160,
        days=28,
        drop={"qa": 0.4},
        drop_after=START + timedelta(days=21),
        release_after="v2",
    )
    return write_jsonl(tmp_path / "traces.jsonl", recs)


def args(stub, *extra: str) -> list[str]:
    return ["--base-url", stub.base_url, "--evaluators", "relevance", *extra]


def test_bar_release_tied_drop_is_the_only_regression(openai_stub, bar_traces, tmp_path):
    openai_stub.responder = marker_judge
    out = tmp_path / "evals.parquet"
    r = run_cli(
        "eval",
        str(bar_traces),
        *args(openai_stub),
        "--budget",
        "40",
        "--current",
        "last_week",
        "--baseline",
        "last_month",
        "--cache-dir",
        str(tmp_path / "c"),
        "-o",
        str(out),
        "--format",
        "json",
        env=ENV,
    )
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) >= {"groups", "regressions", "judge"}
    assert [(x["key"], x["evaluator"]) for x in doc["regressions"]] == [
        ({"route": "qa"}, "relevance")
    ]
    reg = doc["regressions"][0]
    assert reg["delta"] < -0.2 and reg["q_value"] < 0.05
    for g in doc["groups"]:
        assert set(g) >= {"key", "evaluator", "judged", "score", "ci_low", "ci_high", "n_eff"}
        assert 0 <= g["ci_low"] <= g["score"] <= g["ci_high"] <= 1
    assert set(doc["judge"]) >= {"calls", "cached", "failed", "cost_usd"}
    assert doc["judge"]["calls"] == openai_stub.calls > 0 and doc["judge"]["failed"] == 0
    assert "regression: qa relevance" in r.stderr
    frame = pl.read_parquet(out)
    assert set(frame["window"].unique()) == {"current", "baseline"}
    assert frame.height == openai_stub.calls

    # a rerun makes no judge call; summarize re-aggregates the saved file to the same answer
    calls = openai_stub.calls
    r2 = run_cli(
        "eval",
        str(bar_traces),
        *args(openai_stub),
        "--budget",
        "40",
        "--current",
        "last_week",
        "--baseline",
        "last_month",
        "--cache-dir",
        str(tmp_path / "c"),
        "--format",
        "json",
        env=ENV,
    )
    assert r2.returncode == 1 and openai_stub.calls == calls
    assert json.loads(r2.stdout)["judge"]["cached"] == calls
    s = run_cli("eval", "summarize", str(out), "--format", "json")
    assert s.returncode == 1
    summ = json.loads(s.stdout)
    assert summ["groups"] == doc["groups"] and summ["regressions"] == doc["regressions"]
    md = run_cli("eval", "summarize", str(out), "--format", "markdown", "--bucket", "week")
    assert "REGRESSION" in md.stdout and md.returncode == 1
    # CI summary: the verdict comes first, before any table.
    n = len(doc["regressions"])
    assert md.stdout.startswith(f"### llmobs eval\n\n**{n} regression(s)**\n")


def test_by_release_compares_each_release_with_the_previous(openai_stub, bar_traces, tmp_path):
    openai_stub.responder = marker_judge
    r = run_cli(
        "eval",
        str(bar_traces),
        *args(openai_stub),
        "--budget",
        "50",
        "--by",
        "route,release",
        "--cache-dir",
        str(tmp_path / "c"),
        "--format",
        "json",
        env=ENV,
    )
    doc = json.loads(r.stdout)
    assert r.returncode == 1
    regs = [(x["key"], x["baseline_release"]) for x in doc["regressions"]]
    assert regs == [({"route": "qa", "release": "v2"}, "v1")]


def test_dry_run_makes_no_call(openai_stub, bar_traces):
    r = run_cli(
        "eval",
        str(bar_traces),
        *args(openai_stub),
        "--dry-run",
        "--budget",
        "50",
        "--format",
        "json",
        env=ENV,
    )
    assert r.returncode == 0, r.stderr
    assert openai_stub.calls == 0
    plan = json.loads(r.stdout)
    assert plan["dry_run"] is True and plan["judge"]["calls"] == 0
    rows = {p["route"]: p for p in plan["plan"]}
    assert set(rows) == {"chat", "qa", "refunds"}
    for p in rows.values():
        assert p["judgments"] == p["selected_rows"]  # one evaluator
        assert p["est_input_tokens"] > 0 and p["est_cost_usd"] > 0  # gpt-4o-mini is priced
        assert p["eval_rate"] == pytest.approx(min(1.0, 50 / p["traces"]))
    table = run_cli("eval", str(bar_traces), *args(openai_stub), "--dry-run", env=ENV)
    assert "no judge call made" in table.stdout and openai_stub.calls == 0


def test_auth_failure_exits_3_and_keeps_partial_results(openai_stub, bar_traces, tmp_path):
    state = {"n": 0}

    def breaks(req):
        state["n"] += 1
        return marker_judge(req) if state["n"] <= 25 else auth_error()

    openai_stub.responder = breaks
    out = tmp_path / "partial.parquet"
    r = run_cli(
        "eval",
        str(bar_traces),
        *args(openai_stub),
        "--budget",
        "30",
        "--concurrency",
        "1",
        "--cache-dir",
        str(tmp_path / "c"),
        "-o",
        str(out),
        env=ENV,
    )
    assert r.returncode == 3
    assert "authentication failed" in r.stderr and ENV["OPENAI_API_KEY"] not in r.stderr
    assert "Traceback" not in r.stderr
    kept = pl.read_parquet(out)
    assert kept.filter(pl.col("error").is_null()).height == 25
    # fixed key: the rerun reuses the 25 and judges the rest
    openai_stub.responder = marker_judge
    openai_stub.reset()
    r2 = run_cli(
        "eval",
        str(bar_traces),
        *args(openai_stub),
        "--budget",
        "30",
        "--cache-dir",
        str(tmp_path / "c"),
        "-o",
        str(out),
        env=ENV,
    )
    assert r2.returncode == 0, r2.stderr
    total = pl.read_parquet(out).height
    assert openai_stub.calls == total - 25


def test_max_cost_and_bad_input(openai_stub, bar_traces, tmp_path):
    openai_stub.responder = lambda req: Reply(
        prompt_tokens=100_000, completion_tokens=0, content='{"reasoning": "x", "score": 3}'
    )
    # gpt-4o-mini: $0.15 per M input → $0.015 per call; cap $0.05 → 3 calls at most
    r = run_cli(
        "eval",
        str(bar_traces),
        *args(openai_stub),
        "--max-cost",
        "0.05",
        "--concurrency",
        "1",
        "--cache-dir",
        str(tmp_path / "c"),
        env=ENV,
    )
    # stopped early by --max-cost: exit 1 (the run did not finish what was asked), and the
    # spend reported is the true one: 3 calls at $0.015
    assert r.returncode == 1 and "max-cost" in r.stderr
    assert openai_stub.calls <= 3
    assert f"spent ${openai_stub.calls * 0.015:.4f}" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"trace_id": "t", "model": "m", "latency_ms": 1}\n')
    r = run_cli("eval", str(bad), *args(openai_stub), env=ENV)
    assert r.returncode == 2 and "bad.jsonl:1: timestamp" in r.stderr
    r = run_cli("eval", "summarize", str(bad))
    assert r.returncode == 2 and "not a Parquet evals file" in r.stderr
    r = run_cli("eval", str(bar_traces), "--evaluators", "nonsense", "--dry-run")
    assert r.returncode == 2 and "unknown evaluator 'nonsense'" in r.stderr


@pytest.mark.slow
def test_resume_after_kill(openai_stub, tmp_path):
    openai_stub.responder = lambda req: slow(0.05, content=marker_judge(req).content)
    traces = write_jsonl(tmp_path / "t.jsonl", records(3, per_route=40))
    cache = tmp_path / "cache"
    cmd = [
        sys.executable,
        "-m",
        "llmobs_cli",
        "eval",
        str(traces),
        "--base-url",
        openai_stub.base_url,
        "--evaluators",
        "relevance,completeness",
        "--budget",
        "40",
        "--concurrency",
        "2",
        "--cache-dir",
        str(cache),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    log = cache / "judgments-v1.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline:
        if log.exists() and len(log.read_bytes().splitlines()) >= 30:
            break
        if proc.poll() is not None:
            pytest.fail(f"finished before the kill: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(log.read_bytes().splitlines())
    assert 30 <= before < 240
    calls_before = openai_stub.calls
    out = tmp_path / "evals.parquet"
    r = run_cli(
        "eval",
        str(traces),
        "--base-url",
        openai_stub.base_url,
        "--evaluators",
        "relevance,completeness",
        "--budget",
        "40",
        "--cache-dir",
        str(cache),
        "-o",
        str(out),
        "--format",
        "json",
        env=ENV,
    )
    assert r.returncode == 0, r.stderr
    frame = pl.read_parquet(out)
    assert frame.height == 240 and frame["error"].null_count() == 240
    assert frame.select("trace_id", "span_id", "evaluator").n_unique() == 240  # exactly once
    resumed = openai_stub.calls - calls_before
    # only what was not cached was asked again (in-flight calls at the kill are redone)
    assert resumed <= 240 - before + 2
    assert json.loads(r.stdout)["judge"]["cached"] >= before - 2


def test_custom_criterion_from_config_and_daily_buckets(openai_stub, tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "tone.md").write_text(
        "---\nname: tone\nversion: 3\nscale: {min: 0, max: 10, type: number}\n---\n"
        "Rate the politeness.\n<untrusted_data><response>{response}</response>"
        "</untrusted_data>\n"
    )
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text(
        "eval:\n  evaluators: [relevance]\n  criteria:\n    tone: {prompt: prompts/tone.md}\n"
    )

    def judge(req):
        if "politeness" in req["messages"][-1]["content"]:
            return Reply(content='{"reasoning": "ok", "score": 7.5}')
        return marker_judge(req)

    openai_stub.responder = judge
    traces = write_jsonl(tmp_path / "t.jsonl", records(4, per_route=15, days=3))
    r = run_cli(
        "eval",
        str(traces),
        "--config",
        str(cfg),
        "--base-url",
        openai_stub.base_url,
        "--budget",
        "5",
        "--bucket",
        "day",
        "--cache-dir",
        str(tmp_path / "c"),
        "--format",
        "json",
        env=ENV,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    tone = [g for g in doc["groups"] if g["evaluator"] == "tone"]
    assert tone and all(g["score"] == pytest.approx(0.75) for g in tone)
    tone_req = [b for b in openai_stub.bodies() if "politeness" in b["messages"][-1]["content"]]
    schema = tone_req[0]["response_format"]["json_schema"]["schema"]["properties"]["score"]
    assert schema == {
        "type": "number",
        "minimum": 0,
        "maximum": 10,
        "description": "0 (worst) to 10 (best)",
    }
    days = {b["bucket"][:10] for b in doc["buckets"]}
    assert days <= {"2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"} and len(days) >= 2
    assert {b["evaluator"] for b in doc["buckets"]} == {"relevance", "tone"}
