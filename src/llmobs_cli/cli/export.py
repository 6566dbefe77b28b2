"""``llmobs export EVALS``: judgments to OTLP (file or receiver), Langfuse or LangSmith.

Thin shell: read the evals file, gather endpoint and secrets from options and the
standard environment variables (each system's own names), one call to
:func:`llmobs_cli.core.export.run.export_evaluations`, a one-line summary on stderr (the
result as JSON on stdout with ``--format json``). Exit 3 when records remain undelivered
after retries; exit 2 for a missing file, column, key or endpoint.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.environment import variable
from llmobs_cli.errors import InputError, ServiceError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from llmobs_cli.core.export.run import ExportOptions


class Target(StrEnum):
    """Where judgments go (``llmobs export``, ``eval --export``)."""

    otlp = "otlp"
    langfuse = "langfuse"
    langsmith = "langsmith"


class Destination(StrEnum):
    """``llmobs export --to``: a judgment target, or ``otlp-metrics`` for summaries."""

    otlp = "otlp"
    otlp_metrics = "otlp-metrics"
    langfuse = "langfuse"
    langsmith = "langsmith"


class Protocol(StrEnum):
    protobuf = "protobuf"
    json = "json"


EXAMPLES = """
Examples:

  llmobs export evals.parquet --to otlp -o evals.otlp.jsonl
  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 llmobs export evals.parquet --to otlp
  llmobs export evals.parquet --to langfuse          # LANGFUSE_HOST/_PUBLIC_KEY/_SECRET_KEY
  llmobs export evals.parquet --to langsmith --dry-run -o feedback.jsonl
  llmobs report traces.parquet --by route,model --format json > report.json
  llmobs export report.json --to otlp-metrics     # gauges to OTEL_EXPORTER_OTLP_ENDPOINT
"""


def register(app: typer.Typer) -> None:
    app.command(
        "export",
        help=(
            "Send saved judgments where teams look: OpenTelemetry gen_ai.evaluation.result "
            "events (OTLP/JSON file or OTLP/HTTP), Langfuse scores or LangSmith feedback, "
            "each attached to the judged call; or a report, eval or drift summary as OTLP "
            "gauges (--to otlp-metrics)."
        ),
        epilog=EXAMPLES,
    )(export_cmd)


def export_cmd(
    evals: Annotated[
        Path,
        typer.Argument(
            help="Judgments written by llmobs eval -o EVALS.parquet; with --to otlp-metrics, "
            "the --format json output of llmobs report, eval or drift.",
            show_default=False,
        ),
    ],
    to: Annotated[
        Destination,
        typer.Option(
            "--to",
            help="Destination system; otlp-metrics sends a summary's figures as OTLP gauges.",
        ),
    ] = Destination.otlp,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="OTLP: base URL of the receiver (/v1/logs or /v1/metrics is appended; "
            "default OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT / "
            "_METRICS_ENDPOINT as given). "
            "Langfuse: host (default LANGFUSE_HOST). LangSmith: API URL (default "
            "LANGSMITH_ENDPOINT).",
            show_default=False,
        ),
    ] = None,
    protocol: Annotated[
        Protocol | None,
        typer.Option(
            "--protocol",
            help="OTLP/HTTP body: protobuf or json (default OTEL_EXPORTER_OTLP_PROTOCOL, "
            "else protobuf).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write instead of sending: OTLP/JSON lines for otlp and otlp-metrics, "
            "request bodies with --dry-run for langfuse/langsmith.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Write the request bodies to -o; send nothing."),
    ] = False,
    pass_threshold: Annotated[
        float,
        typer.Option(
            "--pass-threshold",
            min=0.0,
            max=1.0,
            help="Scores (0-1) at or above this are labelled pass, below it fail.",
        ),
    ] = 0.5,
    all_traces: Annotated[
        bool,
        typer.Option(
            "--all-traces",
            help="Langfuse/LangSmith: also send judgments of calls not read from that "
            "system's export (default: only those, whose ids name a trace or run there).",
        ),
    ] = False,
    fmt: common.FormatOpt = common.Format.table,
) -> None:
    """Send one evaluation record per judgment to OTLP, Langfuse or LangSmith, or a
    summary's figures as OTLP gauges."""
    from llmobs_cli.core.eval.run import read_evals

    if fmt in (common.Format.markdown, common.Format.csv):
        raise UsageError("--format: export prints table (a summary line) or json")
    opts = options_from_env(to, endpoint, protocol, output, dry_run, pass_threshold)
    opts.all_traces = all_traces
    common.check_output(output, (), evals)  # a directory (-o .) is exit 2 too
    if output is not None and output.resolve() == evals.resolve():
        raise UsageError(f"--output: {output} is the file being read; choose another")
    json_out = fmt == common.Format.json
    if to == Destination.otlp_metrics:
        from llmobs_cli.core.export.run import read_summary

        deliver_metrics(read_summary(evals), opts, str(evals), json_out=json_out)
        return
    deliver(read_evals(evals), opts, str(evals), json_out=json_out)


