"""The dashboard's figures as mergeable partials: one pass over the rows for every view.

One batch of canonical rows gives three blocks of partials (:mod:`llmobs_cli.core.partials`),
each merged on its own so that each keeps only its own key columns:

* :func:`route_partials` — the route report (``report.batch_partials``: overall, route,
  rule scopes, time buckets, buckets × route, unpriced models);
* :func:`dims_partials` — the other dimensions (model, route × model, customer, feature):
  per group and per bucket × group, on the rows without response text and documents
  (refusal and citation matching are shown by route only), with latency/TTFT sketches
  per bucket for the dimensions whose percentiles are drawn over time;
* :func:`release_partials` — release and model introductions (``releases.find_changes``):
  the first timestamp of every (route, value, session) and, for calls without a
  session, calls and first timestamp per (route, value, hour); part ``first``, whose
  ``min:v`` merges by min and ``sum:n`` by sum.

The functions are pure and the plan picklable, so they run batch by batch locally or
inside Spark/Ray (:func:`stacked` puts the blocks in one frame keyed by ``k:block`` for
:func:`llmobs_cli.core.engines.run.merged_partials`; :func:`unstack` splits it again);
:mod:`.views` finalizes. Memory is bounded by the distinct groups, buckets and sessions,
never by the number of rows.

:func:`side_partials` is the second, optional pass: once the changes are known, the
before/after figures of each (change, side) from the rows of its windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import polars as pl

from llmobs_cli.core.partials.compute import (
    BIN,
    LEVEL,
    METRIC,
    MIN,
    PART,
    N,
    PartialSpec,
    key,
    partials,
)
from llmobs_cli.core.partials.merge import ByKeys, Deferred, Reducer, Spill
from llmobs_cli.core.record.weights import W
from llmobs_cli.core.report import engine as rc
from llmobs_cli.core.report import pricing, releases

#: Dimensions drawn besides ``route``: (id, label, fields). A dimension whose fields are
#: all null in the data is left out (most dumps have no ``feature``).
DIMENSIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("route", "route", ("route",)),
    ("model", "model", ("model",)),
    ("route+model", "route × model", ("route", "model")),
    ("customer_id", "customer", ("customer_id",)),
    ("feature", "feature", ("feature",)),
)
#: Dimensions whose latency/TTFT percentiles are drawn over time (route comes from its
#: full report).
LATENCY_DIMENSIONS = ("model", "route+model")
#: Heavy text columns only the route report (refusals, citations) needs.
_TEXT = ("response", "retrieved")

#: Release-change keys: route with nulls as ``default``, session hash, hour.
ROUTE, UNIT, HOUR = "_rroute", "_unit", "_hour"
#: Before/after columns: change index and side.
CID, SIDE = "_cid", "_side"


@dataclass(frozen=True)
class DashboardPlan:
    """What the block functions compute (plain data: picklable)."""

    route: rc.ReportPlan
    dims: rc.ReportPlan
    dimensions: tuple[tuple[str, str, tuple[str, ...]], ...]
    kinds: tuple[str, ...] = releases.KINDS


def group_level(j: int) -> int:
    """The dimensions' plan level of dimension ``j``'s groups (:func:`plan_dashboard`)."""
    return 2 * j


def bucket_level(j: int) -> int:
    """The dimensions' plan level of dimension ``j``'s groups per time bucket."""
    return 2 * j + 1


def plan_dashboard(
    *,
    bucket: str,
    table: pricing.PriceTable,
    refusal_patterns: list[str] | None,
    rules: list[object] | tuple[object, ...] = (),
) -> DashboardPlan:
    """The route report's plan plus the other dimensions' and the release levels."""
    route = rc.plan_report(
        by=["route"], bucket=bucket, table=table, refusal_patterns=refusal_patterns, rules=rules
    )
    others = tuple(d for d in DIMENSIONS if d[0] != "route")
    levels: list[tuple[str, ...]] = []
    sketched: list[int] = []
    for dim_id, _, fs in others:
        levels.append(tuple(fs))
        if dim_id in LATENCY_DIMENSIONS:
            sketched.append(len(levels))
        levels.append((rc._BUCKET, *fs))
    spec = PartialSpec(
        levels=tuple(levels),
        sums=route.spec.sums,
        extrema=route.spec.extrema,
        sketches=route.spec.sketches,
        sketch_levels=tuple(sketched),
        alpha=route.spec.alpha,
    )
    dims = rc.ReportPlan(
        by=(),
        bucket=bucket,
        table=table,
        refusal_patterns=route.refusal_patterns,
        rule_keysets=(),
        spec=spec,
        quantiles=route.quantiles,
    )
    return DashboardPlan(route=route, dims=dims, dimensions=others)


def route_partials(batch: pl.DataFrame, plan: DashboardPlan) -> pl.DataFrame:
    """The route report's partials (``llmobs report --by route --bucket …``)."""
    return rc.batch_partials(batch, plan.route)


