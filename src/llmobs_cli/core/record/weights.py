"""Weights and weighted statistics (``docs/report.md``, "What each number means").

A row kept with probability ``sample_rate`` stands for ``1/sample_rate`` calls; a judged
row also carries its eval rate: ``w = 1/(sample_rate × eval_rate)``.

* counts and sums are Horvitz–Thompson: ``Σw·y``;
* means and rates are Hájek: ``Σw·y / Σw``;
* percentiles come from the weighted empirical CDF: the smallest value whose cumulative
  weight reaches ``q·Σw`` (numpy's ``inverted_cdf`` with weights);
* Kish's effective sample size ``n_eff = (Σw)² / Σw²`` sits beside every ``sampled``.

Polars expressions are provided for row work; numpy functions for the small arrays of
judgments and for tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import polars as pl

W = "_w"


def weight_expr(sample_rate: str = "sample_rate", eval_rate: str | None = None) -> pl.Expr:
    """``1/sample_rate`` (times ``1/eval_rate`` for judged rows)."""
    w = 1.0 / pl.col(sample_rate)
    if eval_rate is not None:
        w = w / pl.col(eval_rate)
    return w.alias(W)


def n_eff_expr(w: pl.Expr | str = W) -> pl.Expr:
    """Kish effective sample size of the weights in the group."""
    col = pl.col(w) if isinstance(w, str) else w
    return (col.sum() ** 2 / (col**2).sum()).fill_nan(0.0)


def hajek_expr(y: pl.Expr, w: pl.Expr | str = W) -> pl.Expr:
    """Weighted mean ``Σw·y / Σw`` over rows where ``y`` is not null."""
    col = pl.col(w) if isinstance(w, str) else w
    wy = col.filter(y.is_not_null())
    return (y * col).sum() / wy.sum()


def quantile_aggs(
    value: str, qs: Sequence[float], w: str = W, prefix: str | None = None
) -> list[pl.Expr]:
    """Aggregations giving weighted quantiles of ``value`` within each group.

    Use inside ``group_by(...).agg(...)``: each group is sorted by value, cumulative
    weights computed, and the first value whose cumulative weight reaches ``q·Σw`` taken.
    Null values are ignored. The relative tolerance guards against float summation error
    (a cumulative 0.49999999 for an exact half).
    """
    name = prefix or value
    v = pl.col(value)
    ww = pl.col(w).filter(v.is_not_null())
    vv = v.filter(v.is_not_null())
    order = vv.arg_sort()
    sv = vv.gather(order)
    sw = ww.gather(order)
    cw = sw.cum_sum()
    total = sw.sum()
    out = []
    for q in qs:
        target = total * q * (1 - 1e-12)
        out.append(sv.filter(cw >= target).first().alias(f"{name}_p{_qname(q)}"))
    return out


def _qname(q: float) -> str:
    txt = f"{q * 100:g}"
    return txt.replace(".", "_")


# --- numpy ---------------------------------------------------------------------------


def n_eff(w: np.ndarray) -> float:
    """Kish effective sample size."""
    w = np.asarray(w, dtype=float)
    s2 = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """The weighted inverse-CDF quantile (matches :func:`quantile_aggs`)."""
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    if x.size == 0:
        return math.nan
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    idx = int(np.searchsorted(cw, q * cw[-1] * (1 - 1e-12), side="left"))
    return float(x[order][min(idx, x.size - 1)])


def hajek_mean_ci(
    y: np.ndarray,
    w: np.ndarray,
    strata: np.ndarray | None = None,
    level: float = 0.95,
) -> tuple[float, float, float, float]:
    """Weighted mean with a linearised (Taylor) confidence interval.

    Returns ``(mean, ci_low, ci_high, se)``. With ``strata`` the variance is the
    stratified with-replacement estimator (strata sampled independently, as in eval's
    per-route plan); without, one stratum. For 0/1 data or small ``n_eff`` (< 30) of data
    in [0, 1] the Wilson interval with ``n_eff`` is used instead, since the Wald interval
    undercovers there. Intervals of data in [0, 1] are clipped to [0, 1].
    """
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    ok = ~np.isnan(y)
    y, w = y[ok], w[ok]
    if strata is not None:
        strata = np.asarray(strata)[ok]
    n = y.size
    if n == 0 or w.sum() <= 0:
        return (math.nan, math.nan, math.nan, math.nan)
    total = w.sum()
    mean = float(np.sum(w * y) / total)
    z = NormalDist().inv_cdf(0.5 + level / 2)  # = scipy norm.ppf; no scipy.stats import
    # Linearised variable of the ratio estimator.
    u = w * (y - mean) / total
    if strata is None:
        var = n / (n - 1) * float(np.sum((u - u.mean()) ** 2)) if n > 1 else math.nan
    else:
        var = 0.0
        for h in np.unique(strata):
            uh = u[strata == h]
            nh = uh.size
            if nh > 1:
                var += nh / (nh - 1) * float(np.sum((uh - uh.mean()) ** 2))
    se = math.sqrt(var) if var == var and var >= 0 else math.nan
    bounded = bool(np.all((y >= 0) & (y <= 1)))
    ne = n_eff(w)
    if bounded and (ne < 30 or se == 0 or se != se):
        lo, hi = wilson(mean, ne, level)
        if se != se or se == 0:
            se = math.sqrt(max(mean * (1 - mean), 0.0) / max(ne, 1.0))
        return (mean, lo, hi, se)
    lo, hi = mean - z * se, mean + z * se
    if bounded:
        lo, hi = max(0.0, lo), min(1.0, hi)
    return (mean, lo, hi, se)


def wilson(p: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``p`` with (effective) sample size ``n``."""
    if n <= 0 or p != p:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + level / 2)  # = scipy norm.ppf; no scipy.stats import
    p = min(max(p, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def benjamini_hochberg(p: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (NaN stays NaN and is not counted)."""
    arr = np.asarray(p, dtype=float)
    out = np.full(arr.shape, np.nan)
    ok = ~np.isnan(arr)
    if not ok.any():
        return out
    from scipy import stats  # lazy: scipy.stats costs ~1 s of start-up

    out[ok] = stats.false_discovery_control(arr[ok], method="bh")
    return out
