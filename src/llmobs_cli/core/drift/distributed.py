"""Drift on Spark or Ray: the same partials and the same samples as the local engine.

The engines merge partial frames by a group-by over their ``k:`` columns
(:func:`llmobs_cli.core.engines.run.merged_partials`). Drift runs two such jobs:

1. the partials of every batch (:func:`~.partials.batch_parts` without samples), which
   also count each window's rows;
2. the rows of the clusters whose hash lies below a threshold set from those counts (twice
   the share the caps need, so the sample holds every row of the bottom-k clusters),
   encoded as partial rows whose columns are all keys: the group-by keeps each row (equal
   rows merge into one with their count), and the driver takes the exact bottom-k of
   what came back — the very sample the local engine keeps.

So ``--engine spark`` and ``--engine ray`` give the local engine's figures: sums up to
float summation order, buckets, samples and therefore tests identical.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.drift.partials import CL, SEQ, DriftPlan, batch_parts
from llmobs_cli.core.drift.result import BASE, CUR, WIN
from llmobs_cli.core.drift.sample import ClusterSample
from llmobs_cli.core.record.weights import W

_MAX = (1 << 64) - 1
_ROW = "k:r:"
_PART = "k:part"
_COUNT = "sum:n"


def _with_metric(frame: pl.DataFrame) -> pl.DataFrame:
    # The engines count rows that break the record contract under ``k:metric``.
    return frame.with_columns(pl.lit(None, pl.String).alias("k:metric"))


def _parts_only(batch: pl.DataFrame, plan: DriftPlan, fixed: int | None) -> pl.DataFrame:
    return _with_metric(batch_parts(batch, plan, fixed_window=fixed).partials)


def _encode(frame: pl.DataFrame | None, part: str) -> pl.DataFrame | None:
    if frame is None:
        return None
    return frame.select(
        pl.lit(part).alias(_PART),
        *(pl.col(c).alias(_ROW + c) for c in frame.columns),
        pl.lit(1, pl.Int64).alias(_COUNT),
    )


def _sample_rows(
    batch: pl.DataFrame,
    plan: DriftPlan,
    fixed: int | None,
    limit: int,
    text_limits: dict[int, int],
) -> pl.DataFrame:
    parts = batch_parts(
        batch, plan, fixed_window=fixed, limits={-1: limit}, text_limits=text_limits
    )
    frames = [
        f for f in (_encode(parts.sample, "smp"), _encode(parts.text, "txt")) if f is not None
    ]
    return _with_metric(pl.concat(frames, how="diagonal_relaxed"))


def _decode(frame: pl.DataFrame, part: str) -> pl.DataFrame:
    rows = frame.filter(pl.col(_PART) == part)
    cols = [c for c in frame.columns if c.startswith(_ROW)]
    if part == "smp":
        cols = [c for c in cols if c[len(_ROW) :] not in ("user_text", "response", "embedding")]
    else:
        keep = {WIN, W, CL, SEQ, "timestamp", "user_text", "response", "embedding"}
        cols = [c for c in cols if c[len(_ROW) :] in keep or c.startswith(_ROW + "g:")]
    out = rows.select(*cols, _COUNT).rename({c: c[len(_ROW) :] for c in cols})
    # Equal rows merged into one with their count: repeat them.
    return (
        out.select(pl.exclude(_COUNT).repeat_by(pl.col(_COUNT)).explode())
        if out.height
        else out.drop(_COUNT)
    )


def on_engine(
    engine: Any,
    paths: Sequence[str | Path],
    baseline: str | None,
    columns: list[str],
    plan: DriftPlan,
    since: datetime | None,
    until: datetime | None,
    *,
    on_error: str,
    keep_duplicates: bool,
    say: Callable[[str], None],
) -> tuple[pl.DataFrame | None, ClusterSample, ClusterSample, dict[str, Any]]:
    """Merged partials, the cluster sample and the text sample computed on ``engine``."""
    from llmobs_cli.core.engines.run import merged_partials
    from llmobs_cli.core.ingest.readers import _with_dependencies
    from llmobs_cli.core.partials import merge
    from llmobs_cli.core.record.schema import REQUIRED

    wanted = sorted(_with_dependencies(columns) | {"trace_id", "span_id"})
    required = tuple(f for f in REQUIRED if f in wanted)
    lean = dataclasses.replace(plan, sample_rows=0, text=())
    jobs: list[tuple[list[Any], int | None, datetime | None, datetime | None]] = [
        (list(paths), None, since, until)
    ]
    if baseline is not None:
        jobs.append(([baseline], BASE, None, None))
    info: dict[str, Any] = {"skipped": 0, "reasons": {}, "sources": []}

    def run(fn: Callable[[pl.DataFrame], pl.DataFrame], src: list[Any], lo: Any, hi: Any) -> Any:
        res = merged_partials(
            engine,
            src,
            wanted,
            fn,
            since=lo,
            until=hi,
            required=required,
            on_error=on_error,
            keep_duplicates=keep_duplicates,
        )
        info["skipped"] += res.skipped
        for k, v in res.skipped_reasons.items():
            info["reasons"][k] = info["reasons"].get(k, 0) + v
        info["sources"] += [s for s in res.sources if s not in info["sources"]]
        return res.merged

    say(f"running on {engine.name}: partials")
    merged_frames = [
        run(partial(_parts_only, plan=lean, fixed=fx), s, lo, hi) for s, fx, lo, hi in jobs
    ]
    frames = [f for f in merged_frames if f is not None and f.height]
    merged = merge([f.drop("k:metric", strict=False) for f in frames]) if frames else None
    counts = {BASE: 0, CUR: 0}
    if merged is not None:
        rows = merged.filter((pl.col("k:part") == "rows") & (pl.col("k:level") == 0))
        for r in rows.group_by("k:win").agg(pl.col("sum:n").sum()).iter_rows():
            counts[int(r[0])] = int(r[1])
    sample = ClusterSample(plan.sample_rows)
    texts = ClusterSample(plan.text_rows, per_window=True)
    total = counts[BASE] + counts[CUR]
    factor = 2.0
    while merged is not None and total:
        limit = _threshold(plan.sample_rows, total, factor)
        tl = {s: _threshold(plan.text_rows, counts[s], factor) for s in (BASE, CUR) if counts[s]}
        wide = dataclasses.replace(plan, sample_rows=total + 1, text_rows=total + 1)
        say(f"running on {engine.name}: samples")
        got = [
            run(partial(_sample_rows, plan=wide, fixed=fx, limit=limit, text_limits=tl), s, lo, hi)
            for s, fx, lo, hi in jobs
        ]
        enc = pl.concat(
            [g.drop("k:metric", strict=False) for g in got if g is not None and g.height],
            how="diagonal_relaxed",
        )
        sample = ClusterSample(plan.sample_rows)
        texts = ClusterSample(plan.text_rows, per_window=True)
        rows_s = _decode(enc, "smp")
        sample.add(rows_s, {-1: limit} if limit < _MAX else None)
        if plan.text:
            rows_t = _decode(enc, "txt")
            texts.add(rows_t, {s: v for s, v in tl.items() if v < _MAX})
        # Enough rows below the threshold: the bottom-k of them is the bottom-k of all.
        short = limit < _MAX and rows_s.height < plan.sample_rows
        short |= plan.text != () and any(
            tl[s] < _MAX and rows_t.filter(pl.col(WIN) == s).height < plan.text_rows for s in tl
        )
        if not short or factor > 64:
            break
        factor *= 4
    return merged, sample, texts, info


def _threshold(cap: int, rows: int, factor: float) -> int:
    """A hash threshold keeping about ``factor`` times the share of rows ``cap`` needs."""
    if rows <= cap:
        return _MAX
    share = min(1.0, factor * cap / rows)
    return _MAX if share >= 1.0 else int(share * _MAX)


def _text_only(
    batch: pl.DataFrame, plan: DriftPlan, models: Any, fixed: int | None
) -> pl.DataFrame:
    from llmobs_cli.core.drift.textpass import text_parts

    return _with_metric(text_parts(batch, plan, models, fixed_window=fixed))


def text_on_engine(
    engine: Any,
    paths: Sequence[str | Path],
    baseline: str | None,
    columns: list[str],
    plan: DriftPlan,
    models: Any,
    since: datetime | None,
    until: datetime | None,
    *,
    on_error: str,
    keep_duplicates: bool,
    say: Callable[[str], None],
) -> pl.DataFrame | None:
    """The text pass (:mod:`.textpass`) as a third job: the fitted models travel with the
    batch function (plain arrays), each batch's labels become the same partials, merged by
    the engine's group-by. Texts repeat across batches on executors without a shared memo:
    each batch computes its own distinct texts."""
    from llmobs_cli.core.engines.run import merged_partials
    from llmobs_cli.core.ingest.readers import _with_dependencies
    from llmobs_cli.core.partials import merge
    from llmobs_cli.core.record.schema import REQUIRED

    wanted = sorted(_with_dependencies(columns) | {"trace_id", "span_id"})
    required = tuple(f for f in REQUIRED if f in wanted)
    jobs: list[tuple[list[Any], int | None, datetime | None, datetime | None]] = [
        (list(paths), None, since, until)
    ]
    if baseline is not None:
        jobs.append(([baseline], BASE, None, None))
    say(f"running on {engine.name}: the text features over every row")
    frames = []
    for src, fixed, lo, hi in jobs:
        res = merged_partials(
            engine,
            src,
            wanted,
            partial(_text_only, plan=plan, models=models, fixed=fixed),
            since=lo,
            until=hi,
            required=required,
            on_error=on_error,
            keep_duplicates=keep_duplicates,
        )
        if res.merged is not None and res.merged.height:
            frames.append(res.merged.drop("k:metric", strict=False))
    return merge(frames) if frames else None
