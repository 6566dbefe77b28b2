"""``llmobs plan``: per-route judge rates, their bars, the config they write, and a
simulation that the planned rates catch the target drop at the planned power."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from llmobs_cli.cli.app import main
from llmobs_cli.core.eval import regression as reg
from llmobs_cli.core.eval.plan import make_plan
from llmobs_cli.core.eval.rates import (
    CriterionCost,
    PlanOptions,
    RouteScores,
    RouteTraffic,
    parse_detect,
    plan_rates,
    scores_of,
    traffic_of,
)
from llmobs_cli.core.ingest.storage_sampling import build_plan
from llmobs_cli.core.record.config import load_config
from llmobs_cli.core.record.schema import FIELDS, SCHEMA
from llmobs_cli.core.record.weights import benjamini_hochberg
from llmobs_cli.errors import UsageError

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 28
#: route -> (sampled rows over DAYS, storage sample_rate); population = rows / rate.
ROUTES = {
    "chat": (2800, 0.01),  # 10,000 calls/day
    "search": (2800, 0.04),  # 2,500 calls/day
    "billing": (2520, 0.075),  # 1,200 calls/day
    "tiny": (280, 1.0),  # 10 calls/day
    "refunds": (560, 1.0),  # 20 calls/day, high stakes
}


def dump(seed: int = 3) -> pl.DataFrame:
    """A canonical dump: uniform timestamps over four weeks, one call per trace."""
    rng = np.random.default_rng(seed)
    parts = []
    for route, (rows, rate) in ROUTES.items():
        parts.append(
            pl.DataFrame(
                {
                    "trace_id": [f"{route}-{i}" for i in range(rows)],
                    "timestamp": [
                        T0 + timedelta(seconds=float(s)) for s in rng.uniform(0, DAYS * 86400, rows)
                    ],
                    "route": [route] * rows,
                    "model": ["gpt-4o-mini"] * rows,
                    "latency_ms": rng.lognormal(6, 0.5, rows),
                    "prompt": ["how do I reset my password?" * 3] * rows,
                    "response": ["Open settings, then security, then reset." * 4] * rows,
                    "status": np.where(rng.random(rows) < 0.02, "error", "ok"),
                    "sample_rate": [rate] * rows,
                }
            )
        )
    df = pl.concat(parts)
    missing = [pl.lit(None, dtype=SCHEMA[c]).alias(c) for c in FIELDS if c not in df.columns]
    return (
        df.with_columns(missing)
        .with_columns(pl.col("span_id").fill_null(pl.col("trace_id")))
        .with_columns(pl.col(c).cast(SCHEMA[c]) for c in FIELDS)
        .select(FIELDS)
    )


def opts(**kw: object) -> PlanOptions:
    base: dict[str, object] = {
        "detect": 0.05,
        "within_h": 48.0,
        "price_in": 0.15,
        "price_out": 0.6,
        "high_stakes": frozenset({"refunds"}),
        "criteria": (CriterionCost("relevance", 300),),
    }
    base.update(kw)
    return PlanOptions(**base)  # type: ignore[arg-type]


# --- the bars ----------------------------------------------------------------------------


def test_bars_rates_judgments_equal_high_stakes_mde() -> None:
    frame = dump()
    traffic, facts = traffic_of(frame)
    plan = plan_rates(traffic, opts(), facts=facts)
    routes = {r.route: r for r in plan.routes}
    # Independent: judgeable calls per day = Σ 1/sample_rate over ok rows / span in days.
    span = (frame["timestamp"].max() - frame["timestamp"].min()).total_seconds() / 86400
    ok = frame.filter(pl.col("status") == "ok")
    for route, r in routes.items():
        w = 1.0 / ok.filter(pl.col("route") == route)["sample_rate"].to_numpy()
        assert r.calls_per_day == pytest.approx(w.sum() / span, rel=1e-9)
        assert 0 < r.eval_rate <= 1
        assert r.judgments_per_day == pytest.approx(r.eval_rate * r.calls_per_day, rel=0.02)
        if r.feasible:
            assert r.mde <= r.target_drop + 1e-12
    assert routes["refunds"].eval_rate == 1.0 and routes["refunds"].status == "high_stakes"
    affordable = [r for r in plan.routes if not r.high_stakes and r.eval_rate < 1]
    assert {r.route for r in affordable} == {"chat", "search", "billing"}
    per_day = [r.judgments_per_day for r in affordable]
    assert max(per_day) / min(per_day) <= 1.2
    # A route too small is judged at 100 % and says which window would work.
    tiny = routes["tiny"]
    assert tiny.eval_rate == 1.0 and not tiny.feasible and tiny.status == "too_small"
    assert tiny.time_to_detect_h is not None and tiny.time_to_detect_h > 48
    assert "too small" in tiny.note
    # At that window the MDE is the target: the window that works, works.
    n = tiny.plan_calls_per_day * tiny.time_to_detect_h / 24
    var_sum = 2 * 0.25
    assert reg.mde(math.sqrt(var_sum / n), 2 * plan.target["alpha_per_test"], 0.8) == (
        pytest.approx(0.05, rel=1e-6)
    )


def test_mde_matches_independent_formula() -> None:
    """MDE = (z(1-α/m) + z(power)) · √(2σ²/n), with scipy's quantiles."""
    traffic, _ = traffic_of(dump())
    plan = plan_rates(traffic, opts(alpha=0.1, power=0.9))
    m = plan.target["tests"]
    assert m == len(ROUTES)  # one criterion on every route
    for r in plan.routes:
        n = r.eval_rate * r.plan_calls_per_day * 2.0
        z = stats.norm.ppf(1 - 0.1 / m) + stats.norm.ppf(0.9)
        assert r.mde == pytest.approx(z * math.sqrt(2 * 0.25 / n), rel=1e-9)


