"""``llmobs convert``: any supported input → canonical Parquet (zstd) or JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.core.ingest.convert import convert
from llmobs_cli.core.ingest.readers import ReadOptions
from llmobs_cli.errors import UsageError


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
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help=(
                "With --partition-by: write the partitions into a non-empty folder that is "
                "not an llmobs partition tree (its other files are kept)."
            ),
        ),
    ] = False,
    no_progress: common.NoProgressOpt = False,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    engine: Annotated[
        common.EngineChoice | None,
        typer.Option(
            "--engine",
            help="Only local: the spark and ray engines read Parquet, and convert is what "
            "makes Parquet (on a cluster, sample --engine --default-rate 1 rewrites a "
            "Parquet lake as a partitioned canonical tree).",
            show_default=False,
            rich_help_panel="Engine",
        ),
    ] = None,
) -> None:
    """Read rows batch by batch, validate them, stream canonical records to OUT and
    publish it atomically."""
    if engine is not None and engine != common.EngineChoice.local:
        raise UsageError(
            f"--engine {engine.value}: convert runs on the local engine only: the cluster "
            "engines read Parquet datasets, and convert is the step that turns other formats "
            "into one (it streams in bounded memory); run it here, then point --engine "
            f"{engine.value} at its output (docs/engines.md)",
            param="engine",
        )
    common.config_from(config)
    outcome = f"{out} was not written or changed (partial output removed)"
    with common.interruptible(outcome), common.progress_bar("convert", not no_progress) as progress:
        result = convert(
            traces,
            out,
            to=to,
            partition_by=partition_by,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
            overwrite=overwrite,
            progress=progress,
        )
    common.report_skipped(result)
    if result.partitions:
        common.warn(
            f"wrote {result.rows:,} record(s) to {out}: {len(result.partitions)} partition(s) "
            "written or replaced, others kept"
        )
    else:
        common.warn(f"wrote {result.rows:,} record(s) to {out}")
