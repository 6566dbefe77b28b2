"""``llmobs eval`` and ``llmobs eval summarize``: eval-in-prod with an LLM judge.

Thin shell: options + ``llmobs.yaml`` →
:meth:`~llmobs_cli.core.eval.options.EvalOptions.from_config` →
:func:`llmobs_cli.core.eval.run.run_eval` (or :func:`~llmobs_cli.core.eval.summary.summarize`
over saved results) → render.

``eval`` is ONE command that dispatches on its first argument: ``llmobs eval TRACES...``
judges traces; ``llmobs eval summarize EVALS.parquet...`` re-aggregates saved judgments
without calling anyone. (A Typer/click group cannot take positional TRACES and
subcommands at once; a file literally named ``summarize`` can be judged as ``./summarize``.)

Environment (:mod:`llmobs_cli.environment`): ``LLMOBS_CACHE_DIR`` (cache directory when
``--cache-dir`` is not given) and ``OPENAI_BASE_URL`` (judge endpoint when neither
``--base-url`` nor ``judge.base_url`` gives one); ``OPENAI_API_KEY`` is read by the
``openai`` client itself. Exit codes: 0 ran, no regression; 1 a
regression fired; 2 bad usage/config/input; 3 the judge endpoint failed (auth, quota, or
still failing after retries) — partial results are written and cached.
"""

from __future__ import annotations

from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from llmobs_cli.cli import common
from llmobs_cli.cli.export import Target as ExportTarget
from llmobs_cli.environment import default_cache_dir, openai_api_key_set, openai_base_url
from llmobs_cli.errors import ServiceError, UsageError


class BucketChoice(str, Enum):  # noqa: UP042  (Typer choices, as common.Format)
    hour = "hour"
    day = "day"
    week = "week"


class AllocationChoice(str, Enum):  # noqa: UP042
    equal = "equal"
    neyman = "neyman"


class UnitChoice(str, Enum):  # noqa: UP042
    call = "call"
    session = "session"


HELP = (
    "Judge a stratified, weighted sample of traces with an LLM judge (any OpenAI-compatible "
    "endpoint), reference answers and self-consistency; weighted scores with 95 % intervals "
    "per group; regression tests between windows (exit 1 on a regression).\n\n"
    "Also: llmobs eval summarize EVALS.parquet [--by F] [--bucket day] [--format F] "
    "re-aggregates saved judgments (no judge call)."
)


def register(app: typer.Typer) -> None:
    app.command("eval", help=HELP)(eval_cmd)


