"""Signals the trace holds: confidence from log-probs and the cited document's rank —
the expressions against independent numpy computations, ``generate``'s options, and the
default drift features on generated data with and without injected effects."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from llmobs_cli.core.drift import DEFAULT_FEATURES, run_drift
from llmobs_cli.core.record.schema import DOCUMENT
from llmobs_cli.core.signals import citations, confidence
from llmobs_cli.core.synth.generate import generate
from llmobs_cli.core.synth.signals import SignalSpec, add_signals
from llmobs_cli.errors import UsageError

START = datetime(2026, 1, 1, tzinfo=UTC)
CUT = START + timedelta(days=30)
CONF = ["response_confidence", "low_confidence_share", "min_window_confidence"]


# --- confidence expressions ------------------------------------------------------------


def test_confidence_features_match_numpy() -> None:
    rng = np.random.default_rng(4)
    lists = [list(-rng.exponential(0.6, n)) for n in (1, 5, 8, 9, 40, 200)]
    df = pl.DataFrame({"logprobs": [*lists, None, []]}, schema={"logprobs": pl.List(pl.Float64)})
    out = df.select(confidence.columns())
    for i, lp in enumerate(lists):
        a = np.array(lp)
        mean = a.mean()
        win = np.convolve(a, np.ones(8) / 8, mode="valid").min() if a.size >= 8 else a.mean()
        assert out["response_confidence"][i] == pytest.approx(mean)
        assert out["response_perplexity"][i] == pytest.approx(math.exp(-mean))
        assert out["low_confidence_share"][i] == pytest.approx((a < math.log(0.1)).mean())
        assert out["min_window_confidence"][i] == pytest.approx(win)
    # No log-probs (null or empty): null in every feature, never 0.
    assert out.tail(2).null_count().row(0) == (2, 2, 2, 2)


# --- cited rank ------------------------------------------------------------------------


def _docs(*contents: str) -> list[dict[str, object]]:
    return [
        {"id": f"doc-{i + 1}", "content": c, "score": 0.9 - 0.1 * i} for i, c in enumerate(contents)
    ]


def test_cited_rank_rules() -> None:
    docs = _docs(
        "Refunds are possible within fourteen days of purchase.",
        "Passwords reset links expire after thirty minutes.",
        "Invoices are emailed monthly to the billing contact.",
    )
    rows = [
        ("The link expires soon [doc-2].", docs),  # id → 2
        ("See [DOC-3] and [doc-2].", docs),  # best id rank → 2
        ("As the second source says [2].", docs),  # numbered marker → 2
        ("Marker out of range [7].", docs),  # no id, bad marker, no overlap → null
        ("Invoices are emailed monthly to your billing contact.", docs),  # overlap → 3
        ("Anything at all.", []),  # no documents → null
        (None, docs),  # no response → null
        ("I'm sorry, but I can't help with that [doc-1].", docs),  # a refusal → null
    ]
    df = pl.DataFrame(
        {
            "response": [r for r, _ in rows],
            "retrieved": [d for _, d in rows],
            "finish_reason": ["stop"] * len(rows),
        },
        schema={"response": pl.String, "retrieved": pl.List(DOCUMENT), "finish_reason": pl.String},
    )
    got = df.select(citations.cited_rank().alias("r"))["r"].to_list()
    assert got == [2, 2, 2, None, 3, None, None, None]
    labels = df.select(citations.cited_rank_label().alias("l"))["l"].to_list()
    assert labels == ["2", "2", "2", None, "3", None, None, None]


# --- generate --------------------------------------------------------------------------


def test_signals_off_leave_the_generated_frame_unchanged() -> None:
    base = generate(500, seed=2, start=START, days=37)
    assert add_signals(base, SignalSpec(), 2).equals(base)
    with_lp = add_signals(base, SignalSpec(logprobs=True), 2)
    assert with_lp.drop("logprobs").equals(base.drop("logprobs"))
    has = with_lp["response"].is_not_null() & with_lp["metadata"].str.contains('"quality":"good"')
    assert with_lp.filter(has)["logprobs"].null_count() == 0
    # Same seed, same log-probs.
    assert add_signals(base, SignalSpec(logprobs=True), 2).equals(with_lp)


def test_signal_options_are_checked() -> None:
    base = generate(10, seed=1, start=START, days=37)
    with pytest.raises(UsageError, match="needs log-probs"):
        add_signals(base, SignalSpec(confidence=2.0, after=CUT), 1)
    with pytest.raises(UsageError, match="share"):
        add_signals(base, SignalSpec(cited_rank=1.5, after=CUT), 1)


# --- drift bars ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> pl.DataFrame:
    return generate(14_000, seed=7, start=START, days=37)


def _flagged(df: pl.DataFrame, features: list[str], by: str | None = None) -> set[str]:
    res = run_drift(df, features=features, by=by)
    return {r["feature"] for r in res.features if r["drifted"]}


def test_confidence_features_are_default_and_skipped_without_logprobs(
    base: pl.DataFrame,
) -> None:
    assert set(CONF) <= set(DEFAULT_FEATURES) and "cited_rank" in DEFAULT_FEATURES
    res = run_drift(base, features=CONF)
    assert not res.drifted
    assert any("response_confidence: skipped, no log-probs" in n for n in res.notes)
    res2 = run_drift(base.drop("logprobs"), features=CONF)
    assert any("no logprobs field" in n for n in res2.notes)


def test_confidence_drop_on_one_route_is_flagged_and_unchanged_is_quiet(
    base: pl.DataFrame,
) -> None:
    drop = SignalSpec(logprobs=True, after=CUT, routes=["search_qa"], confidence=2.5)
    flagged = _flagged(add_signals(base, drop, 7), CONF, by="route")
    assert {"response_confidence", "min_window_confidence"} & flagged
    res = run_drift(add_signals(base, drop, 7), features=["response_confidence"], by="route")
    per_route = {r["group"]["route"]: r["drifted"] for r in res.features if r["group"] is not None}
    assert per_route["search_qa"]
    assert not any(v for k, v in per_route.items() if k != "search_qa")
    assert not _flagged(add_signals(base, SignalSpec(logprobs=True), 7), CONF)


def test_cited_rank_moving_from_1_to_2_is_flagged_and_unchanged_is_quiet(
    base: pl.DataFrame,
) -> None:
    moved = add_signals(base, SignalSpec(after=CUT, cited_rank=0.5), 7)
    assert "cited_rank" in _flagged(moved, ["cited_rank"])
    # The effect is what was injected: top-1 share falls in the current window only.
    late = pl.col("timestamp") >= CUT
    top1 = (
        moved.group_by(late.alias("late"))
        .agg(citations.cited_top1().mean().alias("top1"))
        .sort("late")
    )
    assert top1["top1"][0] > 0.8 > top1["top1"][1] + 0.2
    assert "cited_rank" not in _flagged(base, ["cited_rank"])


# --- confident-wrong in eval and review ------------------------------------------------


def test_confident_wrong_rate_and_review_reason(openai_stub, tmp_path) -> None:
    from llmobs_cli.core.eval.judges.client import ClientSettings
    from llmobs_cli.core.eval.options import EvalOptions
    from llmobs_cli.core.eval.review import build_queue
    from llmobs_cli.core.eval.run import evaluate_frame
    from llmobs_cli.core.ingest.readers import load
    from llmobs_cli.core.record.weights import hajek_mean_ci
    from test_eval_support import marker_judge, records, write_jsonl

    openai_stub.responder = marker_judge
    recs = records(3, per_route=120)
    rng = np.random.default_rng(3)
    for r in recs:  # half the calls sure of themselves, half hedging
        sure = rng.random() < 0.5
        r["logprobs"] = list(np.round(-rng.exponential(0.05 if sure else 0.9, 30), 4))
    frame = load([write_jsonl(tmp_path / "t.jsonl", recs)]).frame
    opts = EvalOptions(
        budget=60,
        evaluators=["relevance"],
        client=ClientSettings(base_url=openai_stub.base_url, api_key="sk-x", backoff_base_s=0.001),
    )
    run = evaluate_frame(frame, opts, cache_dir=tmp_path / "cache")
    rows = run.frame
    assert rows["response_confidence"].null_count() == 0
    for g in run.summary.groups:
        part = rows.filter(pl.col("route") == g["key"]["route"])
        y = ((part["response_confidence"] >= math.log(0.8)) & (part["score"] < 0.5)).to_numpy()
        w = part["weight"].to_numpy()
        _rate, lo, hi, _ = hajek_mean_ci(y.astype(float), w, part["stratum"].to_numpy())
        cw = g["confident_wrong"]
        assert cw["rate"] == pytest.approx(np.sum(w * y) / np.sum(w))
        assert (cw["ci_low"], cw["ci_high"]) == pytest.approx((lo, hi))
        assert cw["count"] == int(y.sum())
    assert sum(g["confident_wrong"]["count"] for g in run.summary.groups) > 0
    q = build_queue(rows, random_per_group=0)
    sure_wrong = rows.filter(
        (pl.col("response_confidence") >= math.log(0.8)) & (pl.col("score") < 0.5)
    )
    flagged = q.filter(pl.col("reasons").str.contains("confident_wrong"))
    assert set(flagged["trace_id"]) == set(sure_wrong["trace_id"])
    # Without log-probs: no confident_wrong figures, no such reason.
    run2 = evaluate_frame(frame.drop("logprobs"), opts, cache_dir=tmp_path / "cache")
    assert all("confident_wrong" not in g for g in run2.summary.groups)


# --- sessions --------------------------------------------------------------------------

DISTINCT = [
    "Where is my invoice for March?",
    "Can I change the billing email address?",
    "What plans include single sign-on?",
    "How do I export all my data?",
]
SESSION_ROUTES = {"chat": (0.1, 0.8), "qa": (0.5, 0.5), "refunds": (1.0, 0.3)}


def _session_dump(seed: int, per_route: int = 150) -> tuple[list[dict], dict[str, float]]:
    """Sessions of 1–4 calls; a successful one ends with a GOOD answer, a failed one repeats
    the question and ends with a BAD answer or an error (the user gives up). Storage
    sampling is by session (every call of a session at its route's rate)."""
    rng = np.random.default_rng(seed)
    recs, truth = [], {}
    for route, (sr, p) in SESSION_ROUTES.items():
        truth[route] = p
        for s in range(per_route):
            ok = bool(rng.random() < p)
            n = int(rng.integers(1, 5))
            t0 = START + timedelta(days=float(rng.uniform(0, 14)))
            for k in range(n):
                last = k == n - 1
                q = DISTINCT[k] if ok else f"help with {route} {s}"
                rec = {
                    "trace_id": f"{route}-{s}-{k}",
                    "session_id": f"{route}-s{s}",
                    "timestamp": (t0 + timedelta(minutes=k)).isoformat(),
                    "route": route,
                    "model": "m",
                    "prompt": q,
                    "response": ("GOOD answer" if ok else "BAD answer") if last else "a step",
                    "sample_rate": sr,
                }
                if last and not ok and rng.random() < 0.5:
                    rec.update(status="error", error="timeout", response=None)
                recs.append(rec)
    return recs, truth


def test_session_rows_weights_heuristics_and_budget() -> None:
    from llmobs_cli.core.signals.sessions import session_rows

    recs, _ = _session_dump(1, per_route=40)
    df = pl.DataFrame(recs).with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
    # one session stored at mixed rates: its weight is the mean inverse rate
    df = df.with_columns(
        pl.when(pl.col("trace_id") == "qa-0-0")
        .then(0.25)
        .otherwise(pl.col("sample_rate"))
        .alias("sample_rate")
    )
    rows = session_rows(df, budget_tokens=8).frame
    n_sessions = df["session_id"].n_unique()
    assert rows.height == n_sessions
    qa0 = df.filter(pl.col("session_id") == "qa-s0")
    expect = 1 / float((1 / qa0["sample_rate"]).mean())
    assert rows.filter(pl.col("trace_id") == "qa-s0")["sample_rate"][0] == pytest.approx(expect)
    # failed sessions repeat the question: every consecutive pair is a repeat
    failed = rows.filter(pl.col("response").str.starts_with("BAD") & (pl.col("turns") > 1))
    assert failed.height and (failed["repeated_question_rate"] == 1.0).all()
    # repeats push the resolution to the last answer (whose wrongness only the judge sees)
    assert (failed["turns_to_resolution"] == failed["turns"]).all()
    errored = rows.filter(pl.col("response").str.starts_with("[error"))
    assert errored.height and errored["abandoned"].all()
    good = rows.filter(pl.col("response").str.starts_with("GOOD"))
    assert not good["abandoned"].any() and (good["turns_to_resolution"] == 1).all()
    # an 8-token budget keeps only the last turn of longer conversations, and says so
    long = rows.filter(pl.col("turns") > 1)
    assert (long["dropped_turns"] == long["turns"] - 1).all()
    assert long["system"].str.contains("dropped").all()


def test_eval_unit_session_covers_the_truth(openai_stub, tmp_path) -> None:
    from test_eval_support import marker_judge, run_cli, write_jsonl

    openai_stub.responder = marker_judge
    recs, truth = _session_dump(5)
    path = write_jsonl(tmp_path / "s.jsonl", recs)
    out = tmp_path / "evals.parquet"
    res = run_cli(
        "eval",
        str(path),
        "--unit",
        "session",
        "--budget",
        "80",
        "--format",
        "json",
        "--base-url",
        openai_stub.base_url,
        "--since",
        "2026-01-01",
        "--no-progress",
        "--output",
        str(out),
        env={"OPENAI_API_KEY": "sk-x", "LLMOBS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert res.returncode == 0, res.stderr
    import json

    doc = json.loads(res.stdout)
    groups = {g["key"]["route"]: g for g in doc["groups"]}
    assert {g["evaluator"] for g in doc["groups"]} == {"task_success"}
    for route, p in truth.items():
        g = groups[route]
        assert g["ci_low"] <= p <= g["ci_high"], (route, g)
    sessions = {s["route"]: s for s in doc["sessions"]}
    for route in truth:
        assert sessions[route]["sessions_sampled"] == 150
    # the judged rows are sessions: one per session id, weight = 1/sample_rate/eval_rate
    rows = pl.read_parquet(out)
    assert rows["trace_id"].str.contains(r"-s\d+$").all()
    assert any("call-level evaluators left out" in n for n in doc["notes"])


def test_eval_unit_session_on_a_generated_dump_covers_the_truth(openai_stub, tmp_path) -> None:
    """A generated dump with repeats after failures; a stand-in judge that knows each
    answer's generated quality (a perfect judge). Truth: the weighted share of sessions
    whose last call is good, over every session of the dump."""
    import json

    from llmobs_cli.core.ingest.convert import write_frame
    from llmobs_cli.core.signals.sessions import session_rows
    from openai_stub import Reply
    from test_eval_support import judged_response, run_cli

    frame = add_signals(generate(6000, seed=11, start=START, days=37), SignalSpec(repeats=0.8), 11)
    quality = pl.col("metadata").str.json_path_match("$.quality")
    good_texts = set(frame.filter(quality == "good")["response"].drop_nulls().str.strip_chars())

    def oracle(request: dict) -> Reply:
        ok = judged_response(request).strip() in good_texts
        return Reply(content=json.dumps({"reasoning": "oracle", "score": 5 if ok else 1}))

    openai_stub.responder = oracle
    path = tmp_path / "g.parquet"
    write_frame(frame, path, "parquet")
    rows = session_rows(frame).frame
    last_good = rows.with_columns(
        pl.col("response").str.strip_chars().is_in(list(good_texts)).alias("ok")
    )
    truth = (
        last_good.group_by("route")
        .agg((pl.col("ok") / pl.col("sample_rate")).sum() / (1 / pl.col("sample_rate")).sum())
        .rows()
    )
    res = run_cli(
        "eval", str(path), "--unit", "session", "--budget", "80", "--format", "json",
        "--base-url", openai_stub.base_url, "--since", "2026-01-01", "--no-progress",
        env={"OPENAI_API_KEY": "sk-x", "LLMOBS_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    groups = {g["key"]["route"]: g for g in doc["groups"]}
    for route, p in truth:
        g = groups[route]
        # the 0..1 score of a 1/5 judge is the success share
        assert g["ci_low"] - 1e-9 <= p <= g["ci_high"] + 1e-9, (route, p, g)
    reps = {s["route"]: s["repeated_question_rate"] for s in doc["sessions"]}
    assert max(v for v in reps.values() if v is not None) > 0.05


def test_calls_sort_and_where_on_signal_fields(tmp_path) -> None:
    from llmobs_cli.core.explore.calls import find_calls
    from llmobs_cli.core.ingest.convert import write_frame

    frame = add_signals(generate(800, seed=4, start=START, days=37), SignalSpec(logprobs=True), 4)
    path = tmp_path / "t.parquet"
    write_frame(frame, path, "parquet")
    res = find_calls([path], sort="response_confidence", ascending=True, top=5, since="2026-01-01")
    expect = frame.select(confidence.mean_logprob().alias("c")).drop_nulls().sort("c")["c"]
    assert res.calls["response_confidence"].to_list() == pytest.approx(expect.head(5).to_list())
    res2 = find_calls([path], where="cited_rank >= 2", top=1000, since="2026-01-01")
    n = frame.select((citations.cited_rank() >= 2).sum()).item()
    assert res2.matched == n > 0
