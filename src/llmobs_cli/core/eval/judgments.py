"""Judgment rows: the schema of ``evals.parquet``, building rows from judge outcomes, reading
a saved file back.

One row per (selected call × evaluator) with the call's identity, its weight
(``1/sample_rate × 1/eval_rate``), the score in [0, 1] and the judge's bookkeeping
(cost, tokens, attempts, cache hit, prompt version). Human labels imported by
``llmobs review import`` are rows with ``evaluator == "human"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from llmobs_cli.core.eval.judges.client import Outcome
from llmobs_cli.core.eval.judges.consistency import agreement
from llmobs_cli.core.eval.judges.prompts import Criterion
from llmobs_cli.core.eval.judges.reference import score_frame
from llmobs_cli.core.eval.plan import STRATUM
from llmobs_cli.errors import InputError

if TYPE_CHECKING:
    from llmobs_cli.core.eval.options import EvalOptions

REFERENCE = "reference"
SELF_CONSISTENCY = "self_consistency"
HUMAN = "human"


JUDGMENT_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String(),
    "span_id": pl.String(),
    "route": pl.String(),
    "timestamp": pl.Datetime("us", "UTC"),
    "model": pl.String(),
    "release": pl.String(),
    "window": pl.String(),
    "stratum": pl.String(),
    "evaluator": pl.String(),
    "criterion": pl.String(),
    "score": pl.Float64(),
    "raw_score": pl.Float64(),
    "sample_rate": pl.Float64(),
    "eval_rate": pl.Float64(),
    "weight": pl.Float64(),
    "judge_model": pl.String(),
    "explanation": pl.String(),
    "judge_cost_usd": pl.Float64(),
    "judge_input_tokens": pl.Int64(),
    "judge_output_tokens": pl.Int64(),
    "judge_latency_ms": pl.Float64(),
    "attempts": pl.Int64(),
    "cached": pl.Boolean(),
    "prompt_version": pl.String(),
    "prompt_hash": pl.String(),
    "flagged": pl.Boolean(),
    "high_stakes": pl.Boolean(),
    "error": pl.String(),
    "input_text": pl.String(),
    "response_text": pl.String(),
    # Mean token log-prob of the judged call (core/signals/confidence); null without
    # log-probs. Read by the confident-wrong rate and the review queue.
    "response_confidence": pl.Float64(),
    # The tracing system the judged call was read from ("langfuse", "langsmith", or null:
    # core/record/origin); export sends scores back only to that system.
    "origin": pl.String(),
}


@dataclass
class Pending:
    """One judgment to make: row ``row`` of the selection × ``evaluator`` (task ``task_index``)."""

    row: int  # index into the selection frame
    evaluator: str
    criterion: Criterion | None
    task_index: int
    sample: int = 0


def empty_judgments() -> pl.DataFrame:
    return pl.DataFrame(schema=JUDGMENT_SCHEMA)


def _base_rows(sel: pl.DataFrame, opts: EvalOptions, hs: set[str]) -> pl.DataFrame:
    from llmobs_cli.core.record.fields import field_expr
    from llmobs_cli.core.record.origin import origin_expr

    extra = [f for f in opts.by if f not in JUDGMENT_SCHEMA]
    return sel.select(
        "trace_id",
        "span_id",
        "route",
        "timestamp",
        "model",
        "release",
        "window",
        pl.col(STRATUM).alias("stratum"),
        "sample_rate",
        "eval_rate",
        "weight",
        pl.col("route").is_in(sorted(hs)).alias("high_stakes"),
        (pl.col("input_text") if opts.keep_text else pl.lit(None, pl.String)).alias("input_text"),
        (pl.col("response") if opts.keep_text else pl.lit(None, pl.String)).alias("response_text"),
        (
            pl.col("response_confidence")
            if "response_confidence" in sel.columns
            else pl.lit(None, pl.Float64)
        ).alias("response_confidence"),
        (origin_expr() if "metadata" in sel.columns else pl.lit(None, pl.String)).alias("origin"),
        *[field_expr(f).cast(pl.String).alias(f) for f in extra],
    )


def judgment_frame(
    sel: pl.DataFrame,
    pend: list[Pending],
    outcomes: list[Outcome],
    opts: EvalOptions,
    hs: set[str],
    use_ref: bool,
) -> pl.DataFrame:
    if not sel.height:
        return empty_judgments()
    base = _base_rows(sel, opts, hs)
    parts: list[pl.DataFrame] = []
    llm = [p for p in pend if p.criterion is not None]
    if llm:
        outs = [outcomes[p.task_index] for p in llm]
        keep = [i for i, o in enumerate(outs) if not o.skipped]
        llm = [llm[i] for i in keep]
        outs = [outs[i] for i in keep]
    if llm:
        judged = pl.DataFrame(
            {
                "_row": [p.row for p in llm],
                "evaluator": [p.evaluator for p in llm],
                "criterion": [p.evaluator for p in llm],
                "score": [o.score if o.ok else None for o in outs],
                "raw_score": [o.raw_score if o.ok else None for o in outs],
                "judge_model": [opts.judge_model] * len(llm),
                "explanation": [o.explanation for o in outs],
                "judge_cost_usd": [o.cost_usd for o in outs],
                "judge_input_tokens": [o.input_tokens for o in outs],
                "judge_output_tokens": [o.output_tokens for o in outs],
                "judge_latency_ms": [o.latency_ms for o in outs],
                "attempts": [o.attempts for o in outs],
                "cached": [o.cached for o in outs],
                "prompt_version": [p.criterion.version for p in llm],  # type: ignore[union-attr]
                "prompt_hash": [p.criterion.prompt_hash for p in llm],  # type: ignore[union-attr]
                "error": [None if o.ok else o.error for o in outs],
            },
            schema_overrides={
                "score": pl.Float64,
                "raw_score": pl.Float64,
                "judge_latency_ms": pl.Float64,
                "explanation": pl.String,
                "error": pl.String,
                "judge_cost_usd": pl.Float64,
            },
        )
        lo, hi = opts.borderline
        judged = judged.with_columns(
            pl.col("score").is_between(lo, hi).fill_null(False).alias("flagged")
        )
        parts.append(judged)
    sc = [p for p in pend if p.criterion is None]
    if sc:
        by_row: dict[int, list[Outcome]] = {}
        for p in sc:
            by_row.setdefault(p.row, []).append(outcomes[p.task_index])
        rows, scores, errors, costs, it, ot, cached, att, lat, expl = ([] for _ in range(10))
        responses = sel["response"].to_list()
        for r, outs_r in by_row.items():
            if all(o.skipped for o in outs_r):
                continue
            answers = [o.content for o in outs_r if o.ok and o.content is not None]
            bad = [o.error for o in outs_r if not o.ok and o.error]
            agree = agreement(answers) if not bad and len(answers) == len(outs_r) else None
            rows.append(r)
            scores.append(agree)
            errors.append(None if agree is not None else (bad[0] if bad else "not all samples"))
            costs.append(sum(o.cost_usd for o in outs_r))
            it.append(sum(o.input_tokens for o in outs_r))
            ot.append(sum(o.output_tokens for o in outs_r))
            cached.append(all(o.cached for o in outs_r))
            att.append(sum(o.attempts for o in outs_r))
            lat.append(max((o.latency_ms or 0.0) for o in outs_r))
            logged = agreement([responses[r], *answers]) if answers and responses[r] else None
            expl.append(
                None
                if agree is None
                else f"{len(answers)} samples, mean pairwise similarity {agree:.2f}"
                + ("" if logged is None else f"; with the logged answer {logged:.2f}")
            )
        if rows:
            scf = pl.DataFrame(
                {
                    "_row": rows,
                    "evaluator": [SELF_CONSISTENCY] * len(rows),
                    "criterion": [SELF_CONSISTENCY] * len(rows),
                    "score": scores,
                    "raw_score": scores,
                    "judge_model": [opts.sc_model or "(logged model)"] * len(rows),
                    "explanation": expl,
                    "judge_cost_usd": costs,
                    "judge_input_tokens": it,
                    "judge_output_tokens": ot,
                    "judge_latency_ms": lat,
                    "attempts": att,
                    "cached": cached,
                    "prompt_version": ["1"] * len(rows),
                    "prompt_hash": [f"samples={opts.sc_samples},t={opts.sc_temperature:g}"]
                    * len(rows),
                    "error": errors,
                },
                schema_overrides={
                    "score": pl.Float64,
                    "raw_score": pl.Float64,
                    "error": pl.String,
                    "explanation": pl.String,
                    "judge_latency_ms": pl.Float64,
                    "judge_cost_usd": pl.Float64,
                },
            ).with_columns(
                (pl.col("score") < 1 - opts.sc_threshold).fill_null(False).alias("flagged")
            )
            parts.append(scf)
    if use_ref:
        refs = sel.with_row_index("_row").filter(pl.col("_has_ref"))
        if refs.height:
            s = score_frame(refs, opts.reference_method, opts.numeric_tolerance)
            parts.append(
                pl.DataFrame({"_row": refs["_row"].cast(pl.Int64), "score": s}).with_columns(
                    pl.lit(REFERENCE).alias("evaluator"),
                    pl.lit(REFERENCE).alias("criterion"),
                    pl.col("score").alias("raw_score"),
                    pl.lit(f"reference:{opts.reference_method}").alias("judge_model"),
                    pl.lit(None, pl.String).alias("explanation"),
                    pl.lit(0.0).alias("judge_cost_usd"),
                    pl.lit(0, pl.Int64).alias("judge_input_tokens"),
                    pl.lit(0, pl.Int64).alias("judge_output_tokens"),
                    pl.lit(None, pl.Float64).alias("judge_latency_ms"),
                    pl.lit(0, pl.Int64).alias("attempts"),
                    pl.lit(False).alias("cached"),
                    pl.lit("1").alias("prompt_version"),
                    pl.lit(f"{opts.reference_method}:{opts.numeric_tolerance:g}").alias(
                        "prompt_hash"
                    ),
                    pl.when(pl.col("score").is_null())
                    .then(pl.lit("no comparable reference"))
                    .otherwise(None)
                    .cast(pl.String)
                    .alias("error"),
                    pl.lit(False).alias("flagged"),
                )
            )
    if not parts:
        return empty_judgments()
    cols = [c for c in JUDGMENT_SCHEMA if c not in base.columns]
    facts = pl.concat(
        [
            p.with_columns(pl.col("_row").cast(pl.Int64))
            .select("_row", *cols)
            .cast({c: JUDGMENT_SCHEMA[c] for c in cols})
            for p in parts
        ],
        how="vertical",
    )
    out = facts.join(
        base.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)),
        on="_row",
        how="left",
    )
    order = [*JUDGMENT_SCHEMA, *[c for c in base.columns if c not in JUDGMENT_SCHEMA]]
    return out.select(order).sort("window", "evaluator", "stratum", "trace_id", "span_id")


#: The columns :func:`read_evals` requires by default.
EVALS_COLUMNS = ("trace_id", "evaluator", "score", "weight", "route", "timestamp")


def read_evals(path: str | Path, needed: Sequence[str] = EVALS_COLUMNS) -> pl.DataFrame:
    """Read a saved evals file (Parquet) with a clear error when it is not one: an
    :class:`InputError` naming the file when it is missing, not Parquet, or lacks a column
    of ``needed``."""
    p = Path(path)
    if not p.exists():
        raise InputError([f"{p}: file not found"])
    try:
        frame = pl.read_parquet(p)
    except Exception as exc:
        raise InputError([f"{p}: not a Parquet evals file ({type(exc).__name__})"]) from exc
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError([f"{p}: {missing[0]}: missing column (not an llmobs evals file)"])
    return frame