def eval_cmd(
    traces: Annotated[
        list[str],
        typer.Argument(
            help="Trace files, directories or globs; or 'summarize' followed by evals.parquet "
            "file(s).",
            show_default=False,
        ),
    ],
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="Group by FIELD[,FIELD...] (default: eval.by, route).", show_default=False
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget",
            min=1,
            help="Traces judged per route and window (default: eval.budget).",
            show_default=False,
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            min=0.0,
            help="Stop cleanly before the judge cost (USD) would exceed this.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and cost estimate; no judge call.")
    ] = False,
    current: Annotated[
        str | None,
        typer.Option(
            "--current",
            help="Window to judge (default: all rows; last_week with --baseline).",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Also judge this window and test every group for a regression (e.g. last_month).",
            show_default=False,
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Judgment cache (default: $LLMOBS_CACHE_DIR, else the user cache directory).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write one row per judgment to PATH.parquet.", show_default=False
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Judge endpoint (default: judge.base_url, else OPENAI_BASE_URL).",
            show_default=False,
        ),
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(
            "--judge-model", help="Judge model (default: judge.model).", show_default=False
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=256,
            help="Judge calls in flight at most (default: judge.concurrency, 8).",
            show_default=False,
        ),
    ] = None,
    evaluators: Annotated[
        str | None,
        typer.Option(
            "--evaluators",
            help="Comma-separated evaluators (default: eval.evaluators).",
            show_default=False,
        ),
    ] = None,
    self_consistency: Annotated[
        bool | None,
        typer.Option(
            "--self-consistency/--no-self-consistency",
            help="Re-ask each input N "
            "times and score agreement (default: eval.self_consistency.enabled).",
            show_default=False,
        ),
    ] = None,
    allocation: Annotated[
        AllocationChoice | None,
        typer.Option(
            "--allocation", help="equal (same judgments per route) or neyman.", show_default=False
        ),
    ] = None,
    min_drop: Annotated[
        float | None,
        typer.Option(
            "--min-drop",
            min=0.0,
            max=1.0,
            help="Smallest score drop that counts as a regression (default: eval.min_drop, 0.05).",
            show_default=False,
        ),
    ] = None,
    bucket: Annotated[
        BucketChoice | None,
        typer.Option(
            "--bucket", help="Add a quality time series per hour, day or week.", show_default=False
        ),
    ] = None,
    unit: Annotated[
        UnitChoice,
        typer.Option(
            "--unit",
            help="Judge calls, or whole conversations (session: calls of a session_id in "
            "order, criterion task_success, session heuristics).",
        ),
    ] = UnitChoice.call,
    session_tokens: Annotated[
        int,
        typer.Option(
            "--session-tokens",
            min=100,
            help="--unit session: token budget of a judged conversation (oldest turns "
            "dropped beyond it).",
        ),
    ] = 6000,
    no_progress: common.NoProgressOpt = False,
    since: common.SinceOpt = None,
    until: common.UntilOpt = None,
    now: common.NowOpt = None,
    fmt: common.FormatOpt = common.Format.table,
    config: common.ConfigOpt = None,
    on_error: common.OnErrorOpt = common.OnErrorChoice.fail,
    source_format: common.FromOpt = common.InputFormat.auto,
    route_from: common.RouteFromOpt = None,
    notify: common.NotifyOpt = None,
    notify_format: common.NotifyFormatOpt = None,
    monitor: common.MonitorOpt = None,
    rebaseline: common.RebaselineOpt = False,
    export_metrics: common.ExportMetricsOpt = False,
    export: Annotated[
        ExportTarget | None,
        typer.Option(
            "--export",
            help="Also send the judgments: otlp (OTEL_EXPORTER_OTLP_ENDPOINT), langfuse "
            "(LANGFUSE_*) or langsmith (LANGSMITH_*), as llmobs export does.",
            show_default=False,
            rich_help_panel="Notifications",
        ),
    ] = None,
    keep_duplicates: common.KeepDuplicatesOpt = False,
    memory: common.MemoryOpt = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Incremental (cron) runs: keep a watermark, the input files and the "
            "judgments in this folder (llmobs' own; new or empty the first time), judge "
            "only rows newer than the last run's (and files not seen before), and "
            "summarize old and new judgments for the windows (docs/eval.md).",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        common.EngineChoice | None,
        typer.Option(
            "--engine",
            help="Where the counting pass runs: local (default), spark or ray (Parquet "
            "inputs). The plan is the same on every engine; the selected calls are then "
            "read by a local streaming pass.",
            show_default=False,
            rich_help_panel="Engine",
        ),
    ] = None,
    spark_master: common.SparkMasterOpt = None,
    spark_remote: common.SparkRemoteOpt = None,
    ray_address: common.RayAddressOpt = None,
    top: common.TopOpt = None,
    sort: common.SortOpt = None,
    wide: common.WideOpt = False,
) -> None:
    """Eval-in-prod: weighted judge scores with intervals, and regression tests."""
    from llmobs_cli.core.record.fields import parse_fields

    cfg = common.config_from(config)
    fields = (
        parse_fields(by, "by") if by is not None else parse_fields(",".join(cfg.eval.by), "eval.by")
    ) or ["route"]
    key, asc = common.split_sort(sort)
    table = {"top": top, "sort": key, "ascending": asc, "wide": wide}
    if traces and traces[0] == "summarize":
        common.check_output(output, traces[1:])
        from llmobs_cli.cli import export as export_cli

        metrics = export_cli.metrics_options(export_metrics)
        _summarize(traces[1:], fields, bucket, fmt, cfg, min_drop, output, table, metrics)
        return
    common.check_output(output, traces)
    from llmobs_cli.core.eval.options import EvalOptions

    opts = EvalOptions.from_config(
        cfg,
        by=fields,
        budget=budget,
        max_cost=max_cost,
        dry_run=dry_run,
        current=current,
        baseline=baseline,
        base_url=base_url,
        judge_model=judge_model,
        concurrency=concurrency,
        evaluators=evaluators,
        self_consistency=self_consistency,
        allocation=allocation.value if allocation else None,
        min_drop=min_drop,
        bucket=bucket.value if bucket else None,
        since=since,
        until=until,
        now=now,
        fallback_base_url=openai_base_url(),
    )
    opts.unit = unit.value
    opts.session_tokens = session_tokens
    export_opts = None
    if export is not None:
        from llmobs_cli.cli.export import options_from_env
        from llmobs_cli.core.export.run import check_sendable

        export_opts = options_from_env(export)
        check_sendable(export_opts)
    from llmobs_cli.cli import export as export_cli

    metrics = None if dry_run else export_cli.metrics_options(export_metrics)
    if output is not None and output.suffix.lower() != ".parquet":
        raise UsageError(f"--output: expected a .parquet path for judgments (got '{output}')")
    from llmobs_cli.core.eval.run import run_eval
    from llmobs_cli.core.ingest.readers import ReadOptions

    _check_credentials(opts, dry_run)
    state_dir = common.monitor_dir(monitor, cfg)
    if state_dir is not None and not dry_run:
        from llmobs_cli.core.monitor.adapters import has_state

        if not rebaseline and has_state(state_dir, "eval"):
            opts.baseline = None  # frozen in the monitor's state: not judged again
        elif opts.baseline is None:
            raise UsageError(
                "--monitor: the first monitored run (and --rebaseline) needs --baseline "
                "WINDOW to freeze as the reference"
            )
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    with _progress(disabled=no_progress or dry_run) as (progress, notice), _sigterm_as_sigint():
        run = run_eval(
            traces,
            opts,
            cache_dir=cache,
            progress=progress,
            on_error=on_error.value,
            fmt=common.input_format(source_format),
            read_options=ReadOptions(
                route_from=route_from, keep_duplicates=keep_duplicates, keep_origin=True
            ),
            notice=notice,
            memory=common.memory_bytes(memory),
            engine=common.engine_settings(cfg, engine, spark_master, spark_remote, ray_address),
            state=state,
        )
    common.report_skipped(run)
    from llmobs_cli.render import evaluate as render

    if run.dry_run:
        common.write_stdout(render.plan(run, fmt.value))
        return
    partial = bool(run.interrupted or run.fatal or run.stopped)
    if output is not None:
        from llmobs_cli.core import atomic

        atomic.write_parquet(
            output, run.frame, metadata={"llmobs.partial": "true"} if partial else None
        )
    kept = f"{run.kept} judgments cached in {cache}; rerun the same command to resume" + (
        f" (partial results in {output})" if output is not None and partial else ""
    )
    if run.interrupted:
        common.warn(f"llmobs eval: interrupted; {kept}")
        raise typer.Exit(130)
    if run.stopped:
        common.warn(
            f"llmobs eval: {run.stopped}; the rest was not judged (rerun with a higher "
            "--max-cost: cached judgments cost nothing)"
        )
    from llmobs_cli.core.explore.exemplars import attach_eval

    attach_eval(run.summary, run.frame)  # the judged calls pulling each regression down
    watch = None
    if state_dir is not None and not (run.fatal or run.stopped):
        from llmobs_cli.core.monitor.adapters import monitor_eval

        watch = monitor_eval(
            state_dir,
            run.summary,
            alpha=cfg.monitor.alpha,
            min_drop=opts.min_drop,
            rebaseline=rebaseline,
        )
    if not (run.fatal and run.kept == 0):  # nothing judged: no empty table, just the reason
        _write_summary(render, run.summary, fmt, watch, table)
    for line in render.regression_lines(run.summary):
        common.warn(line)
    if export_opts is not None and run.frame.height:
        export_cli.deliver(run.frame, export_opts, "judgments", json_out=False)
    unsent = None
    if metrics is not None and not (run.fatal or run.stopped):  # partial figures mislead
        import json

        unsent = export_cli.send_metrics(metrics, json.loads(render.summary(run.summary, "json")))
    if run.fatal:
        raise ServiceError(f"judge: {run.fatal}; {kept}")
    if run.stopped:
        raise typer.Exit(1)  # the run did not finish what was asked
    if watch is not None:
        common.finish_monitored(watch, cfg, notify, notify_format, traces)
        export_cli.raise_unsent(unsent)
        return
    if run.summary.regressions:
        common.notify("eval", run.summary.as_dict(), cfg, notify, notify_format, traces)
        raise typer.Exit(1)
    export_cli.raise_unsent(unsent)


