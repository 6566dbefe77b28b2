"""``llmobs report``: cost and latency by route, model, customer, feature — weighted.

Thin shell: options and ``llmobs.yaml`` →
:meth:`~llmobs_cli.core.report.options.ReportOptions.from_config` →
:func:`llmobs_cli.core.report.engine.run_report` → render. Exit 1 when a ``--fail-on`` rule
or a config alert fires (every firing on stderr with rule, group, value and threshold, and
in JSON ``alerts``); exit 2 on bad usage, configuration or input.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from llmobs_cli.cli import common
from llmobs_cli.cli import export as export_cli
from llmobs_cli.core import atomic
from llmobs_cli.errors import UsageError


class BucketChoice(str, Enum):  # noqa: UP042  (Typer choices, as common.Format)
    hour = "hour"
    day = "day"
    week = "week"


def register(app: typer.Typer) -> None:
    app.command(
        "report",
        help=(
            "Cost and latency (P50/P95/P99, tokens, cache hit rate, $, errors, refusals) by any "
            "field, weighted by 1/sample_rate. Exit 1 when a --fail-on rule or alert fires."
        ),
    )(report_cmd)


def report_cmd(
    traces: common.TracesArg,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Group by FIELD[,FIELD...]: any record field or metadata.KEY (default: route).",
            show_default=False,
        ),
    ] = None,
    bucket: Annotated[
        BucketChoice | None,
        typer.Option(
            "--bucket", help="Add a time series per hour, day or week.", show_default=False
        ),
    ] = None,
    fail_on: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-on",
            help='Exit 1 when "METRIC OP VALUE" holds, e.g. "latency_ms.p99 > 2000" or '
            '"route=chat:error_rate >= 0.05". Repeatable.',
            show_default=False,
        ),
    ] = None,
    prices: Annotated[
        list[Path] | None,
        typer.Option(
            "--prices",
            help="Price file (YAML, prices.yaml shape) that overrides or extends the table. "
            "Repeatable.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Also write the report to PATH (.json, .parquet, .csv, .md or .html).",
            show_default=False,
        ),
    ] = None,
    since: common.SinceOpt = None,
    until: common.UntilOpt = None,
    now: common.NowOpt = None,
    fmt: common.FormatOpt = common.Format.table,
    notify: common.NotifyOpt = None,
    notify_format: common.NotifyFormatOpt = None,
    export_metrics: common.ExportMetricsOpt = False,
    engine: common.EngineOpt = None,
    spark_master: common.SparkMasterOpt = None,
    spark_remote: common.SparkRemoteOpt = None,
    ray_address: common.RayAddressOpt = None,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    top: common.TopOpt = None,
    sort: common.SortOpt = None,
    columns: common.ColumnsOpt = None,
    wide: common.WideOpt = False,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    memory: common.MemoryOpt = None,
) -> None:
    """Cost and latency of LLM calls, true under sampling."""
    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.report.engine import run_report
    from llmobs_cli.core.report.options import ReportOptions

    cfg = common.config_from(config)
    metrics = export_cli.metrics_options(export_metrics)  # no endpoint: exit 2 before work
    key, asc = common.split_sort(sort)
    if key is not None:
        from llmobs_cli.render.report import sort_path

        sort_path(key)  # an unknown metric is exit 2 before any work
    opts = ReportOptions.from_config(
        cfg,
        by=by,
        bucket=bucket.value if bucket else None,
        fail_on=fail_on or (),
        prices=list(prices or ()),
    )
    writer = _writer(output) if output is not None else None
    common.check_output(output, traces)
    budget = common.memory_bytes(memory)

    with common.status("report") as say:
        loaded = run_report(
            traces,
            **opts.run_kwargs(),
            since=since,
            until=until,
            now=now,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
            progress=say,
            memory=budget,
            engine=common.engine_settings(cfg, engine, spark_master, spark_remote, ray_address),
        )
    common.report_skipped(loaded)
    rep = loaded.report
    if rep.alerts:  # name the worst calls of each failing group
        from llmobs_cli.core.explore.exemplars import attach_report

        attach_report(
            rep.alerts,
            traces,
            window=(rep.window.start, rep.window.end),
            fmt=common.input_format(source_format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
            prices=opts.prices,
        )
    from llmobs_cli.render import report as render

    for line in render.unpriced_lines(rep):
        common.warn(line)
    if writer is not None and output is not None:
        writer(rep, output)
    if fmt == common.Format.json:
        common.write_stdout(render.json_report(rep))
    elif fmt == common.Format.markdown:
        common.write_stdout(render.markdown_report(rep, top=top, sort=key, ascending=asc))
    elif fmt == common.Format.csv:
        common.write_stdout(render.csv_report(rep))
    else:
        width = common.table_width()
        view = render.rich_report(
            rep,
            width,
            wide=wide,
            only=common.column_list(columns),
            top=top,
            sort=key,
            ascending=asc,
        )
        common.print_fitted(view, width, wide)
    for line in render.alert_lines(rep, traces):
        common.warn(line)
    unsent = export_cli.send_metrics(metrics, json.loads(render.json_report(rep)))
    if rep.fired:
        common.notify(
            "report", json.loads(render.json_report(rep)), cfg, notify, notify_format, traces
        )
        raise typer.Exit(1)
    export_cli.raise_unsent(unsent)


def _writer(path: Path) -> Any:
    """The writer for ``-o PATH`` by extension; checked before any work is done."""
    from llmobs_cli.render import report as render

    name = path.name.lower()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"--output: the directory {parent} does not exist")
    if name.endswith(".json"):
        return lambda rep, p: atomic.write_json(p, rep.as_dict())
    if name.endswith(".parquet"):
        return lambda rep, p: atomic.write_parquet(p, rep.frame())
    if name.endswith(".csv"):
        return lambda rep, p: atomic.write_text(p, render.csv_report(rep))
    if name.endswith(".md"):
        return lambda rep, p: atomic.write_text(p, render.markdown_report(rep))
    if name.endswith((".html", ".htm")):
        from llmobs_cli.render.html import report_html

        return lambda rep, p: atomic.write_text(p, report_html(rep.as_dict()))
    raise UsageError(
        f"--output: unknown extension of '{path}' (use .json, .parquet, .csv, .md or .html)"
    )
