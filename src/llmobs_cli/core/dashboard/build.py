"""``llmobs dashboard``: one streaming pass for every report view, then drift and quality.

The dashboard re-implements no statistic. It reads the traces batch by batch (only the
columns the views need) and turns each batch into the partials of
:mod:`llmobs_cli.core.dashboard.partials` — the route report (every metric, alerts and
sessions), the reports by model, route × model, customer and feature (without response
text and documents: refusal and citation matching, which only the route view shows, run
once), each with a time series per ``bucket``, and the release/model introductions —
merged as they arrive (locally, or on Spark/Ray with ``engine``) and finalized once
(:mod:`llmobs_cli.core.dashboard.views`). Then:

* the before/after table of each release and model change: a second pass over the rows
  of the changes' windows, again as partials (only when something changed);
* the drift core, given the paths (latest week vs the month before, unless
  ``drift=False``), with example calls kept as a bounded top-k while streaming;
* the eval core's summary of a saved ``evals.parquet`` (when ``evals`` is given).

Memory is bounded by the batch size and the distinct groups, buckets and sessions, never
by the number of rows. :func:`build` returns a :class:`DashboardResult`; ``as_dict()`` is
what :func:`llmobs_cli.render.html.dashboard_html` draws. Pure: no printing, no exit;
problems are typed errors (exit 2) and, for optional parts that cannot run on this data
(too few rows for drift, say), a sentence in ``notes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from llmobs_cli.core.dashboard import views
from llmobs_cli.core.dashboard.partials import (
    BLOCKS,
    DIMENSIONS,
    LATENCY_DIMENSIONS,
    SIDE_COLUMNS,
    SPILLED,
    as_sums,
    block_functions,
    block_reducers,
    plan_dashboard,
    plan_sides,
    side_partials,
    stacked,
    unstack,
)
from llmobs_cli.core.ingest.readers import ReadOptions
from llmobs_cli.core.partials.merge import Deferred, Merger, Reducer, Spill
from llmobs_cli.core.record.config import Config
from llmobs_cli.core.record.fields import base_column
from llmobs_cli.core.record.windows import Window, after, is_duration, resolve_bound, resolve_now
from llmobs_cli.core.report import pricing, releases
from llmobs_cli.core.report.engine import REPORT_COLUMNS
from llmobs_cli.errors import InputError, UsageError

Progress = Callable[[str], None]

__all__ = [
    "DIMENSIONS",
    "LATENCY_DIMENSIONS",
    "OTHER",
    "TOP_KEYS",
    "DashboardOptions",
    "DashboardResult",
    "build",
    "columns_needed",
]

#: Values of a dimension drawn over time; the rest are one ``(other)`` series.
TOP_KEYS = views.TOP_KEYS
OTHER = views.OTHER
_ADVERB = {"hour": "hourly", "day": "daily", "week": "weekly"}
#: Median judgments per bucket below which quality is drawn per week.
MIN_JUDGED = 10


@dataclass
class DashboardOptions:
    """What to draw; defaults match ``configs/llmobs.yaml`` (``dashboard:``).

    ``memory`` is the batch budget in bytes (None: a quarter of RAM); ``engine`` an
    :class:`llmobs_cli.core.engines.EngineSettings` saying where the report partials
    run (None or ``local``: this machine)."""

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
    memory: int | None = None
    engine: Any = None


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


def columns_needed(drift: bool = False, rules: Sequence[Any] = ()) -> list[str]:
    """The canonical columns the report views and releases read (drift reads its own)."""
    scope = [base_column(k) for r in rules for k in getattr(r, "scope_keys", ())]
    fields = [f for _, _, fs in DIMENSIONS for f in fs]
    cols = [*REPORT_COLUMNS, *releases.COLUMNS, *fields, "release", *scope]
    return list(dict.fromkeys(cols))


@dataclass
class _Pass:
    """What a pass leaves: merged partials (one frame per partial function) and the
    reader's counters."""

    merged: list[pl.DataFrame | None]
    sources: list[str]
    skipped: int
    skipped_reasons: dict[str, int]


