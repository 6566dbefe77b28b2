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
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.record.fields import field_expr
from llmobs_cli.core.record.windows import Window

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
    where = Window(*current).contains() & _in_group(feature.get("group"))
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
        frame = frame.filter(
            pl.col(name).is_null() if value is None else pl.col(name).cast(pl.String) == str(value)
        )
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
    where = Window(*window).contains() & _in_group(key)
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


# --- attaching exemplars to results (each a small read after the aggregation) ----------

#: Drift features whose per-call value no record holds and no cheap rule recomputes.
NO_EXEMPLARS = ("topic", "response_topic", "response_vocabulary")
#: How many of the newest current-window prompts the language exemplars look at.
LANGUAGE_SAMPLE = 400


def _quote(value: Any) -> str:
    """A ``--where`` literal for ``value`` (quoted and escaped text, or null)."""
    if value is None:
        return "null"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def group_where(key: Mapping[str, Any] | None) -> str | None:
    """``{"route": "chat"}`` → ``route = "chat"`` (a ``--where`` text), or None."""
    parts = [f"{name} = {_quote(value)}" for name, value in (key or {}).items()]
    return " and ".join(parts) or None


#: Report metric → (``--where`` addition, ``--sort``) for the group's worst calls.
_REPORT_SORT: dict[str, tuple[str | None, str]] = {
    "latency_ms": (None, "-latency_ms"),
    "ttft_ms": (None, "-ttft_ms"),
    "cost_usd": (None, "-cost_usd"),
    "cost_per_call_usd": (None, "-cost_usd"),
    "cost_per_session_usd": (None, "-cost_usd"),
    "input_tokens": (None, "-input_tokens"),
    "output_tokens": (None, "-output_tokens"),
    "error_rate": ("status = error", "-timestamp"),
}


def attach_report(
    alerts: list[dict[str, Any]],
    paths: Sequence[str | Path],
    *,
    k: int = K,
    window: tuple[datetime | None, datetime | None] = (None, None),
    **read: Any,
) -> None:
    """Each fired alert gains ``exemplars``: the group's worst calls for its metric (a
    ``llmobs calls`` query: filter to the group, ``top_k`` by the metric's field)."""
    from llmobs_cli.core.explore.calls import find_calls

    for a in alerts:
        base = str(a.get("metric", "")).split(".", 1)[0]
        if base not in _REPORT_SORT:
            continue
        extra, sort = _REPORT_SORT[base]
        where = " and ".join(w for w in (group_where(a.get("key")), extra) if w) or None
        start, end = window
        try:
            res = find_calls(
                paths,
                where=where,
                sort=sort,
                top=k,
                since=start.isoformat() if start else None,
                until=end.isoformat() if end else None,
                **read,
            )
        except Exception:  # naming examples must never turn a report into a failure
            continue
        value = sort.lstrip("+-")
        a["exemplars"] = [
            {
                "trace_id": r["trace_id"],
                "span_id": r["span_id"],
                "timestamp": r["timestamp"],
                "route": r["route"],
                "value": None if base == "error_rate" else r.get(value),
                "excerpt": r.get("prompt_excerpt") or r.get("response_excerpt"),
            }
            for r in res.records()
        ]


def attach_drift(
    result: Any,
    paths: Sequence[str | Path],
    *,
    k: int = K,
    config: Any = None,
    prices: Any = None,
    refusal_patterns: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    **read: Any,
) -> None:
    """Each drifted feature row of ``result`` gains ``exemplars`` from the current
    window (see :func:`drift_exemplars`); ``topic``-like features have none. ``config``
    (an ``llmobs.yaml``) gives the price table and refusal patterns, unless ``prices`` /
    ``refusal_patterns`` are given (the dashboard's table with its ``--prices``); with
    ``sources`` each exemplar also carries its ``show`` command line.

    The window is streamed: each batch's candidates are merged with the best so far and
    cut back to the ``k`` calls the whole window would give (a top-k of top-k's), so
    memory holds one batch and a few calls per feature."""
    from llmobs_cli.core.ingest.readers.stream import Stream
    from llmobs_cli.core.record.fields import base_column

    rows = [r for r in result.features if r.get("drifted") and r["feature"] not in NO_EXEMPLARS]
    if not rows:
        return
    start, end = result.current.start, result.current.end
    groups = {base_column(f) for r in rows for f in (r.get("group") or {})}
    plain = {base_column(r["feature"]) for r in rows if r["feature"] not in _NUMERIC}
    columns = {
        "trace_id", "span_id", "timestamp", "route", "prompt", "messages", "response",
        "error", "status", "finish_reason", "latency_ms", "ttft_ms", "input_tokens",
        "output_tokens", "retrieved", "model", "provider", "cost_usd", "cached_tokens",
        "cache_write_tokens", "reasoning_tokens", *groups, *plain,
    }  # fmt: skip
    config_prices, patterns = _config_parts(config)
    prices = config_prices if prices is None else prices
    patterns = patterns if refusal_patterns is None else refusal_patterns
    best: dict[int, pl.DataFrame] = {}
    try:
        stream = Stream(paths, columns=sorted(columns), since=start, until=end, **read)
        for batch in stream:
            lf = _prepared(batch, prices, patterns)
            for i, row in enumerate(rows):
                part = lf
                if i in best:
                    part = pl.concat([best[i].lazy(), lf], how="diagonal_relaxed")
                best[i] = _candidates(part, row, (start, end), k)
    except Exception:
        return
    for i, row in enumerate(rows):
        if i in best:
            _attach_row(row, best[i].lazy(), (start, end), k, sources)


