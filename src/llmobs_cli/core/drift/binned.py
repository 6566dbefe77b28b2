"""Drift tests from merged partials, for windows too large to hold row by row.

The sample of whole clusters (:mod:`llmobs_cli.core.drift.sample`) holds every row of a
small input, and then the row-level tests of :mod:`llmobs_cli.core.drift.stats` run on
it unchanged. Past the sample's cap, each test runs on exact merged partials instead:

* **numbers** — the weighted KS statistic ``D`` from the merged log-bucket histograms of
  both windows (the ECDFs compared at every bucket edge, so ``D`` is exact up to the
  weight inside one bucket of relative width ``α``); medians from the same buckets
  (within ``α``), means and spreads from exact Σw·x and Σw·x²; the null scale from the
  same Poisson-multiplier bootstrap on bucket sums of Σw and Σw² (the large-sample path
  the row-level test already takes above 20,000 rows), widened by each window's
  clustering design effect measured on the cluster sample;
* **shares** — the exact Σw and Σw² of every category per window (the with-replacement
  covariance of the ratio estimator), scaled by the clustering design effect of the
  shares measured on the cluster sample.

A design effect measured on a sample of clusters estimates the population's: clusters
enter the sample with equal probability whatever their rows hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from llmobs_cli.core.drift.stats import TestResult
from llmobs_cli.core.drift.stats.ks import BINS, ks_result, null_scale_binned
from llmobs_cli.core.drift.stats.wald_shares import ShareStats, from_codes, from_counts
from llmobs_cli.core.partials.sketch import bin_value_np


class Bins:
    """One numeric feature's merged buckets in one scope, both windows aligned."""

    def __init__(self, frame: pl.DataFrame, alpha: float) -> None:
        wide = (
            frame.group_by("k:bin")
            .agg(
                pl.col("sum:w").filter(pl.col("k:win") == 0).sum().alias("a"),
                pl.col("sum:w2").filter(pl.col("k:win") == 0).sum().alias("qa"),
                pl.col("sum:w").filter(pl.col("k:win") == 1).sum().alias("b"),
                pl.col("sum:w2").filter(pl.col("k:win") == 1).sum().alias("qb"),
                pl.col("sum:n").sum().alias("n"),
            )
            .sort("k:bin")
        )
        self.bins = wide["k:bin"].to_numpy()
        self.a = wide["a"].to_numpy().astype(np.float64)
        self.qa = wide["qa"].to_numpy().astype(np.float64)
        self.b = wide["b"].to_numpy().astype(np.float64)
        self.qb = wide["qb"].to_numpy().astype(np.float64)
        self.n = wide["n"].to_numpy().astype(np.int64)
        self.rep = bin_value_np(self.bins, alpha)

    def diff(self) -> np.ndarray:
        f1 = np.cumsum(self.a) / self.a.sum()
        f2 = np.cumsum(self.b) / self.b.sum()
        return f2 - f1

    def quantile(self, w: np.ndarray, q: float, lo: float, hi: float) -> float:
        cw = np.cumsum(w)
        if not cw.size or cw[-1] <= 0:
            return math.nan
        i = int(np.searchsorted(cw, q * cw[-1] * (1 - 1e-12), side="left"))
        return float(min(max(self.rep[min(i, cw.size - 1)], lo), hi))

    def groups(self) -> np.ndarray:
        """Each bucket's group of the bootstrap: ≤ BINS groups of equal pooled rows (the
        row-level test's quantile bins, with a bucket never split)."""
        total = int(self.n.sum())
        pos = np.linspace(0, total - 1, BINS + 1)[1:-1].astype(np.int64)
        start = np.cumsum(self.n) - self.n
        return np.searchsorted(pos, start, side="left")


