"""The judge against servers that speak OpenAI differently (LiteLLM-style gateways, local
servers): errors classified by meaning, the format ladder, rate-limit headers, reasoning
models, cost per model, the circuit breaker and the failure threshold, interrupts.

All through the real ``openai`` client against the stub on 127.0.0.1 (real HTTP); the same
cases run against the real LiteLLM proxy in ``test_gateway_litellm.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.core.eval.judges.cache import JudgmentCache
from llmobs_cli.core.eval.judges.capabilities import ModelCatalog
from llmobs_cli.core.eval.judges.classify import classify
from llmobs_cli.core.eval.judges.client import ClientSettings, JudgeRunner, Task, make_client
from llmobs_cli.core.eval.judges.formats import FILE_NAME, EndpointMemory
from llmobs_cli.core.eval.judges.prompts import builtin_criterion, render
from llmobs_cli.core.eval.judges.ratelimit import parse_duration, wait_seconds
from llmobs_cli.core.eval.run import EvalOptions, evaluate_frame
from llmobs_cli.core.ingest.readers import load
from openai_stub import (
    Reply,
    closed_port,
    gateway_bad_key,
    gateway_format_refused,
    gateway_invalid_model,
    gateway_rate_limited,
    gateway_schema_validation_failed,
    server_error,
    slow,
    temperature_rejected,
)
from test_eval_support import judged_response, marker_judge, records, run_cli, write_jsonl

KEY = "sk-test-SECRET-0123456789abcdef"
GOOD = '{"reasoning": "fine", "score": 4}'


def settings(base_url: str, **kw) -> ClientSettings:
    base = dict(
        base_url=base_url,
        api_key=KEY,
        backoff_base_s=0.001,
        backoff_max_s=0.01,
        timeout_s=5.0,
        max_retries=6,
        wait_budget_s=10.0,
        seed=1,
    )
    base.update(kw)
    return ClientSettings(**base)


def tasks(n: int, model: str = "judge-m", **kw) -> list[Task]:
    crit = builtin_criterion("relevance")
    return [
        Task(
            key=f"{model}-k{i}",
            messages=render(
                crit,
                {"input": f"user: q{i}", "response": f"GOOD {i}", "documents": "", "reference": ""},
            ),
            model=model,
            criterion=crit,
            est_input_tokens=100,
            est_output_tokens=20,
            **kw,
        )
        for i in range(n)
    ]


def run(base_url, ts, cache_dir=None, notices=None, **kw):
    s = settings(base_url, **kw)
    runner = JudgeRunner(make_client(s), s, JudgmentCache(cache_dir))
    return runner.run(ts, notice=None if notices is None else notices.append)


# --- configuration errors stop the run at once, whatever the status ------------------------


@pytest.mark.parametrize(
    ("reply", "reason", "server_says"),
    [
        (gateway_invalid_model("nope"), "model or endpoint not found", "Invalid model name"),
        (gateway_bad_key(), "authentication failed", "No connected db."),
    ],
)
def test_gateway_config_errors_are_fatal_at_once(openai_stub, reply, reason, server_says):
    openai_stub.responder = lambda req: reply
    res = run(openai_stub.base_url, tasks(40, model="nope"), concurrency=2)
    assert res.fatal is not None
    assert openai_stub.calls == 1  # the first call goes alone and its answer stops the run
    assert reason in res.fatal and server_says in res.fatal
    assert openai_stub.base_url in res.fatal and "'nope'" in res.fatal
    assert res.fatal.count("HTTP 400") == 1  # the status once, never "HTTP 400 (HTTP 400)"
    assert res.failed == 0 and all(o.skipped for o in res.outcomes)


def test_unsupported_parameter_is_fatal():
    import httpx
    import openai

    body = {"error": {"message": "Unrecognized request argument supplied: foo", "param": None}}
    req = httpx.Request("POST", "http://x/v1/chat/completions")
    exc = openai.BadRequestError("x", response=httpx.Response(400, request=req), body=body)
    f = classify(exc)
    assert f.kind == "fatal" and f.reason == "unsupported parameter"
    assert f.text() == "HTTP 400: Unrecognized request argument supplied: foo"


# --- the response-format ladder ------------------------------------------------------------


def test_format_refused_twice_steps_down_to_no_response_format(openai_stub, tmp_path):
    def refuses_any_format(req):
        return gateway_format_refused() if "response_format" in req else Reply(content=GOOD)

    openai_stub.responder = refuses_any_format
    notices: list[str] = []
    res = run(openai_stub.base_url, tasks(6), cache_dir=tmp_path, concurrency=1, notices=notices)
    assert res.fatal is None and res.failed == 0
    assert all(o.ok and o.score == 0.75 for o in res.outcomes)
    kinds = [b.get("response_format", {}).get("type") for b in openai_stub.bodies()]
    assert kinds == ["json_schema", "json_object"] + [None] * 6  # one step each, once per run
    last = openai_stub.bodies()[-1]
    assert '"score"' in last["messages"][0]["content"]  # the shape is spelled out instead
    assert res.mode == "none"
    assert any("refused response_format json_object" in n for n in notices)
    # remembered per endpoint + model: a rerun starts at the step that worked
    saved = json.loads((tmp_path / FILE_NAME).read_text())
    assert saved[f"{openai_stub.base_url} judge-m"]["response_format"] == "none"
    openai_stub.reset()
    res = run(openai_stub.base_url, tasks(3, model="judge-m")[:0] + _fresh(3), cache_dir=tmp_path)
    assert res.failed == 0 and openai_stub.calls == 3
    assert all("response_format" not in b for b in openai_stub.bodies())


def _fresh(n: int) -> list[Task]:
    ts = tasks(n)
    for t in ts:
        t.key = "fresh-" + t.key  # not cached: the calls are really made
    return ts


def test_schema_validation_500_steps_down_instead_of_retrying(openai_stub):
    def validating_gateway(req):
        if req.get("response_format", {}).get("type") == "json_schema":
            return gateway_schema_validation_failed()
        return Reply(content='```json\n{"reasoning": "fine", "score": 4}\n```')

    openai_stub.responder = validating_gateway
    res = run(openai_stub.base_url, tasks(5), concurrency=1)
    assert res.fatal is None and all(o.ok and o.score == 0.75 for o in res.outcomes)
    kinds = [b["response_format"]["type"] for b in openai_stub.bodies()]
    assert kinds == ["json_schema"] + ["json_object"] * 5  # no retry of the failing step


# --- rate limits as gateways send them -----------------------------------------------------


def test_llm_provider_retry_after_is_honoured_over_the_proxy_cooldown(openai_stub):
    state = {"n": 0}

    def upstream_limited(req):
        state["n"] += 1
        return gateway_rate_limited(0.6, own_wait=0) if state["n"] == 1 else Reply(content=GOOD)

    openai_stub.responder = upstream_limited
    notices: list[str] = []
    res = run(openai_stub.base_url, tasks(1), notices=notices)
    assert res.outcomes[0].ok and res.outcomes[0].attempts == 2
    gap = openai_stub.requests[1].time - openai_stub.requests[0].time
    assert gap >= 0.6
    assert "waiting 1 s (rate limited by the server)" in notices


def test_wait_budget_bounds_the_waiting_not_an_attempt_count(openai_stub):
    openai_stub.responder = lambda req: gateway_rate_limited(5.0)
    t0 = time.perf_counter()
    res = run(openai_stub.base_url, tasks(1), wait_budget_s=1.0, fail_first=5)
    o = res.outcomes[0]
    assert time.perf_counter() - t0 < 3.0  # did not sleep 5 s past a 1 s budget
    assert not o.ok and "wait budget of 1 s" in (o.error or "")
    # and many short waits within the budget are fine however many attempts they take
    state = {"n": 0}

    def limited_ten_times(req):
        state["n"] += 1
        return gateway_rate_limited(0.01) if state["n"] <= 10 else Reply(content=GOOD)

    openai_stub.responder = limited_ten_times
    res = run(openai_stub.base_url, tasks(1), max_retries=2)
    assert res.outcomes[0].ok and res.outcomes[0].attempts == 11


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "0", "llm_provider-retry-after": "58"}, 58.0),
        ({"llm_provider-retry-after-ms": "1500"}, 1.5),
        ({"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "20ms"}, 90.0),
        (
            {
                "x-ratelimit-reset-requests": "6m0s",
                "x-ratelimit-remaining-requests": "10",
                "x-ratelimit-reset-tokens": "2.5s",
                "x-ratelimit-remaining-tokens": "0",
            },
            2.5,
        ),
        ({"llm_provider-x-ratelimit-reset-tokens": "7s"}, 7.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_wait_headers(headers, expected):
    got = wait_seconds(headers)
    assert got == (None if expected is None else pytest.approx(expected))


def test_durations_and_dates():
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1x") is None and parse_duration("") is None
    assert parse_duration("1000060", now=1_000_000) == pytest.approx(60)  # an epoch time
    assert wait_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past


# --- reasoning models ----------------------------------------------------------------------


def test_known_reasoning_models_are_asked_without_temperature():
    cat = ModelCatalog.shipped()
    for name in ("o3-mini", "o1", "o4-mini", "gpt-5", "gpt-5-mini", "openai/o3"):
        assert cat.info(name).fixed_temperature, name
    for name in ("gpt-4o-mini", "gpt-5-chat-latest", "claude-sonnet-4-5"):
        assert not cat.info(name).fixed_temperature, name
    assert cat.info("anthropic/claude-3.7-sonnet:thinking").fixed_temperature


def test_unknown_model_rejecting_temperature_is_asked_again_without_it(openai_stub, tmp_path):
    def reasoner(req):
        return temperature_rejected() if "temperature" in req else Reply(content=GOOD)

    openai_stub.responder = reasoner
    notices: list[str] = []
    res = run(openai_stub.base_url, tasks(4, model="reasoner"), tmp_path, notices, concurrency=1)
    assert res.failed == 0 and all(o.ok for o in res.outcomes)
    assert openai_stub.calls == 5  # one rejection, then never again in this run
    assert sum("rejects temperature" in n for n in notices) == 1
    assert res.notes == [
        "judge model 'reasoner' judged at the model's default temperature (the server "
        "refused temperature=0)"
    ]
    memory = EndpointMemory(tmp_path, openai_stub.base_url)
    assert memory.dropped("reasoner") == {"temperature"}  # and not on the next run either


def _frame(tmp_path: Path, per_route: int = 10):
    return load([write_jsonl(tmp_path / "t.jsonl", records(1, per_route=per_route))]).frame


def test_self_consistency_on_a_reasoning_model_has_no_error_rows(openai_stub, tmp_path):
    def server(req):
        if req["model"] == "o3-mini" and "temperature" in req:
            return temperature_rejected()
        if "response_format" in req:
            return marker_judge(req)
        return Reply(content="the same answer", prompt_tokens=1000, completion_tokens=100)

    openai_stub.responder = server
    opts = EvalOptions(
        budget=4,
        judge_model="gpt-4o-mini",
        client=settings(
            openai_stub.base_url, input_price_per_million=0.15, output_price_per_million=0.60
        ),
        evaluators=["relevance"],
        self_consistency=True,
        sc_model="o3-mini",
    )
    out = evaluate_frame(_frame(tmp_path), opts, cache_dir=tmp_path / "c")
    sc = out.frame.filter(pl.col("evaluator") == "self_consistency")
    assert sc.height > 0 and sc["error"].null_count() == sc.height
    assert all("temperature" not in b for b in openai_stub.bodies() if b["model"] == "o3-mini")
    assert any("default temperature" in n and "o3-mini" in n for n in out.summary.notes)
    # each re-ask priced at o3-mini's own price ($1.10 / $4.40 per M), not the judge's
    per_call = (1000 * 1.10 + 100 * 4.40) / 1e6
    assert sc["judge_cost_usd"].to_list() == pytest.approx([3 * per_call] * sc.height)
    judge_rows = out.frame.filter(pl.col("evaluator") == "relevance")
    assert judge_rows["judge_cost_usd"].to_list() == pytest.approx(
        [(100 * 0.15 + 20 * 0.60) / 1e6] * judge_rows.height
    )
    total = float(out.frame["judge_cost_usd"].sum())
    assert out.summary.judge.cost_usd == pytest.approx(total)
    assert out.summary.judge.unpriced is False and out.summary.judge.unpriced_models == []


def test_unpriced_models_are_flagged(openai_stub, tmp_path):
    openai_stub.responder = lambda req: (
        marker_judge(req) if "response_format" in req else Reply(content="an answer")
    )
    opts = EvalOptions(
        budget=3,
        judge_model="my-local-judge",
        client=settings(openai_stub.base_url),
        evaluators=["relevance"],
        self_consistency=True,
        sc_model="my-local-sampler",
    )
    out = evaluate_frame(_frame(tmp_path), opts, cache_dir=tmp_path / "c")
    judge = out.summary.as_dict()["judge"]
    assert judge["unpriced"] is True
    assert judge["unpriced_models"] == ["my-local-judge", "my-local-sampler"]
    assert any("no price for 'my-local-judge', 'my-local-sampler'" in n for n in out.summary.notes)


# --- failing fast: breaker, threshold ------------------------------------------------------


def test_connection_refused_trips_the_breaker_naming_the_url():
    url = closed_port()
    t0 = time.perf_counter()
    res = run(url, tasks(50), concurrency=4, backoff_base_s=0.05, breaker_failures=5)
    assert time.perf_counter() - t0 < 10
    assert res.fatal is not None and url in res.fatal and "cannot reach" in res.fatal
    assert "(5 attempts in a row failed)" in res.fatal


def test_timeouts_trip_the_breaker(openai_stub):
    openai_stub.responder = lambda req: slow(2.0)
    t0 = time.perf_counter()
    res = run(openai_stub.base_url, tasks(30), concurrency=3, timeout_s=0.2, breaker_failures=3)
    assert time.perf_counter() - t0 < 5
    assert res.fatal is not None and "timed out after 0.2 s" in res.fatal


def test_endpoint_hanging_mid_run_keeps_what_was_judged(openai_stub, tmp_path):
    lock = threading.Lock()
    state = {"n": 0}

    def hangs_after_eight(req):
        with lock:
            state["n"] += 1
            n = state["n"]
        return Reply(content=GOOD) if n <= 8 else slow(3.0)

    openai_stub.responder = hangs_after_eight
    ts = tasks(60)
    res = run(openai_stub.base_url, ts, tmp_path, concurrency=1, timeout_s=0.3)
    assert res.fatal is not None and "cannot reach" in res.fatal
    assert openai_stub.base_url in res.fatal and "timed out" in res.fatal
    assert sum(o.ok for o in res.outcomes) == 8
    cached = JudgmentCache(tmp_path)
    assert sum(cached.get(t.key) is not None for t in ts) == 8  # all of them kept


def test_all_of_the_first_judgments_failing_stops_the_run(openai_stub):
    openai_stub.responder = lambda req: Reply(
        status=422, body={"error": {"message": "this deployment cannot judge"}}
    )
    res = run(openai_stub.base_url, tasks(200), concurrency=2, fail_first=10)
    assert res.fatal is not None and "10 of 10 judgments failed" in res.fatal
    assert "HTTP 422: this deployment cannot judge" in res.fatal
    assert openai_stub.calls < 20  # not 200


def test_more_than_a_fifth_failing_stops_the_run(openai_stub):
    def every_third_malformed(req):
        i = int(judged_response(req).split()[-1])  # tasks judge "GOOD <i>"
        return Reply(content="no json" if i % 3 == 0 else GOOD)

    openai_stub.responder = every_third_malformed
    res = run(openai_stub.base_url, tasks(200), concurrency=1, fail_first=10)
    assert res.fatal is not None and "malformed judge output" in res.fatal
    judged = sum(not o.skipped for o in res.outcomes)
    assert 10 <= judged < 40
    assert res.failed / judged > 0.2


def test_gives_up_with_the_server_message_once(openai_stub):
    openai_stub.responder = lambda req: server_error(500)
    res = run(openai_stub.base_url, tasks(1), max_retries=2)
    err = res.outcomes[0].error or ""
    assert "HTTP 500: The server had an error" in err and err.count("HTTP 500") == 1


def test_max_cost_with_calls_in_flight_never_passes_the_cap(openai_stub):
    openai_stub.responder = lambda req: slow(
        0.05, content=GOOD
    )  # usage: 100 in / 20 out → $0.0003 at $1/$10 per M
    ts = tasks(40)
    res = run(
        openai_stub.base_url,
        ts,
        concurrency=8,
        input_price_per_million=1.0,
        output_price_per_million=10.0,
        max_cost_usd=0.0031,
    )
    assert res.cost_usd <= 0.0031
    done = sum(o.ok for o in res.outcomes)
    assert done == 10  # waits for calls in flight instead of stopping at the first doubt
    assert res.cost_usd == pytest.approx(done * 0.0003)
    assert res.stopped is not None and f"spent ${res.cost_usd:.4f}" in res.stopped


# --- the CLI: credentials, breaker, interrupts ---------------------------------------------


def test_no_key_and_no_base_url_is_exit_2_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    traces = write_jsonl(tmp_path / "t.jsonl", records(1, per_route=5))
    r = run_cli("eval", str(traces), "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == 2
    assert "set OPENAI_API_KEY or pass --base-url" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("eval", str(traces), "--dry-run")
    assert r.returncode == 0 and "warning" in r.stderr and "OPENAI_API_KEY" in r.stderr


def test_cli_unreachable_endpoint_is_exit_3_quickly_with_plain_failure_lines(tmp_path):
    traces = write_jsonl(tmp_path / "t.jsonl", records(1, per_route=20))
    url = closed_port()
    out = tmp_path / "e.parquet"
    t0 = time.perf_counter()
    r = run_cli(
        "eval",
        str(traces),
        "--base-url",
        url,
        "--evaluators",
        "relevance",
        "--cache-dir",
        str(tmp_path / "c"),
        "--no-progress",
        "-o",
        str(out),
        env={"OPENAI_API_KEY": "sk-x"},
    )
    assert time.perf_counter() - t0 < 60
    assert r.returncode == 3, r.stderr
    assert url in r.stderr and "cannot reach" in r.stderr
    assert "retrying in" in r.stderr  # failures shown as they happen, as plain lines
    assert "judgments cached in" in r.stderr and "Traceback" not in r.stderr
    assert out.exists()


@pytest.mark.parametrize(
    ("sig", "ignore_sigint"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["sigint", "sigterm", "sigterm-background-job"],
)
def test_interrupt_writes_partial_results_and_exits_130(openai_stub, tmp_path, sig, ignore_sigint):
    # a background job of a non-interactive shell ignores SIGINT: SIGTERM must still work
    openai_stub.responder = lambda req: slow(0.05, content=marker_judge(req).content)
    traces = write_jsonl(tmp_path / "t.jsonl", records(3, per_route=40))
    cache = tmp_path / "cache"
    out = tmp_path / "evals.parquet"
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
        "-o",
        str(out),
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-x"}
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if ignore_sigint
        else None,
    )
    log = cache / "judgments-v1.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if log.exists() and len(log.read_bytes().splitlines()) >= 10:
            break
        if proc.poll() is not None:
            pytest.fail(f"finished before the signal: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.05)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the interrupted run did not stop")
    text = err.decode()
    assert proc.returncode == 130, text
    assert "judgments cached in" in text and "rerun the same command to resume" in text
    n = int(text.split("interrupted; ")[1].split(" judgments")[0])
    kept = len(log.read_bytes().splitlines())
    assert n == kept >= 10
    frame = pl.read_parquet(out)
    assert frame.filter(pl.col("error").is_null()).height == n
    import pyarrow.parquet as pq

    assert pq.read_metadata(out).metadata[b"llmobs.partial"] == b"true"
    assert "Traceback" not in text


def test_a_client_that_cannot_be_built_is_fatal_not_a_crash(tmp_path):
    import openai

    def no_key():
        raise openai.OpenAIError("The api_key client option must be set")

    s = settings("https://api.example.invalid/v1")
    res = JudgeRunner(no_key, s, JudgmentCache(tmp_path)).run(tasks(3))
    assert res.fatal is not None and "api_key" in res.fatal
    assert all(o.skipped for o in res.outcomes)


def test_dry_run_prices_self_consistency_at_the_resampled_models_price(tmp_path):
    frame = _frame(tmp_path)
    judge = settings(
        "http://127.0.0.1:9/v1", input_price_per_million=0.15, output_price_per_million=0.60
    )

    def plan(**kw):
        opts = EvalOptions(
            budget=4,
            judge_model="gpt-4o-mini",
            client=judge,
            evaluators=["relevance"],
            dry_run=True,
            **kw,
        )
        rows = evaluate_frame(frame, opts).summary.plan
        return (
            sum(r["est_cost_usd"] for r in rows),
            sum(r["est_input_tokens"] for r in rows),
            sum(r["est_output_tokens"] for r in rows),
        )

    base_cost, base_in, base_out = plan()
    cost, tin, tout = plan(self_consistency=True, sc_model="gpt-4o")
    sc_in, sc_out = tin - base_in, tout - base_out
    assert sc_in > 0 and sc_out > 0
    # gpt-4o: $2.50 / $10 per M (configs/prices.yaml), not the judge's $0.15 / $0.60
    assert cost - base_cost == pytest.approx((sc_in * 2.50 + sc_out * 10.0) / 1e6)


def test_breaker_time_budget_counts_from_the_first_failing_attempt(openai_stub):
    # an endpoint that never answers: one time-out longer than breaker_s is enough when
    # nothing was ever answered; with answers before, one time-out is not
    openai_stub.responder = lambda req: slow(1.5)
    t0 = time.perf_counter()
    res = run(openai_stub.base_url, tasks(5), timeout_s=0.6, breaker_s=0.5, breaker_failures=50)
    assert res.fatal is not None and "(no answer in " in res.fatal
    assert time.perf_counter() - t0 < 3
    lock = threading.Lock()
    state = {"n": 0}

    def one_slow_answer(req):
        with lock:
            state["n"] += 1
            n = state["n"]
        return slow(1.5) if n == 3 else Reply(content=GOOD)

    openai_stub.responder = one_slow_answer
    res = run(
        openai_stub.base_url,
        _fresh(6),
        concurrency=1,
        timeout_s=0.6,
        breaker_s=0.5,
        breaker_failures=50,
    )
    assert res.fatal is None and all(o.ok for o in res.outcomes)
