"""What a monitor watches: one number per quantity per night, against a frozen reference.

A *quantity* is a weighted mean over calls that the baseline pins down: a quality score
per group and evaluator, the share of calls in a category (a language, a finish reason,
refusals), or, for a numeric feature, the share of calls above the baseline's weighted
median (a location shift moves it away from ½ whatever the feature's scale).

The baseline is estimated once, so it carries its own error: its reference interval
``[lo, hi]`` is the baseline estimate ± z·se at a level that takes half of the monitor's
α (split over the quantities), widened by the effect floor (a change smaller than the
floor is not worth a page). Each night's estimate is a Hájek mean with its linearised
standard error, weighted by 1/sample_rate like every figure in llmobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from llmobs_cli.core.record.weights import hajek_mean_ci, n_eff, weighted_quantile

#: Nights with fewer effective calls than this for a quantity are not counted for it
#: (the normal approximation of one night's estimate needs some data).
MIN_NIGHT_N_EFF = 20.0


@dataclass(frozen=True)
class Estimate:
    """A weighted mean, its standard error and the Kish effective sample size."""

    x: float
    se: float
    n_eff: float


@dataclass
class Quantity:
    """A monitored quantity: its id, words for people, and its frozen reference."""

    qid: str
    label: str
    kind: str  # quality | share | above_median
    sides: tuple[str, ...]  # "down" and/or "up"
    baseline: float
    lo: float
    hi: float
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "qid": self.qid,
            "label": self.label,
            "kind": self.kind,
            "sides": list(self.sides),
            "baseline": self.baseline,
            "lo": self.lo,
            "hi": self.hi,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Quantity:
        return cls(
            qid=d["qid"],
            label=d["label"],
            kind=d["kind"],
            sides=tuple(d["sides"]),
            baseline=float(d["baseline"]),
            lo=float(d["lo"]),
            hi=float(d["hi"]),
            meta=dict(d.get("meta") or {}),
        )


def weighted_mean(y: np.ndarray, w: np.ndarray) -> Estimate | None:
    """The Hájek mean of ``y`` with weights ``w`` (NaNs dropped) with its linearised
    standard error (:func:`~llmobs_cli.core.record.weights.hajek_mean_ci`) and Kish n_eff;
    None when empty."""
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    ok = ~(np.isnan(y) | np.isnan(w)) & (w > 0)
    y, w = y[ok], w[ok]
    if y.size == 0:
        return None
    m, _lo, _hi, se = hajek_mean_ci(y, w)
    ne = n_eff(w)
    if not se > 0:  # all equal: the binomial variance with n_eff keeps the test honest
        se = math.sqrt(max(m * (1 - m), 1e-12) / max(ne, 1.0)) if 0 <= m <= 1 else 1e-6
    return Estimate(m, se, ne)


def weighted_median(y: np.ndarray, w: np.ndarray) -> float:
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    ok = ~(np.isnan(y) | np.isnan(w)) & (w > 0)
    return weighted_quantile(y[ok], w[ok], 0.5)


def reference_z(alpha: float, quantities: int) -> float:
    """z of the baseline's two-sided interval when half of ``alpha`` is split over them."""
    return NormalDist().inv_cdf(1 - alpha / (4 * max(quantities, 1)))


def reference(est: Estimate, z: float, floor: float) -> tuple[float, float]:
    return est.x - z * est.se - floor, est.x + z * est.se + floor


def above(values: np.ndarray, threshold: float) -> np.ndarray:
    """1.0 where a value lies above ``threshold``, NaN where the value is missing."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isnan(v), np.nan, (v > threshold).astype(float))
