"""Drift features: the contract's standard names, what they read and how they are compared.

A feature is a :class:`FeatureSpec`: a name, a *kind* that picks the test
(``numeric`` → weighted KS; ``rate``/``categorical``/``topic``/``vocabulary`` → Wald χ² on
weighted shares; ``calibration`` → Wald test of a slope), the canonical columns it reads
(so the loader projects only those) and, for columnar features, one Polars expression
evaluated over both windows at once. Text features that need a model or a fit
(``language``, ``topic``, ``response_topic``, ``response_vocabulary``) are fitted on the
text sample and applied to every row by the text pass (:mod:`.textpass`).

Any record field or ``metadata.KEY`` is also a feature (``--features``): numbers are
compared as distributions, booleans as rates, everything else as categories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from llmobs_cli.core.record.fields import base_column, check_field, field_expr
from llmobs_cli.core.report.refusals import refusal_expr
from llmobs_cli.core.signals import citations, confidence

Kind = str  # "numeric" | "rate" | "categorical" | "topic" | "vocabulary" | "calibration"


@dataclass(frozen=True)
class FeatureSpec:
    """One drift feature."""

    name: str
    kind: Kind
    layer: str  # input | output | retrieval | operations | custom
    columns: tuple[str, ...]
    unit: str = ""
    #: Polars expression of the feature (None for fitted text features).
    expr: Callable[[list[str] | None], pl.Expr] | None = None
    #: How the feature is described in one line ("chars", "tokens", ...).
    description: str = ""


def last_user_turn() -> pl.Expr:
    """The content of the last user turn of ``messages``."""
    return (
        pl.col("messages")
        .list.eval(
            pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
        )
        .list.last()
    )


def _user_text() -> pl.Expr:
    """The user's input: ``prompt``, else the last user turn of ``messages``."""
    return pl.coalesce(pl.col("prompt"), last_user_turn())


def _scores() -> pl.Expr:
    return pl.col("retrieved").list.eval(pl.element().struct.field("score"))


def _refusal(patterns: list[str] | None) -> pl.Expr:
    ok = pl.col("status").fill_null("ok") == "ok"
    hit = refusal_expr(pl.col("response"), patterns, finish_reason=pl.col("finish_reason"))
    # A refusal rate is among successful calls with an answer (or a content filter).
    has = pl.col("response").is_not_null() | (pl.col("finish_reason") == "content_filter")
    return pl.when(ok & has.fill_null(False)).then(hit.cast(pl.Int8)).otherwise(None)


def _num(col: str) -> Callable[[list[str] | None], pl.Expr]:
    return lambda _p: pl.col(col).cast(pl.Float64)


