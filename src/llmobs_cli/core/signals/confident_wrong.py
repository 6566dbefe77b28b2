"""Confident-wrong: judged calls the model was sure of (mean token log-prob at least
:data:`~llmobs_cli.core.signals.confidence.CONFIDENT_LOGPROB`, i.e. geometric-mean token
probability ≥ 0.8) whose judgment fails (score below :data:`FAIL_SCORE` = 0.5 on the
[0, 1] scale).

Judgment rows carry the call's ``response_confidence`` (null when the trace has no
log-probs). The rate is a Hájek mean of the confident-wrong indicator over the judged rows
*with* a confidence, weighted like the scores (``1/sample_rate × 1/eval_rate``), with the
same stratified interval (:func:`core.record.weights.hajek_mean_ci`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from llmobs_cli.core.record.weights import hajek_mean_ci
from llmobs_cli.core.signals.confidence import CONFIDENT_LOGPROB

#: A judgment fails below this score.
FAIL_SCORE = 0.5
COLUMN = "response_confidence"


def expr(threshold: float = CONFIDENT_LOGPROB) -> pl.Expr:
    """Confident and failing (null without a confidence or a score)."""
    return (pl.col(COLUMN) >= threshold) & (pl.col("score") < FAIL_SCORE)


def stats(part: pl.DataFrame) -> dict[str, Any] | None:
    """Weighted confident-wrong rate with its 95 % interval over the scored rows of one
    group × evaluator that carry a confidence; None when none does."""
    if COLUMN not in part.columns:
        return None
    ok = part.filter(
        pl.col("error").is_null() & pl.col("score").is_not_null() & pl.col(COLUMN).is_not_null()
    )
    if not ok.height:
        return None
    y = ok.select(expr().cast(pl.Float64)).to_series().to_numpy()
    w = ok["weight"].to_numpy().astype(float)
    strata = ok["stratum"].to_numpy() if "stratum" in ok.columns else None
    rate, lo, hi, _se = hajek_mean_ci(y, w, strata)
    return {
        "rate": float(rate),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "n": int(ok.height),
        "count": int(y.sum()),
        "n_eff": float(w.sum() ** 2 / (w**2).sum()),
        "mean_confidence": float(np.average(ok[COLUMN].to_numpy(), weights=w)),
    }
