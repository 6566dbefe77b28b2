"""Release and model change detection, and the weighted before/after table.

The figures are checked against an independent numpy computation on the population the
weights stand for (rows repeated 1/sample_rate times; sample rates chosen so that the
weights are integers).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from llmobs_cli.core.report import releases
from llmobs_cli.core.report.releases import Change, find_changes, markers

T0 = datetime(2026, 10, 1, tzinfo=UTC)
RATES = np.array([1.0, 0.5, 0.25, 0.1])


def frame(
    n: int,
    *,
    seed: int = 0,
    days: int = 28,
    route: str = "chat",
    release_at: datetime | None = None,
    model_at: datetime | None = None,
    side_models: tuple[str, float] | None = None,
) -> pl.DataFrame:
    """``n`` rows spread over ``days`` on one route; v1 → v2 at ``release_at``."""
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, days * 24 * 60, n))
    ts = [T0 + timedelta(minutes=int(m)) for m in minutes]
    after_rel = np.array([release_at is not None and t >= release_at for t in ts])
    after_mod = np.array([model_at is not None and t >= model_at for t in ts])
    model = np.where(after_mod, "model-b", "model-a").astype(object)
    if side_models is not None:
        name, share = side_models
        model[rng.random(n) < share] = name
    latency = rng.gamma(2.0, 300.0, n) * np.where(after_rel, 1.3, 1.0)
    cost = rng.gamma(2.0, 0.001, n)
    cost[rng.random(n) < 0.05] = np.nan  # unpriced calls
    return pl.DataFrame(
        {
            "timestamp": ts,
            "route": [route] * n,
            "release": np.where(after_rel, "v2", "v1"),
            "model": model.astype(str),
            "sample_rate": rng.choice(RATES, n),
            "latency_ms": latency,
            "ttft_ms": rng.gamma(2.0, 80.0, n),
            "cost_usd": cost,
            "status": rng.choice(["ok", "error"], n, p=[0.93, 0.07]),
            "input_tokens": rng.integers(10, 2000, n),
            "output_tokens": rng.integers(10, 800, n),
        }
    ).with_columns(pl.col("cost_usd").fill_nan(None))


def test_release_change_found_at_its_first_row_and_starting_state_is_not_a_change() -> None:
    at = T0 + timedelta(days=14, hours=5)
    df = frame(3000, release_at=at)
    changes = find_changes(df)
    assert len(changes) == 1
    c = changes[0]
    first_v2 = df.filter(pl.col("release") == "v2")["timestamp"].min()
    assert (c.kind, c.route, c.before, c.after, c.at) == ("release", "chat", "v1", "v2", first_v2)


def test_model_change_and_release_change_on_two_routes_merge_into_markers() -> None:
    at = T0 + timedelta(days=10)
    a = frame(2000, seed=1, route="chat", release_at=at, model_at=T0 + timedelta(days=20))
    b = frame(2000, seed=2, route="search", release_at=at)
    changes = find_changes(pl.concat([a, b]))
    kinds = sorted((c.kind, c.route) for c in changes)
    assert kinds == [("model", "chat"), ("release", "chat"), ("release", "search")]
    ms = markers(changes)
    rel = [m for m in ms if m.kind == "release"]
    # Both routes switched within the hour: one marker naming both.
    assert len(rel) == 1 and sorted(rel[0].routes) == ["chat", "search"]
    assert rel[0].at == min(c.at for c in changes if c.kind == "release")


def test_markers_far_apart_stay_separate() -> None:
    c1 = Change("release", "a", T0, "v1", "v2")
    c2 = Change("release", "b", T0 + timedelta(days=3), "v1", "v2")
    assert len(markers([c1, c2])) == 2


def test_concurrent_and_rare_models_are_not_changes() -> None:
    # A 30 % side model present from the start, and a model used for 0.1 % of the calls
    # whose first row comes late by chance: neither is an introduction.
    df = frame(4000, seed=3, side_models=("side", 0.3))
    rare = (
        df.filter(pl.col("timestamp") > T0 + timedelta(days=20))
        .head(1)
        .with_columns(pl.lit("rare").alias("model"))
    )
    changes = find_changes(pl.concat([df, rare]), kinds=("model",))
    assert changes == []


def test_null_values_are_ignored() -> None:
    df = frame(1000, release_at=T0 + timedelta(days=14)).with_columns(
        pl.when(pl.col("timestamp") < T0 + timedelta(days=3))
        .then(None)
        .otherwise(pl.col("release"))
        .alias("release")
    )
    assert [c.after for c in find_changes(df, kinds=("release",))] == ["v2"]


def _population(df: pl.DataFrame, col: str) -> np.ndarray:
    """Values repeated by their integer weight (1/sample_rate), nulls dropped."""
    sub = df.filter(pl.col(col).is_not_null())
    w = np.rint(1.0 / sub["sample_rate"].to_numpy()).astype(int)
    return np.repeat(sub[col].to_numpy().astype(float), w)


def test_before_after_figures_match_numpy_on_the_expanded_population() -> None:
    at = T0 + timedelta(days=14, hours=3)
    df = frame(5000, seed=7, release_at=at)
    window = timedelta(days=5)
    (cmp,) = releases.compare(df, find_changes(df), window=window)
    c = cmp.change
    sides = {
        "before": df.filter(
            (pl.col("release") == "v1")
            & (pl.col("timestamp") >= c.at - window)
            & (pl.col("timestamp") < c.at)
        ),
        "after": df.filter(
            (pl.col("release") == "v2")
            & (pl.col("timestamp") >= c.at)
            & (pl.col("timestamp") < c.at + window)
        ),
    }
    for name, got in (("before", cmp.before), ("after", cmp.after)):
        rows = sides[name]
        w = 1.0 / rows["sample_rate"].to_numpy()
        assert got.sampled == rows.height
        assert got.calls == pytest.approx(w.sum())
        assert got.n_eff == pytest.approx(w.sum() ** 2 / (w**2).sum())
        lat = _population(rows, "latency_ms")
        for q in (50, 95, 99):
            assert got.latency_ms[f"p{q}"] == pytest.approx(
                np.quantile(lat, q / 100, method="inverted_cdf")
            )
        ttft = _population(rows, "ttft_ms")
        assert got.ttft_ms["p95"] == pytest.approx(np.quantile(ttft, 0.95, method="inverted_cdf"))
        assert got.cost_per_call_usd == pytest.approx(_population(rows, "cost_usd").mean())
        assert got.unpriced == rows["cost_usd"].null_count()
        err = np.repeat(
            (rows["status"] == "error").to_numpy().astype(float),
            np.rint(w).astype(int),
        )
        assert got.error_rate == pytest.approx(err.mean())
        assert got.start >= c.at - window if name == "before" else got.start == c.at
    # The injected slowdown shows.
    assert cmp.after.latency_ms["p50"] > cmp.before.latency_ms["p50"] * 1.1


def _evals(df: pl.DataFrame, at: datetime, drop: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    sub = df.sample(n=800, seed=seed)
    after = (sub["timestamp"] >= at).to_numpy()
    p = np.where(after, 0.85 - drop, 0.85)
    score = (rng.random(sub.height) < p).astype(float)
    eval_rate = rng.choice([0.5, 1.0], sub.height)
    return sub.select("route", "timestamp", "release", "model").with_columns(
        pl.lit("relevance").alias("evaluator"),
        pl.Series("score", score),
        pl.Series("weight", 1.0 / (sub["sample_rate"].to_numpy() * eval_rate)),
        pl.lit(None, dtype=pl.String).alias("error"),
    )


@pytest.mark.parametrize(("drop", "significant"), [(0.3, True), (0.0, False)])
def test_quality_before_after_weighted_means_and_test(drop: float, significant: bool) -> None:
    at = T0 + timedelta(days=14)
    df = frame(6000, seed=11, release_at=at)
    ev = _evals(df, at, drop, seed=12)
    (cmp,) = releases.compare(df, find_changes(df), evals=ev, window=timedelta(days=14))
    (q,) = cmp.quality
    assert q.evaluator == "relevance"
    at_c = cmp.change.at
    for side, mask in (
        ("before", (pl.col("timestamp") < at_c) & (pl.col("release") == "v1")),
        ("after", (pl.col("timestamp") >= at_c) & (pl.col("release") == "v2")),
    ):
        rows = ev.filter(mask)
        y, w = rows["score"].to_numpy(), rows["weight"].to_numpy()
        got = getattr(q, side)
        assert got["judged"] == rows.height
        assert got["score"] == pytest.approx(np.average(y, weights=w))
        assert got["ci_low"] < got["score"] < got["ci_high"]
    assert q.delta == pytest.approx(q.after["score"] - q.before["score"])
    assert (q.p_value < 0.01) is significant


def test_judgment_errors_are_not_scores() -> None:
    at = T0 + timedelta(days=14)
    df = frame(3000, seed=13, release_at=at)
    ev = _evals(df, at, 0.0, seed=14)
    broken = ev.head(50).with_columns(pl.lit(0.0).alias("score"), pl.lit("timeout").alias("error"))
    (cmp1,) = releases.compare(df, find_changes(df), evals=ev, window=timedelta(days=14))
    (cmp2,) = releases.compare(
        df, find_changes(df), evals=pl.concat([ev, broken]), window=timedelta(days=14)
    )
    assert cmp1.quality[0].as_dict() == cmp2.quality[0].as_dict()


def test_analyse_as_dict_is_json_ready() -> None:
    import json

    df = frame(1500, release_at=T0 + timedelta(days=14))
    doc = releases.analyse(df).as_dict()
    text = json.dumps(doc, allow_nan=False)
    assert '"after": "v2"' in text
    assert doc["comparisons"][0]["before_stats"]["sampled"] > 0
    assert releases.analyse(df.filter(pl.col("release") == "v1")).as_dict()["changes"] == []


def test_a_burst_of_one_session_is_not_a_new_model_but_a_switch_is() -> None:
    # 60 sessions of 5 calls each on a quiet route over 4 weeks; one session (its 30
    # calls in a burst on day 20) uses another model: by calls it looks like 1/10 of the
    # traffic that week, by sessions it is one of ~15.
    rng = np.random.default_rng(21)
    rows = []
    for s in range(60):
        start = T0 + timedelta(hours=int(rng.integers(0, 28 * 24)))
        rows += [(start + timedelta(minutes=i), f"s{s}", "model-a") for i in range(5)]
    burst = T0 + timedelta(days=20)
    rows += [(burst + timedelta(minutes=i), "burst", "model-x") for i in range(30)]
    ts, sid, model = zip(*rows, strict=True)
    df = pl.DataFrame(
        {"timestamp": list(ts), "session_id": list(sid), "model": list(model)}
    ).with_columns(pl.lit("quiet").alias("route"), pl.lit("v1").alias("release"))
    assert find_changes(df, kinds=("model",)) == []
    # Without sessions every call counts alone, and the burst would pass for a new model.
    assert [c.after for c in find_changes(df.drop("session_id"), kinds=("model",))] == ["model-x"]
    # A real switch: every session from day 14 on uses model-b.
    switched = df.with_columns(
        pl.when(pl.col("timestamp") >= T0 + timedelta(days=14))
        .then(pl.lit("model-b"))
        .otherwise(pl.col("model"))
        .alias("model")
    )
    assert [c.after for c in find_changes(switched, kinds=("model",))] == ["model-b"]