def _write_summary(
    render: Any, summary: Any, fmt: common.Format, watch: Any, table: dict[str, Any]
) -> None:
    """The summary on stdout, with the monitor's night when there is one."""
    text = render.summary(summary, fmt.value, common.table_width(), **table)
    if watch is None:
        common.write_stdout(text)
        return
    from llmobs_cli.render import monitor as mrender

    if fmt == common.Format.json:
        import json

        doc = json.loads(text)
        doc["monitor"] = watch.as_dict()
        common.write_stdout(json.dumps(doc, indent=2, default=str))
    elif fmt == common.Format.markdown:
        common.write_stdout(text + "\n" + mrender.markdown_monitor(watch))
    elif fmt == common.Format.table:
        common.write_stdout(text)
        common.out_console.print(mrender.rich_monitor(watch))
    else:
        common.write_stdout(text)


def _summarize(
    files: list[str],
    fields: list[str],
    bucket: BucketChoice | None,
    fmt: common.Format,
    cfg: Any,
    min_drop: float | None,
    output: Path | None,
    table: dict[str, Any],
    metrics: Any = None,
) -> None:
    import json

    import polars as pl

    from llmobs_cli.cli import export as export_cli
    from llmobs_cli.core.eval.judgments import read_evals
    from llmobs_cli.core.eval.summary import summarize_with_config
    from llmobs_cli.render import evaluate as render

    if not files:
        raise UsageError("llmobs eval summarize: give one or more evals.parquet files")
    frame = pl.concat([read_evals(f) for f in files], how="diagonal_relaxed")
    summary = summarize_with_config(
        frame, cfg, by=fields, bucket=bucket.value if bucket else None, min_drop=min_drop
    )
    from llmobs_cli.core.explore.exemplars import attach_eval

    attach_eval(summary, frame)  # the judged calls pulling each regression down
    if output is not None:
        from llmobs_cli.core import atomic

        suffix = output.suffix.lower()
        if suffix in (".html", ".htm"):
            from llmobs_cli.render.html import eval_html

            atomic.write_text(output, eval_html(summary.as_dict()))
        elif suffix == ".json":
            atomic.write_json(output, summary.as_dict())
        else:
            raise UsageError("--output: eval summarize writes a .json summary or an .html page")
    common.write_stdout(render.summary(summary, fmt.value, common.table_width(), **table))
    for line in render.regression_lines(summary):
        common.warn(line)
    unsent = export_cli.send_metrics(metrics, json.loads(render.summary(summary, "json")))
    if summary.regressions:
        raise typer.Exit(1)
    export_cli.raise_unsent(unsent)


