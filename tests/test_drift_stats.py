"""Drift statistics against independent scipy/numpy computations, and their calibration
under route-dependent weights (simulated, seeded)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from llmobs_cli.core.drift.stats import BY_KIND, TESTS, rng_for
from llmobs_cli.core.drift.stats.ks import _prep, ks_test, null_scale, weighted_ks
from llmobs_cli.core.drift.stats.slope import slope_test, wls_slope
from llmobs_cli.core.drift.stats.wald_shares import (
    from_codes,
    from_counts,
    js_distance,
    psi,
    wald_shares_test,
)


def test_registry_maps_kinds_to_tests() -> None:
    assert BY_KIND["numeric"] == "ks"
    for kind in ("categorical", "rate", "vocabulary", "topic"):
        assert BY_KIND[kind] == "wald_chi2"
    assert BY_KIND["calibration"] == "slope_wald"
    assert set(BY_KIND.values()) <= set(TESTS)


@pytest.mark.parametrize("seed", range(6))
def test_weighted_ks_equals_scipy_on_expanded_rows(seed: int) -> None:
    r = np.random.default_rng(seed)
    n1, n2 = r.integers(5, 200, 2)
    # Ties on purpose (rounded values) as well as continuous ones.
    x1 = np.round(r.normal(size=n1), 1 if seed % 2 else 6)
    x2 = np.round(r.normal(0.3, 1.2, size=n2), 1 if seed % 2 else 6)
    w1, w2 = r.integers(1, 6, n1), r.integers(1, 6, n2)
    expected = stats.ks_2samp(np.repeat(x1, w1), np.repeat(x2, w2)).statistic
    assert weighted_ks(x1, w1.astype(float), x2, w2.astype(float)) == pytest.approx(
        expected, abs=1e-12
    )
    res = ks_test((x1, w1), (x2, w2), rng=rng_for(0, seed), replicates=50)
    assert res.statistic == pytest.approx(expected, abs=1e-12)


def test_ks_medians_and_wasserstein_match_numpy_and_scipy() -> None:
    r = np.random.default_rng(3)
    x1, x2 = r.lognormal(5, 0.5, 300), r.lognormal(5.2, 0.5, 250)
    w1, w2 = r.integers(1, 4, 300), r.integers(1, 4, 250)
    res = ks_test((x1, w1), (x2, w2), rng=rng_for(0), replicates=50)
    e1, e2 = np.repeat(x1, w1), np.repeat(x2, w2)
    assert res.extras["median_baseline"] == pytest.approx(
        np.quantile(e1, 0.5, method="inverted_cdf")
    )
    assert res.extras["median_current"] == pytest.approx(
        np.quantile(e2, 0.5, method="inverted_cdf")
    )
    wd = stats.wasserstein_distance(x1, x2, w1, w2)
    assert res.extras["wasserstein_norm"] == pytest.approx(wd / np.std(e1), rel=1e-9)


@pytest.mark.parametrize("n1,n2", [(400, 300), (30_000, 20_000)])
def test_null_scale_matches_classical_ks_without_weights(n1: int, n2: int) -> None:
    """Constant weights: the bootstrap scale ≈ √((n₁+n₂)/(n₁n₂)) (both regimes)."""
    r = np.random.default_rng(1)
    x1, x2 = r.normal(size=n1), r.normal(size=n2)
    xs, a, b, _ = _prep(x1, np.ones(n1), x2, np.ones(n2))
    s = null_scale(xs, a, b, rng_for(0, n1), 300)
    assert s == pytest.approx(np.sqrt((n1 + n2) / (n1 * n2)), rel=0.12)


@pytest.mark.parametrize("seed", range(4))
def test_wald_shares_equals_pearson_chi2_without_weights(seed: int) -> None:
    r = np.random.default_rng(seed)
    k = int(r.integers(2, 7))
    c1 = r.integers(0, k, int(r.integers(50, 500)))
    c2 = r.choice(k, int(r.integers(50, 500)), p=np.arange(1, k + 1) / np.arange(1, k + 1).sum())
    res = wald_shares_test(from_codes(c1, np.ones(c1.size), k), from_codes(c2, np.ones(c2.size), k))
    table = np.array([np.bincount(c1, minlength=k), np.bincount(c2, minlength=k)])
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    assert res.statistic == pytest.approx(chi2, rel=1e-9)
    assert res.p_value == pytest.approx(p, rel=1e-6)
    assert res.extras["df"] == dof


def test_wald_shares_with_integer_weights_is_the_expanded_share_difference() -> None:
    """Weighted shares equal the expanded table's shares; the variance uses Σw² (so the
    statistic is *not* the expanded Pearson χ², which would overstate n)."""
    r = np.random.default_rng(9)
    c1, c2 = r.integers(0, 3, 200), r.integers(0, 3, 150)
    w1, w2 = r.integers(1, 5, 200).astype(float), r.integers(1, 5, 150).astype(float)
    s1 = from_codes(c1, w1, 3)
    expanded = np.bincount(np.repeat(c1, w1.astype(int)), minlength=3)
    assert s1.shares == pytest.approx(expanded / expanded.sum())
    res = wald_shares_test(s1, from_codes(c2, w2, 3))
    table = np.array(
        [
            np.bincount(np.repeat(c1, w1.astype(int)), minlength=3),
            np.bincount(np.repeat(c2, w2.astype(int)), minlength=3),
        ]
    )
    naive = stats.chi2_contingency(table, correction=False)[0]
    assert res.statistic < naive  # the expanded rows are not independent calls


def test_rate_is_two_proportion_z_squared() -> None:
    r = np.random.default_rng(4)
    y1, y2 = (r.random(800) < 0.05).astype(int), (r.random(900) < 0.09).astype(int)
    res = wald_shares_test(
        from_codes(y1, np.ones(800), 2), from_codes(y2, np.ones(900), 2), rate=True
    )
    p = (y1.sum() + y2.sum()) / 1700
    z = (y2.mean() - y1.mean()) / np.sqrt(p * (1 - p) * (1 / 800 + 1 / 900))
    assert res.statistic == pytest.approx(z * z, rel=1e-9)
    assert res.effect_size == pytest.approx(abs(y2.mean() - y1.mean()) * 100)
    assert res.effect_name == "pp"


def test_clusters_of_one_row_change_nothing_and_real_clusters_widen() -> None:
    r = np.random.default_rng(2)
    c, w = r.integers(0, 4, 600), r.integers(1, 5, 600).astype(float)
    plain = from_codes(c, w, 4)
    single = from_codes(c, w, 4, clusters=np.arange(600))
    assert single.m == pytest.approx(plain.m)
    assert single.b == pytest.approx(plain.b)
    # Sessions of 6 rows sharing a category: the covariance must grow.
    sess = np.repeat(np.arange(100), 6)
    cs = np.repeat(r.integers(0, 4, 100), 6)
    other = r.integers(0, 4, 600)
    x_row = wald_shares_test(from_codes(cs, np.ones(600), 4), from_codes(other, np.ones(600), 4))
    x_cl = wald_shares_test(
        from_codes(cs, np.ones(600), 4, clusters=sess),
        from_codes(other, np.ones(600), 4, clusters=np.arange(600)),
    )
    assert x_cl.statistic < x_row.statistic


def test_counts_covariance_matches_a_direct_linearisation() -> None:
    r = np.random.default_rng(5)
    n, k = 50, 3
    counts = r.integers(0, 4, (n, k)).astype(float)
    t = counts.sum(axis=1) + r.integers(0, 3, n)
    w = r.integers(1, 4, n).astype(float)
    st = from_counts(counts, w, t)
    p = st.s / st.t
    u = w[:, None] * (counts - np.outer(t, p)) / st.t
    direct = u.T @ u
    lin = (st.m - np.outer(st.a, p) - np.outer(p, st.a) + st.b * np.outer(p, p)) / st.t**2
    assert lin == pytest.approx(direct, abs=1e-12)


def test_effect_sizes_against_scipy_and_formula() -> None:
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.3, 0.3, 0.4])
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert psi(p, q) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))


def test_slope_matches_weighted_polyfit() -> None:
    r = np.random.default_rng(6)
    x = r.random(300)
    y = 0.2 + 0.6 * x + r.normal(0, 0.1, 300)
    w = r.integers(1, 5, 300).astype(float)
    beta, var, _ = wls_slope(x, y, w)
    # np.polyfit weights multiply residuals, so pass √w for weighted least squares.
    assert beta == pytest.approx(np.polyfit(x, y, 1, w=np.sqrt(w))[0], rel=1e-9)
    assert var > 0
    y2 = 0.2 + 0.1 * x + r.normal(0, 0.1, 300)
    res = slope_test((x, y, w), (x, y2, w))
    assert res.p_value < 1e-6 and res.effect_size == pytest.approx(
        abs(res.extras["slope_current"] - beta)
    )


# --- calibration ----------------------------------------------------------------------


def _routes_sample(r: np.random.Generator, n: int, chat_rate: float) -> tuple[np.ndarray, ...]:
    """Two routes with different lengths and languages; chat kept at ``chat_rate``,
    refunds at 0.5; a fixed population mix (90 % chat)."""
    pop = np.where(r.random(n * 14) < 0.9, 0, 1)
    rate = np.where(pop == 0, chat_rate, 0.5)
    kept = pop[r.random(pop.size) < rate][:n]
    w = np.where(kept == 0, 1 / chat_rate, 2.0)
    x = np.where(kept == 0, r.lognormal(6, 0.5, kept.size), r.lognormal(5, 0.5, kept.size))
    lang = np.where(
        kept == 0,
        r.choice(3, kept.size, p=[0.7, 0.2, 0.1]),
        r.choice(3, kept.size, p=[0.3, 0.3, 0.4]),
    )
    return x, w, lang


@pytest.mark.slow
def test_weighted_tests_stay_calibrated_when_a_route_rate_doubles() -> None:
    """Same population in both windows; chat's storage rate doubles in the current one.
    The weighted tests alarm at ≈ alpha; an unweighted KS alarms nearly always."""
    r = np.random.default_rng(42)
    reps, alpha = 80, 0.05
    ks_alarm = chi_alarm = naive_alarm = 0
    for i in range(reps):
        x1, w1, l1 = _routes_sample(r, 500, 0.05)
        x2, w2, l2 = _routes_sample(r, 500, 0.10)
        ks_alarm += ks_test((x1, w1), (x2, w2), rng=rng_for(1, i), replicates=60).p_value < alpha
        chi_alarm += wald_shares_test(from_codes(l1, w1, 3), from_codes(l2, w2, 3)).p_value < alpha
        naive_alarm += stats.ks_2samp(x1, x2).pvalue < alpha
    assert ks_alarm / reps <= 0.10
    assert chi_alarm / reps <= 0.10
    assert naive_alarm / reps >= 0.8


def test_large_sample_ks_is_calibrated_and_powerful() -> None:
    r = np.random.default_rng(7)
    alarms = 0
    reps = 15
    for i in range(reps):
        x1, w1, _ = _routes_sample(r, 12_000, 0.05)
        x2, w2, _ = _routes_sample(r, 12_000, 0.10)
        alarms += ks_test((x1, w1), (x2, w2), rng=rng_for(2, i), replicates=100).p_value < 0.05
    assert alarms / reps <= 0.2  # ≤ 3 of 15 at alpha 0.05
    x1, w1, _ = _routes_sample(r, 12_000, 0.05)
    x2, w2, _ = _routes_sample(r, 12_000, 0.10)
    shifted = ks_test((x1, w1), (x2 * 1.1, w2), rng=rng_for(3), replicates=100)
    assert shifted.p_value < 1e-6
