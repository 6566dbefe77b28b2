"""``llmobs eval --state DIR``: a nightly run over a growing dump judges only the new rows
(counted on the judge stub) and summarizes old and new judgments as one run over the
whole dump does; the state folder is llmobs' own and refuses anything else."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from json_diff import json_diffs
from test_eval_support import marker_judge, records, run_cli, write_jsonl

ENV = {"OPENAI_API_KEY": "sk-state-test-000000"}


def _eval(stub: Any, path: Path, cache: Path, *extra: str) -> dict[str, Any]:
    r = run_cli(
        "eval",
        str(path),
        "--base-url",
        stub.base_url,
        "--evaluators",
        "relevance",
        "--budget",
        "100000",  # every eligible call judged: the incremental sum equals the whole
        "--current",
        "last_week",
        "--baseline",
        "last_month",
        "--cache-dir",
        str(cache),
        "--format",
        "json",
        *extra,
        env=ENV,
    )
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def _split(recs: list[dict[str, Any]], at: datetime) -> tuple[list[Any], list[Any]]:
    early = [r for r in recs if datetime.fromisoformat(r["timestamp"]) < at]
    late = [r for r in recs if datetime.fromisoformat(r["timestamp"]) >= at]
    return early, late


@pytest.mark.parametrize("how", ["append", "new_file"])
def test_growing_dump_two_runs_equal_one_run(openai_stub, tmp_path: Path, how: str) -> None:
    openai_stub.responder = marker_judge
    recs = sorted(records(21, per_route=60, days=15), key=lambda r: r["timestamp"])
    last_day = datetime.fromisoformat(recs[-1]["timestamp"]).replace(hour=0, minute=0, second=0)
    early, late = _split(recs, last_day)
    assert early and late
    dump = tmp_path / "dump"
    dump.mkdir()
    write_jsonl(dump / "a.jsonl", early)
    state = tmp_path / "state"

    first = _eval(openai_stub, dump, tmp_path / "c1", "--state", str(state))
    calls_first = openai_stub.calls
    assert calls_first > 0 and (state / "llmobs-eval-state.json").exists()

    if how == "append":  # the same file grows by a day
        with (dump / "a.jsonl").open("a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in late))
    else:  # the day arrives as a file of its own
        write_jsonl(dump / "b.jsonl", late)
    out = tmp_path / "new.parquet"
    second = _eval(openai_stub, dump, tmp_path / "c1", "--state", str(state), "-o", str(out))
    new_calls = openai_stub.calls - calls_first
    # only the new day's judgeable rows were sent to the judge, and -o holds them once
    ok_late = [r for r in late if r["response"]]
    assert new_calls == len(ok_late)
    written = pl.read_parquet(out)
    assert written.height == len(ok_late)
    assert set(written["trace_id"]) == {r["trace_id"] for r in ok_late}
    if how == "append":
        assert any("changed since the last run" in n for n in second["notes"])

    whole_dump = write_jsonl(tmp_path / "whole.jsonl", recs)
    whole = _eval(openai_stub, whole_dump, tmp_path / "c2")
    for key in ("groups", "regressions", "windows"):
        assert json_diffs(whole[key], second[key], abs_tol=1e-12) == [], key
    assert first["groups"] != second["groups"]  # the new day did change the figures

    # nothing new: no judge call, the same summary
    before = openai_stub.calls
    third = _eval(openai_stub, dump, tmp_path / "c1", "--state", str(state))
    assert openai_stub.calls == before
    assert json_diffs(second["groups"], third["groups"], abs_tol=1e-12) == []
    assert any("no new rows" in n for n in third["notes"])


def test_state_folder_must_be_llmobs_own(openai_stub, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", records(3, per_route=20, days=10))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    args = ["eval", str(path), "--base-url", openai_stub.base_url, "--evaluators", "relevance"]
    r = run_cli(*args, "--state", str(foreign), env=ENV)
    assert r.returncode == 2 and "not an llmobs eval state" in r.stderr
    assert (foreign / "notes.txt").read_text() == "mine" and openai_stub.calls == 0

    other = tmp_path / "other"
    other.mkdir()
    (other / "llmobs-eval-state.json").write_text(json.dumps({"tool": "llmobs", "kind": "x"}))
    r = run_cli(*args, "--state", str(other), env=ENV)
    assert r.returncode == 2 and "not written by llmobs eval" in r.stderr

    st = tmp_path / "st"
    openai_stub.responder = marker_judge
    r = run_cli(*args, "--state", str(st), "--cache-dir", str(tmp_path / "c"), env=ENV)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads((st / "llmobs-eval-state.json").read_text())
    assert doc["tool"] == "llmobs" and doc["format"] == 1 and doc["watermark"]
    assert (st / doc["judgments"]).exists()
    # other comparability options are refused, not mixed
    r = run_cli(*args, "--by", "model", "--state", str(st), env=ENV)
    assert r.returncode == 2 and "other options" in r.stderr
    r = run_cli(*args, "--state", str(st), "--until", "2026-03-05", env=ENV)
    assert r.returncode == 2 and "--until" in r.stderr
