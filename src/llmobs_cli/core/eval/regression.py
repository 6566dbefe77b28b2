"""Regression tests between two windows (or two releases) of weighted judge scores.

For one group × evaluator with Hájek means ``p̂`` and design-based standard errors:

* ``Δ = p̂_cur − p̂_base`` and ``SE = √(SE²_cur + SE²_base)`` (independent windows);
* one-sided p-value of "the score dropped": ``p = Φ(Δ / SE)`` (normal approximation of the
  linearised estimator);
* Benjamini–Hochberg across every group × evaluator test of the run (:func:`flag`);
* minimum detectable effect at two-sided level α and power 1−β:
  ``MDE = (z₁₋α/₂ + z₁₋β) · SE``. For 0/1 scores ``SE² ≈ p(1−p)(1/n_eff,cur + 1/n_eff,base)``,
  the Bernoulli bound; for graded scores the observed design variance is used
  instead of the Bernoulli bound, which would overstate the MDE;
* a **regression** is ``q ≤ α`` and ``Δ ≤ −min_drop`` (significant *and* large enough);
  ``underpowered`` is ``MDE > min_drop``: a drop of ``min_drop`` could go unseen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from llmobs_cli.core.record.weights import benjamini_hochberg


@dataclass
class Comparison:
    key: dict[str, Any]
    evaluator: str
    current: float
    baseline: float
    se_current: float
    se_baseline: float
    n_eff_current: float
    n_eff_baseline: float
    judged_current: int
    judged_baseline: int
    delta: float = math.nan
    se: float = math.nan
    z: float = math.nan
    p_value: float = math.nan
    q_value: float = math.nan
    mde: float = math.nan
    underpowered: bool = False
    regression: bool = False
    kind: str = "window"  # window | release
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def drop_test(
    p_cur: float, se_cur: float, p_base: float, se_base: float
) -> tuple[float, float, float, float]:
    """``(Δ, SE, z, one-sided p)`` for H1: the current score is lower."""
    delta = p_cur - p_base
    se = math.sqrt(se_cur**2 + se_base**2) if se_cur == se_cur and se_base == se_base else math.nan
    if se != se:
        return delta, se, math.nan, math.nan
    if se == 0:
        return (
            delta,
            0.0,
            (-math.inf if delta < 0 else math.inf if delta > 0 else 0.0),
            (0.0 if delta < 0 else 1.0),
        )
    z = delta / se
    return delta, se, z, NormalDist().cdf(z)


def mde(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    if se != se:
        return math.nan
    n = NormalDist()  # equals scipy's norm to ~1e-16, without its import cost
    return (n.inv_cdf(1 - alpha / 2) + n.inv_cdf(power)) * se


def compare(
    c: Comparison, alpha: float = 0.05, power: float = 0.8, min_drop: float = 0.05
) -> Comparison:
    c.delta, c.se, c.z, c.p_value = drop_test(c.current, c.se_current, c.baseline, c.se_baseline)
    c.mde = mde(c.se, alpha, power)
    c.underpowered = bool(c.mde == c.mde and c.mde > min_drop)
    return c


def flag(tests: Sequence[Comparison], alpha: float = 0.05, min_drop: float = 0.05) -> None:
    """BH across all ``tests`` (in place): sets ``q_value`` and ``regression``."""
    if not tests:
        return
    q = benjamini_hochberg([t.p_value for t in tests])
    for t, qv in zip(tests, q, strict=True):
        t.q_value = float(qv)
        t.regression = bool(qv == qv and qv <= alpha and t.delta <= -min_drop)
