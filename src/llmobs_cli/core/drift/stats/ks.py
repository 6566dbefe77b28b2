"""Weighted two-sample Kolmogorov–Smirnov test with a design-based p-value.

Statistic: ``D = sup_x |F_cur(x) − F_base(x)|`` over the *weighted* empirical CDFs
(``F(x) = Σ_{x_i ≤ x} w_i / Σ w_i``). With integer weights it equals
``scipy.stats.ks_2samp`` on the rows repeated ``w`` times (tested).

p-value. The textbook KS p-value plugs ``n = n₁n₂/(n₁+n₂)`` into the Kolmogorov
distribution; with Kish's ``n_eff`` in place of ``n`` it is right only when the weights
are unrelated to the feature. Under route-based sampling they are related (a heavy route
has its own length distribution) and the false-alarm rate climbs (``docs/drift.md``). We estimate
the null *scale* of ``D`` from the data instead: a Poisson-multiplier bootstrap of the
centred difference process ``(F*_cur − F_cur) − (F*_base − F_base)``, whose law under H₀
is that of ``F_cur − F_base`` whatever the weights. Each replicate multiplies every row's
weight by an independent Poisson(1) draw (Σm·w has mean Σw and variance Σw²: the
with-replacement design variance).

* Small samples (≤ :data:`ROW_LIMIT` rows in all): the multipliers are drawn per row.
* Large samples: rows are pooled into ≤ :data:`BINS` quantile bins and the bin sums of
  ``m·w`` are drawn as normals with mean ``Σw`` and variance ``Σw²`` per bin (the central
  limit of the same Poisson multipliers; exactly mergeable partials ``Σw, Σw²`` per bin).

The bootstrap median of ``sup`` fixes the scale ``s``; the p-value is the Kolmogorov tail
``P(K > D/s)``. This keeps tiny p-values meaningful (a 200-replicate bootstrap alone cannot
go below 1/201) and reduces to the classical test when weights are constant
(``s ≈ √((n₁+n₂)/(n₁n₂))``). ``1/s²`` is reported as ``n_eff_design``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from llmobs_cli.core.drift.stats import TestResult, register

#: Above this many rows (both windows) the bootstrap runs on binned Σw, Σw².
ROW_LIMIT = 20_000
#: Number of quantile bins of the large-sample bootstrap.
BINS = 512
_K_MEDIAN = float(stats.kstwobign.ppf(0.5))


def _prep(
    x1: np.ndarray, w1: np.ndarray, x2: np.ndarray, w2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pooled sorted values and each window's weights in that order (0 for the other)."""
    x = np.concatenate([x1, x2])
    # Ties need no stable order (the ECDFs are read at the last of each run of equal
    # values), and introsort is ~2x faster than the stable sort on 2M floats.
    order = np.argsort(x)
    xs = x[order]
    a = np.concatenate([w1, np.zeros(len(x2))])[order]
    b = np.concatenate([np.zeros(len(x1)), w2])[order]
    return xs, a, b, order


def weighted_ks(x1: np.ndarray, w1: np.ndarray, x2: np.ndarray, w2: np.ndarray) -> float:
    """The weighted two-sample KS statistic ``D`` (0 when a side is empty)."""
    if len(x1) == 0 or len(x2) == 0:
        return math.nan
    xs, a, b, _ = _prep(x1, w1, x2, w2)
    last = np.r_[xs[1:] != xs[:-1], True]
    diff = np.cumsum(a)[last] / a.sum() - np.cumsum(b)[last] / b.sum()
    return float(np.max(np.abs(diff)))


