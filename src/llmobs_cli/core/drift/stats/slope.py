"""Score calibration: does the judged quality follow the top-1 retrieval score the same way
in both windows?

Per window, the weighted least-squares slope ``β`` of the judged score (0–1) on the top-1
retrieval score, with the linearised (sandwich, with-replacement) variance
``Σ uᵢ²`` where ``uᵢ = wᵢ (xᵢ − x̄) eᵢ / Σ wⱼ (xⱼ − x̄)²`` (``e`` the residual). The test
is the Wald z² of ``β_cur − β_base`` (χ², 1 df); the effect is ``|Δβ|``: how much the
judged score per unit of retrieval score changed. A retriever whose scores stop meaning
what they used to (re-indexing, a new embedding model) shows up here before it shows up
in the scores' own distribution.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from llmobs_cli.core.drift.stats import TestResult, register


def wls_slope(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """``(slope, variance, intercept)`` of the weighted regression of ``y`` on ``x``."""
    x, y, w = (np.asarray(v, dtype=float) for v in (x, y, w))
    tot = w.sum()
    if x.size < 3 or tot <= 0:
        return math.nan, math.nan, math.nan
    xm, ym = np.sum(w * x) / tot, np.sum(w * y) / tot
    sxx = float(np.sum(w * (x - xm) ** 2))
    if sxx <= 0:
        return math.nan, math.nan, math.nan
    beta = float(np.sum(w * (x - xm) * (y - ym)) / sxx)
    alpha = ym - beta * xm
    e = y - alpha - beta * x
    u = w * (x - xm) * e / sxx
    n = x.size
    var = float(n / (n - 1) * np.sum((u - u.mean()) ** 2))
    return beta, var, float(alpha)


@register("slope_wald", kinds=("calibration",))
def slope_test(
    base: tuple[np.ndarray, np.ndarray, np.ndarray],
    cur: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> TestResult:
    """``base``/``cur`` are ``(top1_score, judged_score, weight)``."""
    b1, v1, _ = wls_slope(*base)
    b2, v2, _ = wls_slope(*cur)
    se2 = v1 + v2
    if se2 != se2 or se2 <= 0:
        return TestResult("slope_wald", math.nan, math.nan, math.nan, "slope_change", {})
    z2 = (b2 - b1) ** 2 / se2
    return TestResult(
        "slope_wald",
        float(z2),
        float(stats.chi2.sf(z2, 1)),
        abs(b2 - b1),
        "slope_change",
        {"slope_baseline": b1, "slope_current": b2},
    )