def dims_partials(batch: pl.DataFrame, plan: DashboardPlan) -> pl.DataFrame:
    """The other dimensions' partials: the report's row preparation without text."""
    fields = list(dict.fromkeys(f for _, _, fs in plan.dimensions for f in fs))
    schema = batch.schema
    slim = batch.lazy().with_columns(
        pl.lit(None, dtype=schema[c]).alias(c) for c in _TEXT if c in schema
    )
    lf = rc.prepare(
        slim,
        by=fields,
        table=plan.dims.table,
        refusal_patterns=plan.dims.refusal_patterns,
        bucket=plan.dims.bucket,
        citations=False,
    )
    needed = list(dict.fromkeys([*fields, rc._BUCKET, W, "timestamp", "latency_ms", "ttft_ms"]))
    rows = lf.select(*needed, *rc.row_terms()).collect()
    out = partials(rows, plan.dims.spec)
    bucketed = [bucket_level(j) for j in range(len(plan.dimensions))]
    return out.with_columns(
        pl.when((pl.col(PART) == "sum") & pl.col(LEVEL).is_in(bucketed))
        .then(pl.lit(BUCKET_SUMS))
        .otherwise(pl.col(PART))
        .alias(PART)
    )


#: The part of the dimensions' per-bucket sums (group × bucket × metric: millions of rows
#: for customers by the hour over months). Kept apart from the groups' totals so that it
#: can go to disk by bucket and be folded to the top groups there; :func:`as_sums` (or
#: the fold) names it ``sum`` again.
BUCKET_SUMS = "bsum"


def as_sums(merged: pl.DataFrame | None) -> pl.DataFrame | None:
    """The dimensions' merged partials with the per-bucket sums named ``sum`` again (the
    engines merge them without the local fold; folding later gives the same figures)."""
    if merged is None:
        return None
    return merged.with_columns(pl.col(PART).replace(BUCKET_SUMS, "sum"))


#: Part name and columns of the release partials.
FIRST = "first"
VALUE = "_value"
_REL_COLUMNS = {
    PART: pl.String(),
    LEVEL: pl.Int32(),
    key(ROUTE): pl.String(),
    key(VALUE): pl.String(),
    key(UNIT): pl.UInt64(),
    key(HOUR): pl.Datetime("us", "UTC"),
    N: pl.Int64(),
    MIN: pl.Float64(),
}


def release_partials(batch: pl.DataFrame, plan: DashboardPlan) -> pl.DataFrame:
    """First timestamp (epoch µs) per (route, value, session); calls and first timestamp
    per (route, value, hour) for calls without a session (each is its own unit, as in
    ``find_changes``). Level ``i`` is the value column ``plan.kinds[i]``."""
    c = pl.col
    sid = c("session_id")
    lf = batch.lazy().filter(c("timestamp").is_not_null())
    parts = []
    for i, kind in enumerate(plan.kinds):
        parts.append(
            lf.filter(c(kind).is_not_null())
            .group_by(
                c("route").fill_null("default").alias(key(ROUTE)),
                c(kind).cast(pl.String).alias(key(VALUE)),
                pl.when(sid.is_not_null()).then(sid.hash()).alias(key(UNIT)),
                pl.when(sid.is_null())
                .then(c("timestamp").dt.truncate("1h"))
                .dt.convert_time_zone("UTC")
                .alias(key(HOUR)),
            )
            .agg(
                pl.len().cast(pl.Int64).alias(N),
                c("timestamp").min().dt.epoch("us").cast(pl.Float64).alias(MIN),
            )
            .with_columns(pl.lit(FIRST).alias(PART), pl.lit(i, pl.Int32).alias(LEVEL))
        )
    out = pl.concat(pl.collect_all(parts), how="diagonal_relaxed")
    return out.select(pl.col(k).cast(t) for k, t in _REL_COLUMNS.items())


