"""``llmobs convert``: any supported input → canonical Parquet (zstd) or JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.core.ingest.convert import convert
from llmobs_cli.core.ingest.readers import ReadOptions


def register(app: typer.Typer) -> None:
    app.command(
        "convert", help="Convert traces (any supported format) to canonical Parquet or JSONL."
    )(convert_cmd)


def convert_cmd(
    traces: common.TracesArg,
    out: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output file (.parquet, .jsonl[.gz|.zst]) or directory with --partition-by.",
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Output format: parquet or jsonl (default: from the extension).",
            show_default=False,
        ),
    ] = None,
    partition_by: Annotated[
        str | None,
        typer.Option(
            "--partition-by",
            help="'date': write hive folders date=YYYY-MM-DD/.",
            show_default=False,
        ),
    ] = None,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
) -> None:
    """Read all rows, validate them, write canonical records atomically."""
    common.config_from(config)
    result = convert(
        traces,
        out,
        to=to,
        partition_by=partition_by,
        on_error=on_error.value,
        fmt=common.input_format(source_format),
        options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
    )
    common.report_skipped(result)
    common.warn(f"wrote {result.frame.height:,} record(s) to {out}")