def _check_credentials(opts: Any, dry_run: bool) -> None:
    """No key and no endpoint: exit 2 before any work (a dry run only warns)."""
    from llmobs_cli.core.eval.judgments import SELF_CONSISTENCY
    from llmobs_cli.core.eval.options import resolve_criteria

    needs_judge = bool(resolve_criteria(opts.evaluators, opts.criteria)) or (
        opts.self_consistency or SELF_CONSISTENCY in opts.evaluators
    )
    if not needs_judge or opts.client.base_url or opts.client.api_key:
        return
    if openai_api_key_set():
        return
    message = (
        "the judge has no endpoint and no key: set OPENAI_API_KEY or pass --base-url "
        "(or judge.base_url in llmobs.yaml)"
    )
    if dry_run:
        common.warn(f"llmobs eval: warning: {message}; a real run would stop here (exit 2)")
        return
    raise UsageError(f"{message}; nothing was judged")


@contextmanager
def _sigterm_as_sigint() -> Any:
    """SIGTERM during the run is handled like Ctrl-C: the judge loop stops, the judgments
    so far are written (marked partial) and the command exits 130."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: Any) -> None:
        import asyncio

        try:
            loop = asyncio.get_running_loop()  # the judge loop, when it is running
        except RuntimeError:
            raise KeyboardInterrupt from None  # reading or writing: a plain interrupt
        # What asyncio.run does on Ctrl-C, done even when SIGINT is ignored (a background
        # job): cancel the running tasks; the judge loop ends cleanly as interrupted.
        loop.call_soon_threadsafe(_cancel_tasks, loop)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _cancel_tasks(loop: Any) -> None:
    import asyncio

    for task in asyncio.all_tasks(loop):
        task.cancel()


class _Notices:
    """One-line notices (failures, waits, format steps) on stderr as they happen; the same
    kind of line (digits ignored) at most once per ``every`` seconds."""

    def __init__(self, say: Any, every: float = 5.0) -> None:
        self.say = say
        self.every = every
        self._last: dict[str, float] = {}
        self._muted: dict[str, int] = {}

    def __call__(self, text: str) -> None:
        import re
        import time

        kind = re.sub(r"[\d.]+", "#", text)
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self.every:
            self._muted[kind] = self._muted.get(kind, 0) + 1
            return
        muted = self._muted.pop(kind, 0)
        self._last[kind] = now
        self.say(f"llmobs eval: {text}" + (f" (and {muted} more like it)" if muted else ""))


@contextmanager
def _progress(disabled: bool) -> Any:
    """A Rich progress bar on stderr (done, cached, failed, $) fed by the core's callback,
    and the notice sink: lines above the bar, or plain stderr lines without one."""
    con = common.err_console
    if disabled or not con.is_terminal:
        yield None, _Notices(common.warn)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("judging"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=con,
        transient=True,
    )
    task = bar.add_task("judge", total=None, info="")

    def update(done: int, cached: int, failed: int, cost: float, total: int) -> None:
        bar.update(
            task,
            completed=done,
            total=total,
            info=f"cached {cached} · failed {failed} · ${cost:.4f}",
        )

    with bar:
        yield update, _Notices(lambda line: bar.console.print(line, markup=False, highlight=False))
