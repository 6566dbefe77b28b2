"""``llmobs sample``: storage sampling by trace, per-route keep rates, weights kept true."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmobs_cli.cli import common
from llmobs_cli.core.ingest.readers import ReadOptions
from llmobs_cli.core.ingest.storage_sampling import SampleResult, build_plan, parse_rates, sample
from llmobs_cli.errors import UsageError
from llmobs_cli.render.tables import markdown_table


def register(app: typer.Typer) -> None:
    app.command(
        "sample",
        help=(
            "Keep a stable share of traces per route (whole traces), multiply sample_rate "
            "by it, optionally drop text."
        ),
    )(sample_cmd)


def sample_cmd(
    traces: common.TracesArg,
    out: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output file: .parquet or .jsonl[.gz|.zst]; with --engine spark/ray a folder "
            "(a date= partitioned Parquet tree).",
        ),
    ],
    rate: Annotated[
        list[str] | None,
        typer.Option(
            "--rate",
            help="Keep rate of a route, ROUTE=R with R in (0, 1]; repeatable.",
            show_default=False,
        ),
    ] = None,
    default_rate: Annotated[
        float | None,
        typer.Option(
            "--default-rate",
            help="Keep rate of routes without one (default: sample.default_rate, 1.0).",
            show_default=False,
        ),
    ] = None,
    drop_text: Annotated[
        bool | None,
        typer.Option(
            "--drop-text/--keep-text",
            help="Drop prompts/responses/documents of routine routes; numbers stay.",
            show_default=False,
        ),
    ] = None,
    no_progress: common.NoProgressOpt = False,
    fmt: common.FormatOpt = common.Format.table,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    engine: common.EngineOpt = None,
    spark_master: common.SparkMasterOpt = None,
    spark_remote: common.SparkRemoteOpt = None,
    ray_address: common.RayAddressOpt = None,
) -> None:
    """Read traces, keep whole traces by a stable hash of trace_id, write them atomically."""
    cfg = common.config_from(config)
    plan = build_plan(cfg, parse_rates(rate or []), default_rate, drop_text)
    outcome = f"{out} was not written or changed (partial output removed)"
    settings = common.engine_settings(cfg, engine, spark_master, spark_remote, ray_address)
    if getattr(settings, "name", "local") != "local":
        if route_from is not None:
            raise UsageError(
                "--route-from: not available with --engine spark/ray (the engines read the "
                "route field as stored); run llmobs convert --route-from first",
                param="route_from",
            )
        from llmobs_cli.core.engines.sampling import sample_on_engine

        with common.interruptible(outcome):
            result = sample_on_engine(
                settings,  # type: ignore[arg-type]
                traces,
                out,
                plan,
                on_error=on_error.value,
                keep_duplicates=keep_duplicates,
            )
        common.report_skipped(result)
        render(result, fmt)
        common.warn(f"kept {result.rows_out:,} of {result.rows_in:,} row(s); wrote {out}")
        return
    with common.interruptible(outcome), common.progress_bar("sample", not no_progress) as progress:
        result = sample(
            traces,
            out,
            plan,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
            progress=progress,
        )
    common.report_skipped(result)
    render(result, fmt)
    common.warn(f"kept {result.rows_out:,} of {result.rows_in:,} row(s); wrote {out}")


HEADERS = ("route", "keep_rate", "rows_in", "rows_out", "calls_in", "calls_out", "text_dropped")


def render(result: SampleResult, fmt: common.Format) -> None:
    if fmt == common.Format.json:
        common.write_stdout(json.dumps(result.as_dict(), indent=2))
        return
    rows = [[r[h] for h in HEADERS] for r in result.routes]
    if fmt == common.Format.csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADERS)
        w.writerows(rows)
        common.write_stdout(buf.getvalue())
        return
    shown = [
        [
            r["route"],
            f"{r['keep_rate']:g}",
            f"{r['rows_in']:,}",
            f"{r['rows_out']:,}",
            f"{r['calls_in']:,.0f}",
            f"{r['calls_out']:,.0f}",
            "yes" if r["text_dropped"] else "no",
        ]
        for r in result.routes
    ]
    if fmt == common.Format.markdown:
        common.write_stdout("### llmobs sample\n\n" + markdown_table(HEADERS, shown))
        return
    table = Table(title="llmobs sample")
    for h in HEADERS:
        table.add_column(h, justify="left" if h == "route" else "right")
    for row in shown:
        table.add_row(*[str(x) for x in row])
    common.out_console.print(table)
