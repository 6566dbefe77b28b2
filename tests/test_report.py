"""Every weighted statistic of ``build_report`` against the expanded population.

A row with integer weight w = 1/sample_rate stands for w calls; repeating each row w
times (``np.repeat``) gives the population the report estimates, on which plain numpy
(percentiles with ``method="inverted_cdf"``, means, sums) is the independent truth.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from llmobs_cli.core.partials.sketch import ALPHA
from llmobs_cli.core.record.schema import SCHEMA
from llmobs_cli.core.report.engine import Report, build_report, metric_paths
from llmobs_cli.core.report.pricing import PriceEntry, PriceTable

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
REFUSAL = "I'm sorry, but I can't help with that."
QS = (0.5, 0.95, 0.99)


def canonical(data: dict[str, Any]) -> pl.DataFrame:
    """A canonical frame (every SCHEMA column, missing ones null) from column lists."""
    n = len(next(iter(data.values())))
    cols = {}
    for name, dtype in SCHEMA.items():
        if name in data:
            cols[name] = pl.Series(name, data[name]).cast(dtype)
        else:
            cols[name] = pl.Series(name, [None] * n, dtype=dtype)
    frame = pl.DataFrame(cols)
    return frame.with_columns(
        pl.col("trace_id").fill_null(pl.int_range(pl.len()).cast(pl.String)),
        pl.col("status").fill_null("ok"),
        pl.col("route").fill_null("default"),
        pl.col("sample_rate").fill_null(1.0),
    )


def random_frame(
    n: int, seed: int, *, rates: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1)
) -> pl.DataFrame:
    """Mixed sample rates within every route, nulls sprinkled in, known models."""
    rng = np.random.default_rng(seed)
    routes = rng.choice(["chat", "search", "refunds"], n)
    models = rng.choice(["gpt-4o-mini", "gpt-4o"], n)
    latency = np.round(rng.lognormal(6.5, 0.8, n), 1)
    ttft = np.where(rng.random(n) < 0.2, np.nan, np.round(rng.lognormal(5.5, 0.6, n), 1))
    inp = rng.integers(50, 4000, n)
    cached = (inp * rng.random(n) * (rng.random(n) < 0.5)).astype(int)
    out = rng.integers(1, 800, n)
    status = np.where(rng.random(n) < 0.08, "error", "ok")
    response = np.where(rng.random(n) < 0.12, REFUSAL, "Sure: the answer is 42.")
    ts = [T0 + timedelta(hours=float(h)) for h in rng.uniform(0, 24 * 9, n)]
    return canonical(
        {
            "timestamp": ts,
            "route": list(routes),
            "model": list(models),
            "latency_ms": list(latency),
            "ttft_ms": [None if np.isnan(x) else float(x) for x in ttft],
            "input_tokens": list(inp),
            "cached_tokens": list(cached),
            "output_tokens": list(out),
            "status": list(status),
            "response": list(response),
            "sample_rate": list(rng.choice(rates, n)),
            "session_id": [f"s{i}" for i in range(n)],
        }
    )


MINI = PriceEntry(model="gpt-4o-mini", input=0.15, cached_input=0.075, output=0.60)
FOUR = PriceEntry(model="gpt-4o", input=2.5, cached_input=1.25, output=10.0)
TABLE = PriceTable([MINI, FOUR])


def row_cost(df: pl.DataFrame) -> np.ndarray:
    """Independent per-row cost from the two known prices."""
    p = {"gpt-4o-mini": (0.15, 0.075, 0.60), "gpt-4o": (2.5, 1.25, 10.0)}
    out = []
    for m, i, c, o in zip(
        df["model"],
        df["input_tokens"],
        df["cached_tokens"],
        df["output_tokens"],
        strict=True,
    ):
        pi, pc, po = p[m]
        out.append(((i - c) * pi + c * pc + o * po) / 1e6)
    return np.array(out)


def expand(df: pl.DataFrame) -> dict[str, np.ndarray]:
    """The population the weights stand for: each row repeated 1/sample_rate times."""
    w = np.rint(1.0 / df["sample_rate"].to_numpy()).astype(int)
    idx = np.repeat(np.arange(df.height), w)
    pop = {
        c: df[c].to_numpy()[idx]
        for c in (
            "latency_ms",
            "ttft_ms",
            "input_tokens",
            "cached_tokens",
            "output_tokens",
            "status",
            "response",
        )
    }
    pop["cost"] = row_cost(df)[idx]
    return pop


def check_against_population(m: dict[str, Any], df: pl.DataFrame) -> None:
    pop = expand(df)
    n = len(pop["latency_ms"])
    assert m["sampled"] == df.height
    assert m["calls"] == pytest.approx(n)
    w = 1.0 / df["sample_rate"].to_numpy()
    assert m["n_eff"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    for col in ("latency_ms", "ttft_ms"):
        vals = pop[col].astype(float)
        vals = vals[~np.isnan(vals)]
        for q in QS:
            key = f"p{q * 100:g}"
            # The log-bucket sketch: within α relative error of the exact quantile.
            assert m[col][key] == pytest.approx(
                np.percentile(vals, q * 100, method="inverted_cdf"), rel=ALPHA
            ), (col, q)
        assert m[col]["mean"] == pytest.approx(vals.mean())
    assert m["input_tokens"] == pytest.approx(pop["input_tokens"].sum())
    assert m["output_tokens"] == pytest.approx(pop["output_tokens"].sum())
    assert m["cached_tokens"] == pytest.approx(pop["cached_tokens"].sum())
    assert m["cache_hit_rate"] == pytest.approx(
        pop["cached_tokens"].sum() / pop["input_tokens"].sum()
    )
    assert m["cost_usd"] == pytest.approx(pop["cost"].sum())
    assert m["cost_per_call_usd"] == pytest.approx(pop["cost"].mean())
    err = pop["status"] == "error"
    assert m["error_rate"] == pytest.approx(err.mean())
    ok = ~err
    if ok.any():
        assert m["refusal_rate"] == pytest.approx((pop["response"][ok] == REFUSAL).mean())
    else:
        assert m["refusal_rate"] is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overall_and_groups_match_expanded_population(seed: int) -> None:
    df = random_frame(600, seed)
    rep = build_report(df, by=["route", "model"], prices=TABLE)
    check_against_population(rep.overall, df)
    assert len(rep.groups) == 6
    for g in rep.groups:
        sub = df.filter(
            (pl.col("route") == g["key"]["route"]) & (pl.col("model") == g["key"]["model"])
        )
        assert sub["sample_rate"].n_unique() > 1  # mixed rates inside the group
        check_against_population(g, sub)


def test_unweighted_answer_would_differ() -> None:
    """Sanity of the test itself: weighting matters on this data."""
    df = random_frame(600, 0)
    rep = build_report(df, by=[], prices=TABLE)
    raw = np.percentile(df["latency_ms"].to_numpy(), 99, method="inverted_cdf")
    assert rep.overall["calls"] != df.height
    assert (
        rep.overall["latency_ms"]["p99"] != pytest.approx(raw) or rep.overall["calls"] != df.height
    )


def test_single_row_group() -> None:
    df = canonical(
        {
            "timestamp": [T0],
            "route": ["solo"],
            "model": ["gpt-4o"],
            "latency_ms": [123.0],
            "ttft_ms": [45.0],
            "input_tokens": [1000],
            "cached_tokens": [200],
            "output_tokens": [100],
            "sample_rate": [0.25],
            "response": ["fine"],
        }
    )
    rep = build_report(df, prices=TABLE)
    (g,) = rep.groups
    assert g["sampled"] == 1 and g["calls"] == 4 and g["n_eff"] == 1
    assert g["latency_ms"] == {"p50": 123.0, "p95": 123.0, "p99": 123.0, "mean": 123.0}
    assert g["ttft_ms"]["p99"] == 45.0
    assert g["cost_usd"] == pytest.approx(4 * (800 * 2.5 + 200 * 1.25 + 100 * 10) / 1e6)
    assert g["cache_hit_rate"] == pytest.approx(0.2)


def test_all_error_group() -> None:
    df = canonical(
        {
            "timestamp": [T0, T0, T0],
            "route": ["broken", "broken", "fine"],
            "model": ["gpt-4o", "gpt-4o", "gpt-4o"],
            "latency_ms": [10.0, 20.0, 30.0],
            "status": ["error", "error", "ok"],
            "sample_rate": [0.5, 1.0, 1.0],
            "response": [None, None, REFUSAL],
        }
    )
    rep = build_report(df, prices=TABLE)
    broken = next(g for g in rep.groups if g["key"] == {"route": "broken"})
    assert broken["error_rate"] == 1.0
    assert broken["refusal_rate"] is None  # no successful call: undefined, not 0
    assert broken["calls"] == 3
    # Failed calls without tokens cost nothing and are not unpriced.
    assert broken["cost_usd"] == 0 and broken["unpriced_calls"] == 0
    fine = next(g for g in rep.groups if g["key"] == {"route": "fine"})
    assert fine["refusal_rate"] == 1.0
    assert rep.overall["error_rate"] == pytest.approx(3 / 4)


def test_empty_input_gives_empty_report() -> None:
    df = random_frame(50, 3).filter(pl.col("route") == "nothing-matches")
    rep = build_report(df, by=["route"], bucket="day", prices=TABLE)
    assert rep.groups == [] and rep.buckets == []
    o = rep.overall
    assert o["sampled"] == 0 and o["calls"] == 0
    assert (
        o["latency_ms"]["p99"] is None
        and o["error_rate"] is None
        and o["cost_per_call_usd"] is None
    )
    d = rep.as_dict()
    assert set(d) >= {"window", "overall", "groups", "buckets", "alerts"}


def test_empty_group_is_absent_not_zero() -> None:
    df = random_frame(200, 4)
    rep = build_report(df.filter(pl.col("route") != "refunds"), by=["route"], prices=TABLE)
    assert {g["key"]["route"] for g in rep.groups} == {"chat", "search"}


def test_contract_keys_and_json_safety() -> None:
    rep = build_report(random_frame(100, 5), by=["route"], bucket="day", prices=TABLE)
    d = rep.as_dict()
    contract = {
        "sampled",
        "calls",
        "latency_ms",
        "ttft_ms",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cache_hit_rate",
        "cost_usd",
        "cost_per_call_usd",
        "error_rate",
        "refusal_rate",
    }
    for m in [d["overall"], *d["groups"], *(b["overall"] for b in d["buckets"])]:
        assert contract <= set(m)
        assert set(m["latency_ms"]) == {"p50", "p95", "p99", "mean"}
        assert {"p50", "p95", "p99"} <= set(m["ttft_ms"])
    assert d["groups"][0]["key"].keys() == {"route"}
    assert set(d["window"]) == {"start", "end"}
    import json

    json.dumps(d, allow_nan=False)


def test_buckets_match_per_day_subsets() -> None:
    df = random_frame(500, 6)
    rep = build_report(df, by=["route"], bucket="day", prices=TABLE)
    days = df.with_columns(pl.col("timestamp").dt.truncate("1d").alias("d"))["d"].unique().sort()
    assert [b["start"] for b in rep.buckets] == [d.isoformat() for d in days]
    for b in rep.buckets:
        start = datetime.fromisoformat(b["start"])
        assert datetime.fromisoformat(b["end"]) - start == timedelta(days=1)
        sub = df.filter(
            (pl.col("timestamp") >= start) & (pl.col("timestamp") < start + timedelta(days=1))
        )
        check_against_population(b["overall"], sub)
        for g in b["groups"]:
            check_against_population(g, sub.filter(pl.col("route") == g["key"]["route"]))


@pytest.mark.parametrize(
    ("bucket", "span"), [("hour", timedelta(hours=1)), ("week", timedelta(days=7))]
)
def test_hour_and_week_buckets(bucket: str, span: timedelta) -> None:
    df = random_frame(300, 7)
    rep = build_report(df, by=[], bucket=bucket, prices=TABLE)
    assert sum(b["overall"]["sampled"] for b in rep.buckets) == df.height
    for b in rep.buckets:
        start = datetime.fromisoformat(b["start"])
        assert datetime.fromisoformat(b["end"]) - start == span
        if bucket == "week":
            assert start.weekday() == 0  # ISO weeks start on Monday


def test_group_by_metadata_key_and_null_key() -> None:
    df = random_frame(120, 8).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(pl.lit('{"tier": "gold"}'))
        .when(pl.int_range(pl.len()) % 3 == 1)
        .then(pl.lit('{"tier": "free"}'))
        .otherwise(pl.lit(None))
        .alias("metadata")
    )
    rep = build_report(df, by=["metadata.tier"], prices=TABLE)
    keys = {g["key"]["metadata.tier"] for g in rep.groups}
    assert keys == {"gold", "free", None}
    assert sum(g["sampled"] for g in rep.groups) == df.height
    gold = next(g for g in rep.groups if g["key"]["metadata.tier"] == "gold")
    check_against_population(gold, df.filter(pl.int_range(pl.len()) % 3 == 0))


def test_groups_sorted_by_cost() -> None:
    rep = build_report(random_frame(300, 9), by=["route", "model"], prices=TABLE)
    costs = [g["cost_usd"] for g in rep.groups]
    assert costs == sorted(costs, reverse=True)


def test_groups_of_equal_cost_up_to_float_noise_sort_by_calls() -> None:
    """Two groups of the same cost, summed in different orders (0.1641 and
    0.16409999999999997): the one with more calls comes first, whatever the last bits
    (the dashboard's per-bucket groups reordered between batchings otherwise)."""
    from llmobs_cli.core.report.engine import _sort_groups

    a = {"key": {"route": "support"}, "cost_usd": 0.1641, "calls": 38.0}
    b = {"key": {"route": "search"}, "cost_usd": 0.16409999999999997, "calls": 70.0}
    c = {"key": {"route": "chat"}, "cost_usd": 0.1642, "calls": 1.0}
    assert [g["key"]["route"] for g in _sort_groups([a, b, c])] == ["chat", "search", "support"]
    assert [g["key"]["route"] for g in _sort_groups([b, a, c])] == ["chat", "search", "support"]


def test_sessions_exact_when_whole_sessions_are_sampled() -> None:
    # 40 sessions of 3 calls each; whole sessions kept at rate 0.5 or 1.0.
    rng = np.random.default_rng(10)
    rates = rng.choice([0.5, 1.0], 40)
    rows = [(f"s{s}", rates[s]) for s in range(40) for _ in range(3)]
    df = canonical(
        {
            "timestamp": [T0] * len(rows),
            "model": ["gpt-4o"] * len(rows),
            "latency_ms": [100.0] * len(rows),
            "input_tokens": [1000] * len(rows),
            "output_tokens": [10] * len(rows),
            "session_id": [s for s, _ in rows],
            "sample_rate": [r for _, r in rows],
        }
    )
    rep = build_report(df, by=[], prices=TABLE)
    o = rep.overall
    assert o["sessions"] == pytest.approx((1 / rates).sum())
    assert o["sessions_sampled"] == 40
    per_call = (1000 * 2.5 + 10 * 10) / 1e6
    assert o["cost_per_session_usd"] == pytest.approx(3 * per_call)


def test_citation_rate_on_calls_with_documents() -> None:
    docs = [
        {
            "id": "doc-1",
            "content": "Refund window: Refunds are accepted within 30 days of purchase.",
            "score": 0.9,
        },
        {"id": "doc-2", "content": "Shipping: Orders ship in two business days.", "score": 0.5},
    ]
    df = canonical(
        {
            "timestamp": [T0] * 5,
            "model": ["gpt-4o"] * 5,
            "latency_ms": [1.0] * 5,
            "response": [
                "See [doc-2] for shipping.",  # cites by id
                "Refunds are accepted within 30 days of purchase, so you are fine.",  # quotes doc-1
                "I do not know.",  # neither
                "No documents here.",  # no retrieved: not counted
                None,  # documents but no response: not a citation
            ],
            "retrieved": [docs, docs, docs, None, docs],
            "sample_rate": [1.0, 0.5, 1.0, 1.0, 1.0],
        }
    )
    rep = build_report(df, by=[], prices=TABLE)
    # weights: 1 (cites) + 2 (cites) + 1 (no) + 1 (no response) = 5 with documents.
    assert rep.overall["citation_rate"] == pytest.approx(3 / 5)
    assert rep.overall["rag_calls"] == 5


def test_refusal_patterns_and_content_filter() -> None:
    df = canonical(
        {
            "timestamp": [T0] * 4,
            "model": ["gpt-4o"] * 4,
            "latency_ms": [1.0] * 4,
            "response": ["Computer says no.", REFUSAL, None, "ok"],
            "finish_reason": ["stop", "stop", "content_filter", "stop"],
        }
    )
    default = build_report(df, by=[], prices=TABLE).overall["refusal_rate"]
    assert default == pytest.approx(2 / 4)
    custom = build_report(df, by=[], prices=TABLE, refusal_patterns=[r"computer says no"]).overall
    assert custom["refusal_rate"] == pytest.approx(2 / 4)  # its pattern + content_filter


def test_rows_and_frame_flatten_every_level() -> None:
    rep = build_report(random_frame(200, 11), by=["route"], bucket="day", prices=TABLE)
    rows = rep.rows()
    levels = [r["level"] for r in rows]
    assert levels.count("overall") == 1 and levels.count("group") == len(rep.groups)
    assert levels.count("bucket") == len(rep.buckets)
    frame = rep.frame()
    assert frame.height == len(rows)
    assert {"latency_ms.p99", "cost_usd", "route", "bucket_start"} <= set(frame.columns)
    assert frame.filter(pl.col("level") == "overall")["calls"].item() == pytest.approx(
        rep.overall["calls"]
    )


def test_metric_paths_cover_contract() -> None:
    paths = set(metric_paths())
    assert {
        "latency_ms.p99",
        "ttft_ms.p50",
        "cost_per_call_usd",
        "error_rate",
        "unpriced_calls",
    } <= paths


def test_report_is_a_dataclass_with_as_dict() -> None:
    rep = build_report(random_frame(30, 12), prices=TABLE)
    assert isinstance(rep, Report) and not rep.fired
    assert rep.as_dict()["alerts"] == []
