"""Eval statistics against a synthetic truth: interval coverage, the regression test's
size and power, its statistics against scipy; and an end-to-end run through the stub."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from llmobs_cli.core.eval import regression as reg
from llmobs_cli.core.eval.judges.client import ClientSettings
from llmobs_cli.core.eval.options import EvalOptions
from llmobs_cli.core.eval.plan import STRATUM, make_plan
from llmobs_cli.core.eval.run import evaluate_frame
from llmobs_cli.core.eval.summary import summarize
from llmobs_cli.core.ingest.readers import load
from test_eval_support import ROUTES, marker_judge, records, write_jsonl

POP = {"chat": (40000, 0.02, 0.80), "qa": (4000, 0.2, 0.60), "refunds": (400, 1.0, 0.30)}


def simulate(
    seed: int, budget: int = 80, drop: dict[str, float] | None = None, window: str = "current"
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Population → storage sampling → eval plan → 0/1 judgments; returns (judgments, truth)."""
    rng = np.random.default_rng(seed)
    parts, truth = [], {}
    for route, (n, sr, p) in POP.items():
        p = p - (drop or {}).get(route, 0.0)
        y = rng.random(n) < p
        truth[route] = float(y.mean())  # the finite population's pass rate
        kept = rng.random(n) < sr
        parts.append(
            pl.DataFrame(
                {
                    "trace_id": [f"{seed}-{window}-{route}-{i}" for i in np.flatnonzero(kept)],
                    "route": route,
                    "status": "ok",
                    "response": "x",
                    "sample_rate": sr,
                    "y": y[kept].astype(float),
                }
            )
        )
    plan = make_plan(pl.concat(parts), budget=budget, high_stakes={"refunds"})
    j = plan.selection.select(
        "trace_id",
        "route",
        pl.col(STRATUM).alias("stratum"),
        "weight",
        pl.col("trace_id").alias("span_id"),
        pl.col("y").alias("score"),
        pl.lit("relevance").alias("evaluator"),
        pl.lit(None, pl.String).alias("error"),
        pl.lit(window).alias("window"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("timestamp"),
    )
    return j, truth


@pytest.mark.slow
def test_weighted_intervals_cover_the_truth_about_95_percent() -> None:
    hits = total = 0
    for seed in range(110):
        j, truth = simulate(seed)
        for g in summarize(j).groups:
            route = g["key"]["route"]
            if route == "refunds":
                continue  # judged at 100 %: no eval-sampling error, interval is about the dump
            total += 1
            hits += g["ci_low"] <= truth[route] <= g["ci_high"]
    cover = hits / total
    # 220 intervals: binomial sd at 95 % is 1.5 %
    assert 0.90 <= cover <= 0.99, cover


def test_unweighted_mean_would_be_wrong_weighted_is_right() -> None:
    # Overall standardised estimate vs the population pass rate across routes.
    j, truth = simulate(1, budget=300)
    overall = summarize(j).overall[0]["current"]
    pop = sum(POP[r][0] * truth[r] for r in POP) / sum(POP[r][0] for r in POP)
    assert abs(overall["score"] - pop) < 4 * overall["se"]
    naive = float(j["score"].mean())
    assert abs(naive - pop) > abs(overall["score"] - pop)


@pytest.mark.slow
def test_regression_false_alarm_rate_and_p_value_size_on_equal_windows() -> None:
    alarms, pvals = 0, []
    for seed in range(90):
        cur, _ = simulate(1000 + seed, window="current")
        base, _ = simulate(5000 + seed, window="baseline")
        s = summarize(pl.concat([cur, base]))
        alarms += bool(s.regressions)
        pvals += [t.p_value for t in s.tests if t.key["route"] != "refunds"]
    assert alarms / 90 <= 0.05
    size = float(np.mean(np.array(pvals) < 0.05))
    assert 0.01 <= size <= 0.11, size  # a calibrated one-sided test rejects ~5 % under H0


@pytest.mark.slow
def test_regression_power_on_a_known_drop() -> None:
    found, fdp = 0, []
    for seed in range(40):
        cur, _ = simulate(2000 + seed, budget=150, drop={"qa": 0.2}, window="current")
        base, _ = simulate(7000 + seed, budget=150, window="baseline")
        s = summarize(pl.concat([cur, base]))
        flagged = {t.key["route"] for t in s.regressions}
        found += "qa" in flagged
        fdp.append(len(flagged - {"qa"}) / max(len(flagged), 1))
    assert found / 40 >= 0.85
    # BH controls the false discovery rate (E[false / flagged]) at α = 0.05, not the
    # chance of any false flag; allow simulation noise.
    assert float(np.mean(fdp)) <= 0.1


def test_drop_test_mde_and_bh_match_scipy() -> None:
    rng = np.random.default_rng(3)
    cur = (rng.random(400) < 0.55).astype(float)
    base = (rng.random(500) < 0.62).astype(float)
    frame = pl.concat(
        [
            pl.DataFrame(
                {"trace_id": [f"c{i}" for i in range(400)], "score": cur, "window": "current"}
            ),
            pl.DataFrame(
                {"trace_id": [f"b{i}" for i in range(500)], "score": base, "window": "baseline"}
            ),
        ]
    ).with_columns(
        pl.lit("r").alias("route"),
        pl.lit(1.0).alias("weight"),
        pl.lit("relevance").alias("evaluator"),
        pl.lit(None, pl.String).alias("error"),
        pl.col("trace_id").alias("span_id"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("timestamp"),
    )
    t = summarize(frame, min_drop=0.05).tests[0]
    welch = stats.ttest_ind(cur, base, equal_var=False, alternative="less")
    assert t.delta == pytest.approx(cur.mean() - base.mean())
    assert t.p_value == pytest.approx(welch.pvalue, rel=0.05)
    se = math.sqrt(cur.var(ddof=1) / 400 + base.var(ddof=1) / 500)
    assert t.se == pytest.approx(se, rel=1e-6)
    assert t.mde == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se)
    assert t.regression == (t.p_value <= 0.05 and t.delta <= -0.05)  # one test: q = p
    assert t.q_value == pytest.approx(t.p_value)
    _d, _s, _z, p = reg.drop_test(0.7, 0.02, 0.75, 0.03)
    assert p == pytest.approx(stats.norm.cdf(-0.05 / math.sqrt(0.02**2 + 0.03**2)))
    tests = [
        reg.Comparison(
            {"r": i}, "e", 0.5, 0.6, 0.01, 0.01, 100, 100, 100, 100, delta=-0.1, p_value=pv
        )
        for i, pv in enumerate([0.001, 0.04, 0.03, 0.5])
    ]
    reg.flag(tests, alpha=0.05, min_drop=0.05)
    q = stats.false_discovery_control([0.001, 0.04, 0.03, 0.5], method="bh")
    assert [x.q_value for x in tests] == pytest.approx(list(q))
    assert [x.regression for x in tests] == [bool(v <= 0.05) for v in q]


def test_end_to_end_through_the_stub(openai_stub, tmp_path) -> None:
    openai_stub.responder = marker_judge
    recs = records(5, per_route=150)
    frame = load([write_jsonl(tmp_path / "t.jsonl", recs)]).frame
    opts = EvalOptions(
        budget=60,
        evaluators=["relevance", "reference"],
        high_stakes={"refunds"},
        client=ClientSettings(base_url=openai_stub.base_url, api_key="sk-x", backoff_base_s=0.001),
    )
    run = evaluate_frame(frame, opts, cache_dir=tmp_path / "cache")
    assert run.fatal is None
    by = {g["key"]["route"]: g for g in run.summary.groups if g["evaluator"] == "relevance"}
    for route, (_, p, _) in ROUTES.items():
        g = by[route]
        assert abs(g["score"] - p) < 4 * g["se"]
        assert g["ci_low"] <= g["score"] <= g["ci_high"]
    assert by["refunds"]["judged"] == 150  # high stakes: 100 %
    for r in ("chat", "qa"):
        assert abs(by[r]["judged"] - 60) <= 4 * math.sqrt(60)
    rows = run.frame
    assert set(rows["evaluator"].unique()) == {"relevance"}  # no reference in these rows
    w = rows["weight"].to_numpy()
    assert np.allclose(w, 1 / (rows["sample_rate"] * rows["eval_rate"]).to_numpy())
    for col in (
        "trace_id",
        "route",
        "timestamp",
        "model",
        "release",
        "evaluator",
        "score",
        "sample_rate",
        "eval_rate",
        "weight",
        "judge_model",
        "explanation",
        "judge_cost_usd",
        "error",
        "prompt_hash",
        "judge_input_tokens",
        "judge_latency_ms",
        "attempts",
    ):
        assert col in rows.columns
    calls = openai_stub.calls
    assert calls == rows.height
    again = evaluate_frame(frame, opts, cache_dir=tmp_path / "cache")
    assert openai_stub.calls == calls  # rerun: zero judge calls
    assert again.summary.judge.cached == rows.height and again.summary.judge.calls == 0
    assert again.frame.drop("cached", "judge_latency_ms").equals(
        rows.drop("cached", "judge_latency_ms")
    )


def test_reference_and_self_consistency(openai_stub, tmp_path) -> None:
    recs = records(2, per_route=20)
    for r in recs:
        r["reference"] = r["response"] if r["route"] == "qa" else None
    frame = load([write_jsonl(tmp_path / "t.jsonl", recs)]).frame
    answers = iter(["the answer is 42"] * 1000)

    def gen(req):
        if "response_format" in req:
            return marker_judge(req)
        # two prompts disagree wildly; the rest agree
        q = req["messages"][-1]["content"]
        return (
            "completely different thing" + req["messages"][-1]["content"]
            if q.endswith(" 0 about chat") and len(openai_stub.requests) % 2
            else next(answers)
        )

    openai_stub.responder = gen
    opts = EvalOptions(
        budget=10,
        evaluators=["reference", "self_consistency"],
        self_consistency=True,
        sc_samples=3,
        sc_temperature=0.9,
        client=ClientSettings(base_url=openai_stub.base_url, api_key="sk-x"),
    )
    run = evaluate_frame(frame, opts, cache_dir=tmp_path / "c")
    ref = run.frame.filter(pl.col("evaluator") == "reference")
    assert set(ref["route"].to_list()) == {"qa"} and (ref["score"] == 1.0).all()
    sc = run.frame.filter(pl.col("evaluator") == "self_consistency")
    assert (
        sc.height == frame.filter(pl.col("route") != "zzz").select(pl.len()).item() - 0
        or sc.height > 0
    )
    gens = [b for b in openai_stub.bodies() if "response_format" not in b]
    assert all(b["temperature"] == 0.9 for b in gens)
    assert len(gens) == 3 * sc.height
    assert (sc["score"].drop_nulls() <= 1).all()
    assert sc.filter(pl.col("score") == 1.0).height >= sc.height - 2