def test_storage_rate_too_low_is_said() -> None:
    traffic, _ = traffic_of(dump())
    plan = plan_rates(traffic, opts())
    chat = next(r for r in plan.routes if r.route == "chat")
    # 10,000 calls/day stored at 1 %: judging more than 1 % of them needs more storage.
    assert chat.eval_rate > 0.01
    assert not chat.storage_ok and chat.storage_rate == chat.eval_rate
    assert "stored at 1 %" in chat.note and "keep_rate" in chat.note


def test_allocations_side_by_side_and_cost_cap() -> None:
    traffic, _ = traffic_of(dump())
    plan = plan_rates(traffic, opts())
    equal, neyman = plan.allocations["equal"], plan.allocations["neyman"]
    assert plan.allocations["cost_capped"] is None
    # Neyman is sized for the overall score: it reaches the target there, with fewer
    # judgments than the per-route rule, and leaves small routes underpowered.
    assert neyman.overall_mde == pytest.approx(0.05, rel=1e-6)
    assert neyman.totals()["judgments_per_day"] < equal.totals()["judgments_per_day"]
    cost = equal.totals()["cost_per_day_usd"]
    assert cost == pytest.approx(
        sum(r.judgments_per_day * r.cost_per_judgment_usd for r in equal.routes)
    )
    capped = plan_rates(traffic, opts(max_cost_per_day=cost / 4))
    assert capped.chosen.name == "cost_capped"
    assert capped.chosen.totals()["cost_per_day_usd"] <= cost / 4 * (1 + 1e-6)
    normal = [r for r in capped.routes if not r.high_stakes and r.eval_rate < 1]
    assert max(r.judgments_per_day for r in normal) / min(r.judgments_per_day for r in normal) < 1.2
    assert all(r.status == "over_budget" for r in normal)
    assert all(r.eval_rate == 1.0 for r in capped.routes if r.high_stakes)


def test_variance_and_cost_from_evals() -> None:
    rng = np.random.default_rng(1)
    n = 400
    evals = pl.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(n)] * 2,
            "span_id": [f"t{i}" for i in range(n)] * 2,
            "route": ["chat"] * (2 * n),
            "evaluator": ["relevance"] * n + ["completeness"] * n,
            "score": np.r_[(rng.random(n) < 0.9).astype(float), rng.uniform(0.5, 1, n)],
            "weight": np.r_[np.full(n, 100.0), np.full(n, 100.0)],
            "judge_input_tokens": np.full(2 * n, 500),
            "judge_output_tokens": np.full(2 * n, 100),
            "judge_cost_usd": np.full(2 * n, 0.001),
            "error": [None] * (2 * n),
        }
    )
    got = scores_of(evals)["chat"]
    rel = evals.filter(pl.col("evaluator") == "relevance")["score"].to_numpy()
    assert got.evaluator == "relevance"  # the more variable of the two
    assert got.mean == pytest.approx(rel.mean())
    assert got.sd == pytest.approx(rel.std())  # equal weights: the population SD
    assert got.tokens_in == pytest.approx(1000) and got.tokens_out == pytest.approx(200)
    traffic, _ = traffic_of(dump())
    plan = plan_rates(traffic, opts(), {"chat": got})
    chat = next(r for r in plan.routes if r.route == "chat")
    assert chat.variance_source.startswith("evals")
    assert chat.cost_per_judgment_usd == pytest.approx((1000 * 0.15 + 200 * 0.6) / 1e6)
    # Relative target: 10 % of the route's score.
    rel_plan = plan_rates(traffic, opts(detect=0.1, relative=True), {"chat": got})
    assert next(r for r in rel_plan.routes if r.route == "chat").target_drop == pytest.approx(
        0.1 * rel.mean()
    )


