"""Human review: export a queue of judgments for people, import their labels back.

**Export** (:func:`build_queue`) picks, from an ``evals.parquet``:

* every judgment of a ``stakes: high`` route (config ``routes``);
* borderline judge scores (``eval.borderline``, default 0.4–0.6 on the 0–1 scale);
* disagreements: self-consistency rows flagged as unstable, and calls where the judge
  and the reference comparison disagree by 0.5 or more;
* confident-wrong: an LLM judgment below 0.5 on a call whose mean token log-prob is at
  least log(0.8) (`core/signals/confident_wrong`; only when the traces carry log-probs).

Besides these targeted cases, a **random sample** (``random_per_group`` items per route ×
evaluator, default 30): each judged item is drawn when ``u < π``, where ``u`` is a stable
hash of its trace and span ids (salt ``llmobs-review``) and ``π = min(1, n / judged)`` in
its route × evaluator. ``π`` is recorded as ``review_rate`` and the draw as ``random``, so
that the labels of the random part form a probability sample of the judged calls (with
known inclusion probabilities) and can correct the judge's scores
(:mod:`core.eval.correction`). An item can be both targeted and random.

One queue item per (trace, span, evaluator) with the reasons, the judge's score and
explanation, the input and response text, and an empty ``label`` (0–1, or pass/fail) and
``notes`` for the reviewer. :func:`write_queue` writes JSONL and CSV side by side
(atomically).

**Import** (:func:`read_labels`, :func:`import_labels`) reads a JSONL or CSV queue back;
rows with a label become judgments with ``evaluator = "human"``, ``criterion`` = the
evaluator they review, and the judged row's weights. Labels replace earlier labels of the
same item. A bad label is an :class:`~llmobs_cli.errors.InputError` naming file, line and
field.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core import atomic
from llmobs_cli.core.eval.judgments import HUMAN, REFERENCE, SELF_CONSISTENCY
from llmobs_cli.core.signals import confident_wrong
from llmobs_cli.errors import InputError, UsageError

QUEUE_COLUMNS = [
    "trace_id",
    "span_id",
    "route",
    "timestamp",
    "model",
    "release",
    "evaluator",
    "score",
    "explanation",
    "reasons",
    "input_text",
    "response_text",
    "random",
    "review_rate",
    "label",
    "notes",
]
#: Salt of the review sample's hash: independent of eval selection and storage sampling.
REVIEW_SALT = "llmobs-review"
#: Columns human rows carry so that the random part can correct the judge.
REVIEW_COLUMNS: dict[str, pl.DataType] = {
    "review_random": pl.Boolean(),
    "review_rate": pl.Float64(),
}
#: Default size of the random part per route × evaluator.
RANDOM_PER_GROUP = 30
_PASS = {
    "pass": 1.0,
    "yes": 1.0,
    "true": 1.0,
    "good": 1.0,
    "fail": 0.0,
    "no": 0.0,
    "false": 0.0,
    "bad": 0.0,
}


def build_queue(
    evals: pl.DataFrame,
    *,
    high_stakes: set[str] | frozenset[str] = frozenset(),
    borderline: tuple[float, float] = (0.4, 0.6),
    disagreement: float = 0.5,
    limit: int | None = None,
    random_per_group: int = RANDOM_PER_GROUP,
) -> pl.DataFrame:
    """The review queue (see the module docstring), high-stakes items first, then the
    random sample. ``limit`` caps the targeted part only: truncating the random part would
    change its inclusion probabilities."""
    lo, hi = borderline
    frame = evals.filter(pl.col("evaluator") != HUMAN)
    if "window" in frame.columns:
        frame = frame.filter(pl.col("window").fill_null("current") == "current")
    ref = (
        frame.filter((pl.col("evaluator") == REFERENCE) & pl.col("score").is_not_null())
        .select("trace_id", "span_id", pl.col("score").alias("_ref"))
        .unique(["trace_id", "span_id"])
    )
    judged = frame.filter(pl.col("error").is_null() & pl.col("score").is_not_null())
    judged = judged.join(ref, on=["trace_id", "span_id"], how="left")
    is_llm = ~pl.col("evaluator").is_in([REFERENCE, SELF_CONSISTENCY])
    sure_wrong = (
        confident_wrong.expr().fill_null(False)
        if confident_wrong.COLUMN in judged.columns
        else pl.lit(False)
    )
    reasons = pl.concat_list(
        pl.when(pl.col("route").is_in(sorted(high_stakes))).then(pl.lit("high_stakes")),
        pl.when(is_llm & pl.col("score").is_between(lo, hi)).then(pl.lit("borderline")),
        pl.when(
            (pl.col("evaluator") == SELF_CONSISTENCY) & pl.col("flagged").fill_null(False)
        ).then(pl.lit("self_inconsistent")),
        pl.when(is_llm & ((pl.col("score") - pl.col("_ref")).abs() >= disagreement)).then(
            pl.lit("judge_reference_disagree")
        ),
        pl.when(is_llm & sure_wrong).then(pl.lit("confident_wrong")),
    ).list.drop_nulls()
    judged = _with_random_draw(judged, random_per_group)
    q = (
        judged.with_columns(reasons.alias("_reasons"))
        .with_columns(
            pl.when(pl.col("random"))
            .then(pl.concat_list("_reasons", pl.lit(["random"])))
            .otherwise(pl.col("_reasons"))
            .alias("_all")
        )
        .filter(pl.col("_all").list.len() > 0)
        .with_columns(
            pl.col("_all").list.join(";").alias("reasons"),
            pl.col("_reasons").list.contains("high_stakes").alias("_hs"),
            (pl.col("_reasons").list.len() > 0).alias("_targeted"),
            pl.lit(None, pl.String).alias("label"),
            pl.lit(None, pl.String).alias("notes"),
        )
        .sort(["_hs", "_targeted", "score"], descending=[True, True, False])
        .unique(["trace_id", "span_id", "evaluator"], keep="first", maintain_order=True)
    )
    if limit is not None:
        targeted = q.filter(pl.col("_targeted")).head(limit)
        q = pl.concat([targeted, q.filter(~pl.col("_targeted") & pl.col("random"))])
    for c in QUEUE_COLUMNS:
        if c not in q.columns:
            q = q.with_columns(pl.lit(None, pl.String).alias(c))
    return q.select(QUEUE_COLUMNS)


def _with_random_draw(judged: pl.DataFrame, per_group: int) -> pl.DataFrame:
    """Add ``review_rate`` (π per route × evaluator) and ``random`` (drawn or not)."""
    from llmobs_cli.core.eval.plan import stable_uniform

    if not judged.height or per_group <= 0:
        return judged.with_columns(
            pl.lit(False).alias("random"), pl.lit(None, pl.Float64).alias("review_rate")
        )
    ids = pl.concat_str(
        [pl.col("trace_id"), pl.col("span_id").fill_null(pl.col("trace_id"))], separator="\x1f"
    )
    keys = judged.select(ids.alias("_id"))["_id"]
    return (
        judged.with_columns(pl.Series("_u", stable_uniform(keys, REVIEW_SALT)))
        .with_columns(
            pl.min_horizontal(
                pl.lit(1.0), per_group / pl.len().over(["route", "evaluator"]).cast(pl.Float64)
            ).alias("review_rate")
        )
        .with_columns((pl.col("_u") < pl.col("review_rate")).alias("random"))
        .drop("_u")
    )


def write_queue(queue: pl.DataFrame, target: str | Path) -> tuple[Path, Path]:
    """Write ``X.jsonl`` and ``X.csv`` (same stem as ``target``); returns both paths."""
    t = Path(target)
    stem = t.with_suffix("") if t.suffix.lower() in (".jsonl", ".csv", ".json") else t
    jpath, cpath = stem.with_suffix(".jsonl"), stem.with_suffix(".csv")
    out = queue.with_columns(pl.col("timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ"))
    atomic.write_text(
        jpath, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out.to_dicts())
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(QUEUE_COLUMNS)
    for row in out.iter_rows():
        w.writerow(["" if v is None else v for v in row])
    atomic.write_text(cpath, buf.getvalue())
    return jpath, cpath


def _parse_label(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _PASS:
            return _PASS[v]
        try:
            value = float(v)
        except ValueError:
            raise InputError(
                [f"{where}: label: expected a score from 0 to 1 or pass/fail (got {value!r})"]
            ) from None
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise InputError(
            [f"{where}: label: expected a score from 0 to 1 or pass/fail (got {value!r})"]
        )
    return float(value)


def read_labels(path: str | Path) -> pl.DataFrame:
    """Labelled queue items: ``trace_id, span_id, evaluator, label, notes`` (unlabelled dropped)."""
    p = Path(path)
    if not p.exists():
        raise InputError([f"{p}: file not found"])
    rows: list[dict[str, Any]] = []
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([f"{p}: cannot read labels ({exc})"]) from exc
    if p.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        items = [(i + 2, r) for i, r in enumerate(reader)]
    elif p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        items = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                raise InputError([f"{p}:{i}: (line): not valid JSON"]) from None
            if not isinstance(obj, dict):
                raise InputError([f"{p}:{i}: (line): expected a JSON object"])
            items.append((i, obj))
    else:
        raise UsageError(f"{p}: labels must be a .jsonl or .csv review queue")
    for line_no, r in items:
        where = f"{p}:{line_no}"
        for field in ("trace_id", "evaluator"):
            if not r.get(field):
                raise InputError([f"{where}: {field}: missing"])
        label = _parse_label(r.get("label"), where)
        if label is None:
            continue
        rows.append(
            {
                "trace_id": str(r["trace_id"]),
                "span_id": str(r.get("span_id") or r["trace_id"]),
                "criterion": str(r["evaluator"]),
                "label": label,
                "notes": r.get("notes") or None,
                "review_random": _parse_flag(r.get("random"), where),
                "review_rate": _parse_rate(r.get("review_rate"), where),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "trace_id": pl.String,
            "span_id": pl.String,
            "criterion": pl.String,
            "label": pl.Float64,
            "notes": pl.String,
            "review_random": pl.Boolean,
            "review_rate": pl.Float64,
        },
    )


def _parse_flag(value: Any, where: str) -> bool:
    """The queue's ``random`` column as written to JSONL (bool) or CSV (True/False)."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InputError([f"{where}: random: expected true or false (got {value!r})"])


