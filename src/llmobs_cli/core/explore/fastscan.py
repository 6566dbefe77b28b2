"""A lazy scan of canonical Parquet for ``llmobs calls``: projection, predicate and
``top_k`` pushed into one streaming query, so memory follows the answer, not the dump.

It applies only where it gives exactly what :func:`llmobs_cli.core.ingest.readers.load`
would: every source is Parquet whose columns are all canonical names with the canonical
types (nothing to rename, cast or fold into ``metadata``). The record defaults are the
same expressions ``normalize`` applies, and the same validation rules run as lazy counts
in the same pass. When any rule finds a problem, or two rows are the same call (a
repeated ``trace_id``/``span_id``), or nothing was read, the caller falls back to
``load`` — which then reports the exact ``file: row N: field: problem`` lines, applies
``--on-error skip`` and counts duplicates once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import polars as pl

from llmobs_cli.core.record.schema import INT_FIELDS, SCHEMA, STATUS_VALUES, UTC_US


def canonical_sources(paths: Sequence[str | Path], fmt: str | None) -> list[Path] | None:
    """The sources as Parquet files of canonical columns only, or None (use ``load``)."""
    from llmobs_cli.core.ingest.readers import expand_paths
    from llmobs_cli.core.ingest.readers.formats import detect_format

    if fmt not in (None, "parquet"):
        return None
    try:
        found = expand_paths(paths)
    except Exception:
        return None
    out: list[Path] = []
    for path in found:
        if path.is_dir() or detect_format(path) != "parquet":
            return None
        try:
            schema = pl.read_parquet_schema(path)
        except Exception:
            return None
        for name, dtype in schema.items():
            if name not in SCHEMA or dtype != SCHEMA[name]:
                return None
        if "trace_id" not in schema or "timestamp" not in schema:
            return None
        out.append(path)
    return out or None


def scan(
    paths: Sequence[Path],
    columns: Sequence[str],
    since: datetime | None,
    until: datetime | None,
) -> pl.LazyFrame:
    """The canonical columns asked for (absent ones null), defaults applied, in the window."""
    want = list(dict.fromkeys([*columns, "trace_id", "span_id", "timestamp", "error"]))
    parts = []
    for path in paths:
        lf = pl.scan_parquet(path)
        have = set(lf.collect_schema().names())
        exprs = [
            pl.col(c) if c in have else pl.lit(None, dtype=SCHEMA[c]).alias(c)
            for c in want
            if c in SCHEMA
        ]
        if "end_time" in have and "end_time" not in want:
            exprs.append(pl.col("end_time"))
        elif "end_time" not in want:
            exprs.append(pl.lit(None, dtype=UTC_US).alias("end_time"))
        part = lf.select(exprs)
        if since is not None:
            part = part.filter(pl.col("timestamp") >= since)
        if until is not None:
            part = part.filter(pl.col("timestamp") < until)
        parts.append(part)
    lf = pl.concat(parts, how="vertical_relaxed") if len(parts) > 1 else parts[0]
    return _defaults(lf, set(want))


def _defaults(lf: pl.LazyFrame, present: set[str]) -> pl.LazyFrame:
    """``normalize``'s defaults (span id, route, status, sample rate, latency)."""
    c = pl.col
    missing = [
        pl.lit(None, dtype=SCHEMA[n]).alias(n)
        for n in ("route", "status", "sample_rate", "latency_ms")
        if n not in present
    ]
    if missing:
        lf = lf.with_columns(missing)
    lf = lf.with_columns(
        c("span_id").fill_null(c("trace_id")).alias("span_id"),
        c("status").alias("_status_raw"),
    )
    status = c("_status_raw").str.strip_chars().str.to_lowercase()
    status = status.replace_strict(STATUS_VALUES, default=None, return_dtype=pl.String)
    derived = (c("end_time") - c("timestamp")).dt.total_microseconds() / 1000.0
    return lf.with_columns(
        c("route").fill_null("default"),
        pl.when(c("_status_raw").is_null())
        .then(pl.when(c("error").is_not_null()).then(pl.lit("error")).otherwise(pl.lit("ok")))
        .otherwise(status)
        .alias("status"),
        c("sample_rate").fill_null(1.0),
        c("latency_ms").fill_null(derived),
    )


def problems(present: set[str]) -> pl.Expr:
    """How many problems ``normalize`` would report over the ``present`` columns (zero is
    all the caller needs to know; a row with two problems counts twice). Each rule is
    summed apart: every piece streams."""
    c = pl.col
    raw = c("_status_raw")
    rules: list[pl.Expr] = [
        raw.is_not_null() & ~raw.str.strip_chars().str.to_lowercase().is_in(list(STATUS_VALUES)),
        c("trace_id").is_null() | (c("trace_id").str.strip_chars() == ""),
        c("timestamp").is_null(),
        c("latency_ms").is_null() & c("end_time").is_null(),
        c("latency_ms") < 0,
        (c("sample_rate") <= 0) | (c("sample_rate") > 1) | c("sample_rate").is_nan(),
    ]
    if "model" in present:
        rules.append(c("model").is_null() | (c("model").str.strip_chars() == ""))
    for name in ("ttft_ms", "cost_usd", *INT_FIELDS):
        if name in present:
            rules.append(c(name) < 0)
    if "cached_tokens" in present and "input_tokens" in present:
        rules.append(c("cached_tokens") > c("input_tokens"))
    for name in ("params", "metadata"):
        if name in present:
            text = c(name).str.strip_chars_start()
            rules.append(c(name).is_not_null() & ~text.str.starts_with("{"))
    return pl.sum_horizontal([r.fill_null(False).sum() for r in rules])