def test_current_variance_model() -> None:
    from llmobs_cli.core.eval.rates import current_variance

    # 0/1 scores: exactly the Bernoulli variance at the lowered mean.
    assert current_variance(0.9 * 0.1, 0.9, 0.05) == pytest.approx(0.85 * 0.15)
    # Graded scores: the most a drop can add, checked against moving mass from 1 to 0.
    levels = np.array([0, 0.25, 0.5, 0.75, 1])
    base = np.array([0.02, 0.03, 0.05, 0.2, 0.7])
    mean, var = levels @ base, levels**2 @ base - (levels @ base) ** 2
    for src, dst in ((4, 0), (4, 3), (4, 2), (3, 2)):
        q = base.copy()
        moved = 0.05 / (levels[src] - levels[dst])
        q[src] -= moved
        q[dst] += moved
        var_c = levels**2 @ q - (levels @ q) ** 2
        assert var_c <= current_variance(var, mean, 0.05) + 1e-12
    q = base.copy()
    q[4] -= 0.05
    q[0] += 0.05
    assert current_variance(var, mean, 0.05) == pytest.approx(levels**2 @ q - (levels @ q) ** 2)
    # Never below the baseline variance, never above what the lowered mean allows.
    assert current_variance(0.25, 0.5, 0.05) == pytest.approx(0.45 * 0.55)
    assert current_variance(0.1, 0.2, 0.05) == 0.1


def test_parse_detect() -> None:
    assert parse_detect("0.05") == (0.05, False)
    assert parse_detect("10%") == (pytest.approx(0.1), True)
    for bad in ("x", "0", "150%", "1.5"):
        with pytest.raises(UsageError):
            parse_detect(bad)


# --- simulation: the planned rates catch the drop at the planned power -----------------


LEVELS_01 = np.array([0.0, 1.0])
LEVELS_5 = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # a 1-5 judge scale normalised to 0-1
GRADED = np.array([0.02, 0.03, 0.05, 0.2, 0.7])  # mean 0.8825


def _moved(probs: np.ndarray, levels: np.ndarray, src: int, dst: int, drop: float) -> np.ndarray:
    """``probs`` with enough mass moved from level ``src`` to ``dst`` to lower the mean by
    ``drop``."""
    out = probs.copy()
    mass = drop / (levels[src] - levels[dst])
    out[src] -= mass
    out[dst] += mass
    return out


