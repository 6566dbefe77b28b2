"""Options shared by every command, declared once, and helpers for the thin CLI layer."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from llmobs_cli.core.progress import Progress as CoreProgress
from llmobs_cli.core.progress import ProgressFn, no_progress
from llmobs_cli.core.record.config import Config, load_config
from llmobs_cli.errors import Interrupted

if TYPE_CHECKING:
    from llmobs_cli.core.monitor.run import MonitorResult

#: Messages, progress and tables for people go to stderr unless they are the data.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=False)


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


class InputFormat(StrEnum):
    auto = "auto"
    canonical = "canonical"
    parquet = "parquet"
    otlp = "otlp"
    openinference = "openinference"
    langfuse = "langfuse"
    langsmith = "langsmith"
    helicone = "helicone"


TracesArg = Annotated[
    list[str],
    typer.Argument(
        help="Trace files, directories or globs (JSONL, Parquet, OTLP, ...).", show_default=False
    ),
]
FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="Output format: table, json, markdown or csv.",
        rich_help_panel="Output",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration file (default: ./llmobs.yaml when present).",
        show_default=False,
        rich_help_panel="Input",
    ),
]
OnErrorOpt = Annotated[
    OnErrorChoice,
    typer.Option(
        "--on-error",
        help="fail: a bad row is exit 2; skip: drop bad rows and go on.",
        rich_help_panel="Input",
    ),
]
FromOpt = Annotated[
    InputFormat,
    typer.Option(
        "--from", help="Input format (default: detected from content).", rich_help_panel="Input"
    ),
]
KeepDuplicatesOpt = Annotated[
    bool,
    typer.Option(
        "--keep-duplicates",
        help="Count every row, even when its (trace_id, span_id) was already read "
        "(default: the same call read twice is counted once).",
    ),
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bar on stderr.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Start: RFC 3339 time or a duration back from now (7d, 24h).",
        show_default=False,
        rich_help_panel="Window",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="End (exclusive): RFC 3339 time or a duration back from now.",
        show_default=False,
        rich_help_panel="Window",
    ),
]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="What 'now' is (default: the latest timestamp in the data).",
        show_default=False,
        rich_help_panel="Window",
    ),
]
RouteFromOpt = Annotated[
    str | None,
    typer.Option(
        "--route-from",
        help="Span attribute or field that names the route (OTLP/OpenInference inputs).",
        show_default=False,
        rich_help_panel="Input",
    ),
]


MemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--memory",
        help="Memory budget the batch size is derived from, e.g. 1GB, 512MB or 10% "
        "(default: 25% of RAM). Rows are read in batches: memory does not grow with them.",
        show_default=False,
    ),
]


def memory_bytes(value: str | None) -> int | None:
    """``--memory`` in bytes (None: the core's default)."""
    if value is None:
        return None
    from llmobs_cli.core.ingest.readers.stream import parse_memory

    return parse_memory(value)


def config_from(path: Path | None) -> Config:
    return load_config(path)


def check_output(out: Path | None, traces: Sequence[str] = (), *others: Path | str | None) -> None:
    """Refuse ``-o OUT`` when it is an input, inside an input directory or a directory,
    before any work is done (inputs: the trace arguments and any other file read)."""
    if out is None:
        return
    from llmobs_cli.core import outputs
    from llmobs_cli.core.ingest.readers import expand_paths

    inputs = outputs.input_paths(traces, expand_paths(traces) if traces else [])
    inputs += [Path(o) for o in others if o is not None and Path(o).exists()]
    outputs.check_file_output(out, inputs)


def input_format(value: InputFormat | None) -> str | None:
    return None if value is None or value == InputFormat.auto else value.value


def warn(message: str) -> None:
    """One message line for people, on stderr."""
    err_console.print(message, markup=False, highlight=False)


def report_skipped(result: object) -> None:
    """Say on stderr how many rows ``--on-error skip`` dropped and why."""
    skipped = getattr(result, "skipped", 0)
    if not skipped:
        return
    reasons = getattr(result, "skipped_reasons", {})
    top = ", ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:8])
    warn(f"skipped {skipped} bad row(s): {top}")


def write_stdout(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


@contextmanager
def status(command: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the current step when stderr is a terminal; yields the
    ``progress(message)`` callback a core call takes (silent when not a terminal)."""
    if not sys.stderr.isatty():
        yield lambda _msg: None
        return
    with err_console.status(f"llmobs {command}: starting") as spinner:
        yield lambda msg: spinner.update(f"llmobs {command}: {msg}")


@contextmanager
def progress_bar(command: str, enabled: bool = True) -> Iterator[ProgressFn]:
    """A progress bar on stderr (rows, bytes, and the share done when the total is known)
    while the core streams; yields the callback the core reports to. Silent when stderr is
    not a terminal or ``enabled`` is false, so logs of cron jobs stay clean."""
    if not enabled or not sys.stderr.isatty():
        yield no_progress
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("llmobs {task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(command, total=None, detail="")

        def update(p: CoreProgress) -> None:
            if p.total_rows:
                total, done = p.total_rows, p.rows
            else:
                total, done = p.total_bytes or None, p.bytes
            stage = f"{p.stage} " if p.stage else ""
            detail = f"{stage}{p.rows:,} rows, {_size(p.bytes)}"
            if p.total_bytes and not p.total_rows:
                detail += f" of {_size(p.total_bytes)}"
            bar.update(task, total=total, completed=done, detail=detail)

        yield update


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@contextmanager
def interruptible(outcome: str) -> Iterator[None]:
    """Ctrl-C (SIGINT) or SIGTERM inside the block: the core's ``with`` blocks discard their
    temporary output on the way out, then the command ends with exit 130 and one line,
    ``llmobs: interrupted; OUTCOME``."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        yield
    except KeyboardInterrupt:
        from llmobs_cli.core.sinks import discard_pending

        discard_pending()  # in case the interrupt landed inside a sink's own cleanup
        raise Interrupted(f"interrupted; {outcome}") from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, old)


def print_fitted(view: object, width: int, wide: bool = False) -> None:
    """Print tables already fitted to ``width`` (render.tables.fitted_tables) at exactly
    that width, so Rich never shrinks a column again; ``wide`` allows what they need."""
    con = out_console
    saved = con.width
    if wide:
        from rich.measure import Measurement

        opts = con.options.update(width=10_000)
        width = max(width, Measurement.get(con, opts, view).maximum)  # type: ignore[arg-type]
    con.width = width
    try:
        con.print(view)
    finally:
        con.width = saved


class NotifyFormat(StrEnum):
    slack = "slack"
    json = "json"


NotifyOpt = Annotated[
    str | None,
    typer.Option(
        "--notify",
        help="Webhook URL to post one message to when something fires (Slack-compatible; "
        "default: notify.url in llmobs.yaml). A failed post is a warning, never an exit code.",
        show_default=False,
        rich_help_panel="Notifications",
    ),
]
NotifyFormatOpt = Annotated[
    NotifyFormat | None,
    typer.Option(
        "--notify-format",
        help="Body of the notification: slack (incoming-webhook JSON) or json (generic).",
        show_default=False,
        rich_help_panel="Notifications",
    ),
]


ExportMetricsOpt = Annotated[
    bool,
    typer.Option(
        "--export-metrics",
        help="Also send this run's figures as OTLP gauges (llmobs.*) to "
        "OTEL_EXPORTER_OTLP_ENDPOINT (or _METRICS_ENDPOINT), as llmobs export --to "
        "otlp-metrics does. Undelivered is exit 3 unless the run exits 1.",
        rich_help_panel="Notifications",
    ),
]


def notify(
    command: str,
    doc: dict[str, object],
    cfg: Config,
    url: str | None,
    fmt: NotifyFormat | None,
    traces: list[str] | None = None,
) -> None:
    """Post ``command``'s result to the webhook when something fired; warn if it fails.

    The URL comes from ``--notify``, else ``notify.url``, else the environment variable
    ``notify.url_env`` names. Never raises and never changes the exit code.
    """
    from llmobs_cli.core.export import notify as core_notify
    from llmobs_cli.core.export.http import redact_url
    from llmobs_cli.environment import variable

    ncfg = cfg.notify
    target = url or ncfg.url or (variable(ncfg.url_env) if ncfg.url_env else None)
    # a monitor's alarm belongs to the command that runs the monitor (drift or eval)
    if not target or (url is None and command != "monitor" and command not in ncfg.commands):
        return
    body_fmt = fmt.value if fmt is not None else ncfg.format
    out = core_notify.notify(
        command,
        doc,
        target,
        fmt=body_fmt,
        include_text=ncfg.include_text,
        source=traces,
    )
    if out is None:
        return
    if out.ok:
        warn(f"notified {redact_url(target)}")
    else:
        warn(f"warning: notification not delivered ({out.error})")


# --- tables that fit (--top, --sort, --columns, --wide) ---------------------------------

TopOpt = Annotated[
    int | None,
    typer.Option(
        "--top",
        help="Show the first N groups; the rest are folded into one (other) row.",
        show_default=False,
        rich_help_panel="Table",
        min=1,
    ),
]
SortOpt = Annotated[
    str | None,
    typer.Option(
        "--sort",
        help="Order the groups by METRIC, largest first (+METRIC: smallest first).",
        show_default=False,
        rich_help_panel="Table",
    ),
]
ColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Columns to show, comma-separated (the key columns always show).",
        show_default=False,
        rich_help_panel="Table",
    ),
]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Show every column whatever the width (default: fit the terminal or COLUMNS).",
        rich_help_panel="Table",
    ),
]
#: ``--wide`` of the views that are not grouped tables (``llmobs calls``, ``llmobs show``).
ViewWideOpt = Annotated[
    bool, typer.Option("--wide", help="Show every column whatever the terminal width.")
]
MonitorOpt = Annotated[
    Path | None,
    typer.Option(
        "--monitor",
        help="Anytime-valid nightly monitoring: keep state in DIR between runs; the chance "
        "of any false alarm over all nights stays at most monitor.alpha. Exit 1 only on "
        "the night an alarm fires (default: monitor.state_dir in llmobs.yaml).",
        show_default=False,
        rich_help_panel="Monitoring",
    ),
]
RebaselineOpt = Annotated[
    bool,
    typer.Option(
        "--rebaseline",
        help="With --monitor: freeze a new baseline from this run and re-arm every alarm.",
        rich_help_panel="Monitoring",
    ),
]


