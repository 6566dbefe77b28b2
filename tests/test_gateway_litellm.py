"""``llmobs eval`` against the REAL LiteLLM proxy on 127.0.0.1 (``mock_response`` models,
and models routed to our stub as their upstream provider): every way such a gateway says
"no" differently from OpenAI, end to end through the CLI.

LiteLLM is not a dependency of llmobs: ``scripts/litellm_env.sh`` installs a pinned
release into its own venv (under the user cache directory). These tests are marked
``gateway`` and run only with ``LLMOBS_GATEWAY_TESTS=1`` (``.ci/run`` sets it in a step of
its own): the first install took 307 s and the proxy takes 26-47 s to start on the
shared 2-core machine, too much for the default suite. When the proxy cannot be installed
or started they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from openai_stub import OpenAIStub, Reply, rate_limited, schema_rejected
from test_eval_support import marker_judge, records, run_cli, write_jsonl

# The first test also installs LiteLLM (307 s measured) and starts the proxy: the
# default per-test timeout (300 s) would cut the install short.
pytestmark = [pytest.mark.gateway, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
MASTER_KEY = "sk-llmobs-gateway-test-master-key"
GOOD = '{"reasoning": "fine", "score": 4}'
STARTUP_S = 150.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def litellm_python() -> str:
    if os.environ.get("LLMOBS_GATEWAY_TESTS") != "1":
        pytest.skip(
            "gateway suite off: set LLMOBS_GATEWAY_TESTS=1 to run it against the real "
            "LiteLLM proxy (scripts/litellm_env.sh installs it in its own venv)"
        )
    try:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "litellm_env.sh")],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("LiteLLM could not be installed within 15 minutes")
    if out.returncode != 0:
        reason = [ln for ln in out.stderr.splitlines() if ln.strip()][-1:] or ["unknown"]
        pytest.skip(f"LiteLLM could not be installed: {reason[0]}")
    return out.stdout.strip().splitlines()[-1]


class Upstream:
    """Our stub as the provider behind the proxy, with a per-test responder."""

    def __init__(self) -> None:
        self.responder: Callable[[dict[str, Any]], Any] = lambda req: Reply(content=GOOD)
        self.stub = OpenAIStub(lambda req: self.responder(req))


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    up.stub.start()
    yield up
    up.stub.stop()


@pytest.fixture(scope="session")
def proxy(litellm_python: str, upstream: Upstream, tmp_path_factory) -> Iterator[str]:
    """The LiteLLM proxy on a free loopback port; yields its base URL (``.../v1``)."""
    work = tmp_path_factory.mktemp("litellm")
    up = upstream.stub.base_url
    fenced = json.dumps("```json\n" + GOOD + "\n```")
    config = f"""
model_list:
  - model_name: judge-ok
    litellm_params: {{model: openai/gpt-4o-mini, api_key: sk-fake, mock_response: '{GOOD}'}}
  - model_name: judge-fenced
    litellm_params: {{model: openai/gpt-4o-mini, api_key: sk-fake, mock_response: {fenced}}}
  - model_name: o3-mini
    litellm_params: {{model: openai/o3-mini, api_key: sk-fake, mock_response: "an answer"}}
  - model_name: reasoner
    litellm_params: {{model: openai/o3-mini, api_key: sk-fake, mock_response: "an answer"}}
  - model_name: refuser
    litellm_params: {{model: openai/refuser, api_base: "{up}", api_key: sk-up}}
  - model_name: limited
    litellm_params: {{model: openai/limited, api_base: "{up}", api_key: sk-up}}
router_settings:
  num_retries: 0
litellm_settings:
  num_retries: 0
  enable_json_schema_validation: true
general_settings:
  master_key: {MASTER_KEY}
