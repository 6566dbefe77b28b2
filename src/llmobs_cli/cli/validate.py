"""``llmobs validate``: check trace files against the record contract."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.core.ingest.readers import ReadOptions
from llmobs_cli.core.ingest.validate import ValidationSummary, validate
from llmobs_cli.render.tables import key_value_table, render_markdown_kv


def register(app: typer.Typer) -> None:
    app.command(
        "validate", help="Check trace files against the record contract (exit 0 valid, 2 invalid)."
    )(validate_cmd)


def validate_cmd(
    traces: common.TracesArg,
    fmt: common.FormatOpt = common.Format.table,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when valid.")] = False,
) -> None:
    """Read every field of every row; list problems as file:line: field: problem."""
    common.config_from(config)
    summary = validate(
        traces,
        on_error=on_error.value,
        fmt=common.input_format(source_format),
        options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
    )
    common.report_skipped(summary)
    if quiet:
        return
    render(summary, fmt)


def render(summary: ValidationSummary, fmt: common.Format) -> None:
    data = summary.as_dict()
    if fmt == common.Format.json:
        common.write_stdout(json.dumps(data, indent=2))
        return
    rows = [
        ("rows", f"{summary.rows:,}"),
        ("estimated calls", f"{summary.calls:,.0f}"),
        ("time span", f"{summary.start or '-'} .. {summary.end or '-'}"),
        ("routes", ", ".join(f"{k} ({v:,})" for k, v in summary.routes.items()) or "-"),
        ("models", ", ".join(f"{k} ({v:,})" for k, v in summary.models.items()) or "-"),
        ("formats", ", ".join(sorted(set(summary.sources.values()))) or "-"),
    ]
    if summary.duplicates:
        rows.append(("duplicates counted once", f"{summary.duplicates:,}"))
    for f in summary.files:
        line = f"{f['format']}: {f['calls']:,} call(s)"
        if f["skipped"]:
            why = ", ".join(f"{n} x {r}" for r, n in f["skipped_reasons"].items())
            line += f", {f['skipped']:,} skipped ({why})"
        if f["note"] and not f["calls"]:
            line += f" ({f['note']})"
        rows.append((f["path"], line))
    if fmt == common.Format.markdown:
        common.write_stdout(render_markdown_kv("llmobs validate: valid", rows))
    elif fmt == common.Format.csv:
        common.write_stdout("key,value\n" + "\n".join(f'{k},"{v}"' for k, v in rows))
    else:
        common.out_console.print(key_value_table("valid", rows))
