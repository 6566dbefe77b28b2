"""The CLI's exit codes and error boundary, validate/convert/init end to end (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from cli_runner import run_cli
from llmobs_cli import __version__

GOOD = {"trace_id": "t1", "timestamp": "2026-01-02T03:04:05Z", "model": "gpt-4o", "latency_ms": 120}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in-process through its real entry point (error boundary included)."""
    code, out, err = run_cli(*args, cwd=cwd)
    return subprocess.CompletedProcess(list(args), code, out, err)


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The same through ``python -m llmobs_cli`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "llmobs_cli", *args], capture_output=True, text=True, timeout=120
    )


def jsonl(path: Path, *records: dict | str) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_version_and_help() -> None:
    assert run_process("--version").stdout.strip() == f"llmobs {__version__}"
    out = run("--help").stdout
    for cmd in (
        "validate",
        "convert",
        "generate",
        "init",
        "report",
        "eval",
        "drift",
        "sample",
        "dashboard",
        "review",
    ):
        assert f" {cmd} " in out, cmd


def test_validate_ok_json(tmp_path: Path) -> None:
    p = jsonl(
        tmp_path / "t.jsonl", GOOD, {**GOOD, "trace_id": "t2", "route": "chat", "sample_rate": 0.5}
    )
    res = run("validate", str(p), "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["rows"] == 2 and data["calls"] == 3.0
    assert data["routes"] == {"chat": 1, "default": 1}


def test_validate_bad_input_exit_2_without_traceback(tmp_path: Path) -> None:
    p = jsonl(tmp_path / "t.jsonl", GOOD, {**GOOD, "timestamp": "yesterday"})
    res = run_process("validate", str(p))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"{p}:2: timestamp: not an RFC 3339 time ('yesterday')"]
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_on_error_skip_says_how_many(tmp_path: Path) -> None:
    p = jsonl(tmp_path / "t.jsonl", GOOD, "{oops", {**GOOD, "latency_ms": -1})
    res = run("validate", str(p), "--on-error", "skip", "-f", "json")
    assert res.returncode == 0
    assert json.loads(res.stdout)["rows"] == 1
    assert "skipped 2 bad row(s)" in res.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    res = run_process("--debug", "validate", str(tmp_path / "missing.jsonl"))
    assert res.returncode == 2 and "Traceback" in res.stderr


def test_missing_file_and_bad_option(tmp_path: Path) -> None:
    res = run("validate", str(tmp_path / "missing.jsonl"))
    assert res.returncode == 2
    assert res.stderr.strip() == f"{tmp_path}/missing.jsonl: no such file or directory"
    res = run("validate", "--on-error", "maybe", str(tmp_path))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_convert_parquet_jsonl_and_partitions(tmp_path: Path) -> None:
    p = jsonl(
        tmp_path / "t.jsonl",
        GOOD,
        {
            **GOOD,
            "trace_id": "t2",
            "timestamp": "2026-01-03T00:00:00Z",
            "metadata": {"k": 1},
            "extra": "x",
        },
    )
    out = tmp_path / "out.parquet"
    assert run("convert", str(p), "-o", str(out)).returncode == 0
    df = pl.read_parquet(out)
    assert df.height == 2 and df.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert json.loads(df["metadata"][1]) == {"k": 1, "extra": "x"}
    back = tmp_path / "back.jsonl.gz"
    assert run("convert", str(out), "-o", str(back)).returncode == 0
    assert run("validate", str(back), "-f", "json").returncode == 0
    lake = tmp_path / "lake"
    assert run("convert", str(p), "-o", str(lake), "--partition-by", "date").returncode == 0
    assert sorted(d.name for d in lake.iterdir()) == [
        "_llmobs.json",
        "date=2026-01-02",
        "date=2026-01-03",
    ]
    res = run("validate", str(lake), "-f", "json")
    assert json.loads(res.stdout)["rows"] == 2


def test_convert_failure_leaves_existing_output(tmp_path: Path) -> None:
    good = jsonl(tmp_path / "good.jsonl", GOOD)
    bad = jsonl(tmp_path / "bad.jsonl", {**GOOD, "latency_ms": -1})
    out = tmp_path / "out.parquet"
    assert run("convert", str(good), "-o", str(out)).returncode == 0
    before = out.read_bytes()
    assert run("convert", str(bad), "-o", str(out)).returncode == 2
    assert out.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_init_and_config_errors(tmp_path: Path) -> None:
    assert run("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "llmobs.yaml").exists()
    again = run("init", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    p = jsonl(tmp_path / "t.jsonl", GOOD)
    # the starter config is picked up from the working directory and is valid
    assert run("validate", str(p), cwd=tmp_path).returncode == 0
    (tmp_path / "llmobs.yaml").write_text("drift:\n  alpha: lots\n")
    res = run("validate", str(p), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().startswith(
        f"llmobs: {tmp_path}/llmobs.yaml: drift.alpha: input should be a valid number"
    )
    (tmp_path / "llmobs.yaml").write_text("reprot:\n  by: [route]\n")
    res = run("validate", str(p), cwd=tmp_path)
    assert res.stderr.strip().startswith(
        f"llmobs: {tmp_path}/llmobs.yaml: reprot: unknown key (did you mean 'report'? known: "
    )


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_validate_other_formats(tmp_path: Path, fmt: str) -> None:
    p = jsonl(tmp_path / "t.jsonl", GOOD)
    res = run("validate", str(p), "-f", fmt)
    assert res.returncode == 0 and "gpt-4o" in res.stdout


def test_outputs_get_normal_permissions(tmp_path: Path) -> None:
    import stat

    from llmobs_cli.core import atomic

    out = tmp_path / "x.json"
    atomic.write_json(out, {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_cli_tunes_polars_allocator_unless_the_user_did() -> None:
    """The ``llmobs`` process sets jemalloc's decay for Polars before Polars loads; a
    value the user exported wins."""
    import os
    import subprocess
    import sys

    code = "import sys, os; import llmobs_cli.cli.app; print(os.environ['_RJEM_MALLOC_CONF'])"
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    from llmobs_cli.environment import ALLOCATOR_CONF

    # Polars puts its own defaults in front when it loads; jemalloc applies the options
    # left to right, so the last ones (ours, or the user's) win.
    assert out.stdout.strip().endswith(ALLOCATOR_CONF)
    env["_RJEM_MALLOC_CONF"] = "narenas:2"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip().endswith("narenas:2")
    assert ALLOCATOR_CONF not in out.stdout
    # Polars is not loaded before the setting: the package and the CLI package import no
    # Polars on their own.
    probe = "import sys, llmobs_cli.cli; print('polars' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False"
