"""Judge-error-corrected quality: what the score would be if people had judged every call.

A judge's average is its opinion, not the truth: a judge that passes 10 % too many answers
gives an interval around the wrong number, however many calls it judges. When people
label a *random* subset of the judged calls (``llmobs review export`` draws one, with each
item's inclusion probability recorded), the judge's error on that subset corrects the
judge's average over all judged calls.

**Prediction-powered estimate** (Angelopoulos et al., 2023), written for llmobs' weighted
two-phase design. Phase 1 is the judged set *J* (each call weighted ``w`` =
1/(sample_rate × eval_rate)); phase 2 is the labelled set *L* ⊂ *J*, drawn by Poisson
sampling with probability ``π`` per item (``review_rate``)::

    m_f = Σ_J w·f / Σ_J w                      the judge's weighted mean
    r   = Σ_L (w/π)·(y − f) / Σ_L (w/π)        the judge's weighted mean error
    θ̂   = m_f + r                               the corrected mean

Its variance has two parts: the first phase's (the spread of the *true* scores y over the
judged calls, estimated on L with weights w²/π) and the second phase's (the spread of the
judge's errors y − f over L, with the Poisson factor 1 − π). A perfect judge has zero
errors and the corrected interval is the judge's own; a biased judge moves θ̂ by its bias
and widens the interval by the uncertainty of that bias. Labels that reviewers left empty
are treated as missing at random within their stratum (say so when it matters).

**Rogan–Gladen** (1978), for pass/fail judges and labels: with the judge's sensitivity
``se`` and specificity ``sp`` measured on L, the true pass rate is
``(p_judge + sp − 1) / (se + sp − 1)``, with a delta-method interval. It is reported
beside the prediction-powered estimate when both judge and labels are 0/1, and is
undefined (None) when the judge is no better than chance (``se + sp ≤ 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

#: Fewer random labels than this in a group: no corrected estimate (the judge's error
#: cannot be measured with any useful precision).
MIN_LABELS = 10


@dataclass(frozen=True)
class Corrected:
    """A corrected mean score (0–1) with its interval, and what it says about the judge."""

    score: float
    se: float
    ci_low: float
    ci_high: float
    labels: int
    judge_bias: float  # judge mean − corrected mean (positive: the judge is too kind)
    judge_bias_ci: tuple[float, float]
    agreement: float | None  # share of labelled items where judge and label agree (0/1 data)
    method: str = "ppi"
    alternatives: dict[str, dict[str, float | None]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "method": self.method,
            "labels": self.labels,
            "judge_bias": self.judge_bias,
            "judge_bias_ci": list(self.judge_bias_ci),
            "agreement": self.agreement,
            **({"alternatives": self.alternatives} if self.alternatives else {}),
        }


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def ppi_mean(
    f_all: np.ndarray,
    w_all: np.ndarray,
    f_lab: np.ndarray,
    y_lab: np.ndarray,
    w_lab: np.ndarray,
    pi_lab: np.ndarray,
    *,
    level: float = 0.95,
) -> Corrected | None:
    """The prediction-powered corrected mean (see the module docstring).

    ``f_all``/``w_all``: judge scores and weights of every judged call in the group;
    ``f_lab``/``y_lab``/``w_lab``/``pi_lab``: judge score, human label, weight and inclusion
    probability of the randomly selected, labelled calls. None with fewer than
    :data:`MIN_LABELS` labels.
    """
    f_all, w_all = np.asarray(f_all, float), np.asarray(w_all, float)
    f_lab, y_lab = np.asarray(f_lab, float), np.asarray(y_lab, float)
    w_lab, pi_lab = np.asarray(w_lab, float), np.asarray(pi_lab, float)
    ok = ~(np.isnan(f_lab) | np.isnan(y_lab) | np.isnan(w_lab) | np.isnan(pi_lab))
    f_lab, y_lab, w_lab, pi_lab = f_lab[ok], y_lab[ok], w_lab[ok], pi_lab[ok]
    keep = ~np.isnan(f_all)
    f_all, w_all = f_all[keep], w_all[keep]
    n = int(y_lab.size)
    if n < MIN_LABELS or w_all.sum() <= 0:
        return None
    total = float(w_all.sum())
    m_f = float(np.sum(w_all * f_all) / total)
    v = w_lab / pi_lab
    e = y_lab - f_lab
    r = float(np.sum(v * e) / v.sum())
    theta = m_f + r
    # Phase 1: the Hájek mean of y over J, its linearised variance estimated on L.
    var1 = float(np.sum((w_lab**2 / pi_lab) * (y_lab - theta) ** 2)) / total**2
    # Phase 2: Poisson subsampling of J, ratio estimator of the mean error.
    var2 = float(np.sum(v**2 * (1 - pi_lab) * (e - r) ** 2)) / float(v.sum()) ** 2
    var2 *= n / (n - 1)
    se = math.sqrt(max(var1 + var2, 0.0))
    z = _z(level)
    se_r = math.sqrt(var2) if var2 > 0 else 0.0
    binary = bool(np.all(np.isin(y_lab, (0.0, 1.0))) and np.all(np.isin(f_all, (0.0, 1.0))))
    agree = None
    if binary or np.all(np.isin(y_lab, (0.0, 1.0))):
        agree = float(np.sum(v * ((f_lab >= 0.5) == (y_lab >= 0.5))) / v.sum())
    alts = None
    if binary:
        rg = rogan_gladen(f_all, w_all, f_lab, y_lab, v, level=level)
        alts = {"rogan_gladen": rg}
    return Corrected(
        score=min(1.0, max(0.0, theta)),
        se=se,
        ci_low=max(0.0, theta - z * se),
        ci_high=min(1.0, theta + z * se),
        labels=n,
        judge_bias=-r,
        judge_bias_ci=(-r - z * se_r, -r + z * se_r),
        agreement=agree,
        alternatives=alts,
    )


def rogan_gladen(
    f_all: np.ndarray,
    w_all: np.ndarray,
    f_lab: np.ndarray,
    y_lab: np.ndarray,
    v_lab: np.ndarray,
    *,
    level: float = 0.95,
) -> dict[str, float | None]:
    """The Rogan–Gladen pass rate with a delta-method interval (0/1 judge and labels).

    ``v_lab`` are the labelled items' design weights (w/π). Sensitivity and specificity
    are weighted means over the labelled positives and negatives; their variances use the
    Kish effective sizes. Returns Nones when the judge is no better than chance.
    """
    none: dict[str, float | None] = {"score": None, "ci_low": None, "ci_high": None}
    pos, neg = y_lab == 1.0, y_lab == 0.0
    if not pos.any() or not neg.any():
        return none

    def wmean(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
        m = float(np.sum(w * x) / w.sum())
        ne = float(w.sum() ** 2 / np.sum(w**2))
        return m, m * (1 - m) / max(ne, 1.0)

    sens, v_se = wmean(f_lab[pos], v_lab[pos])
    spec, v_sp = wmean(1 - f_lab[neg], v_lab[neg])
    pj, v_pj = wmean(f_all, w_all)
    denom = sens + spec - 1
    if denom <= 0.05:
        return none
    p = (pj + spec - 1) / denom
    var = (v_pj + p**2 * v_se + (1 - p) ** 2 * v_sp) / denom**2
    se = math.sqrt(max(var, 0.0))
    z = _z(level)
    p_c = min(1.0, max(0.0, p))
    return {
        "score": p_c,
        "ci_low": max(0.0, p - z * se),
        "ci_high": min(1.0, p + z * se),
        "sensitivity": sens,
        "specificity": spec,
    }
