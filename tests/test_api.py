"""The public Python API (``import llmobs_cli as L``): the same figures as the CLI's
``--format json`` from the public names alone, one argument shape, frames as sources,
typed results, errors that name the parameter."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import is_dataclass
from pathlib import Path

import polars as pl
import pytest

import llmobs_cli as L
from openai_stub import OpenAIStub
from test_eval_support import marker_judge, run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces" / "traces.parquet"


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both sides read ./llmobs.yaml when present: run where there is none.
    monkeypatch.chdir(tmp_path)


def same(a: object, b: object, path: str = "") -> None:
    """Equal documents, floats to 1e-12 relative: Polars' multithreaded float sums may
    differ in the last bit from one run to the next (the CLI against itself too)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (path, a, b)
    else:
        assert a == b, (path, a, b)


def cli_json(*args: str) -> dict:
    r = run_cli(*args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


# --- the bar: report, drift and summarize_evals on the sample, as the CLI ------------------


def test_report_matches_cli_json() -> None:
    rep = L.report(str(SAMPLE), by="route,model", bucket="day")
    same(rep.to_dict(), cli_json("report", str(SAMPLE), "--by", "route,model", "--bucket", "day"))
    assert json.loads(rep.to_json()) == rep.to_dict()
    assert rep.overall["calls"] > rep.overall["sampled"] > 0  # weighted, not row counts
    assert {tuple(g["key"]) for g in rep.groups} == {("route", "model")}


def test_drift_matches_cli_json() -> None:
    res = L.drift(str(SAMPLE))
    same(res.to_dict(), cli_json("drift", str(SAMPLE)))
    assert res.fired == bool(res.drifted)
    frame = res.to_frame()
    assert frame.height == len(res.features) and "p_adjusted" in frame.columns


def test_evaluate_and_summarize_evals_match_cli_json(tmp_path: Path) -> None:
    evals = tmp_path / "evals.parquet"
    with OpenAIStub(marker_judge) as stub:
        run = L.evaluate(
            str(SAMPLE),
            base_url=stub.base_url,
            evaluators="relevance",
            budget=15,
            cache_dir=tmp_path / "cache",
            output=evals,
        )
        calls = stub.calls
        # The CLI on the same cache: every judgment is cached, the same summary.
        cli = cli_json(
            "eval",
            str(SAMPLE),
            "--base-url",
            stub.base_url,
            "--evaluators",
            "relevance",
            "--budget",
            "15",
            "--cache-dir",
            str(tmp_path / "cache"),
        )
        assert stub.calls == calls
    assert calls > 0 and run.judgments.height == calls
    assert evals.exists() and pl.read_parquet(evals).height == run.judgments.height
    mine = run.to_dict()
    same(mine["groups"], cli["groups"])
    same(mine["overall"], cli["overall"])

    summary = L.summarize_evals(evals, by="route", bucket="day")
    same(
        summary.to_dict(),
        cli_json("eval", "summarize", str(evals), "--by", "route", "--bucket", "day"),
    )
    same(L.summarize_evals(run.judgments).to_dict()["groups"], summary.to_dict()["groups"])
    table = summary.to_frame()
    assert table.height == len(summary.groups) and {"route", "score", "ci_low"} <= set(
        table.columns
    )


# --- one shape: frames, windows, configs ---------------------------------------------------


def test_a_frame_or_loaded_traces_give_the_same_report_as_the_file() -> None:
    traces = L.load(str(SAMPLE))
    assert isinstance(traces, L.Traces) and len(traces) == pl.read_parquet(SAMPLE).height
    by_path = L.report(str(SAMPLE)).to_dict()
    same(L.report(traces).to_dict(), by_path)
    same(L.report(traces.frame.lazy()).to_dict(), by_path)
    assert L.report(pl.read_parquet(SAMPLE)).sources == ["<frame>"]


def test_window_is_the_clis_since_until_now() -> None:
    rep = L.report(SAMPLE, window=L.Window(since="7d"))
    same(rep.to_dict(), cli_json("report", str(SAMPLE), "--since", "7d"))
    w = L.Window(since="2026-11-01T00:00:00Z", until="2026-11-08T00:00:00Z")
    same(
        L.report(SAMPLE, window=w).to_dict(),
        cli_json("report", str(SAMPLE), "--since", str(w.since), "--until", str(w.until)),
    )
    frame = L.load(SAMPLE, window=L.Window(since="7d")).frame
    assert frame.height == rep.overall["sampled"]


def test_config_load_and_path(tmp_path: Path) -> None:
    cfg_path = tmp_path / "other.yaml"
    cfg_path.write_text("version: 1\nreport:\n  by: [model]\n  percentiles: [0.9]\n")
    cfg = L.Config.load(cfg_path)
    assert cfg.report.by == ["model"]
    a = L.report(SAMPLE, config=cfg)
    assert a.by == ["model"] and "p90" in a.overall["latency_ms"]
    same(a.to_dict(), L.report(SAMPLE, config=cfg_path).to_dict())
    same(a.to_dict(), cli_json("report", str(SAMPLE), "--config", str(cfg_path)))


def test_fail_on_fires_without_raising() -> None:
    rep = L.report(SAMPLE, fail_on=["error_rate >= 0"])
    assert rep.fired and rep.alerts[0]["rule"].startswith("error_rate")


# --- other entry points ---------------------------------------------------------------------


def test_sample_in_memory_and_to_file_match_the_cli(tmp_path: Path) -> None:
    res = L.sample(SAMPLE, rates={"chat": 0.5}, default_rate=0.8)
    assert res.output is None and res.frame.height == res.rows_out < res.rows_in
    out = tmp_path / "kept.parquet"
    cli = cli_json(
        "sample", str(SAMPLE), "-o", str(out), "--rate", "chat=0.5", "--default-rate", "0.8"
    )
    same(res.to_dict(), cli)
    assert res.frame.sort("trace_id", "span_id").equals(
        pl.read_parquet(out).sort("trace_id", "span_id")
    )
    # Horvitz–Thompson: the kept rows still estimate (about) the same population.
    calls_out = float((1 / res.frame["sample_rate"]).sum())
    assert calls_out == pytest.approx(res.calls_out)


def test_generate_is_the_generator(tmp_path: Path) -> None:
    from llmobs_cli.core.synth.generate import generate

    frame = L.generate(500, seed=3)
    assert frame.equals(generate(500, 3))
    out = tmp_path / "g.parquet"
    assert L.generate(200, seed=1, output=out).equals(pl.read_parquet(out))


def test_dashboard_from_a_frame(tmp_path: Path) -> None:
    frame = L.generate(3000, seed=2)
    dash = L.dashboard(frame, drift=False, title="from a notebook")
    assert dash.title == "from a notebook" and dash.sources == ["<frame>"]
    page = dash.write(tmp_path / "d.html")
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "from a notebook" in text
    data = json.loads(dash.to_json())
    assert data["reports"][0]["report"]["overall"]["sampled"] == 3000


# --- the surface ------------------------------------------------------------------------


def test_public_names_resolve_and_results_are_dataclasses() -> None:
    for name in L.__all__:
        assert getattr(L, name) is not None, name
    for cls in (
        L.Traces,
        L.ReportResult,
        L.DriftResult,
        L.EvalResult,
        L.EvalSummaryResult,
        L.DashboardResult,
        L.SampleResult,
        L.Window,
    ):
        assert is_dataclass(cls), cls
    with pytest.raises(AttributeError):
        _ = L.no_such_name  # type: ignore[attr-defined]
    assert (ROOT / "src" / "llmobs_cli" / "py.typed").exists()


def test_import_is_light() -> None:
    code = (
        "import sys, llmobs_cli\n"
        "print(sorted(m for m in ('polars', 'typer', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_errors_from_a_frame_name_the_frame_and_field() -> None:
    bad = pl.read_parquet(SAMPLE).head(5).with_columns(pl.lit(-1.0).alias("latency_ms"))
    with pytest.raises(L.InputError) as err:
        L.load(bad)
    assert str(err.value).startswith("<frame>") and "latency_ms" in str(err.value)


# --- errors name the parameter; the CLI shows the flag ------------------------------------


def test_core_errors_name_the_parameter_and_the_cli_the_flag(tmp_path: Path) -> None:
    with pytest.raises(L.UsageError) as err:
        L.report(SAMPLE, by="colour")
    assert err.value.param == "by" and str(err.value).startswith("by: unknown field 'colour'")
    with pytest.raises(L.UsageError) as err:
        L.report(SAMPLE, window=L.Window(since="yesterday"))
    assert str(err.value).startswith("since: not an RFC 3339 time")
    r = run_cli("report", str(SAMPLE), "--since", "yesterday")
    assert r.returncode == 2 and r.stderr.startswith("llmobs: --since: not an RFC 3339 time")

    with pytest.raises(L.UsageError) as err:
        L.sample(SAMPLE, rates={"chat": 2.0})
    assert str(err.value).startswith("rate chat: expected a number in (0, 1], got 2.0")
    r = run_cli("sample", str(SAMPLE), "-o", str(tmp_path / "s.parquet"), "--rate", "chat=2")
    assert r.returncode == 2 and "llmobs: --rate chat: expected a number in (0, 1]" in r.stderr

    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text("version: 1\njudge:\n  model: judge-without-a-price\n")
    with pytest.raises(L.UsageError) as err:
        L.evaluate(SAMPLE, config=cfg, max_cost=1.0, dry_run=True)
    assert err.value.param == "max_cost" and str(err.value).startswith("max_cost: no price")
    r = run_cli("eval", str(SAMPLE), "--config", str(cfg), "--max-cost", "1", "--dry-run")
    assert r.returncode == 2 and r.stderr.startswith("llmobs: --max-cost: no price")

    with pytest.raises(L.UsageError, match=r"^format: unknown format 'bogus'"):
        L.load(SAMPLE, format="bogus")


def test_flag_names() -> None:
    from llmobs_cli.errors import flag_for

    assert flag_for("max_cost") == "--max-cost"
    assert flag_for("format") == "--from"
    assert flag_for("rate chat") == "--rate chat"
    assert flag_for("eval.by") == "eval.by"  # a configuration key stays a key
    assert flag_for("--since") == "--since"
    assert flag_for("evaluators/eval.evaluators") == "--evaluators/eval.evaluators"


def test_evaluate_without_an_endpoint_or_key_fails_before_any_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(L.UsageError) as err:
        L.evaluate(SAMPLE, evaluators="relevance", cache_dir=tmp_path / "c")
    assert err.value.param == "base_url" and "no endpoint and no key" in str(err.value)
    assert not (tmp_path / "c").exists()
    plan = L.evaluate(SAMPLE, evaluators="relevance", dry_run=True, cache_dir=tmp_path / "c")
    assert plan.dry_run and plan.judgments.height == 0 and plan.plan