def _simulate(
    plan_opts: PlanOptions,
    traffic: list[RouteTraffic],
    scores: dict[str, RouteScores] | None,
    levels: np.ndarray,
    base: np.ndarray,
    dropped: np.ndarray,
    runs: int,
    seed: int,
) -> tuple[float, float]:
    """Fire rates of eval's regression rule over ``runs`` simulated pairs of windows: for the
    first route when its score distribution moves from ``base`` to ``dropped``, and for any
    route when nothing moves."""
    plan = plan_rates(traffic, plan_opts, scores)
    rng = np.random.default_rng(seed)
    alpha = plan_opts.alpha
    min_drop = plan.recommended_min_drop
    assert min_drop is not None
    k = len(plan.routes)
    # Judged calls per window: each of the window's calls is judged with probability
    # eval_rate (Poisson sampling), in the baseline and in the current window.
    lam = np.array(
        [r.eval_rate * r.plan_calls_per_day * plan_opts.within_h / 24 for r in plan.routes]
    )

    def window(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = np.maximum(rng.poisson(lam, (runs, k)), 2)
        counts = rng.multinomial(n, probs)  # (runs, k, levels)
        mean = counts @ levels / n
        var = counts @ levels**2 / n - mean**2
        return n, mean, var

    def fire(first: np.ndarray) -> np.ndarray:
        probs_cur = np.broadcast_to(base, (k, base.size)).copy()
        probs_cur[0] = first
        n_b, pb, vb = window(base)
        n_c, pc, vc = window(probs_cur)
        # eval's SE of a Hájek mean with equal weights: population variance / (n - 1)
        se = np.sqrt(vb / (n_b - 1) + vc / (n_c - 1))
        delta = pc - pb
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(se > 0, stats.norm.cdf(delta / se), np.where(delta < 0, 0.0, 1.0))
        # Benjamini–Hochberg per run (vectorised; checked against the library below).
        order = np.argsort(p, axis=1)
        ranked = np.take_along_axis(p, order, axis=1) * k / np.arange(1, k + 1)
        q_sorted = np.minimum.accumulate(ranked[:, ::-1], axis=1)[:, ::-1].clip(max=1)
        q = np.empty_like(q_sorted)
        np.put_along_axis(q, order, q_sorted, axis=1)
        np.testing.assert_allclose(q[0], benjamini_hochberg(p[0]), rtol=1e-12)
        return (q <= alpha) & (delta <= -min_drop)

    power = float(fire(dropped)[:, 0].mean())
    false_alarm = float(fire(base).any(axis=1).mean())
    return power, false_alarm


CASES = {
    # name: (levels, baseline distribution, distribution after a 0.05 drop, from evals?)
    "default-variance": (LEVELS_01, np.array([0.5, 0.5]), np.array([0.55, 0.45]), False),
    "0/1-from-evals": (LEVELS_01, np.array([0.15, 0.85]), np.array([0.2, 0.8]), True),
    "graded-top-to-bottom": (LEVELS_5, GRADED, _moved(GRADED, LEVELS_5, 4, 0, 0.05), True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_simulated_power_and_false_alarms(case: str) -> None:
    """The planned rates catch a drop of the target size in about the planned share of
    runs (80 % ± 4 points over 4,000 runs) and fire at most α without a drop."""
    levels, base, dropped, from_evals = CASES[case]
    volumes = {"chat": 20000.0, "search": 3000.0, "billing": 1500.0, "faq": 1200.0}
    traffic = [RouteTraffic(name, v, v, v, v, int(v * 14), 1.0) for name, v in volumes.items()]
    mean = float(levels @ base)
    sd = math.sqrt(float(levels**2 @ base) - mean**2)
    scores = (
        {name: RouteScores(mean=mean, sd=sd, judged=500, evaluator="x") for name in volumes}
        if from_evals
        else None
    )
    o = opts(high_stakes=frozenset(), alpha=0.05, power=0.8)
    plan = plan_rates(traffic, o, scores)
    assert all(r.feasible for r in plan.routes)
    assert float(levels @ base - levels @ dropped) == pytest.approx(0.05)
    power, false_alarm = _simulate(o, traffic, scores, levels, base, dropped, 4000, seed=11)
    print(
        f"\n[{case}] planned power 0.80 for a 0.05 drop (MDE {plan.routes[0].mde:.4f}, "
        f"{plan.routes[0].judgments_per_window:.0f} judgments per window): fired in "
        f"{power:.3f} of runs with the drop, false alarms {false_alarm:.3f} without (alpha 0.05)"
    )
    assert abs(power - 0.80) <= 0.04
    assert false_alarm <= 0.05 + 0.01


def test_simulated_milder_drop_is_caught_more_often() -> None:
    """A drop of one grade adds less variance than the plan assumes: power is higher."""
    volumes = {"chat": 20000.0, "search": 3000.0}
    traffic = [RouteTraffic(n, v, v, v, v, int(v * 14), 1.0) for n, v in volumes.items()]
    mean = float(LEVELS_5 @ GRADED)
    sd = math.sqrt(float(LEVELS_5**2 @ GRADED) - mean**2)
    scores = {n: RouteScores(mean=mean, sd=sd, judged=500, evaluator="x") for n in volumes}
    o = opts(high_stakes=frozenset())
    mild = _moved(GRADED, LEVELS_5, 4, 3, 0.05)
    power, _ = _simulate(o, traffic, scores, LEVELS_5, GRADED, mild, 2000, seed=5)
    print(f"\n[graded-one-grade-down] fired in {power:.3f} of runs (planned 0.80)")
    assert power > 0.84


# --- config: written where eval and sample read it -------------------------------------

CONFIG = """\
# my team's settings — keep this comment
version: 1
routes:
  refunds:
    stakes: high   # judged and kept at 100 %
  chat:
    drop_text: true
report:
  by: [route, model]   # unrelated key, must survive
eval:
  min_drop: 0.05
"""


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_keys_and_write_config_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "traces.parquet"
    dump().write_parquet(src)
    cfg_path = tmp_path / "llmobs.yaml"
    cfg_path.write_text(CONFIG, encoding="utf-8")
    code, out, err = _cli(
        ["plan", str(src), "--detect", "0.05", "--within", "48h", "--format", "json",
         "--config", str(cfg_path), "--write-config"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) >= {"target", "traffic", "allocation", "routes", "totals", "allocations"}
    contract = {"route", "storage_rate", "eval_rate", "calls_per_day", "judgments_per_day",
                "mde", "time_to_detect_h", "cost_per_day_usd", "feasible"}  # fmt: skip
    for r in doc["routes"]:
        assert contract <= set(r)
    assert set(doc["allocations"]) == {"equal", "neyman", "cost_capped"}
    assert {"judgments_per_day", "cost_per_day_usd", "cost_per_month_usd"} <= set(doc["totals"])
    text = cfg_path.read_text(encoding="utf-8")
    assert "# my team's settings — keep this comment" in text
    assert "# judged and kept at 100 %" in text
    assert "# unrelated key, must survive" in text
    cfg = load_config(cfg_path)
    assert cfg.report.by == ["route", "model"]
    assert cfg.routes["chat"].drop_text is True
    assert cfg.routes["refunds"].stakes == "high" and cfg.routes["refunds"].eval_budget is None
    rec = doc["totals"]["recommended_min_drop"]
    assert rec is not None and cfg.eval.min_drop == rec < 0.05
    by_route = {r["route"]: r for r in doc["routes"]}
    for name, r in by_route.items():
        if r["high_stakes"]:
            continue
        assert cfg.routes[name].eval_budget == r["eval_budget"]
    # sample follows: storage too thin for the planned rate is raised to it.
    sample_plan = build_plan(cfg, {}, None, None)
    assert sample_plan.rates["chat"] == pytest.approx(by_route["chat"]["eval_rate"], rel=1e-5)
    assert "search" not in sample_plan.rates or sample_plan.rates["search"] >= 0.1
    # eval follows: over a 48 h window of a stream stored as planned (here: everything),
    # eval's own plan with the written budgets judges each route at the planned rate.
    rows = []
    for name in ("chat", "search", "billing"):
        n = round(by_route[name]["calls_per_day"] * 2)
        rows.append(
            pl.DataFrame({"trace_id": [f"{name}{i}" for i in range(n)], "route": [name] * n})
        )
    stream = pl.concat(rows).with_columns(
        pl.lit(T0).alias("timestamp"),
        pl.lit("ok").alias("status"),
        pl.lit("an answer").alias("response"),
        pl.lit(1.0).alias("sample_rate"),
    )
    ep = make_plan(
        stream,
        route_budgets={r: rc.eval_budget for r, rc in cfg.routes.items() if rc.eval_budget},
        high_stakes=cfg.high_stakes_routes(),
    )
    for st in ep.strata:
        assert st.eval_rate == pytest.approx(by_route[st.route]["eval_rate"], rel=0.01)
        assert st.selected_traces == pytest.approx(by_route[st.route]["eval_budget"], rel=0.1)
    # Writing again changes nothing (the plan is idempotent on its own output).
    before = cfg_path.read_text(encoding="utf-8")
    code, _, _ = _cli(
        ["plan", str(src), "--format", "json", "--config", str(cfg_path), "--write-config"],
        capsys,
    )
    assert code == 0 and cfg_path.read_text(encoding="utf-8") == before


def test_cli_formats_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "traces.parquet"
    dump().write_parquet(src)
    code, out, _ = _cli(["plan", str(src), "--format", "csv"], capsys)
    assert code == 0
    head = out.splitlines()[0].split(",")
    assert head[:3] == ["allocation", "route", "high_stakes"]
    assert len(out.splitlines()) == 1 + 2 * len(ROUTES)  # equal + neyman
    code, out, _ = _cli(["plan", str(src), "--format", "markdown"], capsys)
    assert code == 0 and out.startswith("### llmobs plan") and "| chat |" in out
    code, out, _ = _cli(["plan", str(src)], capsys)
    assert code == 0 and "allocations" in out
    code, _, err = _cli(["plan", str(src), "--detect", "lots"], capsys)
    assert (
        code == 2
        and err.strip() == "llmobs: --detect: expected a drop like 0.05 or 10% (got 'lots')"
    )
    code, _, err = _cli(["plan", str(src), "--within", "soon"], capsys)
    assert code == 2 and "--within" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(["plan", str(src), "--since", "2030-01-01"], capsys)
    # The shared empty-window message: the window as typed and the span the data covers.
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("llmobs: --since 2030-01-01: no call in the window [2030-01-01T")
    assert f"{src} spans 2026-03-02T" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    code, _, err = _cli(["plan", str(empty)], capsys)
    # The reader or the plan names the file, in one line.
    assert code == 2 and "empty.jsonl: " in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "evals.parquet"
    bad.write_text("not parquet", encoding="utf-8")
    code, _, err = _cli(["plan", str(src), "--evals", str(bad)], capsys)
    assert code == 2 and err.strip().startswith(f"{bad}: not a Parquet evals file (")
    code, _, err = _cli(
        ["plan", str(src), "--judge-model", "no-such-model", "--max-cost-per-day", "1"], capsys
    )
    assert code == 2 and "--max-cost-per-day: no price for judge model 'no-such-model'" in err


def test_weekday_effect_sizes_the_quiet_window() -> None:
    """A route quiet at weekends: its judgments/day stay equal to the others', its MDE is
    the one the quiet window reaches, and storage must cover the share judged there."""
    week = {"mon": 6000.0, "tue": 6000.0, "wed": 6000.0, "thu": 6000.0, "fri": 6000.0}
    week |= {"sat": 2000.0, "sun": 2000.0}
    mean = sum(week.values()) / 7
    varying = RouteTraffic("b2b", mean, mean, mean, mean, 1000, 1.0, weekday_varies=True,
                           by_weekday=week)  # fmt: skip
    flat = RouteTraffic("chat", 8000.0, 8000.0, 8000.0, 8000.0, 1000, 1.0)
    plan = plan_rates([varying, flat], opts(high_stakes=frozenset()))
    b2b, chat = plan.routes
    assert b2b.plan_calls_per_day == pytest.approx(2000.0)  # sat + sun, a 48 h window
    assert b2b.judgments_per_day == pytest.approx(chat.judgments_per_day, rel=1e-9)
    assert b2b.storage_rate == pytest.approx(b2b.eval_rate * mean / 2000.0)
    assert b2b.feasible and b2b.mde <= 0.05 + 1e-12
    assert any("b2b: traffic varies by weekday" in n for n in plan.notes)


def test_eval_dry_run_follows_the_written_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`llmobs eval --current W --baseline W` reads the written budgets: each window's
    plan judges the planned number of traces of each route (no judge call: --dry-run)."""
    rng = np.random.default_rng(4)
    per_day = {"chat": 3000, "search": 1500, "docs": 1100}
    days = 6
    parts = []
    for route, n_day in per_day.items():
        n = n_day * days
        parts.append(
            pl.DataFrame(
                {
                    "trace_id": [f"{route}-{i}" for i in range(n)],
                    "timestamp": [
                        (T0 + timedelta(seconds=float(s))).isoformat()
                        for s in rng.uniform(0, days * 86400, n)
                    ],
                    "route": [route] * n,
                    "model": ["gpt-4o-mini"] * n,
                    "latency_ms": [500.0] * n,
                    "prompt": ["q"] * n,
                    "response": ["a"] * n,
                }
            )
        )
    src = tmp_path / "stream.jsonl"
    pl.concat(parts).write_ndjson(src)
    cfg_path = tmp_path / "llmobs.yaml"
    cfg_path.write_text("eval:\n  evaluators: [relevance]\n", encoding="utf-8")
    code, out, err = _cli(
        ["plan", str(src), "--within", "48h", "--config", str(cfg_path), "--write-config",
         "--format", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    planned = {r["route"]: r for r in json.loads(out)["routes"]}
    assert all(r["feasible"] and r["eval_rate"] < 1 for r in planned.values())
    code, out, err = _cli(
        ["eval", str(src), "--config", str(cfg_path), "--current", "48h", "--baseline", "48h",
         "--dry-run", "--format", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["plan"]
    assert {(r["window"], r["route"]) for r in rows} == {
        (w, r) for w in ("current", "baseline") for r in per_day
    }
    for r in rows:
        p = planned[r["route"]]
        assert r["budget"] == p["eval_budget"]
        assert r["selected_traces"] == pytest.approx(p["judgments_per_window"], rel=0.1)
        assert r["eval_rate"] == pytest.approx(p["eval_rate"], rel=0.1)
