"""``llmobs eval --engine`` (the counting pass) and ``llmobs plan --engine`` give the local
engine's plan, figure for figure (relative 1e-9), on a Hive-partitioned dump. Runs on every
engine whose extra is installed (CI installs both)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_engines import ENGINES, ROOT, _walk
from test_eval_support import run_cli


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dump converted to a date-partitioned Parquet tree."""
    tmp = tmp_path_factory.mktemp("evallake")
    src = tmp / "g.parquet"
    r = run_cli(
        "generate",
        str(src),
        "--rows",
        "20000",
        "--days",
        "20",
        "--seed",
        "7",
        "--start",
        "2026-01-01",
    )
    assert r.returncode == 0, r.stderr
    out = tmp / "lake"
    r = run_cli("convert", str(src), "-o", str(out), "--partition-by", "date")
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_eval_plan_and_rates_equal_the_local_engine(engine: str, lake: Path) -> None:
    runs = [
        (
            "eval",
            str(lake),
            "--dry-run",
            "--by",
            "route,model",
            "--current",
            "last_week",
            "--baseline",
            "last_month",
            "--since",
            "2026-01-03",
            "--budget",
            "25",
            "--format",
            "json",
        ),
        ("plan", str(lake), "--format", "json"),
    ]
    for base in runs:
        local = run_cli(*base)
        assert local.returncode == 0, local.stderr
        other = run_cli(*base, "--engine", engine)
        assert other.returncode == 0, other.stderr
        a, b = json.loads(local.stdout), json.loads(other.stdout)
        assert not _walk(a, b), _walk(a, b)[:10]
    plan = json.loads(run_cli(*runs[0]).stdout)["plan"]
    assert {s["window"] for s in plan} == {"current", "baseline"}
    assert sum(s["selected_rows"] for s in plan) > 0


def test_eval_engine_refusals_are_exit_2(tmp_path: Path) -> None:
    jsonl = str(ROOT / "sample_traces" / "traces.jsonl")
    r = run_cli("eval", jsonl, "--dry-run", "--engine", "spark")
    assert r.returncode == 2 and "llmobs convert" in r.stderr
    parquet = str(ROOT / "sample_traces" / "traces.parquet")
    r = run_cli("eval", parquet, "--dry-run", "--unit", "session", "--engine", "ray")
    assert r.returncode == 2 and "--unit session" in r.stderr
    r = run_cli("plan", jsonl, "--engine", "ray")
    assert r.returncode == 2 and "llmobs convert" in r.stderr
