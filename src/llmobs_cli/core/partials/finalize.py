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


#: The part holding each group's quantiles once its sketch bins are reduced
#: (:func:`sketch_values`): key ``k:q`` the quantile, value ``q:v``.
QV, Q_AT, Q_VALUE = "qv", "k:q", "q:v"


def sketch_values(bins: pl.DataFrame, spec: PartialSpec, qs: Sequence[float]) -> pl.DataFrame:
    """Part ``q`` rows (sketch bins; every bin of each group they hold) → part ``qv``: per
    (level, group, metric), one row per quantile in ``qs`` (``k:q``) with its value
    (``q:v``), unclamped. The same rule as :func:`level_quantiles` on the bins, so a report
    finalized from these rows equals one finalized from the bins; it lets a merge keep a
    few values per group instead of hundreds of bins (the reducer of a part spilled by
    ``ByKeys(exclude=("k:bin",))``)."""
    keys = [c for c in bins.columns if c.startswith("k:") and c not in (BIN, PART)]
    at = pl.lit(pl.Series([float(q) for q in qs], dtype=pl.Float64)).implode()
    return (
        sketch_quantiles(bins, keys, qs, bin_col=BIN, weight_col=SUM, out=Q_VALUE, alpha=spec.alpha)
        .with_columns(at.alias(Q_AT))
        .explode([Q_VALUE, Q_AT])
        .with_columns(pl.col(Q_VALUE).cast(pl.Float64), pl.lit(QV).alias(PART))
        .collect()
    )


def level_quantiles(
    merged: pl.DataFrame, spec: PartialSpec, i: int, value: str, qs: Sequence[float]
) -> pl.DataFrame:
    """Per group of level ``i``: ``<value>__q``, the list of weighted quantiles at ``qs``
    (clamped to the group's min/max when ``value`` is an extrema column). Read from the
    ``qv`` rows when the merge reduced the sketch bins (:func:`sketch_values`), else from
    the bins (an engine's merge keeps them)."""
    keys = list(spec.levels[i])
    out = f"{value}__q"
    index = [*keys, _ONE]
    if Q_AT in merged.columns and merged.filter(pl.col(PART) == QV).height:
        reduced = _level(merged, QV, i, keys).filter(pl.col(METRIC) == value)
        order = pl.DataFrame({Q_AT: [float(q) for q in qs], "_i": range(len(qs))})
        got = reduced.join(order, on=Q_AT, how="inner")
        if reduced.height and got.select(pl.col(Q_AT).n_unique()).item() < len(set(qs)):
            raise ValueError(f"{value}: the merge kept other quantiles than {list(qs)}")
        res = (
            got.with_columns(pl.lit(1).alias(_ONE))
            .group_by(index)
            .agg(pl.col(Q_VALUE).sort_by("_i").alias(out))
        )
    else:
        bins = _level(merged, "q", i, keys).filter(pl.col(METRIC) == value)
        res = sketch_quantiles(
            bins.with_columns(pl.lit(1).alias(_ONE)),
            index,
            qs,
            bin_col=BIN,
            weight_col=SUM,
            out=out,
            alpha=spec.alpha,
        ).collect()
    if value in spec.extrema:
        ext = (
            _level(merged, "sum", i, keys)
            .filter(pl.col(METRIC) == value)
            .select(*keys, pl.col(MIN).alias("_lo"), pl.col(MAX).alias("_hi"))
            .with_columns(pl.lit(1).alias(_ONE))
        )
        res = (
            res.join(ext, on=index, how="left", nulls_equal=True)
            .explode(out)
            .with_columns(
                pl.col(out)
                .cast(pl.Float64)
                .clip(pl.col("_lo").cast(pl.Float64), pl.col("_hi").cast(pl.Float64))
            )
            .group_by(index, maintain_order=True)
            .agg(pl.col(out))
        )
    return res.drop(_ONE)


#: The part holding each session level's totals (:func:`session_totals`).
SESSIONS = "sessn"


def session_totals(
    sess: pl.DataFrame, spec: PartialSpec, levels: Sequence[int] | None = None
) -> pl.DataFrame:
    """Part ``sess`` rows (per group and session hash: Σw, rows) → part ``sessn`` rows,
    one per group of every session level: ``sum:v`` = Σ over its sessions of their rows'
    mean weight, ``sum:n`` = its sessions. ``sess`` must hold every row of the sessions it
    has (all of them, or one hash partition); the output of disjoint sets of sessions
    adds up (:class:`~llmobs_cli.core.partials.merge.Merger` reduces partition by
    partition when the sessions went to disk). ``levels`` limits it to those levels."""
    out = []
    for i in spec.session_levels if levels is None else levels:
        keys = [key(f) for f in spec.levels[i]]
        src = spec.session_source(i)
        df = sess.filter((pl.col(LEVEL) == src) & pl.col(SID).is_not_null())
        if not df.height:
            continue
        if src != i:
            # Sessions kept for a finer level: regroup by this level's keys (sums of sums).
            df = df.group_by([*keys, SID]).agg(pl.col(SUM).sum(), pl.col(N).sum())
        stats = [
            (pl.col(SUM) / pl.col(N)).sum().alias(SUM),
            pl.len().cast(pl.Int64).alias(N),
        ]
        g = df.group_by(keys).agg(stats) if keys else df.select(stats)
        out.append(g.with_columns(pl.lit(i, pl.Int32).alias(LEVEL)))
    if not out:
        return pl.DataFrame(
            {PART: [], LEVEL: [], SUM: [], N: []},
            schema={PART: pl.String, LEVEL: pl.Int32, SUM: pl.Float64, N: pl.Int64},
        )
    return pl.concat(out, how="diagonal_relaxed").with_columns(pl.lit(SESSIONS).alias(PART))


def level_sessions(merged: pl.DataFrame, spec: PartialSpec, i: int) -> pl.DataFrame:
    """Per group of level ``i``: ``sessions`` = Σ over sessions of their rows' mean weight,
    ``sessions_sampled`` = sessions seen. Read from the ``sessn`` totals when the merge
    reduced the sessions (:func:`session_totals`), else reduced here from the session rows
    (an engine's merge keeps them)."""
    keys = list(spec.levels[i])
    totals = merged.filter(pl.col(PART) == SESSIONS)
    if not totals.height:
        totals = session_totals(merged.filter(pl.col(PART) == "sess"), spec, levels=[i])
        # Every key column, even when there were no sessions (then no rows).
        totals = pl.concat([merged.head(0), totals], how="diagonal_relaxed")
    df = _level(totals, SESSIONS, i, keys)
    stats = [
        pl.col(SUM).sum().alias("sessions"),
        pl.col(N).sum().cast(pl.Int64).alias("sessions_sampled"),
    ]
    return df.group_by(keys).agg(stats) if keys else df.select(stats)


def n_eff(sum_w: float, sum_w2: float) -> float:
    """Kish's effective sample size (Σw)²/Σw² (0 when empty)."""
    return sum_w * sum_w / sum_w2 if sum_w2 else 0.0