def _bounds(
    paths: Sequence[str | Path], opts: DashboardOptions, say: Progress
) -> tuple[datetime | None, datetime | None]:
    """``--since/--until`` as instants: relative to ``--now``, else (for durations) to the
    data's latest timestamp (one pass over that column), as ``llmobs report`` does."""
    from llmobs_cli.core.ingest.readers.stream import default_memory
    from llmobs_cli.core.report.engine import _latest

    relative = any(v and is_duration(v) for v in (opts.since, opts.until)) and not opts.now
    if opts.now:
        ref = resolve_now(opts.now, None)
    elif relative:
        say("finding the latest timestamp")
        budget = default_memory() if opts.memory is None else opts.memory
        ref = resolve_now(None, _latest(paths, opts.on_error, opts.fmt, opts.read_options, budget))
    else:
        ref = datetime.now().astimezone()
    start = resolve_bound(opts.since, ref, "since")
    end = resolve_bound(opts.until, ref, "until")
    if start is not None and end is not None and end <= start:
        raise UsageError(
            f"until: the window ends before it starts ({end.isoformat()} <= {start.isoformat()})",
            param="until",
        )
    return start, end


def _is_local(engine: Any) -> bool:
    return engine is None or getattr(engine, "name", "local") == "local"


def _run_pass(
    paths: Sequence[str | Path],
    opts: DashboardOptions,
    columns: list[str],
    fns: list[Callable[[pl.DataFrame], pl.DataFrame]],
    start: datetime | None,
    end: datetime | None,
    say: Progress,
    spills: Sequence[Mapping[str, Spill]] | None = None,
    reducers: Sequence[Mapping[str, Reducer | Deferred]] | None = None,
) -> _Pass:
    """Each of ``fns``' partials over the rows of ``[start, end)``, merged on its own
    (locally, batch by batch, or on the configured engine). Locally, ``spills[i]`` names
    the parts of ``fns[i]`` that go to disk past a size, and ``reducers[i]`` reduces
    them (:class:`~llmobs_cli.core.partials.merge.Merger`)."""
    if not _is_local(opts.engine):
        from llmobs_cli.core.engines.run import merged_partials
        from llmobs_cli.core.ingest.readers import _with_dependencies
        from llmobs_cli.core.record.schema import REQUIRED

        wanted = sorted(_with_dependencies(columns) | {"trace_id", "span_id"})
        required = tuple(f for f in (*REQUIRED, "latency_ms") if f in wanted)
        say(f"running on {opts.engine.name}")
        run = merged_partials(
            opts.engine,
            paths,
            wanted,
            partial(stacked, fns=tuple(fns)),
            since=start,
            until=end,
            required=required,
            on_error=opts.on_error,
            keep_duplicates=bool(getattr(opts.read_options, "keep_duplicates", False)),
        )
        merged = unstack(run.merged, len(fns))
        return _Pass(merged, run.sources, run.skipped, dict(run.skipped_reasons))
    from llmobs_cli.core.ingest.readers.stream import Stream, default_memory

    def tell(p: Any) -> None:
        share = f" ({100 * p.bytes / p.total_bytes:.0f} %)" if p.total_bytes else ""
        say(f"{p.rows:,} rows, {p.bytes / 1e6:,.0f} of {p.total_bytes / 1e6:,.0f} MB read{share}")

    stream = Stream(
        paths,
        columns=columns,
        on_error=opts.on_error,
        fmt=opts.fmt,
        since=start,
        until=end,
        options=opts.read_options,
        memory=default_memory() if opts.memory is None else opts.memory,
        on_progress=tell,
    )
    spills = list(spills) if spills is not None else [{} for _ in fns]
    reducers = list(reducers) if reducers is not None else [{} for _ in fns]
    mergers = [Merger(spill=sp) for sp in spills]
    for batch in stream:
        for fn, merger in zip(fns, mergers, strict=True):
            merger.add(fn(batch))
    merged = [m.result(reduce=r) for m, r in zip(mergers, reducers, strict=True)]
    return _Pass(merged, stream.sources, stream.skipped, dict(stream.skipped_reasons))


