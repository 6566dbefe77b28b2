"""Judgments (an ``llmobs eval -o evals.parquet`` file) joined to the calls they judged.

:func:`per_call` folds a call's judgments into one row keyed by ``(trace_id, span_id)``:
its worst score (and the evaluator and explanation behind it), how many judgments it
has, the spread between its highest and lowest score (a disagreement between evaluators,
or between the judge and a human label or the reference), whether the judge flagged it
as borderline, and the reasons the review queue would pick it for.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from llmobs_cli.errors import InputError

#: The columns :func:`per_call` adds to a call, with the ``--where`` kind of each.
JUDGMENT_FIELDS: dict[str, str] = {
    "score": "num",
    "evaluator": "str",
    "explanation": "str",
    "judgments": "num",
    "spread": "num",
    "flagged": "bool",
    "review": "str",
}
_NEEDED = ("trace_id", "evaluator", "score")


def read(path: str | Path) -> pl.DataFrame:
    """A saved evals file, checked to be one (an :class:`InputError` naming it if not)."""
    p = Path(path)
    if not p.exists():
        raise InputError([f"{p}: file not found"])
    try:
        frame = pl.read_parquet(p)
    except Exception as exc:
        raise InputError([f"{p}: not a Parquet evals file ({type(exc).__name__})"]) from exc
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise InputError([f"{p}: {missing[0]}: missing column (not an llmobs evals file)"])
    return frame


def _col(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, dtype=dtype).alias(name)


def usable(evals: pl.DataFrame) -> pl.DataFrame:
    """Successful judgments with a score; ``span_id`` defaults to ``trace_id`` as in records."""
    ok = pl.col("score").is_not_null()
    if "error" in evals.columns:
        ok = ok & pl.col("error").is_null()
    return evals.filter(ok).with_columns(
        pl.coalesce(_col(evals, "span_id", pl.String()), pl.col("trace_id")).alias("span_id"),
        _col(evals, "explanation", pl.String()),
        _col(evals, "flagged", pl.Boolean()),
    )


def per_call(evals: pl.DataFrame) -> pl.DataFrame:
    """One row per judged call: ``trace_id, span_id`` and the :data:`JUDGMENT_FIELDS`."""
    good = usable(evals)
    reasons = _review_reasons(evals)
    agg = (
        good.sort("score")
        .group_by("trace_id", "span_id")
        .agg(
            pl.col("score").first().alias("score"),
            pl.col("evaluator").first().alias("evaluator"),
            pl.col("explanation").first().alias("explanation"),
            pl.len().cast(pl.Int64).alias("judgments"),
            (pl.col("score").max() - pl.col("score").min()).alias("spread"),
            pl.col("flagged").fill_null(False).any().alias("flagged"),
        )
    )
    return agg.join(reasons, on=["trace_id", "span_id"], how="left").with_columns(
        pl.col("review").fill_null("")
    )


def _review_reasons(evals: pl.DataFrame) -> pl.DataFrame:
    """Per call, the review queue's reasons (``borderline;judge_reference_disagree`` …)."""
    from llmobs_cli.core.eval.review import build_queue

    empty = pl.DataFrame(
        schema={"trace_id": pl.String(), "span_id": pl.String(), "review": pl.String()}
    )
    needed = ("span_id", "route", "error")
    if any(c not in evals.columns for c in needed):
        return empty
    keyed = evals.with_columns(pl.coalesce("span_id", "trace_id").alias("span_id"))
    queue = build_queue(keyed, random_per_group=0)  # targeted reasons only
    if not queue.height:
        return empty
    return (
        queue.select(
            "trace_id",
            pl.coalesce("span_id", "trace_id").alias("span_id"),
            pl.col("reasons").str.split(";"),
        )
        .explode("reasons")
        # The random calibration sample is no reason a call is interesting.
        .filter(pl.col("reasons") != "random")
        .group_by("trace_id", "span_id")
        .agg(pl.col("reasons").unique().sort().str.join(";").alias("review"))
    )


def for_trace(evals: pl.DataFrame, trace_id: str) -> pl.DataFrame:
    """Every successful judgment of one trace, worst first (for ``llmobs show --evals``)."""
    return usable(evals).filter(pl.col("trace_id") == trace_id).sort("score")
