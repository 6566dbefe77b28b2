"""A deterministic evals file over sample_traces (no judge needed) for the table tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from llmobs_cli.core.eval.judgments import JUDGMENT_SCHEMA

SAMPLE = Path(__file__).parent.parent / "sample_traces"
SPLIT = datetime(2026, 11, 15, 21, 36, 31, tzinfo=UTC)


def sample_evals(path: Path) -> Path:
    """Judgments of every 4th sampled call: relevance for all, faithfulness with documents.

    Scores come from a hash of the trace id (so they are fixed), with search_qa's
    relevance lowered in the current window (a regression to find).
    """
    calls = (
        pl.read_parquet(SAMPLE / "traces.parquet").with_row_index("i").filter(pl.col("i") % 4 == 0)
    )
    h = (pl.col("trace_id").hash(7) % 1000).cast(pl.Float64) / 1000.0
    current = pl.col("timestamp") >= SPLIT
    base = calls.select(
        "trace_id",
        "span_id",
        "route",
        "timestamp",
        "model",
        "release",
        "sample_rate",
        pl.when(current).then(pl.lit("current")).otherwise(pl.lit("baseline")).alias("window"),
        h.alias("_h"),
        pl.col("retrieved").list.len().fill_null(0).alias("_docs"),
    )
    rel = base.with_columns(
        pl.lit("relevance").alias("evaluator"),
        pl.when((pl.col("route") == "search_qa") & (pl.col("window") == "current"))
        .then((pl.col("_h") < 0.45).cast(pl.Float64))
        .otherwise((pl.col("_h") < 0.85).cast(pl.Float64))
        .alias("score"),
    )
    faith = base.filter(pl.col("_docs") > 0).with_columns(
        pl.lit("faithfulness").alias("evaluator"),
        ((pl.col("_h") * 7 % 1) < 0.75).cast(pl.Float64).alias("score"),
    )
    rows = pl.concat([rel, faith]).with_columns(
        pl.col("evaluator").alias("criterion"),
        pl.lit(4.0).alias("eval_rate"),
        (4.0 / pl.col("sample_rate")).alias("weight"),
        pl.lit("stub-judge").alias("judge_model"),
        pl.lit("fixed by trace-id hash").alias("explanation"),
    )
    out = rows.select(
        [
            rows[c].cast(t) if c in rows.columns else pl.lit(None, dtype=t).alias(c)
            for c, t in JUDGMENT_SCHEMA.items()
        ]
    )
    target = path / "sample_evals.parquet"
    out.write_parquet(target)
    return target
