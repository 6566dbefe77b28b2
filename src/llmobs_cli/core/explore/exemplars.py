"""Exemplars: a few concrete calls behind a number that moved.

Each function here is a small query of its own — a filter to the flagged group (and
window) and a ``top_k`` over the few columns it needs — run after the aggregation, never
inside it, so the statistics stay one pass and the exemplars cost a scan of a handful of
columns. Ties are broken by ``trace_id`` so the same data always names the same calls.

* :func:`drift_exemplars` — per drifted feature, calls from the side that grew: the
  longest new answers, the slowest calls, the prompts in the language or topic whose
  share grew, the weakest top-1 retrievals, the new refusals;
* :func:`eval_exemplars` — the judged calls pulling a group's score down (lowest score
  first, heavier weight first among equals);
* :func:`report_exemplars` — the worst calls of a group behind a failed ``--fail-on``
  rule (slowest for latency, costliest for cost, the errors for an error rate …);
* :func:`show_command` — the ``llmobs show`` line that opens one of them.

Every function returns plain dicts (``trace_id``, ``span_id``, ``timestamp``, ``route``,
``value`` and a short ``excerpt``) ready for JSON, terminal and HTML alike.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from llmobs_cli.core.record.fields import field_expr

K = 3
EXCERPT = 120

#: Standard numeric drift features → the per-call value behind them.
_NUMERIC: dict[str, pl.Expr] = {
    "prompt_length": pl.col("prompt").str.len_chars(),
    "response_length": pl.col("response").str.len_chars(),
    "input_tokens": pl.col("input_tokens"),
    "output_tokens": pl.col("output_tokens"),
    "latency_ms": pl.col("latency_ms"),
    "ttft_ms": pl.col("ttft_ms"),
    "cost_usd": pl.col("cost_usd"),
    "retrieval_count": pl.col("retrieved").list.len(),
    "retrieval_top1_score": pl.col("retrieved").list.first().struct.field("score"),
    "retrieval_mean_score": pl.col("retrieved")
    .list.eval(pl.element().struct.field("score"))
    .list.mean(),
}

#: Metrics of ``llmobs report`` → (per-call value, largest first?, a filter or None).
_REPORT: dict[str, tuple[pl.Expr, bool, pl.Expr | None]] = {
    "latency_ms": (pl.col("latency_ms"), True, None),
    "ttft_ms": (pl.col("ttft_ms"), True, None),
    "cost_usd": (pl.col("cost_usd"), True, None),
    "cost_per_call_usd": (pl.col("cost_usd"), True, None),
    "cost_per_session_usd": (pl.col("cost_usd"), True, None),
    "input_tokens": (pl.col("input_tokens"), True, None),
    "output_tokens": (pl.col("output_tokens"), True, None),
    "cached_tokens": (pl.col("cached_tokens"), True, None),
    "cache_hit_rate": (
        pl.col("cached_tokens").fill_null(0) / pl.col("input_tokens"),
        False,
        pl.col("input_tokens") > 0,
    ),
    "calls": (pl.col("timestamp").dt.epoch("us"), True, None),
    "sampled": (pl.col("timestamp").dt.epoch("us"), True, None),
}


def _excerpt() -> pl.Expr:
    users = pl.col("messages").list.eval(
        pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
    )
    text = pl.coalesce(pl.col("prompt"), users.list.last(), pl.col("response"), pl.col("error"))
    flat = text.str.replace_all(r"\s+", " ").str.strip_chars()
    return (
        pl.when(flat.str.len_chars() > EXCERPT)
        .then(flat.str.slice(0, EXCERPT - 1) + pl.lit("…"))
        .otherwise(flat)
    )


def _in_window(start: datetime | None, end: datetime | None) -> pl.Expr:
    cond = pl.lit(True)
    if start is not None:
        cond = cond & (pl.col("timestamp") >= start)
    if end is not None:
        cond = cond & (pl.col("timestamp") < end)
    return cond


def _in_group(key: Mapping[str, Any] | None) -> pl.Expr:
    cond = pl.lit(True)
    for name, value in (key or {}).items():
        col = field_expr(name)
        cond = cond & (col.is_null() if value is None else (col.cast(pl.String) == str(value)))
    return cond


def top_calls(
    calls: pl.LazyFrame | pl.DataFrame,
    value: pl.Expr,
    *,
    where: pl.Expr | None = None,
    largest: bool = True,
    k: int = K,
    shown: pl.Expr | None = None,
) -> list[dict[str, Any]]:
    """The ``k`` calls with the largest (or smallest) ``value`` among ``where``;
    ``shown`` replaces the ranking value in the output (a category, say)."""
    lf = calls.lazy()
    names = set(lf.collect_schema().names())
    for col, dtype in (("messages", None), ("prompt", pl.String), ("response", pl.String)):
        if col not in names:
            lf = lf.with_columns(
                pl.lit(
                    None,
                    dtype=dtype or pl.List(pl.Struct({"role": pl.String, "content": pl.String})),
                ).alias(col)
            )
    if "error" not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.String).alias("error"))
    if "span_id" not in names:
        lf = lf.with_columns(pl.col("trace_id").alias("span_id"))
    if "route" not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.String).alias("route"))
    if where is not None:
        lf = lf.filter(where)
    lf = lf.with_columns(value.alias("_value")).filter(pl.col("_value").is_not_null())
    picked = lf.top_k(
        k, by=["_value", "trace_id", "span_id"], reverse=[not largest, True, True]
    ).select(
        "trace_id",
        "span_id",
        "timestamp",
        "route",
        pl.col("_value"),
        (shown if shown is not None else pl.col("_value")).alias("value"),
        _excerpt().alias("excerpt"),
    )
    out = picked.collect().sort(
        ["_value", "trace_id", "span_id"], descending=[largest, False, False]
    )
    return _plain(out.drop("_value"))


def _plain(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rows = frame.to_dicts()
    for r in rows:
        ts = r.get("timestamp")
        if isinstance(ts, datetime):
            r["timestamp"] = ts.isoformat()
    return rows


def drift_exemplars(
    calls: pl.LazyFrame | pl.DataFrame,
    feature: Mapping[str, Any],
    *,
    current: tuple[datetime | None, datetime | None],
    k: int = K,
    category: pl.Expr | None = None,
) -> list[dict[str, Any]]:
    """Example calls from the current window for one drift row (``features[i]`` of the
    drift JSON): where the distribution moved.

    Numeric features pick the extreme calls on the side that grew (median or mean up →
    the largest values; down → the smallest). Categorical features (``language``,
    ``topic``, ``finish_reason``, any field) pick calls in the category whose share grew
    the most; pass ``category`` for a value the records do not hold themselves (a
    detected language or an assigned topic). ``refusal_rate`` needs a ``_refusal`` column
    or ``category`` giving a boolean.
    """
    name = str(feature.get("feature"))
    where = _in_window(*current) & _in_group(feature.get("group"))
    base, cur = feature.get("baseline") or {}, feature.get("current") or {}
    if name in _NUMERIC or feature.get("kind") == "numeric":
        value = _NUMERIC.get(name, field_expr(name).cast(pl.Float64, strict=False))
        b = base.get("median", base.get("mean"))
        c = cur.get("median", cur.get("mean"))
        if b is not None and c is not None and b == c:
            b, c = base.get("mean"), cur.get("mean")
        largest = not (b is not None and c is not None and c < b)
        return top_calls(calls, value, where=where, largest=largest, k=k)
    if name == "refusal_rate":
        flag = category if category is not None else pl.col("_refusal")
        return top_calls(
            calls,
            pl.col("timestamp").dt.epoch("us"),
            where=where & flag,
            k=k,
            shown=pl.lit("refusal"),
        )
    grown = _grown_category(base, cur)
    if grown is None:
        return []
    value_expr = category if category is not None else field_expr(name).cast(pl.String)
    return top_calls(
        calls,
        pl.col("timestamp").dt.epoch("us"),
        where=where & (value_expr == grown),
        k=k,
        shown=pl.lit(grown),
    )


def _grown_category(base: Mapping[str, Any], cur: Mapping[str, Any]) -> str | None:
    """The category whose share rose the most (None when nothing rose)."""
    best, gain = None, 0.0
    for cat, share in cur.items():
        if not isinstance(share, int | float):
            continue
        delta = float(share) - float(base.get(cat) or 0.0)
        if delta > gain:
            best, gain = cat, delta
    return best


def eval_exemplars(
    judgments: pl.DataFrame,
    *,
    key: Mapping[str, Any] | None,
    evaluator: str,
    window: str | None = "current",
    k: int = 5,
) -> list[dict[str, Any]]:
    """The judged calls pulling a group's score down: lowest score first; among equal
    scores the heaviest weight first (it moves the weighted mean most)."""
    frame = judgments.filter(pl.col("evaluator") == evaluator)
    if "error" in frame.columns:
        frame = frame.filter(pl.col("error").is_null())
    frame = frame.filter(pl.col("score").is_not_null())
    if window is not None and "window" in frame.columns:
        frame = frame.filter(pl.col("window").fill_null("current") == window)
    for name, value in (key or {}).items():
        if name not in frame.columns:
            continue
        col = pl.col(name)
        frame = frame.filter(col.is_null() if value is None else col.cast(pl.String) == str(value))
    if "weight" not in frame.columns:
        frame = frame.with_columns(pl.lit(1.0).alias("weight"))
    for col in ("span_id", "explanation", "route"):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    picked = frame.with_columns(pl.coalesce("span_id", "trace_id").alias("span_id")).sort(
        ["score", "weight", "trace_id", "span_id"],
        descending=[False, True, False, False],
    )
    out = picked.head(k).select(
        "trace_id",
        "span_id",
        "timestamp",
        "route",
        pl.col("score").alias("value"),
        pl.col("explanation").alias("excerpt"),
    )
    return _plain(out)


def report_exemplars(
    calls: pl.LazyFrame | pl.DataFrame,
    *,
    key: Mapping[str, Any] | None,
    metric: str,
    window: tuple[datetime | None, datetime | None] = (None, None),
    k: int = K,
) -> list[dict[str, Any]]:
    """The worst calls of a report group for ``metric`` (``latency_ms.p99``, ``cost_usd``,
    ``error_rate`` …). ``calls`` needs ``cost_usd`` filled (priced) for cost metrics and a
    ``_refusal`` column for ``refusal_rate``."""
    base = metric.split(".", 1)[0]
    where = _in_window(*window) & _in_group(key)
    recent = pl.col("timestamp").dt.epoch("us")
    if base == "refusal_rate":
        return top_calls(
            calls, recent, where=where & pl.col("_refusal"), k=k, shown=pl.lit("refusal")
        )
    if base == "error_rate":
        return top_calls(
            calls,
            recent,
            where=where & (pl.col("status") == "error"),
            k=k,
            shown=pl.coalesce(pl.col("error"), pl.lit("error")),
        )
    value, largest, extra = _REPORT.get(base, (pl.col("latency_ms"), True, None))
    if extra is not None:
        where = where & extra
    return top_calls(calls, value, where=where, largest=largest, k=k)


def show_command(trace_id: str, traces: Sequence[str]) -> str:
    """The shell line that opens a trace (arguments quoted for a POSIX shell)."""
    return shlex.join(["llmobs", "show", trace_id, *traces])
