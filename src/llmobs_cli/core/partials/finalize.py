"""Merged partials → figures: per-group totals, weighted quantiles, session estimates.

Everything here reads the merged partial frame only (no rows), so it runs once, locally,
whatever engine produced the partials. Quantiles are the sketch's (within ``α`` relative
error of the exact weighted inverse-CDF quantile), clamped to the group's exact min/max so
that a group of one value, or a quantile at an extreme, is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from llmobs_cli.core.partials.compute import (
    BIN,
    LEVEL,
    MAX,
    METRIC,
    MIN,
    PART,
    SID,
    SUM,
    N,
    PartialSpec,
    key,
)
from llmobs_cli.core.partials.sketch import sketch_quantiles

_ONE = "_one"


def _level(merged: pl.DataFrame, part: str, i: int, keys: Sequence[str]) -> pl.DataFrame:
    df = merged.filter((pl.col(PART) == part) & (pl.col(LEVEL) == i))
    return df.rename({key(f): f for f in keys})


def level_sums(merged: pl.DataFrame, spec: PartialSpec, i: int) -> pl.DataFrame:
    """One row per group of level ``i``: keys, ``sampled`` (rows), every summed term, and
    ``_min_<c>`` / ``_max_<c>`` for each extrema column (timestamps as epoch µs)."""
    keys = list(spec.levels[i])
    df = _level(merged, "sum", i, keys).with_columns(pl.lit(1).alias(_ONE))
    index = [*keys, _ONE]
    terms = df.filter(pl.col(METRIC).is_in(list(spec.sums)))
    wide = terms.pivot(on=METRIC, index=index, values=SUM, aggregate_function="sum")
    counts = terms.group_by(index).agg(pl.col(N).max().alias("sampled"))
    out = counts.join(wide, on=index, how="left", nulls_equal=True)
    for c in spec.extrema:
        ext = df.filter(pl.col(METRIC) == c).select(
            *index, pl.col(MIN).alias(f"_min_{c}"), pl.col(MAX).alias(f"_max_{c}")
        )
        out = out.join(ext, on=index, how="left", nulls_equal=True)
    for t in spec.sums:
        if t not in out.columns:
            out = out.with_columns(pl.lit(0.0).alias(t))
    return out.drop(_ONE)


def level_quantiles(
    merged: pl.DataFrame, spec: PartialSpec, i: int, value: str, qs: Sequence[float]
) -> pl.DataFrame:
    """Per group of level ``i``: ``<value>__q``, the list of weighted quantiles at ``qs``
    (clamped to the group's min/max when ``value`` is an extrema column)."""
    keys = list(spec.levels[i])
    bins = _level(merged, "q", i, keys).filter(pl.col(METRIC) == value)
    out = f"{value}__q"
    lf = sketch_quantiles(
        bins.with_columns(pl.lit(1).alias(_ONE)),
        [*keys, _ONE],
        qs,
        bin_col=BIN,
        weight_col=SUM,
        out=out,
        alpha=spec.alpha,
    )
    res = lf.collect()
    if value in spec.extrema:
        ext = (
            _level(merged, "sum", i, keys)
            .filter(pl.col(METRIC) == value)
            .select(*keys, pl.col(MIN).alias("_lo"), pl.col(MAX).alias("_hi"))
            .with_columns(pl.lit(1).alias(_ONE))
        )
        res = (
            res.join(ext, on=[*keys, _ONE], how="left", nulls_equal=True)
            .explode(out)
            .with_columns(
                pl.col(out)
                .cast(pl.Float64)
                .clip(pl.col("_lo").cast(pl.Float64), pl.col("_hi").cast(pl.Float64))
            )
            .group_by([*keys, _ONE], maintain_order=True)
            .agg(pl.col(out))
        )
    return res.drop(_ONE)


def level_sessions(merged: pl.DataFrame, spec: PartialSpec, i: int) -> pl.DataFrame:
    """Per group of level ``i``: ``sessions`` = Σ over sessions of their rows' mean weight,
    ``sessions_sampled`` = sessions seen."""
    keys = list(spec.levels[i])
    src = spec.session_source(i)
    df = _level(merged, "sess", src, keys).filter(pl.col(SID).is_not_null())
    if src != i:
        # Sessions kept for a finer level: regroup by this level's keys (sums of sums).
        df = df.group_by([*keys, SID]).agg(pl.col(SUM).sum(), pl.col(N).sum())
    stats = [
        (pl.col(SUM) / pl.col(N)).sum().alias("sessions"),
        pl.len().alias("sessions_sampled"),
    ]
    return df.group_by(keys).agg(stats) if keys else df.select(stats)


def n_eff(sum_w: float, sum_w2: float) -> float:
    """Kish's effective sample size (Σw)²/Σw² (0 when empty)."""
    return sum_w * sum_w / sum_w2 if sum_w2 else 0.0
