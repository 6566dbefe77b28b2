"""Confidence features from a call's token log-probs (the canonical ``logprobs`` list).

Every function returns a Polars expression over the ``logprobs`` column (vectorised list
operations, no Python loop over rows). A call without log-probs (null or empty list) gives
null in every feature, so it drops out of weighted means and distributions.

* ``response_confidence`` — mean token log-prob (0 = certain; more negative = less sure).
* ``response_perplexity`` — ``exp(-mean log-prob)``.
* ``low_confidence_share`` — share of tokens with log-prob below ``LOW_LOGPROB`` = log(0.1)
  (the model gave the chosen token less than a 10 % chance).
* ``min_window_confidence`` — the lowest mean log-prob over any ``WINDOW`` = 8 consecutive
  tokens (a cheap hedging signal: one unsure clause in an otherwise confident answer). A
  call with fewer than 8 tokens uses the mean of all its tokens.

*Confident*: ``response_confidence >= CONFIDENT_LOGPROB`` = log(0.8), i.e. the geometric
mean token probability is at least 0.8. A confident call with a failing judgment is
*confident-wrong*.
"""

from __future__ import annotations

import math

import polars as pl

#: A token below this log-prob counts as low-confidence (p < 0.1).
LOW_LOGPROB = math.log(0.1)
#: Sliding window (tokens) of ``min_window_confidence``.
WINDOW = 8
#: A call is confident when its mean token log-prob is at least this (geometric mean p ≥ 0.8).
CONFIDENT_LOGPROB = math.log(0.8)

FEATURES: tuple[str, ...] = (
    "response_confidence",
    "response_perplexity",
    "low_confidence_share",
    "min_window_confidence",
)


def _lp(col: str) -> pl.Expr:
    lp = pl.col(col)
    # An empty list carries no evidence: treat as null.
    return pl.when(lp.list.len() > 0).then(lp).otherwise(None)


def mean_logprob(col: str = "logprobs") -> pl.Expr:
    """Mean token log-prob; null without log-probs."""
    return _lp(col).list.mean().cast(pl.Float64)


def perplexity(col: str = "logprobs") -> pl.Expr:
    """``exp(-mean token log-prob)``; null without log-probs."""
    return (-mean_logprob(col)).exp()


def low_share(col: str = "logprobs", threshold: float = LOW_LOGPROB) -> pl.Expr:
    """Share of tokens with log-prob below ``threshold``; null without log-probs."""
    lp = _lp(col)
    return lp.list.eval((pl.element() < threshold).cast(pl.Float64)).list.mean()


def min_window(col: str = "logprobs", window: int = WINDOW) -> pl.Expr:
    """Lowest mean log-prob over ``window`` consecutive tokens (the whole-call mean when
    the call has fewer tokens); null without log-probs."""
    lp = _lp(col)
    rolled = lp.list.eval(pl.element().rolling_mean(window)).list.min()
    return pl.when(lp.list.len() >= window).then(rolled).otherwise(lp.list.mean()).cast(pl.Float64)


def confident(col: str = "logprobs", threshold: float = CONFIDENT_LOGPROB) -> pl.Expr:
    """Whether the call is confident (null without log-probs)."""
    return mean_logprob(col) >= threshold


def feature_expr(name: str, col: str = "logprobs") -> pl.Expr:
    """The expression of one of :data:`FEATURES`."""
    return {
        "response_confidence": mean_logprob,
        "response_perplexity": perplexity,
        "low_confidence_share": low_share,
        "min_window_confidence": min_window,
    }[name](col)


def columns(col: str = "logprobs") -> list[pl.Expr]:
    """All confidence features, aliased by name (for ``with_columns``)."""
    return [feature_expr(n, col).alias(n) for n in FEATURES]
