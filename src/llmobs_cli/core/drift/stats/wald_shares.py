"""Wald chi-square on weighted shares, with a design-based covariance from Σw and Σw².

For categories, rates (two categories) and token shares (``response_vocabulary``). Each
window contributes sufficient statistics that are exact, mergeable partials
(:class:`ShareStats`): per category ``S_k = Σ w·c_k``, the total ``T = Σ w·t`` (``t`` the
units in a row: 1 for a category, the token count for vocabulary) and the second moments
``M = Σ w²·c cᵀ``, ``a = Σ w²·c·t``, ``b = Σ w²·t²``.

The shares are ratio estimators ``p̂_k = S_k / T``; their linearised (with-replacement)
covariance is ``(M − a pᵀ − p aᵀ + b p pᵀ) / T²``. Under H₀ both windows share ``p``:
we use the pooled ``p`` and the pooled second moments rescaled to each window's ``b``
(a restricted, score-type variance). With unit weights and one category per row this is
exactly Pearson's chi-square of the 2×K table (tested against
``scipy.stats.chi2_contingency``); with route-dependent weights the Σw² terms carry the
design effect that Kish's ``n_eff`` misses (calibration simulated in the tests).

``X² = dᵀ V⁻¹ d`` with ``d = p̂_cur − p̂_base`` over all but one category (the
pseudo-inverse handles collinearity), referred to χ² with ``rank(V)`` degrees of freedom.
Effect sizes: Jensen–Shannon distance (base 2, in [0, 1]), PSI, and the largest
percentage-point change of one category.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats

from llmobs_cli.core.drift.stats import TestResult, register, single_thread_blas

_EPS = 1e-4  # share floor for PSI (log of 0 otherwise)


@dataclass
class ShareStats:
    """Mergeable sufficient statistics of one window (see module docstring)."""

    s: np.ndarray  # (K,) Σ w·c_k
    t: float  # Σ w·t
    m: np.ndarray  # (K, K) Σ w²·c cᵀ
    a: np.ndarray  # (K,) Σ w²·c·t
    b: float  # Σ w²·t²

    def merge(self, other: ShareStats) -> ShareStats:
        return ShareStats(
            self.s + other.s, self.t + other.t, self.m + other.m, self.a + other.a, self.b + other.b
        )

    @property
    def shares(self) -> np.ndarray:
        return self.s / self.t if self.t > 0 else np.full_like(self.s, np.nan)


def from_codes(
    codes: np.ndarray, w: np.ndarray, k: int, clusters: np.ndarray | None = None
) -> ShareStats:
    """Statistics of one category per row: ``codes`` in ``[0, k)``.

    ``clusters`` (an integer id per row, e.g. the session) makes the covariance
    cluster-robust: rows of one session share a language or a topic, so they are not
    independent draws; the linearised terms are summed per cluster before squaring.
    """
    codes = np.asarray(codes, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    if clusters is not None:
        import polars as pl

        # Σw per (cluster, category) and per cluster, grouped in Polars (no big sort).
        frame = pl.DataFrame({"g": np.asarray(clusters), "k": codes, "w": w})
        cell = frame.group_by("g", "k").agg(pl.col("w").sum())
        _u, gi = np.unique(cell["g"].to_numpy(), return_inverse=True)
        sc = sparse.csr_matrix(
            (cell["w"].to_numpy(), (gi, cell["k"].to_numpy())), shape=(_u.size, k)
        )
        tau = np.asarray(sc.sum(axis=1)).ravel()
        s = np.asarray(sc.sum(axis=0)).ravel()
        m = (sc.T @ sc).toarray()
        a = np.asarray(sc.T @ tau).ravel()
        return ShareStats(s, float(s.sum()), m, a, float(np.sum(tau * tau)))
    s = np.bincount(codes, w, k)
    q = np.bincount(codes, w * w, k)
    return ShareStats(s, float(s.sum()), np.diag(q), q, float(q.sum()))


def from_counts(
    counts: sparse.spmatrix | np.ndarray,
    w: np.ndarray,
    t: np.ndarray,
    clusters: np.ndarray | None = None,
) -> ShareStats:
    """Statistics of per-row unit counts (``counts`` n×K, ``t`` the row's total units);
    with ``clusters``, cluster-robust (rows summed per cluster with their weights)."""
    w = np.asarray(w, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    c = sparse.csr_matrix(counts, dtype=np.float64)
    if clusters is not None:
        _u, cl = np.unique(np.asarray(clusters), return_inverse=True)
        agg = sparse.csr_matrix((w, (cl, np.arange(w.size))), shape=(_u.size, w.size))
        c = sparse.csr_matrix(agg @ c)
        t = np.asarray(agg @ t).ravel()
        w = np.ones(_u.size)
    s = np.asarray(c.T @ w).ravel()
    w2 = w * w
    cw = sparse.diags(w2) @ c
    m = (c.T @ cw).toarray()
    a = np.asarray(cw.T @ t).ravel()
    return ShareStats(s, float(np.sum(w * t)), m, a, float(np.sum(w2 * t * t)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) between two share vectors."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    p, q = p / p.sum(), q / q.sum()
    mid = 0.5 * (p + q)

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / mid[nz])))

    return math.sqrt(max(0.5 * kl(p) + 0.5 * kl(q), 0.0))


def psi(base: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index ``Σ (c − b)·ln(c / b)`` with shares floored at 1e-4."""
    b = np.maximum(np.asarray(base, dtype=float), _EPS)
    c = np.maximum(np.asarray(cur, dtype=float), _EPS)
    return float(np.sum((c - b) * np.log(c / b)))


def wald_statistic(base: ShareStats, cur: ShareStats) -> tuple[float, int]:
    """``(X², df)`` of the restricted Wald test of equal shares."""
    if base.t <= 0 or cur.t <= 0:
        return math.nan, 0
    pooled = base.merge(cur)
    p = pooled.shares
    keep = p > 0
    if keep.sum() < 2:
        return 0.0, 0
    idx = np.flatnonzero(keep)
    p = p[idx]
    mp, ap, bp = pooled.m[np.ix_(idx, idx)], pooled.a[idx], pooled.b
    v = np.zeros((idx.size, idx.size))
    for side in (base, cur):
        r = side.b / bp if bp > 0 else 0.0
        mj, aj, bj = mp * r, ap * r, side.b
        v += (mj - np.outer(aj, p) - np.outer(p, aj) + bj * np.outer(p, p)) / side.t**2
    d = cur.shares[idx] - base.shares[idx]
    drop = int(np.argmax(p))  # the shares sum to 1: leave the largest category out
    sel = np.delete(np.arange(idx.size), drop)
    vs = v[np.ix_(sel, sel)]
    ds = d[sel]
    scale = np.sqrt(np.clip(np.diag(vs), 1e-300, None))
    corr = vs / np.outer(scale, scale)
    z = ds / scale
    # A K×K eigen-decomposition: BLAS threads only add contention (seconds on a busy box).
    with single_thread_blas():
        pinv = np.linalg.pinv(corr, rcond=1e-10, hermitian=True)
        rank = int(np.linalg.matrix_rank(corr, tol=1e-10, hermitian=True))
    x2 = float(z @ pinv @ z)
    return max(x2, 0.0), rank


@register("wald_chi2", kinds=("categorical", "rate", "vocabulary", "topic"))
def wald_shares_test(base: ShareStats, cur: ShareStats, *, rate: bool = False) -> TestResult:
    """Wald chi-square of equal shares; effect = JS distance (or percentage points for a
    rate, whose category 1 is "yes")."""
    x2, df = wald_statistic(base, cur)
    p = float(stats.chi2.sf(x2, df)) if df > 0 and x2 == x2 else (1.0 if df == 0 else math.nan)
    pb, pc = base.shares, cur.shares
    js = js_distance(pb, pc)
    diff = pc - pb
    top = int(np.argmax(np.abs(diff))) if diff.size else 0
    extras = {
        "js_distance": js,
        "psi": psi(pb, pc),
        "df": df,
        "largest_change": top,
        "largest_change_pp": float(diff[top] * 100) if diff.size else None,
    }
    if rate:
        pp = float(diff[1] * 100) if diff.size > 1 else math.nan
        return TestResult("wald_chi2", x2, p, abs(pp), "pp", extras)
    return TestResult("wald_chi2", x2, p, js, "js_distance", extras)