def first_by_hour(rows: pl.DataFrame) -> pl.DataFrame:
    """Release partials of whole sessions (every row of the sessions present: all of them,
    or one hash partition) → the same partials with each session folded into the hour of
    its first call: ``k:_unit`` null, ``k:_hour`` that hour, ``sum:n`` 1. Calls without a
    session are kept as they are. The output of disjoint sets of sessions merges by sum
    (``sum:n``) and min (``min:v``); :func:`~llmobs_cli.core.dashboard.views.hourly_units`
    reads it as it reads the unfolded partials."""
    unit = pl.col(key(UNIT))
    first = pl.from_epoch(pl.col(MIN).cast(pl.Int64), time_unit="us").dt.replace_time_zone("UTC")
    folded = rows.with_columns(
        pl.when(unit.is_not_null())
        .then(first.dt.truncate("1h"))
        .otherwise(pl.col(key(HOUR)))
        .cast(rows.schema[key(HOUR)])
        .alias(key(HOUR)),
        pl.when(unit.is_not_null()).then(1).otherwise(pl.col(N)).cast(pl.Int64).alias(N),
        pl.lit(None, pl.UInt64).alias(key(UNIT)),
    )
    keys = [c for c in folded.columns if c.startswith("k:")]
    return (
        folded.group_by(keys)
        .agg(pl.col(N).sum(), pl.col(MIN).min())
        .with_columns(pl.lit(FIRST).alias(PART))
    )


#: Per block, the parts whose rows grow with the sessions (by their session-hash column,
#: reduced by :func:`block_reducers`) or with the time buckets (the sketch bins: the
#: route's by group; the dimensions' bins and per-bucket sums by (level, metric, bucket),
#: so that a partition holds every group of its buckets and the groups past the top ones
#: can be merged into ``(other)`` there), merged on disk in hash partitions past a size.
_BY_BUCKET = ByKeys(only=(LEVEL, METRIC, key(rc._BUCKET)))
SPILLED: dict[str, dict[str, Spill]] = {
    "route": {"sess": "k:sid", "q": ByKeys(exclude=(BIN,))},
    "dims": {
        "sess": "k:sid",
        "q": _BY_BUCKET,
        BUCKET_SUMS: _BY_BUCKET,
    },
    "releases": {FIRST: key(UNIT)},
}


def block_reducers(plan: DashboardPlan) -> list[dict[str, Reducer | Deferred]]:
    """Per block (in :data:`BLOCKS` order), the reducers of its spilled parts: sessions to
    per-group totals, sketch bins to quantiles and per-bucket sums folded to the top
    groups (the dimensions', once their top groups are known from the merged totals),
    release sessions to the hour of their first call."""
    from llmobs_cli.core.dashboard import views
    from llmobs_cli.core.partials.finalize import session_totals, sketch_values

    def dims_quantiles(merged: pl.DataFrame | None) -> Reducer:
        return partial(views.folded_quantiles, plan=plan, top=views.folds(merged, plan))

    def dims_sums(merged: pl.DataFrame | None) -> Reducer:
        return partial(views.folded_sums, plan=plan, top=views.folds(merged, plan))

    route = plan.route
    return [
        {
            "sess": partial(session_totals, spec=route.spec),
            "q": partial(sketch_values, spec=route.spec, qs=route.quantiles),
        },
        {
            "sess": partial(session_totals, spec=plan.dims.spec),
            "q": Deferred(dims_quantiles),
            BUCKET_SUMS: Deferred(dims_sums),
        },
        {FIRST: first_by_hour},
    ]


BLOCKS = ("route", "dims", "releases")
_FNS = {"route": route_partials, "dims": dims_partials, "releases": release_partials}
BLOCK = "k:block"