def table_width() -> int:
    """The width tables are fitted to: ``COLUMNS``, else the terminal's, else 100."""
    import os

    from llmobs_cli.render.tables import output_width

    return output_width(out_console.width, out_console.is_terminal, os.environ)


def column_list(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def split_sort(text: str | None) -> tuple[str | None, bool]:
    """``--sort p99`` / ``-p99`` → (name, ascending=False); ``+p99`` → (name, True)."""
    if not text:
        return None, False
    raw = text.strip()
    if raw[:1] in "+-":
        return raw[1:].strip(), raw[0] == "+"
    return raw, False


def monitor_dir(flag: Path | None, cfg: Config) -> Path | None:
    """``--monitor`` else ``monitor.state_dir`` of the configuration."""
    if flag is not None:
        return flag
    return Path(cfg.monitor.state_dir) if cfg.monitor.state_dir else None


def finish_monitored(
    watch: MonitorResult,
    cfg: Config,
    url: str | None,
    fmt: NotifyFormat | None,
    traces: list[str] | None = None,
) -> None:
    """End a ``--monitor`` run: one stderr line per alarm; on the night an alarm fires (the
    sequential test decides, once), post the monitor's result as :func:`notify` does and
    exit 1."""
    from llmobs_cli.render.monitor import lines

    for line in lines(watch):
        warn(line)
    if watch.new_alarms:
        notify("monitor", watch.as_dict(), cfg, url, fmt, traces)
        raise typer.Exit(1)


class EngineChoice(StrEnum):
    local = "local"
    spark = "spark"
    ray = "ray"


EngineOpt = Annotated[
    EngineChoice | None,
    typer.Option(
        "--engine",
        help="Where the aggregation runs: local (default), spark or ray (Parquet inputs; "
        'pip install "llmobs\\[spark]" / "llmobs\\[ray]"). Same figures on every engine.',
        show_default=False,
        rich_help_panel="Engine",
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL (default local[*]).",
        show_default=False,
        rich_help_panel="Engine",
    ),
]
SparkRemoteOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-remote",
        help="Spark Connect URL sc://HOST:15002 (default: SPARK_REMOTE).",
        show_default=False,
        rich_help_panel="Engine",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster address (default: RAY_ADDRESS; else a local Ray).",
        show_default=False,
        rich_help_panel="Engine",
    ),
]


def engine_settings(
    cfg: Config,
    engine: EngineChoice | None,
    spark_master: str | None,
    spark_remote: str | None,
    ray_address: str | None,
) -> object:
    """The engine from the flags, else ``engine:`` in llmobs.yaml, else local; cluster
    addresses from the flags, the configuration, then ``SPARK_REMOTE``/``RAY_ADDRESS``."""
    from llmobs_cli.core.engines import EngineSettings
    from llmobs_cli.environment import variable

    ec = cfg.engine
    return EngineSettings(
        name=engine.value if engine is not None else ec.name,
        spark_master=spark_master or ec.spark_master,
        spark_remote=spark_remote or ec.spark_remote or variable("SPARK_REMOTE"),
        ray_address=ray_address or ec.ray_address or variable("RAY_ADDRESS"),
        java_home=variable("JAVA_HOME"),
    )
