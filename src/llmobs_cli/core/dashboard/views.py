"""Merged dashboard partials → the documents the page draws.

Everything here reads merged partials (:mod:`.partials`), never rows: the reports by
model, route × model, customer and feature, the release and model introductions, and the
before/after figures of each. Figures are the report core's (:func:`report.to_metrics`
over :func:`report._level_rows`), so a dimension's numbers are those of ``llmobs report
--by <dimension>`` on the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from llmobs_cli.core.dashboard.partials import (
    HOUR,
    ROUTE,
    UNIT,
    VALUE,
    DashboardPlan,
    SidePlan,
    bucket_level,
    group_level,
)
from llmobs_cli.core.partials.compute import LEVEL, MIN, PART, N, key
from llmobs_cli.core.partials.finalize import level_quantiles, level_sums, sketch_values
from llmobs_cli.core.partials.merge import merge
from llmobs_cli.core.record.windows import Window
from llmobs_cli.core.report import engine as rc
from llmobs_cli.core.report import metrics as rm
from llmobs_cli.core.report import releases

#: Values of a dimension drawn over time; the rest are one ``(other)`` series.
TOP_KEYS = 12
OTHER = "(other)"


def present(dims_merged: pl.DataFrame | None, plan: DashboardPlan) -> list[int]:
    """Indices (into ``plan.dimensions``) of the dimensions whose every field has a value
    in some call (most dumps have no ``feature``, say)."""
    if dims_merged is None:
        return []
    out = []
    for j, (_, _, fs) in enumerate(plan.dimensions):
        groups = level_sums(dims_merged, plan.dims.spec, group_level(j))
        if groups.height and all(groups[f].null_count() < groups.height for f in fs):
            out.append(j)
    return out


def _epoch(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col).cast(pl.Int64), time_unit="us").dt.replace_time_zone("UTC")


def _relabel(lv: pl.DataFrame, fields: tuple[str, ...], top: pl.DataFrame) -> pl.DataFrame:
    """Rows of one level with every key outside ``top`` renamed ``(other)`` (not merged)."""
    ks = [key(f) for f in fields]
    flag = top.select(
        *(pl.col(f).alias(k) for f, k in zip(fields, ks, strict=True)),
        pl.lit(True).alias("_top"),
    )
    lv = lv.join(flag, on=ks, how="left", nulls_equal=True)
    return lv.with_columns(
        pl.when(pl.col("_top")).then(pl.col(k).cast(pl.String)).otherwise(pl.lit(OTHER)).alias(k)
        for k in ks
    ).drop("_top")


def _fold(
    merged: pl.DataFrame, level: int, fields: tuple[str, ...], top: pl.DataFrame
) -> pl.DataFrame:
    """Level ``level`` of ``merged`` with every key outside ``top`` renamed ``(other)`` and
    merged again: sums add, sketch bins add, extrema take min/max — so ``(other)``'s
    figures, percentiles included, are those of its own rows. Quantiles already reduced
    (part ``qv``, folded by :func:`folded_quantiles`) pass through unchanged."""
    # A level's extrema rows carry no counts: merge them with their own aggregation.
    return merge([_relabel(merged.filter(pl.col(LEVEL) == level), fields, top)])


def _groups(merged: pl.DataFrame, plan: DashboardPlan, j: int) -> list[dict[str, Any]]:
    """The groups of dimension ``j`` (every sampled one), most expensive first."""
    _, _, fs = plan.dimensions[j]
    rows = rc._level_rows(merged, plan.dims, group_level(j))
    groups = [
        {"key": {f: rc._key_value(r[f]) for f in fs}, **rm.to_metrics(r, plan.dims.quantiles, None)}
        for r, _ in rows
        if r.get("sampled")
    ]
    return rc._sort_groups(groups)


def _top(merged: pl.DataFrame, groups: list[dict[str, Any]], fs: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame(
        [g["key"] for g in groups[:TOP_KEYS]],
        schema={f: merged.schema[key(f)] for f in fs},
        orient="row",
    )


def folds(merged: pl.DataFrame | None, plan: DashboardPlan) -> dict[int, pl.DataFrame]:
    """Per time-bucket level of a dimension with more than :data:`TOP_KEYS` groups, the
    groups drawn on their own (the rest become ``(other)``), from the merged totals."""
    out: dict[int, pl.DataFrame] = {}
    if merged is None:
        return out
    for j in present(merged, plan):
        groups = _groups(merged, plan, j)
        if len(groups) > TOP_KEYS:
            out[bucket_level(j)] = _top(merged, groups, plan.dimensions[j][2])
    return out


def _folded_levels(
    rows: pl.DataFrame, plan: DashboardPlan, top: dict[int, pl.DataFrame]
) -> pl.DataFrame:
    """``rows`` (partials of the dimensions' time-bucket levels) with the groups outside
    ``top`` of a level merged into one ``(other)`` group, as :func:`dimension_reports`
    draws them."""
    fields = {bucket_level(j): fs for j, (_, _, fs) in enumerate(plan.dimensions)}
    parts = []
    for (level,), lv_rows in rows.partition_by(LEVEL, as_dict=True).items():
        lv = int(level)
        if lv in top:
            lv_rows = merge([_relabel(lv_rows, fields[lv], top[lv])])
        parts.append(lv_rows)
    return pl.concat(parts, how="vertical_relaxed") if parts else rows


def folded_sums(
    sums: pl.DataFrame, plan: DashboardPlan, top: dict[int, pl.DataFrame]
) -> pl.DataFrame:
    """The dimensions' per-bucket sums (part ``bsum``: every group of the levels and
    buckets they hold) folded to the top groups and ``(other)``, as part ``sum``."""
    return _folded_levels(sums, plan, top).with_columns(pl.lit("sum").alias(PART))


def folded_quantiles(
    bins: pl.DataFrame, plan: DashboardPlan, top: dict[int, pl.DataFrame]
) -> pl.DataFrame:
    """The dimensions' sketch bins (every group of each level and bucket they hold) →
    their quantiles (part ``qv``), with the groups outside ``top`` of a level merged into
    one ``(other)`` group first, as :func:`dimension_reports` draws them."""
    return sketch_values(_folded_levels(bins, plan, top), plan.dims.spec, plan.dims.quantiles)


def dimension_reports(
    dims_merged: pl.DataFrame, plan: DashboardPlan, which: list[int], window: Window
) -> list[dict[str, Any]]:
    """Report documents (groups, and per-bucket groups) of the dimensions ``which``.

    Groups carry sums only (percentiles are drawn over time); buckets carry latency and
    TTFT percentiles for :data:`LATENCY_DIMENSIONS`. A dimension with more than
    :data:`TOP_KEYS` values draws the most expensive ones over time and the rest as one
    ``(other)`` series, merged from their partials."""
    qs = plan.dims.quantiles
    bucket = plan.dims.bucket or "day"
    span = rc.BUCKET_SPAN[bucket]
    out = []
    for j in which:
        dim_id, label, fs = plan.dimensions[j]
        bi = bucket_level(j)
        groups = _groups(dims_merged, plan, j)
        per_bucket = dims_merged
        folded = 0
        if len(groups) > TOP_KEYS:
            per_bucket = _fold(dims_merged, bi, fs, _top(dims_merged, groups, fs))
            folded = len(groups) - TOP_KEYS
        by_start: dict[Any, list[dict[str, Any]]] = {}
        for r, _ in rc._level_rows(per_bucket, plan.dims, bi):
            if not r.get("sampled"):
                continue
            m = {"key": {f: r[f] for f in fs}, **rm.to_metrics(r, qs, None)}
            by_start.setdefault(r[rc._BUCKET], []).append(m)
        buckets = [
            {
                "start": t.isoformat(),
                "end": (t + span).isoformat(),
                "groups": rc._sort_groups(by_start[t]),
            }
            for t in sorted(by_start)
        ]
        doc = {
            "window": window.as_dict(),
            "by": list(fs),
            "bucket": bucket,
            "groups": groups,
            "buckets": buckets,
            "folded_into_other": folded,
        }
        out.append({"id": dim_id, "label": label, "fields": list(fs), "report": doc})
    return out


# --- releases ---------------------------------------------------------------------------------


def hourly_units(rel_merged: pl.DataFrame, i: int, kind: str) -> pl.DataFrame:
    """Units per (route, value, hour) of release level ``i`` (see ``changes_from_hourly``):
    a session counts once, in the hour of its first call with the value."""
    df = rel_merged.filter(pl.col(LEVEL) == i).with_columns(_epoch(MIN).alias("_first"))
    route, value = pl.col(key(ROUTE)).alias("route"), pl.col(key(VALUE)).alias(kind)
    sessions = df.filter(pl.col(key(UNIT)).is_not_null()).select(
        route,
        value,
        pl.col("_first").dt.truncate("1h").alias("_h"),
        pl.lit(1, pl.Int64).alias("_n"),
        "_first",
    )
    single = df.filter(pl.col(key(UNIT)).is_null()).select(
        route,
        value,
        pl.col(key(HOUR)).alias("_h"),
        pl.col(N).cast(pl.Int64).alias("_n"),
        "_first",
    )
    return (
        pl.concat([sessions, single])
        .group_by("route", kind, "_h")
        .agg(pl.col("_n").sum(), pl.col("_first").min())
    )


def find_changes(
    rel_merged: pl.DataFrame | None, plan: DashboardPlan, window: timedelta
) -> list[releases.Change]:
    """:func:`releases.find_changes` from merged partials."""
    if rel_merged is None:
        return []
    out: list[releases.Change] = []
    for i, kind in enumerate(plan.kinds):
        hourly = hourly_units(rel_merged, i, kind)
        out.extend(releases.changes_from_hourly(kind, hourly, window=window))  # type: ignore[arg-type]
    out.sort(key=lambda c: (c.at, c.kind, c.route))
    return out


def _num(x: Any) -> float | None:
    return releases._num(x)


def _div(a: Any, b: Any) -> float | None:
    if a is None or b is None or not b:
        return None
    return _num(a / b)


def sides(merged: pl.DataFrame | None, plan: SidePlan) -> dict[tuple[int, str], releases.Side]:
    """The before/after figures per (change index, side) from merged side partials."""
    if merged is None or merged.height == 0:
        return {}
    spec = plan.spec
    keys = list(spec.levels[0])
    sums = level_sums(merged, spec, 0)
    qs = releases._PCTS
    for col in ("latency_ms", "ttft_ms"):
        sums = sums.join(
            level_quantiles(merged, spec, 0, col, qs), on=keys, how="left", nulls_equal=True
        )
    out: dict[tuple[int, str], releases.Side] = {}
    for r in sums.iter_rows(named=True):
        if not r.get("sampled"):
            continue
        calls, w2 = r.get("calls") or 0.0, r.get("w2") or 0.0

        def pct(col: str, row: dict[str, Any] = r) -> dict[str, float | None]:
            got = row.get(f"{col}__q") or []
            return {
                f"p{int(q * 100)}": (_num(got[k]) if k < len(got) else None)
                for k, q in enumerate(qs)
            }

        out[(int(r["_cid"]), str(r["_side"]))] = releases.Side(
            sampled=int(r["sampled"]),
            calls=float(calls),
            n_eff=float(calls * calls / w2) if w2 else 0.0,
            latency_ms=pct("latency_ms"),
            ttft_ms=pct("ttft_ms"),
            cost_per_call_usd=_div(r.get("cost_wy"), r.get("cost_w")),
            unpriced=int(r.get("unpriced") or 0),
            error_rate=_div(r.get("err_wy"), r.get("err_w")),
            output_tokens_mean=_div(r.get("out_wy"), r.get("out_w")),
            start=_at(r.get("_min_timestamp")),
            end=_at(r.get("_max_timestamp")),
        )
    return out


def _at(v: float | None) -> datetime | None:
    if v is None:
        return None
    return datetime.fromtimestamp(0, tz=UTC) + timedelta(microseconds=int(v))