def options_from_env(
    to: Target | Destination,
    endpoint: str | None = None,
    protocol: Protocol | None = None,
    output: Path | None = None,
    dry_run: bool = False,
    pass_threshold: float = 0.5,
) -> ExportOptions:
    """Export options from the flags and the environment variables each system's own SDK
    reads (``OTEL_EXPORTER_OTLP_*``, ``LANGFUSE_*``, ``LANGSMITH_*``)."""
    from llmobs_cli.core.export import otlp
    from llmobs_cli.core.export.metrics import resource_attributes
    from llmobs_cli.core.export.run import ExportOptions

    signal = "METRICS" if to.value == "otlp-metrics" else "LOGS"
    headers = otlp.parse_headers(
        variable(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    )
    proto = (
        protocol.value
        if protocol is not None
        else variable(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    )
    proto = {"http/protobuf": "protobuf", "http/json": "json"}.get(proto or "", proto)
    if proto not in (None, "protobuf", "json"):
        raise UsageError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {proto!r} is not supported "
            "(use http/protobuf or http/json)"
        )
    otlp_target = to.value in ("otlp", "otlp-metrics")
    opts = ExportOptions(
        to=to.value,  # type: ignore[arg-type]
        endpoint=endpoint if otlp_target else None,
        logs_endpoint=None if endpoint else variable("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
        metrics_endpoint=None if endpoint else variable("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        resource=resource_attributes(
            variable("OTEL_SERVICE_NAME"), variable("OTEL_RESOURCE_ATTRIBUTES")
        ),
        protocol=proto or "protobuf",  # type: ignore[arg-type]
        headers=headers,
        output=output,
        dry_run=dry_run,
        pass_threshold=pass_threshold,
        langfuse_host=(endpoint if to.value == "langfuse" else None)
        or variable("LANGFUSE_HOST", "LANGFUSE_BASE_URL"),
        langfuse_public_key=variable("LANGFUSE_PUBLIC_KEY"),
        langfuse_secret_key=variable("LANGFUSE_SECRET_KEY"),
        langsmith_endpoint=(endpoint if to.value == "langsmith" else None)
        or variable("LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT"),
        langsmith_api_key=variable("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"),
    )
    specific = opts.metrics_endpoint if to.value == "otlp-metrics" else opts.logs_endpoint
    if otlp_target and opts.endpoint is None and specific is None:
        base = variable("OTEL_EXPORTER_OTLP_ENDPOINT")
        if base and output is None and not dry_run:
            opts.endpoint = base
    return opts


def metrics_options(enabled: bool) -> ExportOptions | None:
    """``--export-metrics`` of report, eval and drift: the options to send the run's
    summary as OTLP gauges, checked before any work (no endpoint is exit 2)."""
    if not enabled:
        return None
    from llmobs_cli.core.export.run import check_sendable

    opts = options_from_env(Destination.otlp_metrics)
    check_sendable(opts)
    return opts


def send_metrics(opts: ExportOptions | None, doc: dict[str, object]) -> str | None:
    """Send a finished run's summary ``doc`` as gauges (``--export-metrics``); one line on
    stderr says what happened. Returns the error when points remain undelivered, for the
    command to turn into exit 3 once its own verdict (exit 1) has had its say."""
    if opts is None:
        return None
    try:
        deliver_metrics(doc, opts, "summary", json_out=False)
    except ServiceError as exc:
        return str(exc)
    except InputError as exc:  # an empty summary has nothing to send: not the run's failure
        common.warn(f"export: no metrics sent ({exc.problems[0] if exc.problems else exc})")
    return None


def raise_unsent(error: str | None) -> None:
    """Exit 3 with the error :func:`send_metrics` returned (nothing when it returned None)."""
    if error:
        raise ServiceError(error)


def deliver_metrics(
    doc: dict[str, object], opts: ExportOptions, source: str, *, json_out: bool
) -> None:
    """Export a summary's gauges, say what happened on stderr (the result as JSON on stdout
    when ``json_out``), and raise exit 3 when points remain undelivered after retries."""
    from llmobs_cli.core.export.run import export_metrics

    with common.status("export") as progress:
        result = export_metrics(doc, opts, source=source, progress=progress)
    if json_out:
        common.write_stdout(json.dumps(result.to_json(), indent=2))
    verb = "wrote" if result.written else "sent"
    parts = [
        f"{verb} {result.sent} of {result.events} {result.summary} metric point(s) to "
        f"{result.destination}"
    ]
    if result.rejected:
        parts.append(f"{result.rejected} rejected by the receiver")
    first = result.errors[0] if result.errors else "delivery failed"
    if result.failed:
        parts.append(f"{result.failed} not delivered ({first})")
    common.warn("export: " + "; ".join(parts))
    if not result.complete:
        raise ServiceError(
            f"export: {result.failed + result.rejected} of {result.events} metric point(s) "
            f"not delivered to {result.destination} after retries ({first})"
        )


def deliver(frame: pl.DataFrame, opts: ExportOptions, source: str, *, json_out: bool) -> None:
    """Export ``frame``, say what happened on stderr (the result as JSON on stdout when
    ``json_out``), and raise exit 3 when records remain undelivered after retries."""
    from llmobs_cli.core.export.run import export_evaluations

    with common.status("export") as progress:
        result = export_evaluations(frame, opts, source=source, progress=progress)
    if json_out:
        common.write_stdout(json.dumps(result.to_json(), indent=2))
    verb = "wrote" if result.written else "sent"
    parts = [f"{verb} {result.sent} of {result.events} judgment(s) to {result.destination}"]
    if result.other_origin:
        system = {"langfuse": "Langfuse", "langsmith": "LangSmith"}.get(opts.to, opts.to)
        parts.append(
            f"{result.other_origin} left out (calls not read from {system}: their ids name "
            f"nothing there; --all-traces sends them)"
        )
    if result.skipped:
        parts.append(f"{result.skipped} skipped (no score, or ids {opts.to} cannot attach)")
    if result.rejected:
        parts.append(f"{result.rejected} rejected by the receiver")
    if result.failed:
        parts.append(f"{result.failed} not delivered")
    common.warn("export: " + "; ".join(parts))
    if not result.complete:
        first = result.errors[0] if result.errors else "delivery failed"
        raise ServiceError(
            f"export: {result.failed + result.rejected} of {result.events} judgment(s) not "
            f"delivered to {result.destination} after retries ({first})"
        )
