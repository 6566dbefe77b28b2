"""``llmobs eval --unit session`` on files streams (light per-call rows spilled by session,
folded partition by partition, then the text of the selected sessions only) and gives
exactly what the whole-frame path gives: the same plan, the same sessions selected with
the same conversations, the same judge requests, the same summary and the same errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from json_diff import json_diffs
from llmobs_cli.core.eval.judges.client import ClientSettings
from llmobs_cli.core.eval.options import EvalOptions
from llmobs_cli.core.eval.review import build_queue
from llmobs_cli.core.eval.run import _run_loaded, run_eval
from llmobs_cli.core.ingest.readers import stream as stream_mod
from llmobs_cli.core.synth.generate import generate
from openai_stub import Reply
from test_eval_stream import ERROR_CASES, error_of
from test_eval_support import judged_response

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces"


@pytest.fixture
def tiny_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 700 rows: sessions span many batches (and, with :func:`dump`, files)."""
    monkeypatch.setattr(stream_mod, "batch_rows_for", lambda memory, width: 700)


def _sessions_frame(seed: int) -> pl.DataFrame:
    """Generated calls made awkward: shuffled (a session's calls far apart), 15 % without a
    session id (one-call sessions keyed by trace id), mixed storage rates inside sessions,
    and calls sharing their session's first timestamp (ties broken by input order)."""
    rng = np.random.default_rng(seed)
    f = generate(6_000, seed=seed, days=20)
    n = f.height
    no_sid = rng.random(n) < 0.15
    half_rate = rng.random(n) < 0.1
    tie = rng.random(n) < 0.2
    f = f.with_columns(
        pl.when(pl.Series(no_sid)).then(None).otherwise(pl.col("session_id")).alias("session_id"),
        pl.when(pl.Series(half_rate))
        .then(pl.col("sample_rate") / 2)
        .otherwise(pl.col("sample_rate"))
        .alias("sample_rate"),
    )
    f = f.with_columns(
        pl.when(pl.Series(tie) & pl.col("session_id").is_not_null())
        .then(pl.col("timestamp").min().over("session_id"))
        .otherwise(pl.col("timestamp"))
        .alias("timestamp")
    )
    return f.sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The calls of :func:`_sessions_frame` in three Parquet files (sessions cross them)."""
    root = tmp_path_factory.mktemp("evalsessions")
    f = _sessions_frame(5)
    paths = []
    step = f.height // 3 + 1
    for i in range(3):
        p = root / f"part{i}.parquet"
        f.slice(i * step, step).write_parquet(p, row_group_size=500)
        paths.append(p)
    return paths


CASES: list[dict[str, Any]] = [
    {},
    {"by": ["route", "model"], "budget": 15},
    {"allocation": "neyman", "budget": 40},
    {"current": "last_week", "baseline": "last_month", "budget": 20},
    {"since": "6d", "budget": 25},
    {"current": "2d", "baseline": "5d", "since": "12d", "until": "1d", "budget": 15},
    {"by": ["metadata.tier"], "session_tokens": 300, "budget": 10},
    {"by": ["release"], "high_stakes": {"refunds"}, "route_budgets": {"chat": 7}},
]


def _same(a: Any, b: Any) -> None:
    assert a.summary.windows == b.summary.windows
    assert a.summary.plan == b.summary.plan  # every stratum figure, weights included
    assert a.summary.sessions == b.summary.sessions and a.summary.sessions
    assert a.summary.notes == b.summary.notes
    assert len(a.plans) == len(b.plans)
    for p, q in zip(a.plans, b.plans, strict=True):
        assert p.window == q.window
        assert p.selection.columns == q.selection.columns
        assert p.selection.equals(q.selection), p.window  # same sessions, same text, order
        assert p.selection.height > 0


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(c) or "default")
def test_dry_run_equals_whole_frame_across_batches_and_files(
    dump: list[Path], tiny_batches: None, case: dict[str, Any]
) -> None:
    whole = _run_loaded(dump, EvalOptions(dry_run=True, unit="session", **case))
    streamed = run_eval(dump, EvalOptions(dry_run=True, unit="session", **case))
    _same(whole, streamed)
    if "session_tokens" in case:
        assert any("token budget" in n for n in streamed.summary.notes)


@pytest.mark.parametrize("name", ["traces.parquet", "traces.jsonl"])
def test_dry_run_equals_whole_frame_on_the_sample(name: str) -> None:
    paths = [SAMPLE / name]
    for case in ({}, {"current": "last_week", "baseline": "last_month", "budget": 30}):
        whole = _run_loaded(paths, EvalOptions(dry_run=True, unit="session", **case))
        streamed = run_eval(paths, EvalOptions(dry_run=True, unit="session", **case))
        _same(whole, streamed)


@pytest.mark.parametrize("answers", ["given", "empty"])
def test_dumps_without_session_ids_or_anything_to_judge(tmp_path: Path, answers: str) -> None:
    """No ``session_id`` column at all (every call its own session), and a dump whose
    answers are all empty (no session can be judged: an empty selection, not a crash)."""
    from test_eval_support import records

    recs = records(3, per_route=40)
    if answers == "empty":
        for r in recs:
            r["response"] = ""
    path = tmp_path / "t.parquet"
    pl.DataFrame(recs).write_parquet(path)
    assert "session_id" not in pl.read_parquet(path).columns
    opts = {"dry_run": True, "unit": "session", "budget": 10}
    whole = _run_loaded([path], EvalOptions(**opts))
    streamed = run_eval([path], EvalOptions(**opts))
    assert streamed.summary.plan == whole.summary.plan
    assert [s["sessions_sampled"] for s in streamed.summary.sessions] == [40, 40, 40]
    for p, q in zip(whole.plans, streamed.plans, strict=True):
        assert p.selection.equals(q.selection)
        judged = sum(s.selected_traces for s in q.strata)
        assert q.selection.height == judged and (judged == 0) == (answers == "empty")


def test_heuristics_match_an_independent_computation(dump: list[Path]) -> None:
    """``summary.sessions`` of the streamed path against numpy on the raw calls: weighted
    sessions and mean turns per route (a session's route and weight from its calls)."""
    streamed = run_eval(dump, EvalOptions(dry_run=True, unit="session", by=["route"]))
    calls = pl.concat([pl.read_parquet(p) for p in dump])
    key = calls.select(pl.coalesce("session_id", "trace_id")).to_series().to_numpy()
    ts = calls["timestamp"].to_numpy()
    order = np.lexsort((ts, key))  # by session then time (ties: any, routes agree)
    per: dict[str, list[Any]] = {}
    routes = calls["route"].fill_null("default").to_numpy()
    inv = 1.0 / calls["sample_rate"].to_numpy()
    for i in order:
        s = per.setdefault(key[i], [routes[i], 0.0, 0])
        s[1] += inv[i]
        s[2] += 1
    expect: dict[str, list[float]] = {}
    for route, inv_sum, turns in per.values():
        w = 1.0 / (1.0 / (inv_sum / turns))  # weight = mean inverse rate
        e = expect.setdefault(route, [0.0, 0.0, 0])
        e[0] += w
        e[1] += w * turns
        e[2] += 1
    got = {s["route"]: s for s in streamed.summary.sessions}
    assert set(got) == set(expect)
    for route, (w, wt, n) in expect.items():
        assert got[route]["sessions_sampled"] == n
        assert got[route]["sessions"] == pytest.approx(w, rel=1e-9)
        assert got[route]["mean_turns"] == pytest.approx(wt / w, rel=1e-9)


def _scorer(request: dict[str, Any]) -> Reply:
    """A deterministic judge: the score follows the judged answer's text."""
    text = judged_response(request)
    return Reply(content=json.dumps({"reasoning": "stub", "score": 1 + len(text) % 5}))


@pytest.mark.parametrize(
    "case",
    [
        {"budget": 6},
        {"current": "last_week", "baseline": "last_month", "budget": 5, "by": ["route", "model"]},
    ],
    ids=["current", "windows"],
)
def test_judge_requests_and_summary_equal_whole_frame_through_the_stub(
    openai_stub: Any, tmp_path: Path, dump: list[Path], tiny_batches: None, case: dict[str, Any]
) -> None:
    openai_stub.responder = _scorer

    def opts() -> EvalOptions:
        return EvalOptions(
            unit="session",
            client=ClientSettings(
                base_url=openai_stub.base_url, api_key="sk-x", backoff_base_s=0.001
            ),
            **case,
        )

    whole = _run_loaded(dump, opts(), cache_dir=tmp_path / "a")
    first = sorted(json.dumps(b, sort_keys=True) for b in openai_stub.bodies())
    assert first and whole.summary.judge.failed == 0
    openai_stub.reset()
    streamed = run_eval(dump, opts(), cache_dir=tmp_path / "b")  # a fresh cache
    second = sorted(json.dumps(b, sort_keys=True) for b in openai_stub.bodies())
    assert second == first  # the same conversations asked the same way
    drop = ["cached", "judge_latency_ms"]
    assert streamed.frame.drop(drop).equals(whole.frame.drop(drop))
    a, b = whole.summary.as_dict(), streamed.summary.as_dict()
    for doc in (a, b):
        doc["judge"].pop("latency_ms", None)
    # means, intervals, n, tests, regressions, plan, sessions, notes: equal, floats to the
    # last bits ``summarize`` itself reproduces (its sums run in parallel: run twice on one
    # frame, they differ around 1e-16)
    assert json_diffs(a, b, rel=1e-12, abs_tol=1e-15) == []
    assert a["plan"] == b["plan"] and a["sessions"] == b["sessions"]
    if "baseline" in case:
        assert a["tests"]
    assert build_queue(streamed.frame).equals(build_queue(whole.frame))


def test_pass_one_spills_no_text_and_pass_two_reads_only_selected_sessions(
    dump: list[Path], tiny_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmobs_cli.core import spill as spill_mod
    from llmobs_cli.core.eval import session_passes

    spilled: list[pl.DataFrame] = []
    real_add = spill_mod.HashSpill.add

    def add(self: Any, frame: pl.DataFrame) -> None:
        spilled.append(frame)
        real_add(self, frame)

    folded: list[pl.DataFrame] = []
    real_rows = session_passes.session_rows

    def rows(calls: pl.DataFrame, *a: Any, **k: Any) -> Any:
        folded.append(calls)
        return real_rows(calls, *a, **k)

    monkeypatch.setattr(spill_mod.HashSpill, "add", add)
    monkeypatch.setattr(session_passes, "session_rows", rows)
    run = run_eval(dump, EvalOptions(dry_run=True, unit="session", budget=5))
    assert len(spilled) >= 8  # many batches
    for frame in spilled:
        assert not {"prompt", "response", "messages", "_user", "_answer"} & set(frame.columns)
        longest = frame.select(pl.col("_cmp").str.len_chars().max()).item()
        assert longest is None or longest <= 500
    (calls,) = folded
    keys = calls.select(pl.coalesce("session_id", "trace_id").unique()).to_series()
    selected = pl.concat([p.selection for p in run.plans])["trace_id"]
    assert set(keys.to_list()) == set(selected.to_list())
    total = sum(f.height for f in spilled)
    assert calls.height < total / 10


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_are_the_whole_frame_errors(case: dict[str, Any]) -> None:
    paths = [SAMPLE / "traces.parquet"]
    opts = {"dry_run": True, "unit": "session", **case}
    whole = error_of(lambda: _run_loaded(paths, EvalOptions(**opts)))
    streamed = error_of(lambda: run_eval(paths, EvalOptions(**opts)))
    if "fields with values there" in whole:
        # Streaming lists every field the dump fills, not only the columns eval loaded.
        head = whole.split("fields with values there")[0]
        assert streamed.startswith(head) and "metadata" in streamed
    else:
        assert streamed == whole


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_bad_rows_follow_on_error_as_before(tmp_path: Path, on_error: str) -> None:
    lines = (SAMPLE / "traces.jsonl").read_text().splitlines()
    bad = json.loads(lines[7])
    bad["sample_rate"] = 7.5  # a rate above 1 breaks the record contract
    lines[7] = json.dumps(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    opts = {"dry_run": True, "unit": "session", "budget": 30}
    if on_error == "fail":
        whole = error_of(lambda: _run_loaded([path], EvalOptions(**opts)))
        streamed = error_of(lambda: run_eval([path], EvalOptions(**opts)))
        assert streamed == whole and "bad.jsonl:8" in streamed and "sample_rate" in streamed
        return
    a = _run_loaded([path], EvalOptions(**opts), on_error="skip")
    b = run_eval([path], EvalOptions(**opts), on_error="skip")
    assert a.skipped == b.skipped == 1 and a.skipped_reasons == b.skipped_reasons
    _same(a, b)


def test_by_a_metadata_key_strata_by_the_first_call(tmp_path: Path) -> None:
    """``--by metadata.KEY`` with sessions groups each session by its first call's value
    (it was an internal error)."""
    from test_eval_support import run_cli

    r = run_cli(
        "eval", str(SAMPLE / "traces.parquet"), "--unit", "session", "--dry-run",
        "--by", "metadata.tier", "--format", "json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plan"]
    calls = pl.read_parquet(SAMPLE / "traces.parquet").sort("timestamp", maintain_order=True)
    first = (
        calls.group_by(pl.coalesce("session_id", "trace_id"), maintain_order=True)
        .agg(pl.col("metadata").first().str.json_path_match("$.tier"))
        .get_column("metadata")
    )
    assert {s["key"]["metadata.tier"] for s in plan} == set(first.to_list())
    assert sum(s["sampled"] for s in plan) == first.len()
