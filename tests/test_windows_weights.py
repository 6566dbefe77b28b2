"""Time windows and the weighted statistics primitives, against numpy/scipy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from llmobs_cli.core.record import weights as W
from llmobs_cli.core.record.windows import (
    after,
    parse_duration,
    resolve_bound,
    resolve_now,
    resolve_window,
)
from llmobs_cli.errors import UsageError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_named_windows_chain() -> None:
    cur = resolve_window("last_week", NOW)
    base = resolve_window("last_month", NOW, end=cur.start)
    assert cur.end == after(NOW) and cur.end - cur.start == timedelta(days=7)
    assert base.end == cur.start and base.end - base.start == timedelta(days=30)


def test_explicit_and_duration_windows() -> None:
    w = resolve_window("2026-11-01..2026-11-08", NOW)
    assert w.start == datetime(2026, 11, 1, tzinfo=UTC) and w.end == datetime(
        2026, 11, 8, tzinfo=UTC
    )
    assert resolve_window("3d", NOW).start == after(NOW) - timedelta(days=3)
    assert resolve_bound("24h", NOW, "--since") == NOW - timedelta(hours=24)
    assert resolve_bound("2026-11-01T00:00:00+01:00", NOW, "--since") == datetime(
        2026, 10, 31, 23, tzinfo=UTC
    )
    assert parse_duration("2w") == timedelta(days=14) and parse_duration("soon") is None
    with pytest.raises(UsageError, match="ends before it starts"):
        resolve_window("2026-11-08..2026-11-01", NOW)
    with pytest.raises(UsageError, match="--current: expected a window name"):
        resolve_window("lastweek", NOW)
    with pytest.raises(UsageError, match="--since: not an RFC 3339 time"):
        resolve_bound("yesterday", NOW, "--since")
    assert resolve_now(None, NOW) == NOW
    assert resolve_now("2026-01-01", NOW) == datetime(2026, 1, 1, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1000), st.sampled_from([1, 2, 4, 10, 100])),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.01]),
)
def test_weighted_quantile_matches_expanded_population(
    rows: list[tuple[int, int]], q: float
) -> None:
    x = np.array([r[0] for r in rows], dtype=float)
    w = np.array([r[1] for r in rows], dtype=float)
    expanded = np.repeat(x, w.astype(int))
    truth = float(np.quantile(expanded, q, method="inverted_cdf"))
    assert W.weighted_quantile(x, w, q) == truth
    df = pl.DataFrame({"g": ["a"] * len(x), "v": x, "_w": w})
    got = df.group_by("g").agg(W.quantile_aggs("v", [q]))
    assert got.item(0, 1) == truth


def test_quantile_aggs_ignores_nulls_and_groups() -> None:
    df = pl.DataFrame(
        {"g": ["a", "a", "a", "b"], "v": [1.0, None, 3.0, 7.0], "_w": [1.0, 100.0, 1.0, 2.0]}
    )
    out = df.group_by("g").agg(W.quantile_aggs("v", [0.5])).sort("g")
    assert out["v_p50"].to_list() == [1.0, 7.0]


def test_n_eff_and_hajek() -> None:
    w = np.array([1.0, 1.0, 2.0, 4.0])
    assert W.n_eff(w) == pytest.approx(w.sum() ** 2 / (w**2).sum())
    df = pl.DataFrame({"y": [1.0, 0.0, None, 1.0], "_w": w})
    got = df.select(W.hajek_expr(pl.col("y")).alias("m"), W.n_eff_expr().alias("n")).row(0)
    assert got[0] == pytest.approx((1 * 1 + 0 * 1 + 4 * 1) / (1 + 1 + 4))
    assert got[1] == pytest.approx(W.n_eff(w))


def test_hajek_ci_covers_truth() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    trials = 300
    strata_pop = np.repeat([0, 1, 2], 1500)
    rates_pop = np.array([0.1, 0.5, 1.0])[strata_pop]
    for _ in range(trials):
        y_pop = rng.normal(0.6 + 0.1 * strata_pop, 0.2)
        keep = rng.random(strata_pop.size) < rates_pop  # storage sampling by stratum
        _mean, lo, hi, _se = W.hajek_mean_ci(y_pop[keep], 1 / rates_pop[keep], strata_pop[keep])
        covered += lo <= y_pop.mean() <= hi
    assert 0.92 <= covered / trials <= 0.98


def test_wilson_matches_statsmodels_formula() -> None:
    lo, hi = W.wilson(0.2, 50)
    z = stats.norm.ppf(0.975)
    centre = (0.2 + z * z / 100) / (1 + z * z / 50)
    assert (lo + hi) / 2 == pytest.approx(centre)


def test_benjamini_hochberg_matches_scipy() -> None:
    p = [0.01, 0.04, 0.03, 0.2, float("nan")]
    got = W.benjamini_hochberg(p)
    want = stats.false_discovery_control([0.01, 0.04, 0.03, 0.2])
    assert np.allclose(got[:4], want) and np.isnan(got[4])
