"""Scores go back only to the system a judged trace came from: judgments record the origin
of each judged call (Langfuse and LangSmith exports, read with their ids kept), and
``llmobs export --to langfuse|langsmith`` sends those alone unless ``--all-traces``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from http_receiver import Answer, Receiver
from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.record.origin import origin_expr
from openai_stub import OpenAIStub
from test_eval_support import run_cli

ROOT = Path(__file__).resolve().parents[1]
LF = ROOT / "tests" / "fixtures" / "external" / "langfuse-framework-traces"
LF_FILES = [LF / "agno-2025-06-11.json", LF / "beeai-2025-08-01.json"]
LS_FILE = ROOT / "tests" / "fixtures" / "sdk" / "langsmith-batches.jsonl"
#: spans the Langfuse SDK sent to Langfuse's OTLP endpoint (read as otlp, Langfuse's ids)
LF_OTEL = ROOT / "tests" / "fixtures" / "sdk" / "langfuse-otel.jsonl"
SAMPLE = ROOT / "sample_traces" / "traces.jsonl"
KEYS = {"LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-SECRET-origin"}


def _ids(paths: list[Path]) -> set[tuple[str, str]]:
    frame = load(paths, columns=["trace_id", "span_id"]).frame
    return set(frame.select("trace_id", "span_id").iter_rows())


def _eval(paths: list[Path], out: Path, cache: Path) -> None:
    with OpenAIStub() as stub:
        r = run_cli(
            "eval",
            *map(str, paths),
            "--base-url",
            stub.base_url,
            "--evaluators",
            "relevance",
            "--budget",
            "50",
            "--cache-dir",
            str(cache),
            "-o",
            str(out),
            "--format",
            "json",
            env={"OPENAI_API_KEY": "sk-test"},
        )
    assert r.returncode in (0, 1), r.stderr


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real eval run over Langfuse, LangSmith and canonical traces at once."""
    tmp = tmp_path_factory.mktemp("mixed")
    canon = tmp / "canon.jsonl"
    canon.write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:20]))
    out = tmp / "evals.parquet"
    _eval([*LF_FILES, LF_OTEL, LS_FILE, canon], out, tmp / "cache")
    return out


def test_judgments_record_the_origin_of_each_judged_call(mixed: Path) -> None:
    frame = pl.read_parquet(mixed)
    lf, ls = _ids([*LF_FILES, LF_OTEL]), _ids([LS_FILE])
    assert lf and ls
    judged = set(frame.select("trace_id", "span_id").iter_rows())
    assert judged & _ids([LF_OTEL])  # the Langfuse SDK's own OTLP spans were judged too
    for trace, span, origin in frame.select("trace_id", "span_id", "origin").iter_rows():
        expect = "langfuse" if (trace, span) in lf else "langsmith" if (trace, span) in ls else None
        assert origin == expect, (trace, span)
    assert set(frame["origin"].unique().to_list()) == {"langfuse", "langsmith", None}


def test_langfuse_gets_only_langfuse_traces_and_says_how_many_it_left_out(mixed: Path) -> None:
    frame = pl.read_parquet(mixed).filter(pl.col("score").is_not_null())
    own = frame.filter(pl.col("origin") == "langfuse")
    lf = _ids([*LF_FILES, LF_OTEL])
    got: dict[str, dict] = {}

    def handler(req) -> Answer:
        doc = json.loads(req.body)
        for ev in doc["batch"]:
            got[ev["body"]["id"]] = ev["body"]
        ok = [{"id": ev["id"], "status": 201} for ev in doc["batch"]]
        return Answer(207, json.dumps({"successes": ok, "errors": []}).encode())

    with Receiver() as rx:
        rx.handler = handler
        rx.fail_next(500, 1)
        r = run_cli(
            "export",
            str(mixed),
            "--to",
            "langfuse",
            "--format",
            "json",
            env={**KEYS, "LANGFUSE_HOST": rx.url},
        )
    assert r.returncode == 0, r.stderr
    assert len(got) == own.height > 0
    for body in got.values():
        assert (body["traceId"], body.get("observationId", body["traceId"])) in lf
    doc = json.loads(r.stdout)
    total = pl.read_parquet(mixed).height
    assert doc["sent"] == own.height and doc["events"] == total
    assert doc["other_origin"] == total - pl.read_parquet(mixed)["origin"].eq("langfuse").sum()
    assert f"{doc['other_origin']} left out (calls not read from Langfuse" in r.stderr
    assert KEYS["LANGFUSE_SECRET_KEY"] not in r.stderr + r.stdout


def test_langsmith_gets_only_langsmith_runs(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "feedback.jsonl"
    r = run_cli("export", str(mixed), "--to", "langsmith", "--dry-run", "-o", str(out))
    assert r.returncode == 0, r.stderr
    bodies = [json.loads(line) for line in out.read_text().splitlines()]
    runs = {span for _, span in _ids([LS_FILE])}
    frame = pl.read_parquet(mixed)
    own = frame.filter((pl.col("origin") == "langsmith") & pl.col("score").is_not_null())
    assert len(bodies) == own.height > 0
    assert {b["run_id"] for b in bodies} <= runs
    assert "left out (calls not read from LangSmith" in r.stderr


def test_no_qualifying_judgment_is_exit_2_and_all_traces_overrides(
    mixed: Path, tmp_path: Path
) -> None:
    canon = tmp_path / "canon.parquet"
    pl.read_parquet(mixed).filter(pl.col("origin").is_null()).write_parquet(canon)
    out = tmp_path / "scores.jsonl"
    r = run_cli("export", str(canon), "--to", "langfuse", "--dry-run", "-o", str(out), env=KEYS)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "read from Langfuse" in lines[0] and "--all-traces" in lines[0]
    assert not out.exists()
    # a file written before the origin column existed says so
    old = tmp_path / "old.parquet"
    pl.read_parquet(mixed).drop("origin").write_parquet(old)
    r = run_cli("export", str(old), "--to", "langsmith", "--dry-run", "-o", str(out))
    assert r.returncode == 2 and "no origin column" in r.stderr
    r = run_cli(
        "export", str(canon), "--to", "langfuse", "--all-traces", "--dry-run", "-o", str(out)
    )
    assert r.returncode == 0, r.stderr
    n = sum(len(json.loads(line)["batch"]) for line in out.read_text().splitlines())
    assert n == pl.read_parquet(canon)["score"].is_not_null().sum() > 0


def test_a_langfuse_export_converted_earlier_keeps_its_origin(tmp_path: Path) -> None:
    conv = tmp_path / "converted.parquet"
    r = run_cli("convert", *map(str, LF_FILES), "-o", str(conv))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "evals.parquet"
    _eval([conv], out, tmp_path / "cache")
    frame = pl.read_parquet(out)
    assert frame.height > 0 and frame["origin"].to_list() == ["langfuse"] * frame.height


def test_origin_reads_metadata_keys_not_values() -> None:
    frame = pl.DataFrame(
        {
            "metadata": [
                '{"langfuse.type": "GENERATION"}',
                '{"langsmith.run_name": null, "ls_provider": "openai"}',
                '{"note": "copied from langfuse.com"}',
                '{"a": 1}',
                None,
                '{"langfuse.name": "x", "langsmith.run_name": "y"}',
                '{"otel.scope.name": "langfuse-sdk", "span.name": "gen"}',
                '{"otel.scope.name": "openai", "note": "langfuse-sdk"}',
            ]
        }
    )
    got = frame.select(origin_expr())["origin"].to_list()
    assert got == ["langfuse", "langsmith", None, None, None, "langfuse", "langfuse", None]