def numeric_test(
    bins: Bins,
    moments: dict[int, dict[str, float]],
    *,
    rng: np.random.Generator,
    replicates: int,
    deff: tuple[float, float] = (1.0, 1.0),
) -> TestResult:
    """Weighted KS of the two windows from their merged buckets (module docstring)."""
    diff = bins.diff()
    d = float(np.max(np.abs(diff))) if diff.size else math.nan
    g = bins.groups()
    k = int(g.max()) + 1 if g.size else 1
    s1 = np.bincount(g, bins.a, k)
    q1 = np.bincount(g, bins.qa, k)
    s2 = np.bincount(g, bins.b, k)
    q2 = np.bincount(g, bins.qb, k)
    scale = null_scale_binned(s1, q1, s2, q2, rng, replicates)
    mb, mc = moments[0], moments[1]
    va = mb["w2"] / mb["w"] ** 2 if mb["w"] > 0 else 0.0
    vb = mc["w2"] / mc["w"] ** 2 if mc["w"] > 0 else 0.0
    if va + vb > 0:
        scale *= math.sqrt((va * deff[0] + vb * deff[1]) / (va + vb))

    def mean_sd(m: dict[str, float]) -> tuple[float, float]:
        if m["w"] <= 0:
            return math.nan, math.nan
        mean = m["wx"] / m["w"]
        return mean, math.sqrt(max(m["wx2"] / m["w"] - mean * mean, 0.0))

    m1, sd1 = mean_sd(mb)
    m2, _ = mean_sd(mc)
    med1 = bins.quantile(bins.a, 0.5, mb["min"], mb["max"])
    med2 = bins.quantile(bins.b, 0.5, mc["min"], mc["max"])
    rep = np.clip(bins.rep, min(mb["min"], mc["min"]), max(mb["max"], mc["max"]))
    w1d = float(np.sum(np.abs(diff[:-1]) * np.diff(rep))) if rep.size > 1 else 0.0
    return ks_result(d, scale, w1d, sd1, (med1, med2), (m1, m2))


def histogram(bins: Bins, edges_bins: int = 20) -> dict[str, Any]:
    """The whole-frame histogram (shares over 20 common edges between the pooled 1st and
    99th percentile of rows) from merged buckets."""
    total = int(bins.n.sum())
    cum = np.cumsum(bins.n)
    lo_i = int(np.searchsorted(cum, 0.01 * (total - 1) + 1, side="left"))
    hi_i = int(np.searchsorted(cum, 0.99 * (total - 1) + 1, side="left"))
    lo, hi = float(bins.rep[min(lo_i, cum.size - 1)]), float(bins.rep[min(hi_i, cum.size - 1)])
    if not hi > lo:
        lo, hi = float(bins.rep.min()), float(bins.rep.max())
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, edges_bins + 1)
    idx = np.clip(np.searchsorted(edges, bins.rep, side="right") - 1, 0, edges_bins - 1)

    def shares(w: np.ndarray) -> list[float]:
        h = np.bincount(idx, w, edges_bins)
        tot = h.sum()
        return [float(v / tot) if tot > 0 else 0.0 for v in h]

    return {
        "type": "histogram",
        "edges": [float(e) for e in edges],
        "baseline": shares(bins.a),
        "current": shares(bins.b),
    }


def share_stats(sums: np.ndarray, squares: np.ndarray, deff: float = 1.0) -> ShareStats:
    """Statistics of one category per row from exact per-category Σw and Σw², with the
    covariance scaled by a clustering design effect."""
    s = np.asarray(sums, dtype=np.float64)
    q = np.asarray(squares, dtype=np.float64) * deff
    return ShareStats(s, float(s.sum()), np.diag(q), q, float(q.sum()))


def _share_var(st: ShareStats) -> float:
    if st.t <= 0:
        return 0.0
    p = st.s / st.t
    var = (np.diag(st.m) - 2 * st.a * p + st.b * p * p) / st.t**2
    return float(np.sum(np.clip(var, 0.0, None)))


def _deff(rows: int, clusters: np.ndarray | None, var: Callable[[Any], float]) -> float:
    """Design effect ``var(clusters) / var(None)`` (≥ 1; 1 without clusters, with fewer
    than two rows, or when every row is its own cluster)."""
    if clusters is None or rows < 2 or np.unique(clusters).size == rows:
        return 1.0
    den = var(None)
    num = var(clusters)
    return max(num / den, 1.0) if den > 0 else 1.0


def shares_deff(codes: np.ndarray, w: np.ndarray, k: int, clusters: np.ndarray | None) -> float:
    """Clustering design effect of one window's shares on the sample: the summed variance
    of the shares with rows summed per cluster over the same without (≥ 1)."""
    return _deff(codes.size, clusters, lambda c: _share_var(from_codes(codes, w, k, c)))


def counts_deff(
    counts: np.ndarray, w: np.ndarray, totals: np.ndarray, clusters: np.ndarray | None
) -> float:
    """:func:`shares_deff` of per-row unit counts (the response vocabulary)."""
    return _deff(totals.size, clusters, lambda c: _share_var(from_counts(counts, w, totals, c)))