def build(
    paths: Sequence[str | Path],
    options: DashboardOptions | None = None,
    *,
    config: Config | None = None,
    progress: Progress | None = None,
) -> DashboardResult:
    """Everything the dashboard shows, from trace files (see module doc)."""
    from llmobs_cli.core.report import engine as rc
    from llmobs_cli.core.report.gates import check_scopes

    opts = options or DashboardOptions()
    cfg = config or Config()
    say = progress or (lambda _m: None)
    table = pricing.config_price_table(cfg, list(opts.prices))
    patterns = _refusal_patterns(cfg)
    rules = _rules(cfg)

    start, end = _bounds(paths, opts, say)
    plan = plan_dashboard(bucket=opts.bucket, table=table, refusal_patterns=patterns, rules=rules)
    say(f"reading {len(paths)} path(s): reports by route, model, customer per {opts.bucket}")
    first = _run_pass(
        paths,
        opts,
        columns_needed(rules=rules),
        block_functions(plan),
        start,
        end,
        say,
        spills=[SPILLED[b] for b in BLOCKS],
        reducers=block_reducers(plan),
    )
    say("finalizing")
    blocks = dict(zip(BLOCKS, first.merged, strict=True))
    route_merged, rel_merged = blocks["route"], blocks["releases"]
    dims_merged = as_sums(blocks["dims"])
    window = _window(route_merged, plan, start, end, paths, opts, first.sources)
    check_scopes(rules, rc._key_frame(route_merged, plan.route), first.sources)

    route_report = rc.finalize_report(route_merged, plan.route, window=window, rules=rules)
    route_doc = route_report.as_dict()
    reports: list[dict[str, Any]] = [
        {"id": "route", "label": "route", "fields": ["route"], "report": route_doc}
    ]
    alerts = list(route_doc.get("alerts") or [])
    if dims_merged is not None:
        which = views.present(dims_merged, plan)
        reports += views.dimension_reports(dims_merged, plan, which, window)

    # Releases: introductions from the first pass; their before/after from a second pass
    # over the rows of their windows (the report's price table and weights).
    say("finding release and model changes")
    rel_window = timedelta(days=opts.release_window_days)
    evals_frame = _read_evals(opts.evals) if opts.evals else None
    changes = views.find_changes(rel_merged, plan, rel_window)
    ops: dict[tuple[int, str], releases.Side] = {}
    if changes:
        say(f"before/after of {len(changes)} change(s)")
        sp = plan_sides(changes, rel_window, table)
        lo = min(c.at for c in changes) - rel_window
        hi = max(c.at for c in changes) + rel_window
        second = _run_pass(
            paths,
            opts,
            list(SIDE_COLUMNS),
            [partial(side_partials, plan=sp)],
            lo if start is None else max(lo, start),
            hi if end is None else min(hi, end),
            say,
        )
        ops = views.sides(second.merged[0], sp)
    rel = releases.ReleaseResult(
        changes=changes,
        markers=releases.markers(changes),
        comparisons=releases.comparisons(changes, ops, evals=evals_frame, window=rel_window),
        window_days=rel_window.total_seconds() / 86400,
    )

    result = DashboardResult(
        title=opts.title,
        bucket=opts.bucket,
        window=window,
        sources=list(first.sources),
        reports=reports,
        releases=rel,
        notes=[],
        skipped=first.skipped,
        skipped_reasons=first.skipped_reasons,
        alerts=alerts,
    )
    if opts.drift:
        say(f"drift: {opts.drift_current} vs {opts.drift_baseline}")
        last = route_report.overall.get("last_timestamp")
        _add_drift(result, paths, opts, cfg, table, last, say)
    if evals_frame is not None:
        say("summarising judgments")
        _add_quality(result, evals_frame, opts, cfg)
    return result


def _window(
    route_merged: pl.DataFrame | None,
    plan: Any,
    start: datetime | None,
    end: datetime | None,
    paths: Sequence[str | Path],
    opts: DashboardOptions,
    sources: list[str],
) -> Window:
    """The window drawn: the bounds given, each open side filled from the data; no call
    in it is exit 2 (naming the window and what the data covers)."""
    from llmobs_cli.core.partials.finalize import level_sums

    sums = level_sums(route_merged, plan.route.spec, 0) if route_merged is not None else None
    if sums is None or sums.height == 0 or not sums["sampled"].sum():
        if start is not None or end is not None:
            from llmobs_cli.core.ingest.span import data_span
            from llmobs_cli.core.record.windows import require_rows, window_option

            require_rows(
                0,
                window_option(since=opts.since, until=opts.until),
                Window(start, end),
                lambda: data_span(paths, fmt=opts.fmt, options=opts.read_options),
                sources,
            )
        from llmobs_cli.core.record.names import dump_name

        raise InputError([f"{dump_name(sources)}: no calls to draw (no records read)"])
    from llmobs_cli.core.report.engine import _epoch_us

    first = _epoch_us(float(sums["_min_timestamp"].min()))  # type: ignore[arg-type]
    last = _epoch_us(float(sums["_max_timestamp"].max()))  # type: ignore[arg-type]
    return Window(start or first, end or after(last))  # type: ignore[arg-type]


