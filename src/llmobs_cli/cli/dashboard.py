"""``llmobs dashboard``: one self-contained, offline HTML file of everything.

Thin shell: options and ``llmobs.yaml`` (``dashboard:``) →
:func:`llmobs_cli.core.dashboard.build.build` (rows read batch by batch within ``--memory``;
the report views' partials on ``--engine spark|ray`` when asked)
→ :func:`llmobs_cli.render.html.dashboard_html` → an atomic write of ``-o PATH``
(``.html``; ``.json`` writes the data the page is drawn from). A one-line summary goes
to stderr. Exit 1 when the dashboard shows something that fired (drift, a quality
regression, a configured report alert) — as every command does, so cron can act —
unless ``--exit-zero``; exit 2 on bad usage, configuration or input.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from llmobs_cli.cli import common
from llmobs_cli.core import atomic
from llmobs_cli.errors import UsageError


class BucketChoice(StrEnum):
    hour = "hour"
    day = "day"
    week = "week"


def register(app: typer.Typer) -> None:
    app.command(
        "dashboard",
        help=(
            "Write one offline HTML dashboard: latency, cost, quality (--evals), drift and "
            "releases over time, weighted by 1/sample_rate. No server, no network."
        ),
    )(dashboard_cmd)


def dashboard_cmd(
    traces: common.TracesArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the dashboard (.html; .json writes the data behind it).",
            show_default=False,
        ),
    ],
    evals: Annotated[
        Path | None,
        typer.Option(
            "--evals",
            help="Judgments from `llmobs eval -o evals.parquet`: adds the quality section.",
            show_default=False,
        ),
    ] = None,
    no_drift: Annotated[
        bool,
        typer.Option("--no-drift", help="Leave out the drift section (faster)."),
    ] = False,
    current: Annotated[
        str | None,
        typer.Option(
            "--current",
            help="Drift: the current window (default last_week).",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Drift: the baseline window (default last_month, the 30 days before current).",
            show_default=False,
        ),
    ] = None,
    bucket: Annotated[
        BucketChoice | None,
        typer.Option("--bucket", help="Time step of the charts (default day).", show_default=False),
    ] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="Page title.", show_default=False)
    ] = None,
    prices: Annotated[
        list[Path] | None,
        typer.Option(
            "--prices",
            help="Price file (prices.yaml shape) that overrides or extends the table. Repeatable.",
            show_default=False,
        ),
    ] = None,
    exit_zero: Annotated[
        bool,
        typer.Option(
            "--exit-zero", help="Exit 0 even when drift, a regression or an alert is shown."
        ),
    ] = False,
    since: common.SinceOpt = None,
    until: common.UntilOpt = None,
    now: common.NowOpt = None,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    engine: common.EngineOpt = None,
    spark_master: common.SparkMasterOpt = None,
    spark_remote: common.SparkRemoteOpt = None,
    ray_address: common.RayAddressOpt = None,
    memory: common.MemoryOpt = None,
) -> None:
    """Render the dashboard of trace files into one HTML file."""
    from llmobs_cli.core.dashboard.build import build
    from llmobs_cli.core.dashboard.options import dashboard_options
    from llmobs_cli.core.ingest.readers import ReadOptions

    kind = _output_kind(output)
    common.check_output(output, traces, evals)
    cfg = common.config_from(config)
    opts = dashboard_options(
        cfg,
        title=title,
        bucket=bucket.value if bucket else None,
        drift=not no_drift,
        current=current,
        baseline=baseline,
        evals=evals,
        since=since,
        until=until,
        now=now,
        on_error=on_error.value,
        fmt=common.input_format(source_format),
        read_options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
        prices=list(prices or ()),
        memory=common.memory_bytes(memory),
        engine=common.engine_settings(cfg, engine, spark_master, spark_remote, ray_address),
    )
    with common.status("dashboard") as say:
        result = build(traces, opts, config=cfg, progress=say)
        say("rendering")
        data = result.as_dict()
        if kind == "json":
            atomic.write_json(output, data)
        else:
            from llmobs_cli.render.html import dashboard_html

            atomic.write_text(output, dashboard_html(data))
    common.report_skipped(result)
    for note in result.notes:
        common.warn(f"note: {note}")
    common.warn(_summary(result, output))
    if result.fired and not exit_zero:
        raise typer.Exit(1)


def _output_kind(path: Path) -> str:
    name = path.name.lower()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"--output: the directory {parent} does not exist")
    if name.endswith((".html", ".htm")):
        return "html"
    if name.endswith(".json"):
        return "json"
    raise UsageError(f"--output: unknown extension of '{path}' (use .html, or .json for the data)")


def _summary(result: Any, output: Path) -> str:
    size = output.stat().st_size if output.exists() else 0
    parts = [f"wrote {output} ({size / 1e6:.1f} MB)"]
    n_rel = sum(1 for c in result.releases.changes if c.kind == "release")
    n_mod = sum(1 for c in result.releases.changes if c.kind == "model")
    parts.append(f"{n_rel} release change(s), {n_mod} model change(s)")
    if result.drift is not None:
        drifted = result.drift.get("drifted") or []
        parts.append(f"drifted: {', '.join(map(str, drifted))}" if drifted else "no drift")
    if result.quality is not None:
        parts.append(f"{result.regressions} regression(s)")
    if result.alerts:
        parts.append(f"{len(result.alerts)} alert(s)")
    return "; ".join(parts)
