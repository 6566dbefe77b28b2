"""``llmobs show``: one trace as a tree of its spans, with every call's full text.

Thin shell: options → :func:`llmobs_cli.core.explore.trace.load_trace` → render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.errors import UsageError

EXAMPLES = """\
Examples:

  llmobs show 9eb384a1ec3e391a6388a33ed5a928cf traces.parquet
  llmobs show 9eb384a1 traces.parquet                 # a unique prefix is enough
  llmobs show 9eb384a1 traces.parquet --session       # the whole conversation
  llmobs show 9eb384a1 traces.parquet --evals evals.parquet --format markdown
  llmobs show e1fde3ef langfuse-export.json            # agent → tool → LLM spans"""


def register(app: typer.Typer) -> None:
    app.command(
        "show",
        help=(
            "One trace as a tree of its spans (timing, tokens and cost per span and rolled "
            "up), the full messages, documents and response; --evals adds judgments, "
            "--session the whole conversation."
        ),
        epilog=EXAMPLES,
    )(show_cmd)


def show_cmd(
    trace_id: Annotated[
        str,
        typer.Argument(
            metavar="TRACE_ID",
            help="The trace to show (or a unique prefix of its id).",
            show_default=False,
        ),
    ],
    traces: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TRACES...",
            help="Trace files, directories or globs (JSONL, Parquet, OTLP, ...).",
            show_default=False,
        ),
    ] = None,
    traces_opt: Annotated[
        list[str] | None,
        typer.Option(
            "--traces",
            help="Trace files (the same as the TRACES arguments). Repeatable.",
            show_default=False,
        ),
    ] = None,
    session: Annotated[
        bool, typer.Option("--session", help="Also show the trace's whole session, in order.")
    ] = False,
    evals: Annotated[
        Path | None,
        typer.Option(
            "--evals",
            help="Judgments (llmobs eval -o evals.parquet): scores and reasoning.",
            show_default=False,
        ),
    ] = None,
    wide: common.ViewWideOpt = False,
    fmt: common.FormatOpt = common.Format.table,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
) -> None:
    """Show one trace: span tree, messages, documents, response, judgments."""
    from llmobs_cli.core.explore.trace import load_trace
    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.report import pricing
    from llmobs_cli.render import trace as render

    paths = [*(traces or []), *(traces_opt or [])]
    if not paths:
        raise UsageError("show: name the trace files (llmobs show TRACE_ID TRACES...)")
    if fmt == common.Format.csv:
        raise UsageError("--format: show prints table, json or markdown (a trace is not a table)")
    cfg = common.config_from(config)
    table = pricing.config_price_table(cfg)
    with common.status("show"):
        view = load_trace(
            trace_id,
            paths,
            evals=evals,
            session=session,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
            prices=table,
        )
    if fmt == common.Format.json:
        common.write_stdout(render.json_trace(view))
    elif fmt == common.Format.markdown:
        common.write_stdout(render.markdown_trace(view))
    else:
        width = common.table_width()
        common.print_fitted(render.rich_trace(view, width, wide), width, wide)
