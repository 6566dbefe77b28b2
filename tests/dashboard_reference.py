"""The dashboard's report views and releases as they were computed before streaming: one
load of every row, then whole-frame group-bys (an oracle for tests/test_dashboard_stream.py).

Kept only to compare the streaming path against; drift and quality are left out (they do
not depend on how the report views are computed). Do not use it in the package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl

from llmobs_cli.core.ingest.readers import ReadOptions, load
from llmobs_cli.core.record.config import Config
from llmobs_cli.core.record.weights import W
from llmobs_cli.core.record.windows import Window, after, is_duration, resolve_bound, resolve_now
from llmobs_cli.core.report import pricing, releases
from llmobs_cli.core.report.engine import REPORT_COLUMNS, build_report
from llmobs_cli.errors import InputError, UsageError

Progress = Callable[[str], None]

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
#: Values of a dimension drawn over time; the rest are one ``(other)`` series.
TOP_KEYS = 12
OTHER = "(other)"
_ADVERB = {"hour": "hourly", "day": "daily", "week": "weekly"}
#: Median judgments per bucket below which quality is drawn per week.
MIN_JUDGED = 10
#: Heavy text columns only the route report (refusals, citations) needs.
_TEXT = ("response", "retrieved")


@dataclass
class DashboardOptions:
    """What to draw; defaults match ``configs/llmobs.yaml`` (``dashboard:``)."""

    title: str = "llmobs dashboard"
    bucket: Literal["hour", "day", "week"] = "day"
    drift: bool = True
    drift_current: str = "last_week"
    drift_baseline: str = "last_month"
    #: The drift windows were typed by the user (``--current/--baseline``): a window with
    #: no call is then exit 2, as in ``llmobs drift``; the defaults only leave a note.
    drift_windows_given: bool = False
    evals: Path | None = None
    since: str | None = None
    until: str | None = None
    now: str | None = None
    release_window_days: float = 7.0
    on_error: Literal["fail", "skip"] = "fail"
    fmt: str | None = None
    read_options: ReadOptions | None = None
    prices: Sequence[str | Path] = ()


@dataclass
class DashboardResult:
    title: str
    bucket: str
    window: Window
    sources: list[str]
    reports: list[dict[str, Any]]
    releases: releases.ReleaseResult
    drift: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    drift_fired: bool = False
    regressions: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        """Something a cron job should act on: drift, a regression or a report alert."""
        return self.drift_fired or self.regressions > 0 or bool(self.alerts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "bucket": self.bucket,
            "window": self.window.as_dict(),
            "sources": list(self.sources),
            "reports": self.reports,
            "releases": self.releases.as_dict(),
            "drift": self.drift,
            "quality": self.quality,
            "notes": list(self.notes),
        }


def columns_needed(drift: bool) -> list[str]:
    """The union of canonical columns the parts read (one projection for the one load)."""
    cols = [*REPORT_COLUMNS, *releases.COLUMNS, "customer_id", "feature", "release"]
    if drift:
        cols += _drift_columns()
    return list(dict.fromkeys(cols))


def _drift_columns() -> list[str]:
    from llmobs_cli.core.drift import COLUMNS

    return list(COLUMNS)


def _load(
    paths: Sequence[str | Path], opts: DashboardOptions, columns: list[str]
) -> tuple[Any, Window]:
    """One read of the traces, windowed by ``--since/--until`` (relative to ``--now``)."""
    relative = any(v and is_duration(v) for v in (opts.since, opts.until))
    pre_since = pre_until = None
    if not relative or opts.now:
        ref = resolve_now(opts.now, None) if opts.now else datetime.now().astimezone()
        pre_since = resolve_bound(opts.since, ref, "since")
        pre_until = resolve_bound(opts.until, ref, "until")
    loaded = load(
        paths,
        columns=columns,
        on_error=opts.on_error,
        fmt=opts.fmt,
        since=pre_since,
        until=pre_until,
        options=opts.read_options,
    )
    frame = loaded.frame
    latest = frame.select(pl.col("timestamp").max()).item() if frame.height else None
    now = resolve_now(opts.now, latest)
    start = resolve_bound(opts.since, now, "since")
    end = resolve_bound(opts.until, now, "until")
    if start is not None and end is not None and end <= start:
        raise UsageError(
            f"until: the window ends before it starts ({end.isoformat()} <= {start.isoformat()})",
            param="until",
        )
    if relative and not opts.now:
        if start is not None:
            frame = frame.filter(pl.col("timestamp") >= start)
        if end is not None:
            frame = frame.filter(pl.col("timestamp") < end)
    if frame.height == 0:
        if start is not None or end is not None:
            from llmobs_cli.core.ingest.span import data_span
            from llmobs_cli.core.record.windows import require_rows, window_option

            require_rows(
                0,
                window_option(since=opts.since, until=opts.until),
                Window(start, end),
                lambda: data_span(paths, fmt=opts.fmt, options=opts.read_options),
                loaded.sources,
            )
        from llmobs_cli.core.record.names import dump_name

        raise InputError([f"{dump_name(loaded.sources)}: no calls to draw (no records read)"])
    first = frame.select(pl.col("timestamp").min()).item()
    last = frame.select(pl.col("timestamp").max()).item()
    loaded.frame = frame
    return loaded, Window(start or first, end or after(last))


def _present(frame: pl.DataFrame, fields: tuple[str, ...]) -> bool:
    return all(f in frame.columns and frame[f].null_count() < frame.height for f in fields)


def build(
    paths: Sequence[str | Path],
    options: DashboardOptions | None = None,
    *,
    config: Config | None = None,
    progress: Progress | None = None,
) -> DashboardResult:
    """Everything the dashboard shows, from trace files (see module doc)."""
    opts = options or DashboardOptions()
    cfg = config or Config()
    say = progress or (lambda _m: None)
    say(f"reading {len(paths)} path(s)")
    loaded, window = _load(paths, opts, columns_needed(opts.drift))
    frame: pl.DataFrame = loaded.frame
    notes: list[str] = []

    table = pricing.config_price_table(cfg, list(opts.prices))
    patterns = _refusal_patterns(cfg)

    rules = _rules(cfg)
    from llmobs_cli.core.report.gates import check_scopes

    check_scopes(rules, frame, loaded.sources)

    # Reports: the full one by route (the report core as `llmobs report` runs it, with
    # alerts and sessions); the other dimensions and the releases from one shared
    # preparation of the rows without their text (below).
    say(f"report by route per {opts.bucket}")
    route_report = build_report(
        frame,
        by=["route"],
        bucket=opts.bucket,
        window=window,
        prices=table,
        refusal_patterns=patterns,
        rules=rules,
    ).as_dict()
    reports: list[dict[str, Any]] = [
        {"id": "route", "label": "route", "fields": ["route"], "report": route_report}
    ]
    alerts = list(route_report.get("alerts") or [])
    others = [d for d in DIMENSIONS if d[0] != "route" and _present(frame, d[2])]
    say("pricing and weighting calls for the other views")
    prepared = _prepare_light(frame, others, opts.bucket, table, patterns)
    if others:
        say("reports by " + ", ".join(label for _, label, _ in others) + f" per {opts.bucket}")
        reports += _dimension_reports(prepared, others, opts.bucket, window)

    # Releases on priced calls (the report's price table and weights).
    say("finding release and model changes")
    evals_frame = None
    rel = releases.analyse(
        prepared.select(
            *(c for c in releases.COLUMNS if c != "cost_usd"),
            pl.col(pricing.COST).alias("cost_usd"),
            W,
        ),
        evals=evals_frame,
        window=timedelta(days=opts.release_window_days),
    )

    result = DashboardResult(
        title=opts.title,
        bucket=opts.bucket,
        window=window,
        sources=list(loaded.sources),
        reports=reports,
        releases=rel,
        notes=notes,
        skipped=loaded.skipped,
        skipped_reasons=dict(loaded.skipped_reasons),
        alerts=alerts,
    )
    return result


# --- reports by the other dimensions ---------------------------------------------------------


def _prepare_light(
    frame: pl.DataFrame,
    dims: list[tuple[str, str, tuple[str, ...]]],
    bucket: str,
    table: pricing.PriceTable,
    patterns: list[str] | None,
) -> pl.DataFrame:
    """The report core's row preparation (:func:`report.prepare`: weights, prices, flags,
    buckets) of the columns the other views read, without response text and documents
    (refusals and citations are shown by route only, from the full report)."""
    from llmobs_cli.core.report import engine as rc

    fields = list(dict.fromkeys(f for _, _, fs in dims for f in fs))
    cols = list(dict.fromkeys([*REPORT_COLUMNS, *releases.COLUMNS, *fields]))
    slim = frame.select(cols).with_columns(
        *(pl.lit(None, dtype=frame.schema[c]).alias(c) for c in _TEXT)
    )
    lf = rc.prepare(slim.lazy(), by=fields, table=table, refusal_patterns=patterns, bucket=bucket)
    return lf.with_columns(rc.row_terms()).collect()


def _dimension_reports(
    prepared: pl.DataFrame,
    dims: list[tuple[str, str, tuple[str, ...]]],
    bucket: str,
    window: Window,
) -> list[dict[str, Any]]:
    """Report documents (groups and per-bucket groups) for several dimensions at once.

    Each dimension is two group-bys of the prepared rows with the report core's
    aggregations (:func:`report.metric_aggs`), turned into metrics objects by
    :func:`report.to_metrics`, so the figures are the report's. Latency and TTFT
    percentiles (one sort per group) are computed where the page draws them: per bucket
    for model and route × model. For the per-bucket series of a dimension with more than
    :data:`TOP_KEYS` values, all but the most expensive are grouped as ``(other)`` before
    aggregating: its percentiles are those of its own rows, not a merge.
    """
    from llmobs_cli.core.report import engine as rc
    from llmobs_cli.core.report import metrics as rm

    lf = prepared.lazy()
    qs = rm.QUANTILES
    aggs = rc.metric_aggs(qs)
    quantile_names = {"latency_ms__q", "ttft_ms__q"}
    sums = [a for a in aggs if a.meta.output_name() not in quantile_names]
    bcol = rc._BUCKET  # the report core's bucket column (set by prepare)
    group_frames = pl.collect_all([lf.group_by(list(fs)).agg(sums) for _, _, fs in dims])
    queries = []
    for (dim_id, _, fs), grouped in zip(dims, group_frames, strict=True):
        ranked = grouped.sort(["cost_usd", "calls"], descending=True, nulls_last=True)
        if ranked.height > TOP_KEYS:
            top = ranked.head(TOP_KEYS).select(fs).with_columns(pl.lit(True).alias("_top"))
            keyed = lf.join(top.lazy(), on=list(fs), how="left", nulls_equal=True).with_columns(
                [
                    pl.when(pl.col("_top"))
                    .then(pl.col(f).cast(pl.String))
                    .otherwise(pl.lit(OTHER))
                    .alias(f)
                    for f in fs
                ]
            )
        else:
            keyed = lf
        wanted = aggs if dim_id in LATENCY_DIMENSIONS else sums
        queries.append(keyed.group_by([bcol, *fs]).agg(wanted))
    bucket_frames = pl.collect_all(queries)
    span = rc.BUCKET_SPAN[bucket]
    out = []
    for (dim_id, label, fs), grouped, per_bucket in zip(
        dims, group_frames, bucket_frames, strict=True
    ):
        groups = [
            {"key": {f: rc._key_value(row[f]) for f in fs}, **rm.to_metrics(row, qs, None)}
            for row in grouped.iter_rows(named=True)
        ]
        groups.sort(key=lambda g: (-(g.get("cost_usd") or 0.0), -(g.get("calls") or 0.0)))
        by_start: dict[Any, list[dict[str, Any]]] = {}
        for row in per_bucket.iter_rows(named=True):
            m = {"key": {f: row[f] for f in fs}, **rm.to_metrics(row, qs, None)}
            by_start.setdefault(row[bcol], []).append(m)
        buckets = [
            {"start": t.isoformat(), "end": (t + span).isoformat(), "groups": by_start[t]}
            for t in sorted(by_start)
        ]
        doc = {
            "window": window.as_dict(),
            "by": list(fs),
            "bucket": bucket,
            "groups": groups,
            "buckets": buckets,
            "folded_into_other": max(0, grouped.height - TOP_KEYS)
            if grouped.height > TOP_KEYS
            else 0,
        }
        out.append({"id": dim_id, "label": label, "fields": list(fs), "report": doc})
    return out


# --- parts owned by other cores --------------------------------------------------------------


def _refusal_patterns(cfg: Config) -> list[str] | None:
    from llmobs_cli.core.report.refusals import patterns_from_config

    return patterns_from_config(cfg.refusals, cfg.source or "llmobs.yaml")


def _rules(cfg: Config) -> list[Any]:
    if not cfg.alerts:
        return []
    from llmobs_cli.core.report import gates

    return list(gates.parse_rules((), cfg.alerts, cfg.source or "llmobs.yaml"))