def _parse_rate(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if not 0.0 < rate <= 1.0:
        raise InputError(
            [f"{where}: review_rate: expected a probability in (0, 1] (got {value!r})"]
        )
    return rate


def import_labels(
    evals: pl.DataFrame, labels: pl.DataFrame, *, reviewer: str = "human"
) -> tuple[pl.DataFrame, int, int]:
    """``evals`` plus one ``human`` row per label; returns (frame, imported, unmatched)."""
    judged = evals.filter(pl.col("evaluator") != HUMAN).unique(
        ["trace_id", "span_id", "evaluator"], keep="first"
    )
    matched = labels.join(
        judged.drop(["criterion", *REVIEW_COLUMNS], strict=False).rename(
            {"evaluator": "criterion"}
        ),
        on=["trace_id", "span_id", "criterion"],
        how="inner",
    )
    unmatched = labels.height - matched.height
    human = matched.with_columns(
        pl.lit(HUMAN).alias("evaluator"),
        pl.col("label").alias("score"),
        pl.col("label").alias("raw_score"),
        pl.lit(reviewer).alias("judge_model"),
        pl.col("notes").alias("explanation"),
        pl.lit(0.0).alias("judge_cost_usd"),
        pl.lit(0, pl.Int64).alias("judge_input_tokens"),
        pl.lit(0, pl.Int64).alias("judge_output_tokens"),
        pl.lit(None, pl.Float64).alias("judge_latency_ms"),
        pl.lit(0, pl.Int64).alias("attempts"),
        pl.lit(False).alias("cached"),
        pl.lit(None, pl.String).alias("error"),
        pl.lit(False).alias("flagged"),
    )
    for col, dtype in REVIEW_COLUMNS.items():
        if col not in evals.columns:
            evals = evals.with_columns(pl.lit(None, dtype).alias(col))
    human = human.select(evals.columns)
    # A new label replaces an earlier one of the same item.
    keep = (
        evals.join(
            human.select("trace_id", "span_id", "criterion").with_columns(pl.lit(True).alias("_r")),
            on=["trace_id", "span_id", "criterion"],
            how="left",
        )
        .filter(~((pl.col("evaluator") == HUMAN) & pl.col("_r").fill_null(False)))
        .drop("_r")
    )
    out = pl.concat([keep, human.cast(evals.schema)], how="vertical")
    return out, human.height, unmatched
