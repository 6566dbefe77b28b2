"""``llmobs plan``: the judge sampling rates that catch a regression in time, at a known
cost (method: :mod:`llmobs_cli.core.eval.rates`; docs/eval.md, "Planning the rates").

Exit codes: 0 the plan was computed (whether or not every route can reach the target —
that is information, not an alarm); 2 bad usage, configuration or input.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.core.ingest.readers import ReadOptions
from llmobs_cli.render import plan as render

HELP = (
    "Per-route judge rates that detect a quality drop within a window at a given power, "
    "with the judge cost; --write-config puts them where eval and sample read them."
)


class AllocationChoice(StrEnum):
    equal = "equal"
    neyman = "neyman"


def register(app: typer.Typer) -> None:
    app.command("plan", help=HELP)(plan_cmd)


def plan_cmd(
    traces: common.TracesArg,
    evals: Annotated[
        str | None,
        typer.Option(
            "--evals",
            help="A previous eval's judgments (llmobs eval -o FILE.parquet): score variance "
            "and judge tokens per route (default: p = 0.5 and an estimate).",
            show_default=False,
        ),
    ] = None,
    detect: Annotated[
        str,
        typer.Option(
            "--detect",
            help="The drop to catch: absolute on the 0-1 score (0.05) or relative (10%).",
        ),
    ] = "0.05",
    within: Annotated[
        str, typer.Option("--within", help="Detection window (eval's current and baseline).")
    ] = "48h",
    power: Annotated[
        float, typer.Option("--power", help="Chance of catching a drop of that size.")
    ] = 0.8,
    alpha: Annotated[
        float | None,
        typer.Option(
            "--alpha",
            help="False-alarm level across all route x evaluator tests (default: eval.alpha).",
            show_default=False,
        ),
    ] = None,
    max_cost_per_day: Annotated[
        float | None,
        typer.Option(
            "--max-cost-per-day",
            help="Judge budget in USD per day: adds the cost-capped allocation (the plan when "
            "the equal one costs more).",
            show_default=False,
        ),
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(
            "--judge-model", help="Judge model to price (default: judge.model).", show_default=False
        ),
    ] = None,
    allocation: Annotated[
        AllocationChoice,
        typer.Option(
            "--allocation",
            help="equal: same judgments per route (the brief's rule); neyman: sized for the "
            "overall score.",
        ),
    ] = AllocationChoice.equal,
    write_config: Annotated[
        bool,
        typer.Option(
            "--write-config",
            help="Write routes.R.eval_budget (and keep_rate, eval.min_drop where needed) into "
            "--config or ./llmobs.yaml, keeping comments and other keys.",
        ),
    ] = False,
    since: common.SinceOpt = None,
    until: common.UntilOpt = None,
    now: common.NowOpt = None,
    fmt: common.FormatOpt = common.Format.table,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    memory: common.MemoryOpt = None,
    engine: common.EngineOpt = None,
    spark_master: common.SparkMasterOpt = None,
    spark_remote: common.SparkRemoteOpt = None,
    ray_address: common.RayAddressOpt = None,
) -> None:
    """Plan per-route eval rates from the traffic in TRACES (see docs/eval.md)."""
    from llmobs_cli.core.eval.rates import parse_detect, parse_within, plan_from_paths
    from llmobs_cli.core.eval.rates_config import options_from_config
    from llmobs_cli.core.eval.rates_config import write_config as write

    cfg = common.config_from(config)
    value, relative = parse_detect(detect)
    opts = options_from_config(
        cfg,
        judge_model=judge_model,
        detect=value,
        relative=relative,
        within_h=parse_within(within),
        power=power,
        alpha=alpha,
        max_cost_per_day=max_cost_per_day,
        allocation=allocation.value,
    )
    with common.status("plan") as progress:
        progress("reading traces")
        plan, loaded = plan_from_paths(
            traces,
            opts,
            evals=evals,
            since=since,
            until=until,
            now=now,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            read_options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
            memory=common.memory_bytes(memory),
            engine=common.engine_settings(cfg, engine, spark_master, spark_remote, ray_address),
        )
    common.report_skipped(loaded)
    if fmt == common.Format.json:
        common.write_stdout(render.render_json(plan))
    elif fmt == common.Format.csv:
        common.write_stdout(render.render_csv(plan))
    elif fmt == common.Format.markdown:
        common.write_stdout(render.render_markdown(plan))
    else:
        common.out_console.print(render.render_table(plan))
    if fmt != common.Format.markdown:
        for note in plan.notes:
            common.warn(f"note: {note}")
    if write_config:
        target = Path(config) if config is not None else Path.cwd() / "llmobs.yaml"
        edits = write(target, plan, cfg)
        common.warn(
            f"wrote {len(edits)} setting(s) to {target}: "
            + (", ".join(f"{k}={v}" for k, v in edits) or "nothing to change")
        )