def _config_parts(config: Any) -> tuple[Any, Any]:
    from llmobs_cli.core.report import pricing
    from llmobs_cli.core.report.refusals import patterns_from_config

    if config is None:
        return None, None
    source = config.source or "llmobs.yaml"
    return pricing.config_price_table(config), patterns_from_config(config.refusals, source)


def _prepared(
    frame: pl.DataFrame | pl.LazyFrame, prices: Any, refusal_patterns: Sequence[str] | None
) -> pl.LazyFrame:
    """Calls with the columns the exemplars rank by: cost (priced) and the refusal flag."""
    from llmobs_cli.core.report import pricing
    from llmobs_cli.core.report.refusals import refusal_expr

    lf = frame.lazy()
    names = set(lf.collect_schema().names())
    for col, dtype in (("response", pl.String), ("finish_reason", pl.String)):
        if col not in names:
            lf = lf.with_columns(pl.lit(None, dtype=dtype).alias(col))
    return pricing.with_cost(lf, prices).with_columns(
        pl.col(pricing.COST).alias("cost_usd"),
        refusal_expr(
            pl.col("response"),
            list(refusal_patterns) if refusal_patterns else None,
            finish_reason=pl.col("finish_reason"),
        ).alias("_refusal"),
    )


def _candidates(
    lf: pl.LazyFrame, row: Mapping[str, Any], current: tuple[Any, Any], k: int
) -> pl.DataFrame:
    """The calls of ``lf`` that can still be ``row``'s exemplars: its ``k`` picks (the
    newest prompts of the window for ``language``, detected later)."""
    from llmobs_cli.core.drift.sample import compact

    if row["feature"] == "language":
        return compact(
            lf.filter(Window(*current).contains() & _in_group(row.get("group")))
            .top_k(LANGUAGE_SAMPLE, by="timestamp")
            .collect()
        )
    picked = drift_exemplars(lf, row, current=current, k=k)
    keys = pl.DataFrame(
        {"trace_id": [r["trace_id"] for r in picked], "span_id": [r["span_id"] for r in picked]},
        schema={"trace_id": pl.String, "span_id": pl.String},
    )
    return compact(
        lf.join(keys.lazy(), on=["trace_id", "span_id"], how="semi", nulls_equal=True).collect()
    )


def _attach_row(
    row: dict[str, Any],
    lf: pl.LazyFrame,
    current: tuple[Any, Any],
    k: int,
    sources: Sequence[str] | None,
) -> None:
    try:
        if row["feature"] == "language":
            row["exemplars"] = _language_exemplars(lf, row, current, k)
        else:
            row["exemplars"] = drift_exemplars(lf, row, current=current, k=k)
    except Exception:
        return
    if sources is not None:
        for r in row.get("exemplars") or []:
            r["show"] = show_command(str(r["trace_id"]), sources)


def attach_drift_frame(
    result: Any,
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    k: int = K,
    prices: Any = None,
    refusal_patterns: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> None:
    """:func:`attach_drift` over calls already read (the dashboard's single load);
    with ``sources`` each exemplar also carries its ``show`` command line."""
    rows = [r for r in result.features if r.get("drifted") and r["feature"] not in NO_EXEMPLARS]
    if not rows:
        return
    current = (result.current.start, result.current.end)
    lf = _prepared(frame, prices, refusal_patterns)
    for row in rows:
        _attach_row(row, lf, current, k, sources)


def _language_exemplars(
    lf: pl.LazyFrame, row: Mapping[str, Any], current: tuple[Any, Any], k: int
) -> list[dict[str, Any]]:
    """Calls in the language whose share grew, among the newest prompts of the window
    (detection costs a model call per distinct text, so only a bounded sample)."""
    from llmobs_cli.core.drift.language import detect

    users = pl.col("messages").list.eval(
        pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
    )
    recent = (
        lf.filter(Window(*current).contains() & _in_group(row.get("group")))
        .top_k(LANGUAGE_SAMPLE, by="timestamp")
        .collect()
    )
    text = recent.select(pl.coalesce(pl.col("prompt"), users.list.last())).to_series()
    recent = recent.with_columns(detect(text).alias("_lang"))
    return drift_exemplars(recent, row, current=current, k=k, category=pl.col("_lang"))


def attach_eval(
    summary: Any, judgments: pl.DataFrame, *, k: int = 5, sources: Sequence[str] | None = None
) -> None:
    """Each regression test of ``summary`` gains ``exemplars``: the judged calls pulling
    its score down (in the JSON through the test's extra fields); with ``sources`` each
    also carries its ``show`` command line."""
    for t in getattr(summary, "regressions", []):
        window = None if getattr(t, "kind", "window") == "release" else "current"
        try:
            t.extra["exemplars"] = eval_exemplars(
                judgments, key=t.key, evaluator=t.evaluator, window=window, k=k
            )
        except Exception:
            continue
        if sources is not None:
            for r in t.extra["exemplars"]:
                r["show"] = show_command(str(r["trace_id"]), sources)
