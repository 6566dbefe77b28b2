"""``llmobs calls``: the calls behind a number — filtered, ranked, one line each.

Thin shell: options → :func:`llmobs_cli.core.explore.calls.find_calls` → render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common

EXAMPLES = """\
Examples:

  llmobs calls traces.parquet --sort latency_ms --top 5
  llmobs calls traces.parquet --where 'route=chat and latency_ms>5s'
  llmobs calls traces.parquet --where 'status=error or finish_reason=length' --since 1d
  llmobs calls traces.parquet --where 'prompt ~ "refund" and metadata.tier=enterprise'
  llmobs calls traces.parquet --evals evals.parquet                 # worst-judged first
  llmobs calls traces.parquet --evals evals.parquet --where 'spread >= 0.5'
  llmobs calls traces.parquet --sort cost_usd --top 10 --format json

The --where language is described in docs/calls.md."""


def register(app: typer.Typer) -> None:
    app.command(
        "calls",
        help=(
            "The calls behind a number: filter with --where, rank with --sort, keep the "
            "--top N; join judgments with --evals (worst-judged first)."
        ),
        epilog=EXAMPLES,
    )(calls_cmd)


def calls_cmd(
    traces: common.TracesArg,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            "-w",
            help="Filter, e.g. 'route=chat and latency_ms>5s'. Fields: any record field, "
            "metadata.KEY, tokens; with --evals also score, spread, flagged, review. "
            "Operators: = != < <= > >= ~ (regex) in (...), and/or/not, ( ).",
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            "-s",
            help="Rank by FIELD, largest first (-FIELD the same, +FIELD smallest first). "
            "Default: newest first; with --evals the lowest score first.",
            show_default=False,
        ),
    ] = None,
    asc: Annotated[
        bool, typer.Option("--asc", help="Smallest first (as +FIELD).", show_default=False)
    ] = False,
    top: Annotated[int, typer.Option("--top", "-n", help="How many calls to list.")] = 20,
    evals: Annotated[
        Path | None,
        typer.Option(
            "--evals",
            help="Judgments (llmobs eval -o evals.parquet) to join: score, judge, reasoning.",
            show_default=False,
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Table columns to show, comma-separated (trace always): time, route, model, "
            "latency, tokens, cost, status, score, judge, excerpt.",
            show_default=False,
        ),
    ] = None,
    wide: common.ViewWideOpt = False,
    since: common.SinceOpt = None,
    until: common.UntilOpt = None,
    now: common.NowOpt = None,
    fmt: common.FormatOpt = common.Format.table,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
) -> None:
    """List calls matching --where, ranked by --sort."""
    from llmobs_cli.core.explore.calls import find_calls
    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.report import pricing
    from llmobs_cli.render import calls as render

    cfg = common.config_from(config)
    table = pricing.config_price_table(cfg)
    with common.status("calls") as say:
        res = find_calls(
            traces,
            where=where,
            sort=sort,
            ascending=asc,
            top=top,
            since=since,
            until=until,
            now=now,
            evals=evals,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
            prices=table,
            progress=say,
        )
    common.report_skipped(res)
    if fmt == common.Format.json:
        common.write_stdout(render.json_calls(res))
    elif fmt == common.Format.markdown:
        common.write_stdout(render.markdown_calls(res))
    elif fmt == common.Format.csv:
        common.write_stdout(render.csv_calls(res))
    else:
        width = common.table_width()
        only = [c for c in columns.split(",") if c.strip()] if columns else None
        view = render.rich_calls(res, width, wide=wide, only=only)
        common.print_fitted(view, width, wide)
