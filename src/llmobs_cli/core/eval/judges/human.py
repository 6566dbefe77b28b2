"""Human labels and judge–human agreement (Cohen's kappa, confusion matrix).

Labels are binarised at 0.5 on the 0–1 scale (pass ≥ 0.5) for κ and the confusion matrix;
κ = (p_o − p_e) / (1 − p_e) with p_o the observed agreement and p_e the agreement expected
from the two raters' marginal rates (Cohen 1960). κ is undefined (None) when p_e = 1
(both raters used one single class).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion(
    judge: Sequence[int], human: Sequence[int], labels: Sequence[int] = (0, 1)
) -> np.ndarray:
    """Counts ``m[i, j]`` of (judge = labels[i], human = labels[j])."""
    j = np.asarray(judge)
    h = np.asarray(human)
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, la in enumerate(labels):
        for b, lb in enumerate(labels):
            m[a, b] = int(np.sum((j == la) & (h == lb)))
    return m


def cohen_kappa(
    judge: Sequence[int], human: Sequence[int], labels: Sequence[int] = (0, 1)
) -> float | None:
    m = confusion(judge, human, labels).astype(float)
    n = m.sum()
    if n == 0:
        return None
    po = np.trace(m) / n
    pe = float(np.sum(m.sum(axis=1) * m.sum(axis=0))) / n**2
    if pe >= 1.0:
        return None
    return float((po - pe) / (1 - pe))