STANDARD: dict[str, FeatureSpec] = {
    s.name: s
    for s in (
        FeatureSpec(
            "prompt_length",
            "numeric",
            "input",
            ("prompt", "messages"),
            "chars",
            lambda _p: _user_text().str.len_chars().cast(pl.Float64),
        ),
        FeatureSpec(
            "input_tokens", "numeric", "input", ("input_tokens",), "tokens", _num("input_tokens")
        ),
        FeatureSpec("language", "categorical", "input", ("prompt", "messages")),
        FeatureSpec("topic", "topic", "input", ("prompt", "messages")),
        FeatureSpec(
            "response_length",
            "numeric",
            "output",
            ("response",),
            "chars",
            lambda _p: pl.col("response").str.len_chars().cast(pl.Float64),
        ),
        FeatureSpec(
            "output_tokens",
            "numeric",
            "output",
            ("output_tokens",),
            "tokens",
            _num("output_tokens"),
        ),
        FeatureSpec(
            "refusal_rate", "rate", "output", ("response", "status", "finish_reason"), "", _refusal
        ),
        FeatureSpec(
            "finish_reason",
            "categorical",
            "output",
            ("finish_reason",),
            "",
            lambda _p: pl.col("finish_reason"),
        ),
        FeatureSpec("response_vocabulary", "vocabulary", "output", ("response",)),
        FeatureSpec("response_topic", "topic", "output", ("response",)),
        FeatureSpec(
            "retrieval_top1_score",
            "numeric",
            "retrieval",
            ("retrieved",),
            "score",
            lambda _p: _scores().list.first().cast(pl.Float64),
        ),
        FeatureSpec(
            "retrieval_mean_score",
            "numeric",
            "retrieval",
            ("retrieved",),
            "score",
            lambda _p: _scores().list.mean().cast(pl.Float64),
        ),
        FeatureSpec(
            "retrieval_count",
            "numeric",
            "retrieval",
            ("retrieved",),
            "docs",
            lambda _p: pl.col("retrieved").list.len().cast(pl.Float64),
        ),
        # Token confidence from log-probs (core/signals/confidence.py); skipped with a
        # note when the dump has no log-probs.
        FeatureSpec(
            "response_confidence",
            "numeric",
            "output",
            ("logprobs",),
            "mean token log-prob",
            lambda _p: confidence.mean_logprob(),
        ),
        FeatureSpec(
            "low_confidence_share",
            "numeric",
            "output",
            ("logprobs",),
            "share of tokens with p < 0.1",
            lambda _p: confidence.low_share(),
        ),
        FeatureSpec(
            "min_window_confidence",
            "numeric",
            "output",
            ("logprobs",),
            "lowest 8-token mean log-prob",
            lambda _p: confidence.min_window(),
        ),
        # Which retrieved document the answer uses (core/signals/citations.py).
        FeatureSpec(
            "cited_rank",
            "categorical",
            "retrieval",
            citations.COLUMNS,
            "rank",
            lambda p: citations.cited_rank_label(p),
        ),
        FeatureSpec(
            "latency_ms", "numeric", "operations", ("latency_ms",), "ms", _num("latency_ms")
        ),
        FeatureSpec(
            "cost_usd",
            "numeric",
            "operations",
            (
                "cost_usd",
                "model",
                "provider",
                "input_tokens",
                "output_tokens",
                "cached_tokens",
                "reasoning_tokens",
                "cache_write_tokens",
                "status",
            ),
            "$",
            None,
        ),
    )
}

#: The default feature list, in display order.
DEFAULT_FEATURES: tuple[str, ...] = tuple(STANDARD)
#: Text features fitted on the text sample, then applied to every row by the text pass.
FITTED = ("language", "topic", "response_topic", "response_vocabulary")


def custom_spec(name: str, dtype: pl.DataType | None) -> FeatureSpec:
    """A record field or ``metadata.KEY`` as a feature; its kind follows its type."""
    check_field(name, "features")
    col = base_column(name)
    if name.startswith("metadata."):
        # Metadata values are JSON text: numbers when every value parses as one.
        return FeatureSpec(name, "auto", "custom", (col,), "", lambda _p: field_expr(name))
    if dtype is not None and dtype.is_numeric():
        return FeatureSpec(
            name, "numeric", "custom", (col,), "", lambda _p: pl.col(name).cast(pl.Float64)
        )
    if dtype == pl.Boolean:
        return FeatureSpec(
            name, "rate", "custom", (col,), "", lambda _p: pl.col(name).cast(pl.Int8)
        )
    if dtype is not None and dtype.is_temporal():
        return FeatureSpec(
            name,
            "numeric",
            "custom",
            (col,),
            "",
            lambda _p: pl.col(name).dt.epoch("ms").cast(pl.Float64),
        )
    if isinstance(dtype, pl.List):
        return FeatureSpec(
            name,
            "numeric",
            "custom",
            (col,),
            "items",
            lambda _p: pl.col(name).list.len().cast(pl.Float64),
        )
    return FeatureSpec(
        name, "categorical", "custom", (col,), "", lambda _p: pl.col(name).cast(pl.String)
    )


def columns_for(specs: list[FeatureSpec]) -> list[str]:
    cols: list[str] = []
    for s in specs:
        cols.extend(s.columns)
    return list(dict.fromkeys(cols))
