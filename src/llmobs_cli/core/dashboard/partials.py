"""The dashboard's figures as mergeable partials: one pass over the rows for every view.

:func:`dashboard_partials` turns one batch of canonical rows into one partial frame
(:mod:`llmobs_cli.core.partials`) holding three blocks, told apart by their level index:

* the route report (:func:`llmobs_cli.core.report.engine.batch_partials`: overall, route,
  rule scopes, time buckets, buckets × route, unpriced models) — levels ``[0, r)``;
* the other dimensions (model, route × model, customer, feature): per group and per
  bucket × group, on the rows without response text and documents (refusal and citation
  matching are shown by route only), with latency/TTFT sketches per bucket for the
  dimensions whose percentiles are drawn over time — levels ``[r, r + d)``;
* release and model introductions (:func:`llmobs_cli.core.report.releases.find_changes`):
  the first timestamp of every (route, value, session) and, for calls without a session,
  calls and first timestamp per (route, value, hour) — the last two levels.

The function is pure and its plan picklable, so it runs batch by batch locally or inside
Spark/Ray (:func:`llmobs_cli.core.engines.run.merged_partials`); :func:`split` cuts the
merged frame back into its blocks, which :mod:`.views` finalizes. Memory is bounded by
the distinct groups, buckets and sessions, never by the number of rows.

:func:`side_partials` is the second, optional pass: once the changes are known, the
before/after figures of each (change, side) from the rows of its windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from llmobs_cli.core.partials.compute import LEVEL, PartialSpec, partials
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

#: Release-change columns: route with nulls as ``default``, session hash, hour.
ROUTE, UNIT, HOUR, ONE = "_rroute", "_unit", "_hour", "_calls"
#: Before/after columns: change index and side.
CID, SIDE = "_cid", "_side"


@dataclass(frozen=True)
class DashboardPlan:
    """What :func:`dashboard_partials` computes (plain data: picklable)."""

    route: rc.ReportPlan
    dims: rc.ReportPlan
    dimensions: tuple[tuple[str, str, tuple[str, ...]], ...]
    releases: PartialSpec

    @property
    def route_levels(self) -> int:
        return len(self.route.spec.levels)

    @property
    def dim_levels(self) -> int:
        return len(self.dims.spec.levels)


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
    rel = PartialSpec(
        levels=tuple((ROUTE, kind, UNIT, HOUR) for kind in releases.KINDS),
        sums=(ONE,),
        extrema=("timestamp",),
    )
    return DashboardPlan(route=route, dims=dims, dimensions=others, releases=rel)


def _dims_partials(batch: pl.DataFrame, plan: DashboardPlan) -> pl.DataFrame:
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
    return partials(rows, plan.dims.spec)


def _release_partials(batch: pl.DataFrame, plan: DashboardPlan) -> pl.DataFrame:
    """First timestamp per (route, value, session); calls per (route, value, hour) for
    calls without a session (each is its own unit, as in ``find_changes``)."""
    c = pl.col
    sid = c("session_id")
    rows = (
        batch.lazy()
        .filter(c("timestamp").is_not_null())
        .select(
            c("route").fill_null("default").alias(ROUTE),
            *releases.KINDS,
            "timestamp",
            pl.when(sid.is_not_null()).then(sid.hash()).alias(UNIT),
            pl.when(sid.is_null()).then(c("timestamp").dt.truncate("1h")).alias(HOUR),
            pl.lit(1.0).alias(ONE),
        )
        .collect()
    )
    return partials(rows, plan.releases)


def dashboard_partials(batch: pl.DataFrame, plan: DashboardPlan) -> pl.DataFrame:
    """One batch → the dashboard's partials (pure; see the module docstring)."""
    route = rc.batch_partials(batch, plan.route)
    dims = _dims_partials(batch, plan).with_columns(pl.col(LEVEL) + plan.route_levels)
    rel = _release_partials(batch, plan).with_columns(
        pl.col(LEVEL) + plan.route_levels + plan.dim_levels
    )
    out = pl.concat([route, dims, rel], how="diagonal_relaxed")
    return out.select(sorted(out.columns))


def split(
    merged: pl.DataFrame | None, plan: DashboardPlan
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
    """The merged frame's three blocks (route report, dimensions, releases), each with its
    own level numbering (None when empty)."""
    if merged is None or merged.height == 0:
        return None, None, None
    r, d = plan.route_levels, plan.dim_levels
    lv = pl.col(LEVEL)

    def block(lo: int, hi: int) -> pl.DataFrame | None:
        df = merged.filter((lv >= lo) & (lv < hi)).with_columns(lv - lo)
        return df if df.height else None

    return block(0, r), block(r, r + d), block(r + d, r + d + len(plan.releases.levels))


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
