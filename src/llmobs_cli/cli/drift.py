"""``llmobs drift``: two-window drift tests on inputs, outputs and retrieval.

Thin shell: parse options and ``llmobs.yaml`` → :func:`llmobs_cli.core.drift.run_drift` →
render. Exit 1 when any feature drifted (BH-adjusted p < alpha, effect above its floor,
enough n_eff in both windows); exit 0 otherwise, including "not enough data"; exit 2 on
bad usage, configuration or input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from llmobs_cli.cli import common
from llmobs_cli.cli import export as export_cli
from llmobs_cli.core import atomic
from llmobs_cli.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command(
        "drift",
        help=(
            "Two-window drift on inputs (prompt length, tokens, language, topic), outputs "
            "(length, refusals, finish reasons, vocabulary, topics) and retrieval (scores, "
            "count, calibration), weighted by 1/sample_rate. Exit 1 when a feature drifted."
        ),
    )(drift_cmd)


def drift_cmd(
    traces: common.TracesArg,
    current: Annotated[
        str,
        typer.Option(
            "--current", help="Current window: last_day, last_week, last_month, START..END, 7d."
        ),
    ] = "last_week",
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="Baseline: a window (default last_month = the 30 days before the current "
            "window), START..END, or a PATH to another dump.",
        ),
    ] = "last_month",
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="Features to test, comma-separated: standard names, record fields or "
            "metadata.KEY (default: drift.features, else every standard feature).",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Also test per group of FIELD (e.g. route).", show_default=False),
    ] = None,
    evals: Annotated[
        Path | None,
        typer.Option(
            "--evals",
            help="Judgments (llmobs eval -o evals.parquet): compare how judged relevance/"
            "faithfulness follows the top-1 retrieval score.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Also write the result (.json, .parquet, .csv, .md or .html).",
            show_default=False,
        ),
    ] = None,
    now: common.NowOpt = None,
    fmt: common.FormatOpt = common.Format.table,
    notify: common.NotifyOpt = None,
    notify_format: common.NotifyFormatOpt = None,
    export_metrics: common.ExportMetricsOpt = False,
    slices: Annotated[
        str | None,
        typer.Option(
            "--slices",
            help="Also test each value of these fields, in the same BH family as the overall "
            "tests, and rank where a change comes from, e.g. route,model (default: "
            "drift.slices, else route; 'none' turns slices off).",
            show_default=False,
        ),
    ] = None,
    monitor: common.MonitorOpt = None,
    rebaseline: common.RebaselineOpt = False,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    wide: common.WideOpt = False,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    memory: common.MemoryOpt = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Incremental runs: keep partials and samples in DIR (a folder llmobs owns) "
            "and read only files not read before and rows after the last run's latest call; "
            "windows are whole UTC days.",
            show_default=False,
            metavar="DIR",
        ),
    ] = None,
    engine: common.EngineOpt = None,
    spark_master: common.SparkMasterOpt = None,
    spark_remote: common.SparkRemoteOpt = None,
    ray_address: common.RayAddressOpt = None,
) -> None:
    """Did the traffic change between two windows? Weighted, design-based, BH-corrected."""
    from llmobs_cli.core.drift import run_drift
    from llmobs_cli.render import drift as render

    cfg = common.config_from(config)
    metrics = export_cli.metrics_options(export_metrics)  # no endpoint: exit 2 before work
    writer = _writer(output) if output is not None else None
    common.check_output(output, traces, baseline, evals)
    if evals is not None and not evals.exists():
        raise UsageError(f"--evals: {evals}: no such file")
    with common.status("drift"):
        result = run_drift(
            traces,
            current=current,
            baseline=baseline,
            now=now,
            config=cfg,
            features=features,
            by=by,
            evals=evals,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            route_from=route_from,
            keep_duplicates=keep_duplicates,
            slices=slices or "auto",
            memory=common.memory_bytes(memory),
            state=state,
            engine=common.engine_settings(cfg, engine, spark_master, spark_remote, ray_address),
        )
        if result.fired:  # a few calls from the grown side of each drifted feature
            from llmobs_cli.core.explore.exemplars import attach_drift
            from llmobs_cli.core.ingest.readers import ReadOptions

            opts = ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates)
            fmt_in = common.input_format(source_format)
            attach_drift(result, traces, config=cfg, fmt=fmt_in, options=opts)
    if result.skipped_rows:
        top = ", ".join(
            f"{n} x {r}"
            for r, n in sorted(result.skipped_reasons.items(), key=lambda kv: -kv[1])[:8]
        )
        common.warn(f"skipped {result.skipped_rows} bad row(s): {top}")
    if writer is not None and output is not None:
        writer(result, output)
    state_dir = common.monitor_dir(monitor, cfg)
    watch = (
        _monitor(
            state_dir, traces, result, cfg, rebaseline, source_format, route_from, keep_duplicates
        )
        if state_dir is not None
        else None
    )
    if fmt == common.Format.json:
        doc = render.json_drift(result)
        if watch is not None:
            full = json.loads(doc)
            full["monitor"] = watch.as_dict()
            doc = json.dumps(full, indent=2, default=str)
        common.write_stdout(doc)
    elif fmt == common.Format.markdown:
        common.write_stdout(render.markdown_drift(result))
        if watch is not None:
            from llmobs_cli.render.monitor import markdown_monitor

            common.write_stdout(markdown_monitor(watch))
    elif fmt == common.Format.csv:
        common.write_stdout(render.csv_drift(result))
    else:
        width = common.table_width()
        view = render.rich_drift(result, width, wide, traces)
        common.print_fitted(view, width, wide)
        if watch is not None:
            from llmobs_cli.render.monitor import rich_monitor

            _print_wide(rich_monitor(watch))
    unsent = export_cli.send_metrics(metrics, json.loads(render.json_drift(result)))
    if watch is not None:
        common.finish_monitored(watch, cfg, notify, notify_format, traces)
        export_cli.raise_unsent(unsent)
        return
    if result.fired:
        common.notify(
            "drift", json.loads(render.json_drift(result)), cfg, notify, notify_format, traces
        )
        raise typer.Exit(1)
    export_cli.raise_unsent(unsent)


def _monitor(
    state_dir: Path,
    traces: list[str],
    result: Any,
    cfg: Any,
    rebaseline: bool,
    source_format: common.InputFormat,
    route_from: str | None,
    keep_duplicates: bool = False,
) -> Any:
    """Fold this run's current window into the monitor state in ``state_dir``."""
    from llmobs_cli.core.drift.features import STANDARD
    from llmobs_cli.core.ingest.readers import ReadOptions, load
    from llmobs_cli.core.monitor.adapters import monitor_drift
    from llmobs_cli.core.report.refusals import patterns_from_config

    names = dict.fromkeys(r["feature"] for r in result.features if r.get("group") is None)
    specs = [STANDARD[n] for n in names if n in STANDARD]

    def read(paths: Any, cols: list[str], since: Any, until: Any) -> Any:
        return load(
            paths,
            columns=cols,
            since=since,
            until=until,
            fmt=common.input_format(source_format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
        ).frame

    with common.status("drift monitor"):
        return monitor_drift(
            state_dir,
            traces,
            result,
            specs,
            alpha=cfg.monitor.alpha,
            refusal_patterns=patterns_from_config(cfg.refusals, cfg.source or "llmobs.yaml"),
            rebaseline=rebaseline,
            read=read,
        )


def _print_wide(view: Any) -> None:
    con = common.out_console
    if con.is_terminal:
        con.print(view)
        return
    from rich.measure import Measurement

    saved = con.width
    con.width = max(Measurement.get(con, con.options.update(width=1000), view).maximum, 80)
    try:
        con.print(view)
    finally:
        con.width = saved


def _writer(path: Path) -> Any:
    """The writer for ``-o PATH`` by extension; checked before any work is done."""
    from llmobs_cli.render import drift as render

    name = path.name.lower()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"--output: the directory {parent} does not exist")
    if name.endswith(".json"):
        return lambda res, p: atomic.write_text(p, render.json_drift(res) + "\n")
    if name.endswith(".parquet"):
        return lambda res, p: atomic.write_parquet(p, render.frame(res))
    if name.endswith(".csv"):
        return lambda res, p: atomic.write_text(p, render.csv_drift(res))
    if name.endswith(".md"):
        return lambda res, p: atomic.write_text(p, render.markdown_drift(res))
    if name.endswith((".html", ".htm")):
        from llmobs_cli.render.html import drift_html

        return lambda res, p: atomic.write_text(p, drift_html(res.as_dict()))
    raise UsageError(
        f"--output: unknown extension of '{path}' (use .json, .parquet, .csv, .md or .html)"
    )
