"""Partials → merge → finalize: accuracy against exact numpy/DuckDB computations."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmobs_cli.core.partials import PartialSpec, merge, partials
from llmobs_cli.core.partials.finalize import level_quantiles, level_sessions, level_sums
from llmobs_cli.core.partials.sketch import ALPHA, bin_expr, bin_value
from llmobs_cli.core.record.schema import SCHEMA
from llmobs_cli.core.report.engine import build_report
from llmobs_cli.core.report.pricing import PriceTable

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def exact_weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """Inverse weighted CDF: the smallest value whose cumulative weight reaches q·Σw."""
    order = np.argsort(x, kind="stable")
    xs, cw = x[order], np.cumsum(w[order])
    i = int(np.searchsorted(cw, q * (1 - 1e-12) * cw[-1], side="left"))
    return float(xs[min(i, len(xs) - 1)])


SPEC = PartialSpec(
    levels=((), ("g",)),
    sums=("w", "wx"),
    extrema=("x",),
    sketches=(("x", "w"),),
    session=("sid", "w"),
    session_levels=(0, 1),
)


def frame(x: list[float], w: list[float], g: list[str] | None = None) -> pl.DataFrame:
    n = len(x)
    return pl.DataFrame(
        {
            "x": pl.Series(x, dtype=pl.Float64),
            "w": pl.Series(w, dtype=pl.Float64),
            "g": g or ["a"] * n,
            "sid": pl.Series([i % 7 for i in range(n)], dtype=pl.UInt64),
        }
    ).with_columns((pl.col("w") * pl.col("x")).alias("wx"))


values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.just(0.0),
    st.floats(1e-6, 1e12).map(lambda v: round(v, 3)),  # heavy tail, ties after rounding
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(values, st.sampled_from([1.0, 2.0, 10.0, 100.0])), min_size=1, max_size=60)
)
def test_sketch_quantiles_within_alpha_of_exact(rows: list[tuple[float, float]]) -> None:
    x = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    got = level_quantiles(partials(frame(list(x), list(w)), SPEC), SPEC, 0, "x", QS)
    qv = got["x__q"][0].to_list()
    for q, v in zip(QS, qv, strict=True):
        exact = exact_weighted_quantile(x, w, q)
        # |x| < 1e-300 shares the smallest bucket (an absolute error below 2e-300).
        assert abs(v - exact) <= ALPHA * abs(exact) + 2e-300, (q, v, exact)


def test_single_value_and_extremes_are_exact() -> None:
    got = level_quantiles(partials(frame([123.0], [5.0]), SPEC), SPEC, 0, "x", QS)
    assert got["x__q"][0].to_list() == [123.0] * len(QS)
    x = [0.0, 0.0, 3.0, 1e9]
    got = level_quantiles(partials(frame(x, [1.0] * 4), SPEC), SPEC, 0, "x", (0.0, 0.5, 1.0))
    assert got["x__q"][0].to_list() == [0.0, 0.0, 1e9]


def test_bins_keep_order_and_representatives_within_alpha() -> None:
    x = np.concatenate([-np.logspace(8, -8, 400), [0.0], np.logspace(-8, 8, 400)])
    df = pl.DataFrame({"x": x}).with_columns(bin_expr(pl.col("x")).alias("b"))
    df = df.with_columns(bin_value(pl.col("b")).alias("r"))
    assert df["b"].is_sorted()
    rel = (df["r"] - df["x"]).abs() / df["x"].abs()
    assert rel.fill_nan(0.0).max() <= ALPHA * (1 + 1e-9)


def test_merge_of_batches_equals_one_pass_in_any_order() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    x = list(rng.lognormal(6, 1.2, n))
    w = list(rng.choice([1.0, 10.0, 100.0], n))
    g = list(rng.choice(["a", "b", "c"], n))
    whole = frame(x, w, g)
    parts = [partials(whole.slice(i, 700), SPEC) for i in range(0, n, 700)]
    random.Random(1).shuffle(parts)
    merged = merge([merge(parts[:3]), merge(parts[3:])])
    one = partials(whole, SPEC)
    for level in (0, 1):
        a = level_sums(merged, SPEC, level).sort(pl.all())
        b = level_sums(one, SPEC, level).sort(pl.all())
        for c in ("w", "wx", "sampled", "_min_x", "_max_x"):
            np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-12)
        qa = level_quantiles(merged, SPEC, level, "x", QS).sort(pl.all().exclude("x__q"))
        qb = level_quantiles(one, SPEC, level, "x", QS).sort(pl.all().exclude("x__q"))
        assert qa["x__q"].to_list() == qb["x__q"].to_list()
        sa = level_sessions(merged, SPEC, level)
        sb = level_sessions(one, SPEC, level)
        assert sa["sessions_sampled"].sum() == sb["sessions_sampled"].sum()
    # Exact against numpy on the whole.
    tot = level_sums(merged, SPEC, 0)
    assert math.isclose(tot["w"][0], float(np.sum(w)), rel_tol=1e-9)
    assert math.isclose(tot["wx"][0], float(np.dot(w, x)), rel_tol=1e-9)


def _traces(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "trace_id": [str(i) for i in range(n)],
            "timestamp": [t0 + timedelta(minutes=int(m)) for m in rng.integers(0, 20000, n)],
            "latency_ms": rng.lognormal(6, 1.0, n),
            "ttft_ms": rng.lognormal(4, 1.0, n),
            "model": rng.choice(["m1", "m2"], n).tolist(),
            "provider": ["p"] * n,
            "route": rng.choice(["chat", "search", "rag"], n).tolist(),
            "input_tokens": rng.integers(1, 5000, n),
            "output_tokens": rng.integers(1, 900, n),
            "cached_tokens": rng.integers(0, 2, n),
            "reasoning_tokens": pl.Series([None] * n, dtype=pl.Int64),
            "cache_write_tokens": pl.Series([None] * n, dtype=pl.Int64),
            "cost_usd": rng.random(n) / 100,
            "status": rng.choice(["ok", "ok", "ok", "error"], n).tolist(),
            "response": ["ok"] * n,
            "finish_reason": ["stop"] * n,
            "retrieved": pl.Series([None] * n, dtype=SCHEMA["retrieved"]),
            "session_id": [str(i // 5) for i in range(n)],
            "sample_rate": rng.choice([1.0, 0.5, 0.01], n),
        }
    )


@pytest.mark.parametrize("batch_rows", [97, 1_000_000])
def test_report_sums_equal_duckdb_exactly(batch_rows: int) -> None:
    df = _traces(3000, 5)
    rep = build_report(df, by=["route"], prices=PriceTable([]), batch_rows=batch_rows)
    con = duckdb.connect()
    con.register("t", df.to_arrow())
    sql = (
        "SELECT route, count(*), sum(1/sample_rate), sum(input_tokens/sample_rate), "
        "sum(cost_usd/sample_rate), sum(CASE WHEN status='error' THEN 1/sample_rate END)"
        "/sum(1/sample_rate), sum(1/sample_rate)^2/sum(1/sample_rate^2) FROM t GROUP BY route"
    )
    exact = {r[0]: r[1:] for r in con.execute(sql).fetchall()}
    for g in rep.groups:
        sampled, calls, tokens, cost, err, n_eff = exact[g["key"]["route"]]
        assert g["sampled"] == sampled
        for got, want in (
            (g["calls"], calls),
            (g["input_tokens"], tokens),
            (g["cost_usd"], cost),
            (g["error_rate"], err),
            (g["n_eff"], n_eff),
        ):
            assert math.isclose(got, want, rel_tol=1e-9), (got, want)
        sub = df.filter(pl.col("route") == g["key"]["route"])
        w = 1 / sub["sample_rate"].to_numpy()
        for q in (0.5, 0.95, 0.99):
            exact_q = exact_weighted_quantile(sub["latency_ms"].to_numpy(), w, q)
            got_q = g["latency_ms"][f"p{q * 100:g}"]
            assert abs(got_q - exact_q) <= ALPHA * exact_q


def test_streamed_report_equals_in_memory_report(tmp_path) -> None:
    """Files read in many batches (row groups, duplicates across them, a window) give the
    report of the whole input loaded at once."""
    import pyarrow.parquet as pq

    from llmobs_cli.core.ingest.readers import load
    from llmobs_cli.core.ingest.readers.stream import MIN_BATCH
    from llmobs_cli.core.report.engine import REPORT_COLUMNS, run_report

    df = _traces(3 * MIN_BATCH, 9).with_columns(("s" + pl.col("trace_id")).alias("span_id"))
    dup = df.slice(10, 500)  # the same calls again, in a later row group
    path = tmp_path / "t.parquet"
    pq.write_table(pl.concat([df, dup]).to_arrow(), path, row_group_size=5000)
    since, until = "2026-01-02T00:00:00Z", "2026-01-12T00:00:00Z"
    streamed = run_report(
        [path],
        by=["route"],
        prices=PriceTable([]),
        since=since,
        until=until,
        memory=1,  # the smallest batches
    ).report
    t0, t1 = (datetime.fromisoformat(x) for x in (since, until))
    whole = load([path], columns=[*REPORT_COLUMNS, "span_id"]).frame
    assert whole.height == df.height  # load counts the copies once too
    whole = whole.filter((pl.col("timestamp") >= t0) & (pl.col("timestamp") < t1))
    exact = build_report(whole, by=["route"], prices=PriceTable([]))
    assert streamed.overall["sampled"] == exact.overall["sampled"] == whole.height
    for a, b in zip(streamed.groups, exact.groups, strict=True):
        assert a["key"] == b["key"] and a["sampled"] == b["sampled"]
        for k in ("calls", "cost_usd", "input_tokens", "sessions", "error_rate"):
            assert math.isclose(a[k], b[k], rel_tol=1e-9), k
        for q in ("p50", "p95", "p99"):  # same buckets: the same quantiles
            assert a["latency_ms"][q] == b["latency_ms"][q]
        assert math.isclose(a["latency_ms"]["mean"], b["latency_ms"]["mean"], rel_tol=1e-12)


def test_stream_fail_policy_counts_problems_across_batches(tmp_path) -> None:
    """A bad row in a late batch still fails the run (exit 2), with the total count."""
    import pyarrow.parquet as pq

    from llmobs_cli.core.ingest.readers.stream import MIN_BATCH
    from llmobs_cli.core.report.engine import run_report
    from llmobs_cli.errors import InputError

    df = _traces(2 * MIN_BATCH, 4)
    bad = df.with_columns(
        pl.when(pl.int_range(pl.len()) >= df.height - 3)
        .then(pl.lit(-1.0))
        .otherwise(pl.col("sample_rate"))
        .alias("sample_rate")
    )
    path = tmp_path / "t.parquet"
    pq.write_table(bad.to_arrow(), path, row_group_size=4000)
    with pytest.raises(InputError) as err:
        run_report([path], by=["route"], prices=PriceTable([]), memory=1)
    assert err.value.total == 3  # the three bad rows, all in the last batch
    assert f"row {df.height - 2}: sample_rate" in err.value.problems[0]


LEVELED = PartialSpec(
    levels=((), ("g", "h"), ("h",), ("b", "g", "h"), ("b",)),
    sums=("w", "wx"),
    extrema=("x",),
    sketches=(("x", "w"),),
    sketch_levels=(0, 1, 2, 4),
    session=("sid", "w"),
    session_levels=(0, 1, 2, 3),
)


def _leveled(kind: str) -> pl.DataFrame:
    rng = np.random.default_rng(9)
    n = {"single": 1}.get(kind, 500)
    g = list(rng.choice(["a", "b", None], n))
    h = list(rng.choice(["x", None], n))
    if kind == "all_null_keys":
        g, h = [None] * n, [None] * n
    sid = rng.integers(0, 40, n) if kind != "one_session" else np.zeros(n, dtype=np.int64)
    w = rng.choice([1.0, 10.0, 4.0], n) if kind != "unsampled" else np.ones(n)
    x = np.round(rng.lognormal(3, 1, n), 2)
    x[: n // 10] = 0.0
    return pl.DataFrame(
        {
            "x": pl.Series(x, dtype=pl.Float64),
            "w": pl.Series(w, dtype=pl.Float64),
            "g": pl.Series(g, dtype=pl.String),
            "h": pl.Series(h, dtype=pl.String),
            "b": pl.Series(rng.integers(0, 3, n), dtype=pl.Int64),
            "sid": pl.Series(sid, dtype=pl.UInt64),
        }
    ).with_columns((pl.col("w") * pl.col("x")).alias("wx"))


@pytest.mark.parametrize("kind", ["mixed", "single", "all_null_keys", "one_session", "unsampled"])
def test_derived_levels_equal_each_level_grouped_on_its_own(kind: str) -> None:
    """Levels regrouped from a root grouping (and keys coded as the batch's Enum) give what
    grouping the rows by each level's own keys gives: totals, extrema, sketch bins and
    sessions, with null keys, one row, one session and unit weights."""
    rows = _leveled(kind)
    merged = partials(rows, LEVELED)
    for i, keys in enumerate(LEVELED.levels):
        ks = list(keys)
        aggs = [
            pl.len().alias("sampled"),
            pl.col("w").sum(),
            pl.col("wx").sum(),
            pl.col("x").min().alias("_min_x"),
            pl.col("x").max().alias("_max_x"),
        ]
        want = rows.group_by(ks).agg(aggs) if ks else rows.select(aggs)
        got = level_sums(merged, LEVELED, i)
        assert got.height == want.height
        joined = (
            got.join(want, on=ks, how="full", nulls_equal=True, suffix="_w")
            if ks
            else pl.concat([got, want.rename(lambda c: c + "_w")], how="horizontal")
        )
        assert joined.height == want.height
        for c in ("sampled", "w", "wx", "_min_x", "_max_x"):
            a, b = joined[c].cast(pl.Float64), joined[f"{c}_w"].cast(pl.Float64)
            assert ((a - b).abs() <= 1e-9 * b.abs()).all(), (kind, i, c)
        if i in LEVELED.sketch_levels:
            bins = (
                rows.with_columns(bin_expr(pl.col("x")).alias("k:bin"))
                .group_by([*ks, "k:bin"])
                .agg(pl.col("w").sum().alias("want"))
            )
            q = (
                merged.filter((pl.col("k:part") == "q") & (pl.col("k:level") == i))
                .rename({f"k:{f}": f for f in ks})
                .select(*ks, "k:bin", pl.col("sum:v"))
            )
            both = q.join(bins, on=[*ks, "k:bin"], how="full", nulls_equal=True)
            assert both.height == bins.height == q.height
            assert ((both["sum:v"] - both["want"]).abs() <= 1e-9 * both["want"]).all()
        if i in LEVELED.session_levels:
            per = rows.group_by([*ks, "sid"]).agg((pl.col("w").sum() / pl.len()).alias("m"))
            stats = [pl.col("m").sum().alias("s_w"), pl.len().alias("n_w")]
            want_s = per.group_by(ks).agg(stats) if ks else per.select(stats)
            got_s = level_sessions(merged, LEVELED, i)
            js = (
                got_s.join(want_s, on=ks, how="full", nulls_equal=True)
                if ks
                else pl.concat([got_s, want_s], how="horizontal")
            )
            assert js.height == want_s.height
            assert ((js["sessions"] - js["s_w"]).abs() <= 1e-9 * js["s_w"]).all()
            assert (js["sessions_sampled"] == js["n_w"]).all()
