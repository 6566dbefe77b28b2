"""``--engine spark`` and ``--engine ray`` give the local engine's figures, figure for
figure, on a Hive-partitioned dump; bad input, a missing extra and an unreachable cluster
are clear exits. Runs on every engine whose extra is installed (CI installs both)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_eval_support import run_cli

ROOT = Path(__file__).resolve().parents[1]
HAS = {
    "spark": importlib.util.find_spec("pyspark") is not None,
    "ray": importlib.util.find_spec("ray") is not None,
}
ENGINES = [
    pytest.param(
        e,
        marks=pytest.mark.skipif(
            not HAS[e], reason=f'the {e} extra is not installed (pip install "llmobs[{e}]")'
        ),
    )
    for e in ("spark", "ray")
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dump converted to a date-partitioned Parquet tree."""
    tmp = tmp_path_factory.mktemp("lake")
    src = tmp / "g.parquet"
    r = run_cli(
        "generate",
        str(src),
        "--rows",
        "30000",
        "--days",
        "20",
        "--seed",
        "5",
        "--start",
        "2026-01-01",
    )
    assert r.returncode == 0, r.stderr
    out = tmp / "lake"
    r = run_cli("convert", str(src), "-o", str(out), "--partition-by", "date")
    assert r.returncode == 0, r.stderr
    return out


def _walk(a: object, b: object, path: str = "") -> list[str]:
    """Every difference between two JSON documents (numbers at 1e-9 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _walk(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} != {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _walk(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or abs(float(a) - float(b)) > 1e-9 * max(1.0, abs(float(a))):
            return [f"{path}: {a} != {b}"]
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "args",
    [
        ("--by", "route,model"),
        ("--by", "route", "--bucket", "day", "--since", "2026-01-05", "--until", "2026-01-12"),
    ],
)
def test_report_equals_the_local_engine(engine: str, args: tuple[str, ...], lake: Path) -> None:
    base = ["report", str(lake), *args, "--format", "json"]
    local = run_cli(*base)
    assert local.returncode == 0, local.stderr
    other = run_cli(*base, "--engine", engine)
    assert other.returncode == 0, other.stderr
    diffs = _walk(json.loads(local.stdout), json.loads(other.stdout))
    assert not diffs, diffs[:10]


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_rows_follow_on_error(engine: str, tmp_path: Path) -> None:
    import polars as pl

    path = tmp_path / "bad.parquet"
    pl.DataFrame(
        {
            "trace_id": ["a", "b", "c"],
            "timestamp": ["2026-01-01T00:00:00Z"] * 3,
            "model": ["gpt-4o", "gpt-4o", "gpt-4o"],
            "latency_ms": [10.0, -5.0, 20.0],
        }
    ).write_parquet(path)
    r = run_cli("report", str(path), "--engine", engine)
    assert r.returncode == 2 and "latency_ms" in r.stderr and "--on-error skip" in r.stderr
    r = run_cli("report", str(path), "--engine", engine, "--on-error", "skip", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["overall"]["sampled"] == 2


def test_non_parquet_input_and_unknown_engine_are_exit_2(tmp_path: Path) -> None:
    r = run_cli("report", str(ROOT / "sample_traces" / "traces.jsonl"), "--engine", "spark")
    assert r.returncode == 2 and "llmobs convert" in r.stderr
    r = run_cli("report", str(ROOT / "sample_traces" / "traces.parquet"), "--engine", "dask")
    assert r.returncode == 2


@pytest.mark.parametrize("engine", ["spark", "ray"])
def test_missing_extra_names_the_install_line(engine: str, tmp_path: Path) -> None:
    # A package directory that shadows the engine and fails to import, as if absent.
    blocker = tmp_path / ("pyspark" if engine == "spark" else "ray")
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmobs_cli",
            "report",
            str(ROOT / "sample_traces" / "traces.parquet"),
            "--engine",
            engine,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert f'pip install "llmobs[{engine}]"' in r.stderr


@pytest.mark.parametrize(
    ("engine", "flag"),
    [
        pytest.param("ray", "--ray-address", marks=ENGINES[1].marks),
        pytest.param("spark", "--spark-remote", marks=ENGINES[0].marks),
    ],
)
def test_unreachable_cluster_is_exit_3_naming_it(engine: str, flag: str) -> None:
    address = "127.0.0.1:9" if engine == "ray" else "sc://127.0.0.1:9"
    r = run_cli(
        "report",
        str(ROOT / "sample_traces" / "traces.parquet"),
        "--engine",
        engine,
        flag,
        address,
    )
    assert r.returncode == 3 and "127.0.0.1:9" in r.stderr


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sample_rows", [None, 2000], ids=["row-level", "from-partials"])
def test_drift_equals_the_local_engine(
    engine: str, sample_rows: int | None, lake: Path, tmp_path: Path
) -> None:
    # Row-level tests on a small input; from merged partials and the cluster sample when
    # the sample's cap is below the windows' rows (drift.sample_rows).
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text(f"drift:\n  sample_rows: {sample_rows}\n" if sample_rows else "{}\n")
    args = ["drift", str(lake), "--current", "7d", "--by", "model", "--config", str(cfg)]
    args += ["--features", "response_length,latency_ms,finish_reason,refusal_rate,language"]
    local = run_cli(*args, "--format", "json")
    other = run_cli(*args, "--format", "json", "--engine", engine)
    assert local.returncode in (0, 1), local.stderr
    assert other.returncode == local.returncode, other.stderr
    a, b = json.loads(local.stdout), json.loads(other.stdout)
    if sample_rows:
        assert any("merged partials" in n for n in a["notes"])
    assert _walk(a, b) == []