"""
    (work / "config.yaml").write_text(config)
    port = _free_port()
    env = {
        **os.environ,
        # offline: never fetch the model price map; allow a test master key
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        "LITELLM_TELEMETRY": "False",
    }
    log = (work / "proxy.log").open("w")
    proc = subprocess.Popen(
        [
            litellm_python,
            "-m",
            "litellm.proxy.proxy_cli",
            "--config",
            str(work / "config.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                tail = (work / "proxy.log").read_text()[-400:]
                pytest.skip(f"the LiteLLM proxy exited at start: {tail}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip(f"the LiteLLM proxy did not start within {STARTUP_S:g} s")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "t.jsonl", records(2, per_route=8))


def _eval(
    proxy: str, traces: Path, tmp_path: Path, *extra: str, key: str = MASTER_KEY
) -> tuple[Any, float]:
    t0 = time.perf_counter()
    r = run_cli(
        "eval",
        str(traces),
        "--base-url",
        proxy,
        "--evaluators",
        "relevance",
        "--budget",
        "4",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--format",
        "json",
        "--no-progress",
        "-o",
        str(tmp_path / "evals.parquet"),
        *extra,
        env={"OPENAI_API_KEY": key},
    )
    return r, time.perf_counter() - t0


def _judged(tmp_path: Path) -> pl.DataFrame:
    return pl.read_parquet(tmp_path / "evals.parquet")


def test_normal_path_scores_and_a_rerun_makes_no_call(proxy, traces, tmp_path):
    r, _ = _eval(proxy, traces, tmp_path, "--judge-model", "judge-ok")
    assert r.returncode == 0, r.stderr
    frame = _judged(tmp_path)
    assert frame.height > 0 and frame["error"].null_count() == frame.height
    assert set(frame["score"].to_list()) == {0.75}
    judge = json.loads(r.stdout)["judge"]
    assert judge["response_format"] == "json_schema" and judge["unpriced"] is True
    r, _ = _eval(proxy, traces, tmp_path, "--judge-model", "judge-ok")
    assert r.returncode == 0 and json.loads(r.stdout)["judge"]["calls"] == 0


def test_wrong_model_is_exit_3_with_the_servers_reason(proxy, traces, tmp_path):
    r, took = _eval(proxy, traces, tmp_path, "--judge-model", "no-such-model")
    assert r.returncode == 3, r.stderr
    assert took < 30
    assert "Invalid model name" in r.stderr and "no-such-model" in r.stderr
    assert proxy in r.stderr and "HTTP 400 (HTTP 400)" not in r.stderr


def test_wrong_key_is_exit_3_with_the_servers_reason(proxy, traces, tmp_path):
    r, took = _eval(proxy, traces, tmp_path, "--judge-model", "judge-ok", key="sk-wrong-key")
    assert r.returncode == 3, r.stderr
    assert took < 30
    assert "authentication failed" in r.stderr and "No connected db" in r.stderr
    assert "sk-wrong-key" not in r.stderr


def test_schema_validation_500_ends_with_parsed_scores(proxy, traces, tmp_path):
    r, _ = _eval(proxy, traces, tmp_path, "--judge-model", "judge-fenced")
    assert r.returncode == 0, r.stderr
    frame = _judged(tmp_path)
    assert frame["error"].null_count() == frame.height and set(frame["score"]) == {0.75}
    assert json.loads(r.stdout)["judge"]["response_format"] == "json_object"


def test_provider_refusing_response_format_ends_with_parsed_scores(
    proxy, upstream, traces, tmp_path
):
    def refuses(req):
        if "response_format" in req:
            return schema_rejected()  # any type: json_schema and json_object alike
        return marker_judge(req)

    upstream.responder = refuses
    r, _ = _eval(proxy, traces, tmp_path, "--judge-model", "refuser")
    assert r.returncode == 0, r.stderr
    frame = _judged(tmp_path)
    assert frame.height > 0 and frame["error"].null_count() == frame.height
    assert json.loads(r.stdout)["judge"]["response_format"] == "none"
    # remembered: the next run (new judgments) starts without response_format
    upstream.stub.reset()
    r, _ = _eval(proxy, traces, tmp_path, "--judge-model", "refuser", "--budget", "6")
    assert r.returncode == 0, r.stderr
    assert upstream.stub.calls > 0
    assert all("response_format" not in b for b in upstream.stub.bodies())


def test_upstream_rate_limit_waits_as_llm_provider_retry_after_says(
    proxy, upstream, traces, tmp_path
):
    lock = threading.Lock()
    state = {"n": 0}

    def limited_once(req):
        with lock:
            state["n"] += 1
            first = state["n"] == 1
        return rate_limited(2) if first else marker_judge(req)

    upstream.responder = limited_once
    upstream.stub.reset()
    r, _ = _eval(proxy, traces, tmp_path, "--judge-model", "limited", "--concurrency", "1")
    assert r.returncode == 0, r.stderr
    assert "waiting 2 s (rate limited by the server)" in r.stderr
    frame = _judged(tmp_path)
    assert frame["error"].null_count() == frame.height
    t = [q.time for q in upstream.stub.requests[:2]]
    assert t[1] - t[0] >= 2.0


@pytest.mark.parametrize("sampler", ["o3-mini", "reasoner"])
def test_self_consistency_on_a_reasoning_model_has_no_error_rows(proxy, traces, tmp_path, sampler):
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text(
        f"eval:\n  self_consistency:\n    enabled: true\n    samples: 2\n    model: {sampler}\n"
    )
    r, _ = _eval(proxy, traces, tmp_path, "--judge-model", "judge-ok", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    frame = _judged(tmp_path)
    sc = frame.filter(pl.col("evaluator") == "self_consistency")
    assert sc.height > 0 and sc["error"].null_count() == sc.height
    notes = json.loads(r.stdout)["notes"]
    assert any("default temperature" in n and sampler in n for n in notes)