def block_functions(plan: DashboardPlan) -> list[Callable[[pl.DataFrame], pl.DataFrame]]:
    """The partial function of each block (in :data:`BLOCKS` order), ready for a batch."""
    return [partial(_FNS[b], plan=plan) for b in BLOCKS]


def stacked(
    batch: pl.DataFrame, fns: tuple[Callable[[pl.DataFrame], pl.DataFrame], ...]
) -> pl.DataFrame:
    """Every block's partials in one frame, block ``i`` keyed ``k:block = i`` (one
    partial function for an engine; merges as the blocks would on their own)."""
    out = pl.concat(
        [f(batch).with_columns(pl.lit(i, pl.Int32).alias(BLOCK)) for i, f in enumerate(fns)],
        how="diagonal_relaxed",
    )
    return out.select(sorted(out.columns))


def unstack(merged: pl.DataFrame | None, blocks: int) -> list[pl.DataFrame | None]:
    """The merged frame of :func:`stacked` cut back into its blocks."""
    if merged is None or merged.height == 0:
        return [None] * blocks
    out: list[pl.DataFrame | None] = []
    for i in range(blocks):
        df = merged.filter(pl.col(BLOCK) == i).drop(BLOCK)
        out.append(df if df.height else None)
    return out


# --- the second pass: before/after of each change ---------------------------------------------

#: The columns the second pass reads (the sides' fields and what prices a call).
SIDE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys([*releases.COLUMNS, *pricing.PRICE_COLUMNS]))

#: Per-row terms of a change's side, summed per (change, side).
_SIDE_TERMS = (
    "calls",
    "w2",
    "cost_wy",
    "cost_w",
    "unpriced",
    "err_wy",
    "err_w",
    "out_wy",
    "out_w",
)


@dataclass(frozen=True)
class SidePlan:
    """The changes whose sides the second pass measures (picklable)."""

    changes: tuple[releases.Change, ...]
    window: timedelta
    table: pricing.PriceTable
    spec: PartialSpec


def plan_sides(
    changes: list[releases.Change], window: timedelta, table: pricing.PriceTable
) -> SidePlan:
    spec = PartialSpec(
        levels=((CID, SIDE),),
        sums=tuple(_SIDE_TERMS),
        extrema=("timestamp", "latency_ms", "ttft_ms"),
        sketches=(("latency_ms", W), ("ttft_ms", W)),
    )
    return SidePlan(changes=tuple(changes), window=window, table=table, spec=spec)


def side_partials(batch: pl.DataFrame, plan: SidePlan) -> pl.DataFrame:
    """One batch → partials per (change, side) of the rows in the change's windows."""
    c = pl.col
    lf = pricing.with_cost(batch.lazy(), plan.table).with_columns(
        c(pricing.COST).alias("cost_usd"),
        (1.0 / c("sample_rate")).alias(W),
        c("route").fill_null("default"),
    )
    cols = [*releases.COLUMNS, W]
    tagged = releases._sides(lf.select(cols), list(plan.changes), plan.window)
    w = c(W)
    err = (c("status") == "error").cast(pl.Float64)
    out = c("output_tokens").cast(pl.Float64)
    if not tagged.collect_schema().names():
        tagged = (
            lf.select(cols)
            .clear()
            .with_columns(pl.lit(None, pl.Int64).alias(CID), pl.lit(None, pl.String).alias(SIDE))
        )
    rows = tagged.select(
        CID,
        SIDE,
        W,
        "timestamp",
        c("latency_ms").cast(pl.Float64),
        c("ttft_ms").cast(pl.Float64),
        w.alias("calls"),
        (w * w).alias("w2"),
        (w * c("cost_usd")).alias("cost_wy"),
        pl.when(c("cost_usd").is_not_null()).then(w).alias("cost_w"),
        c("cost_usd").is_null().cast(pl.Float64).alias("unpriced"),
        (w * err).alias("err_wy"),
        pl.when(err.is_not_null()).then(w).alias("err_w"),
        (w * out).alias("out_wy"),
        pl.when(out.is_not_null()).then(w).alias("out_w"),
    ).collect()
    return partials(rows, plan.spec)