def _ecdf_diff(xs: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    last = np.r_[xs[1:] != xs[:-1], True]
    f1 = np.cumsum(a)[last] / a.sum()
    f2 = np.cumsum(b)[last] / b.sum()
    return xs[last], f2 - f1


def wasserstein(xs_distinct: np.ndarray, diff: np.ndarray) -> float:
    """``∫|F_cur − F_base| dx`` from the CDF difference at the distinct sorted values."""
    if xs_distinct.size < 2:
        return 0.0
    return float(np.sum(np.abs(diff[:-1]) * np.diff(xs_distinct)))


def _cluster_deff(xs: np.ndarray, w: np.ndarray, cl: np.ndarray) -> float:
    """Design effect of clustering on the weighted ECDF of one window, averaged over the
    quartile cuts: ``Σ_cluster (Σ_i w_i (1{x_i ≤ c} − F(c)))² / Σ_i w_i² (1{x_i ≤ c} − F(c))²``."""
    keep = w > 0
    x, ww, c = xs[keep], w[keep], cl[keep]
    if x.size < 2:
        return 1.0
    num = den = 0.0
    tot = ww.sum()
    cum = np.cumsum(ww)  # x is sorted: weighted quartiles by search
    for q in (0.25, 0.5, 0.75):
        cut = x[min(int(np.searchsorted(cum, q * tot)), x.size - 1)]
        ind = (x <= cut).astype(np.float64)
        f = float(np.sum(ww * ind) / tot)
        u = ww * (ind - f)
        # Cluster ids are small non-negative integers: bincount, no sort.
        num += float(np.sum(np.bincount(c, u) ** 2))
        den += float(np.sum(u * u))
    return max(num / den, 1.0) if den > 0 else 1.0


def null_scale(
    xs: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    replicates: int,
    clusters: np.ndarray | None = None,
) -> float:
    """Bootstrap estimate of the null scale ``s`` of ``D`` (see module docstring).

    ``clusters`` (an id per sorted row, ids distinct between the windows) makes the
    multipliers per cluster: rows of one session move together. On the binned path the
    per-bin draws cannot carry a cluster's cross-bin covariance, so the scale is inflated
    by each window's clustering design effect of the ECDF instead.
    """
    n = xs.size
    if clusters is not None and n <= ROW_LIMIT:
        _u, inv = np.unique(clusters, return_inverse=True)
        last = np.r_[xs[1:] != xs[:-1], True]
        f1 = np.cumsum(a)[last] / a.sum()
        f2 = np.cumsum(b)[last] / b.sum()
        out = np.empty(replicates)
        chunk = max(1, 4_000_000 // max(n, 1))
        for lo in range(0, replicates, chunk):
            hi = min(replicates, lo + chunk)
            m = rng.poisson(1.0, size=(hi - lo, _u.size)).astype(np.float64)[:, inv]
            ca = np.cumsum(m * a, axis=1)[:, last]
            cb = np.cumsum(m * b, axis=1)[:, last]
            ta = np.maximum(ca[:, -1:], 1e-300)
            tb = np.maximum(cb[:, -1:], 1e-300)
            out[lo:hi] = np.max(np.abs((ca / ta - f1) - (cb / tb - f2)), axis=1)
        return float(np.median(out)) / _K_MEDIAN
    base = _null_scale_rows(xs, a, b, rng, replicates)
    if clusters is None:
        return base
    # Inflate each window's variance by its design effect (variances add).
    va = float(np.sum(a * a)) / a.sum() ** 2
    vb = float(np.sum(b * b)) / b.sum() ** 2
    da = _cluster_deff(xs, a, clusters)
    db = _cluster_deff(xs, b, clusters)
    ratio = (va * da + vb * db) / (va + vb) if va + vb > 0 else 1.0
    return base * float(np.sqrt(ratio))


def _null_scale_rows(
    xs: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    replicates: int,
) -> float:
    n = xs.size
    if n <= ROW_LIMIT:
        last = np.r_[xs[1:] != xs[:-1], True]
        sa, sb = a.sum(), b.sum()
        f1 = np.cumsum(a)[last] / sa
        f2 = np.cumsum(b)[last] / sb
        stats_ = np.empty(replicates)
        chunk = max(1, 4_000_000 // max(n, 1))
        for lo in range(0, replicates, chunk):
            hi = min(replicates, lo + chunk)
            m = rng.poisson(1.0, size=(hi - lo, n)).astype(np.float64)
            ma, mb = m * a, m * b
            ca = np.cumsum(ma, axis=1)[:, last]
            cb = np.cumsum(mb, axis=1)[:, last]
            ta = np.maximum(ca[:, -1:], 1e-300)
            tb = np.maximum(cb[:, -1:], 1e-300)
            stats_[lo:hi] = np.max(np.abs((ca / ta - f1) - (cb / tb - f2)), axis=1)
    else:
        pos = np.linspace(0, n - 1, BINS + 1)[1:-1].astype(np.int64)
        cuts = np.unique(xs[pos])
        k = cuts.size + 1
        idx = np.searchsorted(cuts, xs, side="left")
        s1 = np.bincount(idx, a, k)
        q1 = np.bincount(idx, a * a, k)
        s2 = np.bincount(idx, b, k)
        q2 = np.bincount(idx, b * b, k)
        return null_scale_binned(s1, q1, s2, q2, rng, replicates)
    med = float(np.median(stats_))
    return med / _K_MEDIAN


def null_scale_binned(
    s1: np.ndarray,
    q1: np.ndarray,
    s2: np.ndarray,
    q2: np.ndarray,
    rng: np.random.Generator,
    replicates: int,
) -> float:
    """The null scale from per-bin Σw (``s``) and Σw² (``q``) of both windows: each
    replicate draws every bin's multiplied weight as a normal with mean Σw and variance
    Σw² (the central limit of the Poisson multipliers), mergeable partials only."""
    f1 = np.cumsum(s1) / s1.sum()
    f2 = np.cumsum(s2) / s2.sum()
    k = s1.size
    z1 = rng.standard_normal((replicates, k))
    z2 = rng.standard_normal((replicates, k))
    d1 = np.maximum(s1 + np.sqrt(q1) * z1, 0.0)
    d2 = np.maximum(s2 + np.sqrt(q2) * z2, 0.0)
    c1 = np.cumsum(d1, axis=1)
    c2 = np.cumsum(d2, axis=1)
    c1 /= np.maximum(c1[:, -1:], 1e-300)
    c2 /= np.maximum(c2[:, -1:], 1e-300)
    stats_ = np.max(np.abs((c1 - f1) - (c2 - f2)), axis=1)
    return float(np.median(stats_)) / _K_MEDIAN


def _wmedian(xs: np.ndarray, w: np.ndarray) -> float:
    keep = w > 0
    v, ww = xs[keep], w[keep]
    if v.size == 0:
        return math.nan
    cw = np.cumsum(ww)
    i = int(np.searchsorted(cw, 0.5 * cw[-1] * (1 - 1e-12), side="left"))
    return float(v[min(i, v.size - 1)])


def _wmean_std(xs: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    tot = w.sum()
    if tot <= 0:
        return math.nan, math.nan
    mean = float(np.sum(w * xs) / tot)
    var = float(np.sum(w * (xs - mean) ** 2) / tot)
    return mean, math.sqrt(max(var, 0.0))


@register("ks", kinds=("numeric",))
def ks_test(
    base: tuple[np.ndarray, np.ndarray],
    cur: tuple[np.ndarray, np.ndarray],
    *,
    rng: np.random.Generator,
    replicates: int = 200,
    clusters: tuple[np.ndarray, np.ndarray] | None = None,
) -> TestResult:
    """Weighted KS: ``base``/``cur`` are ``(values, weights)`` without nulls; ``clusters``
    an integer cluster id per row of each (sessions), for cluster-robust p-values."""
    x1, w1 = (np.asarray(v, dtype=np.float64) for v in base[:2])
    x2, w2 = (np.asarray(v, dtype=np.float64) for v in cur[:2])
    xs, a, b, order = _prep(x1, w1, x2, w2)
    xd, diff = _ecdf_diff(xs, a, b)
    d = float(np.max(np.abs(diff))) if diff.size else math.nan
    cl = None
    if clusters is not None:
        c1, c2 = (np.asarray(c, dtype=np.int64) for c in clusters)
        # Distinct ids per window: a session cut by the window boundary is two clusters.
        cl = np.concatenate([c1 * 2, c2 * 2 + 1])[order]
    scale = null_scale(xs, a, b, rng, replicates, cl)
    m1, sd1 = _wmean_std(xs, a)
    m2, _ = _wmean_std(xs, b)
    med1, med2 = _wmedian(xs, a), _wmedian(xs, b)
    return ks_result(d, scale, wasserstein(xd, diff), sd1, (med1, med2), (m1, m2))


def ks_result(
    d: float,
    scale: float,
    w1d: float,
    sd_baseline: float,
    medians: tuple[float, float],
    means: tuple[float, float],
) -> TestResult:
    """The KS outcome from its parts: ``D``, the null scale, the Wasserstein distance, the
    baseline's spread and both windows' medians and means (rows or merged buckets)."""
    # A zero scale means a degenerate (constant) pooled sample.
    p = float(stats.kstwobign.sf(d / scale)) if scale > 0 else (1.0 if d <= 1e-12 else 0.0)
    med1, med2 = medians
    return TestResult(
        test="ks",
        statistic=d,
        p_value=p,
        effect_size=d,
        effect_name="ks_d",
        extras={
            "wasserstein_norm": (w1d / sd_baseline) if sd_baseline and sd_baseline > 0 else None,
            "median_baseline": med1,
            "median_current": med2,
            "median_ratio": (med2 / med1) if med1 not in (0.0,) and med1 == med1 else None,
            "mean_baseline": means[0],
            "mean_current": means[1],
            "n_eff_design": (1.0 / scale**2) if scale > 0 else None,
        },
    )
