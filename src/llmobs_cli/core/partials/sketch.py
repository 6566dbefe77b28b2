"""Fixed log-bucket histograms (DDSketch-style) for weighted quantiles that merge exactly.

A value ``x > 0`` falls in bucket ``k = ceil(ln x / ln γ)`` with ``γ = (1 + α) / (1 − α)``,
so the bucket covers ``(γ^(k−1), γ^k]``; its representative ``2γ^k / (γ + 1)`` is within a
relative ``α`` of every value in the bucket. Zero has its own bucket and a negative value
mirrors a positive one, so the integer bin keeps the order of the values:

* ``x > 0`` → ``OFFSET + k``; ``x = 0`` → ``0``; ``x < 0`` → ``−(OFFSET + k(−x))``.

Because the buckets are fixed (they depend on ``α`` only, never on the data), two
histograms merge by summing weights per bin — exactly, in any order. The weighted
quantile at ``q`` is the representative of the first bin whose cumulative weight reaches
``q·Σw``: that bin holds the exact inverse-CDF quantile, so the answer is within ``α``
relative error of it (and exact when clamped to a group's min/max with one value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

#: Default relative accuracy of quantiles (0.5 %).
ALPHA = 0.005
#: Keeps positive bins above zero for values down to ~1e-300.
OFFSET = 1 << 40
#: Values below this magnitude (but not zero) share the smallest bucket.
_TINY = 1e-300


def gamma(alpha: float = ALPHA) -> float:
    return (1 + alpha) / (1 - alpha)


def bin_expr(x: pl.Expr, alpha: float = ALPHA) -> pl.Expr:
    """The Int64 bin of ``x`` (null stays null)."""
    lg = math.log(gamma(alpha))
    k = (x.abs().clip(lower_bound=_TINY).log() / lg).ceil().cast(pl.Int64) + OFFSET
    return (
        pl.when(x > 0).then(k).when(x < 0).then(-k).when(x == 0).then(pl.lit(0, pl.Int64))
    ).cast(pl.Int64)


def bin_value(b: pl.Expr, alpha: float = ALPHA) -> pl.Expr:
    """The representative value of bin ``b`` (inverse of :func:`bin_expr` within α)."""
    g = gamma(alpha)
    lg = math.log(g)
    mag = ((b.abs() - OFFSET).cast(pl.Float64) * lg).exp() * (2.0 / (g + 1.0))
    return pl.when(b > 0).then(mag).when(b < 0).then(-mag).when(b == 0).then(pl.lit(0.0))


def bin_value_np(b: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    g = gamma(alpha)
    mag = np.exp((np.abs(b) - OFFSET) * math.log(g)) * (2.0 / (g + 1.0))
    return np.where(b > 0, mag, np.where(b < 0, -mag, 0.0))


def sketch_quantiles(
    bins: pl.LazyFrame | pl.DataFrame,
    keys: Sequence[str],
    qs: Sequence[float],
    *,
    bin_col: str,
    weight_col: str,
    out: str,
    alpha: float = ALPHA,
) -> pl.LazyFrame:
    """Per group of ``keys``: the list of weighted quantiles at ``qs`` (column ``out``).

    ``bins`` holds one row per (keys, bin) with the bin's summed weight (merged partials).
    The same inverse-CDF rule as the exact report: first bin whose cumulative weight
    reaches ``q·Σw`` (with a 1e-12 relative tolerance against float summation).
    """
    lf = bins.lazy().with_columns(bin_value(pl.col(bin_col), alpha).alias("_rep"))
    order = pl.col(bin_col)
    rep = pl.col("_rep").sort_by(order)
    cw = pl.col(weight_col).sort_by(order).cum_sum()
    targets = pl.lit(pl.Series([q * (1 - 1e-12) for q in qs], dtype=pl.Float64))
    idx = cw.search_sorted(cw.last() * targets, side="left")
    agg = rep.gather(idx.clip(0, pl.len() - 1)).alias(out)
    if keys:
        return lf.group_by(list(keys)).agg(agg)
    return lf.select(agg.implode())