# --- parts owned by other cores --------------------------------------------------------------


def _refusal_patterns(cfg: Config) -> list[str] | None:
    from llmobs_cli.core.report.refusals import patterns_from_config

    return patterns_from_config(cfg.refusals, cfg.source or "llmobs.yaml")


def _rules(cfg: Config) -> list[Any]:
    if not cfg.alerts:
        return []
    from llmobs_cli.core.report import gates

    return list(gates.parse_rules((), cfg.alerts, cfg.source or "llmobs.yaml"))


def _read_evals(path: Path) -> pl.DataFrame:
    """A saved ``evals.parquet`` (the eval core's reader: clear errors for other files)."""
    from llmobs_cli.core.eval.judgments import read_evals

    return read_evals(path)


def _add_drift(
    result: DashboardResult,
    paths: Sequence[str | Path],
    opts: DashboardOptions,
    cfg: Config,
    table: pricing.PriceTable,
    last: str | None,
    say: Progress,
) -> None:
    """Drift from the paths (the drift core reads its own windows). Without ``--now``
    its "now" is the latest call the dashboard draws, as when it was handed those rows."""
    from llmobs_cli.core.drift import run_drift as run
    from llmobs_cli.core.record.windows import EmptyWindowError

    read = opts.read_options or ReadOptions()
    try:
        res = run(
            list(paths),
            current=opts.drift_current,
            baseline=opts.drift_baseline,
            now=opts.now or last,
            config=cfg,
            price_table=table,
            on_error=opts.on_error,
            fmt=opts.fmt,
            route_from=read.route_from,
            keep_duplicates=read.keep_duplicates,
            progress=say,
            sources=result.sources,
            memory=opts.memory,
            engine=None if _is_local(opts.engine) else opts.engine,
        )
    except EmptyWindowError as exc:
        if opts.drift_windows_given:
            raise
        result.notes.append(f"Drift not shown: {exc}")
        return
    if res.fired:  # a few calls from the grown side of each drifted feature (streamed)
        from llmobs_cli.core.explore.exemplars import attach_drift

        attach_drift(
            res,
            paths,
            prices=table,
            refusal_patterns=_refusal_patterns(cfg),
            sources=result.sources,
            on_error=opts.on_error,
            fmt=opts.fmt,
            options=opts.read_options,
            memory=opts.memory,
        )
    doc = res.as_dict()
    result.drift = doc
    result.drift_fired = bool(doc.get("drifted"))


def _add_quality(
    result: DashboardResult, evals: pl.DataFrame, opts: DashboardOptions, cfg: Config
) -> None:
    from llmobs_cli.core.eval.summary import summarize

    def run(bucket: str) -> dict[str, Any]:
        summary = summarize(
            evals,
            by=("route",),
            bucket=bucket,
            alpha=cfg.eval.alpha,
            min_drop=cfg.eval.min_drop,
        )
        from llmobs_cli.core.explore.exemplars import attach_eval

        attach_eval(summary, evals, sources=result.sources)  # calls pulling a score down
        return summary.as_dict()

    doc = run(opts.bucket)
    # A judge budget spread over days leaves a handful of judgments per day and route:
    # bands that wide say nothing, so such a series is drawn per week instead.
    judged = [b.get("judged") or 0 for b in doc.get("buckets") or []]
    if opts.bucket in ("hour", "day") and judged and float(np.median(judged)) < MIN_JUDGED:
        doc = run("week")
        doc.setdefault("notes", []).append(
            f"Scores are drawn per week: a median of {float(np.median(judged)):g} judgments "
            f"per {opts.bucket} and route is too few for an {_ADVERB[opts.bucket]} series."
        )
    result.quality = doc
    result.regressions = len(doc.get("regressions") or [])
