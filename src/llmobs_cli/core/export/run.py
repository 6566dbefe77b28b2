"""``llmobs export``: saved judgments to an OTLP file or receiver, Langfuse or LangSmith.

One entry point, :func:`export_evaluations`, takes an evals frame (what ``llmobs eval -o``
writes) and an :class:`ExportOptions`, and returns an :class:`ExportResult` with what was
delivered. Delivery problems that remain after retries are counted in the result (the CLI
turns them into exit 3); configuration problems raise :class:`~llmobs_cli.errors.UsageError`.
Files are written atomically; ``dry_run`` writes the request bodies instead of sending them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from llmobs_cli import __version__
from llmobs_cli.core import atomic
from llmobs_cli.core.export import http, langfuse, langsmith, metrics, otlp
from llmobs_cli.core.export.evaluations import REQUIRED, EvaluationEvent, iter_events
from llmobs_cli.errors import InputError, UsageError

Target = Literal["otlp", "otlp-metrics", "langfuse", "langsmith"]
TARGETS: tuple[str, ...] = ("otlp", "langfuse", "langsmith")


@dataclass
class ExportOptions:
    """Where and how to send. Secrets are plain arguments here: the CLI reads them from the
    environment variables each system's own SDK reads, and they never leave the headers."""

    to: Target = "otlp"
    endpoint: str | None = None  # OTLP: base endpoint (/v1/logs appended) …
    logs_endpoint: str | None = None  # … or the signal-specific one, used as given
    metrics_endpoint: str | None = None  # otlp-metrics: the signal-specific one, as given
    #: OTLP resource attributes (service.name and OTEL_RESOURCE_ATTRIBUTES' others)
    resource: dict[str, str] = field(default_factory=lambda: {"service.name": "llmobs"})
    protocol: Literal["protobuf", "json"] = "protobuf"
    headers: dict[str, str] = field(default_factory=dict)
    output: Path | None = None
    dry_run: bool = False
    pass_threshold: float = 0.5
    langfuse_host: str | None = None
    langfuse_public_key: str | None = None
    langfuse_secret_key: str | None = None
    langsmith_endpoint: str | None = None
    langsmith_api_key: str | None = None
    policy: http.RetryPolicy = field(default_factory=http.RetryPolicy)
    gzip: bool = True
    #: Langfuse/LangSmith: also send judgments of calls not read from that system (their
    #: ids are the system's anyway, e.g. a canonical file written from its export).
    all_traces: bool = False


@dataclass
class ExportResult:
    """What happened: ``events`` judgments read; ``sent`` delivered; ``failed`` not
    delivered after retries; ``rejected`` refused by an OTLP receiver's partial success;
    ``skipped`` not sendable to this target (no score, or ids the target cannot attach);
    ``other_origin`` left out because the judged call was not read from the target system
    (Langfuse, LangSmith) and ``all_traces`` was not asked for."""

    target: str
    destination: str
    events: int = 0
    sent: int = 0
    failed: int = 0
    rejected: int = 0
    skipped: int = 0
    requests: int = 0
    other_origin: int = 0
    written: Path | None = None
    errors: list[str] = field(default_factory=list)
    #: otlp-metrics: which command's summary was sent (report, eval, drift)
    summary: str | None = None

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.rejected == 0

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "destination": self.destination,
            "events": self.events,
            "sent": self.sent,
            "failed": self.failed,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "requests": self.requests,
            "other_origin": self.other_origin,
            "written": str(self.written) if self.written else None,
            "errors": self.errors,
            **({"summary": self.summary} if self.summary else {}),
        }


def check_frame(frame: pl.DataFrame, source: str = "evals") -> None:
    """An evals frame has the columns every exporter needs (else exit 2, naming one)."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError([f"{source}: {missing[0]}: missing column (not an llmobs evals file)"])
    if frame.height == 0:
        raise InputError([f"{source}: no judgments to export (the file holds no rows)"])


def check_sendable(opts: ExportOptions) -> None:
    """Raise :class:`UsageError` when ``opts`` cannot deliver anywhere (checked before an
    eval run starts judging, so that a missing key is exit 2 before any judge call)."""
    if opts.output is not None or opts.dry_run:
        return
    if opts.to == "otlp" and not (opts.endpoint or opts.logs_endpoint):
        raise UsageError(
            "export to otlp: set OTEL_EXPORTER_OTLP_ENDPOINT (or give an endpoint) to send, "
            "or an output file to write"
        )
    if opts.to == "otlp-metrics" and not (opts.endpoint or opts.metrics_endpoint):
        raise UsageError(
            "export to otlp-metrics: set OTEL_EXPORTER_OTLP_ENDPOINT or "
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (or give an endpoint) to send, "
            "or an output file to write"
        )
    if opts.to == "langfuse" and not (opts.langfuse_public_key and opts.langfuse_secret_key):
        raise UsageError(
            "export to langfuse: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY "
            "(or do a dry run that writes the request bodies)"
        )
    if opts.to == "langsmith" and not opts.langsmith_api_key:
        raise UsageError(
            "export to langsmith: set LANGSMITH_API_KEY "
            "(or do a dry run that writes the request bodies)"
        )


def export_evaluations(
    frame: pl.DataFrame,
    opts: ExportOptions,
    *,
    source: str = "evals",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Send (or write) one evaluation record per judgment of ``frame`` to ``opts.to``."""
    if opts.to not in TARGETS:
        hint = "; summaries go through export_metrics" if opts.to == "otlp-metrics" else ""
        raise UsageError(f"to: {opts.to!r} is not one of {', '.join(TARGETS)}{hint}")
    check_frame(frame, source)
    if opts.to != "otlp":
        check_sendable(opts)
    events = list(iter_events(frame, pass_threshold=opts.pass_threshold))
    if opts.to == "otlp":
        return _otlp(events, opts, progress)
    total = len(events)
    events = _own(events, opts, source, has_origin="origin" in frame.columns)
    result = (_langfuse if opts.to == "langfuse" else _langsmith)(events, opts, progress)
    result.other_origin = total - len(events)
    result.events = total
    return result


SYSTEM_NAMES = {"langfuse": "Langfuse", "langsmith": "LangSmith"}


def _own(
    events: list[EvaluationEvent], opts: ExportOptions, source: str, *, has_origin: bool
) -> list[EvaluationEvent]:
    """The judgments whose call was read from ``opts.to`` (all with ``all_traces``).

    Langfuse and LangSmith attach a score to a trace or run by the id they gave it; only
    calls read from their exports carry those ids. None left is exit 2 with the reason.
    """
    if opts.all_traces:
        return events
    own = [e for e in events if e.origin == opts.to]
    if not own:
        name = SYSTEM_NAMES[opts.to]
        why = (
            "the file has no origin column (written before llmobs recorded it; rerun "
            "llmobs eval on the export)"
            if not has_origin
            else "their calls were not read from a " + name + " export"
        )
        raise InputError(
            [
                f"{source}: none of the {len(events)} judgment(s) is of a trace read from "
                f"{name}: {why}; --all-traces sends them anyway when the trace ids are "
                f"{name}'s"
            ]
        )
    return own


def _write_lines(path: Path, lines: list[str]) -> None:
    atomic.write_text(path, "".join(line + "\n" for line in lines))


def _otlp(
    events: list[EvaluationEvent], opts: ExportOptions, progress: Callable[[str], None] | None
) -> ExportResult:
    url = opts.logs_endpoint or (otlp.logs_url(opts.endpoint) if opts.endpoint else None)
    if opts.output is not None or opts.dry_run or url is None:
        if opts.output is None:
            raise UsageError(
                "output: give a file for the OTLP/JSON records, or an endpoint to send them to"
            )
        lines = list(otlp.json_lines(events, version=__version__, resource=opts.resource))
        _write_lines(opts.output, lines)
        return ExportResult(
            "otlp",
            str(opts.output),
            events=len(events),
            sent=len(events),
            written=opts.output,
        )
    sent = otlp.send(
        events,
        url,
        protocol=opts.protocol,
        headers=opts.headers,
        policy=opts.policy,
        compress=opts.gzip,
        version=__version__,
        on_progress=progress,
        resource=opts.resource,
    )
    return ExportResult(
        "otlp",
        http.redact_url(url),
        events=len(events),
        sent=sent.sent,
        failed=sent.failed,
        rejected=sent.rejected,
        requests=sent.requests,
        errors=sent.errors[:3],
    )


def _dry_bodies(path: Path | None, bodies: list[dict[str, object]]) -> Path:
    if path is None:
        raise UsageError("output: --dry-run writes the request bodies; give a file for them")
    _write_lines(path, [json.dumps(b, ensure_ascii=False) for b in bodies])
    return path


def _scores_sent(target: str, url: str, events: int, out: http.ScoresSent) -> ExportResult:
    """The result of a live score export (Langfuse, LangSmith): the sender's counts, the
    endpoint without credentials, and the first three errors."""
    return ExportResult(
        target,
        http.redact_url(url),
        events=events,
        sent=out.sent,
        failed=out.failed,
        skipped=out.skipped,
        requests=out.requests,
        errors=out.errors[:3],
    )


def _langfuse(
    events: list[EvaluationEvent], opts: ExportOptions, progress: Callable[[str], None] | None
) -> ExportResult:
    host = opts.langfuse_host or "https://cloud.langfuse.com"
    skipped = sum(1 for e in events if e.score is None)
    if opts.dry_run:
        bodies: list[dict[str, object]] = list(langfuse.batches(events))
        written = _dry_bodies(opts.output, bodies)
        n = sum(len(b["batch"]) for b in bodies)  # type: ignore[arg-type,misc]
        return ExportResult(
            "langfuse",
            str(written),
            events=len(events),
            skipped=skipped,
            written=written,
            sent=n,
        )
    out = langfuse.send(
        events,
        host,
        opts.langfuse_public_key or "",
        opts.langfuse_secret_key or "",
        policy=opts.policy,
        on_progress=progress,
    )
    return _scores_sent("langfuse", host, len(events), out)


def _langsmith(
    events: list[EvaluationEvent], opts: ExportOptions, progress: Callable[[str], None] | None
) -> ExportResult:
    endpoint = opts.langsmith_endpoint or "https://api.smith.langchain.com"
    if opts.dry_run:
        bodies = [b for b in (langsmith.feedback_body(e) for e in events) if b is not None]
        written = _dry_bodies(opts.output, list(bodies))
        return ExportResult(
            "langsmith",
            str(written),
            events=len(events),
            sent=len(bodies),
            skipped=len(events) - len(bodies),
            written=written,
        )
    out = langsmith.send(
        events, endpoint, opts.langsmith_api_key or "", policy=opts.policy, on_progress=progress
    )
    return _scores_sent("langsmith", endpoint, len(events), out)


def read_summary(path: Path) -> dict[str, object]:
    """A report, eval or drift JSON document from ``path`` (exit 2 naming the file when it
    is missing or not JSON; :func:`.metrics.detect` checks which document it is)."""
    if not path.exists():
        raise InputError([f"{path}: file not found"])
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError([f"{path}: not a JSON document ({str(exc)[:80]})"]) from exc
    if not isinstance(doc, dict):
        raise InputError([f"{path}: not the JSON of llmobs report, eval or drift (not an object)"])
    return doc


def export_metrics(
    doc: dict[str, object],
    opts: ExportOptions,
    *,
    source: str = "summary",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Send (or write as OTLP/JSON) the gauges of a report, eval or drift summary."""
    kind = metrics.detect(doc, source)
    pts = metrics.points(doc, kind)
    if not pts:
        raise InputError([f"{source}: the {kind} summary holds no figure to export"])
    url = opts.metrics_endpoint or (metrics.metrics_url(opts.endpoint) if opts.endpoint else None)
    if opts.output is not None or opts.dry_run or url is None:
        if opts.output is None:
            raise UsageError(
                "export to otlp-metrics: set OTEL_EXPORTER_OTLP_ENDPOINT or "
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (or give an endpoint) to send, or an "
                "output file for the OTLP/JSON metrics"
            )
        lines = list(metrics.json_lines(pts, resource=opts.resource, version=__version__))
        _write_lines(opts.output, lines)
        return ExportResult(
            "otlp-metrics",
            str(opts.output),
            events=len(pts),
            sent=len(pts),
            written=opts.output,
            summary=kind,
        )
    sent = metrics.send(
        pts,
        url,
        protocol=opts.protocol,
        headers=opts.headers,
        policy=opts.policy,
        compress=opts.gzip,
        resource=opts.resource,
        version=__version__,
        on_progress=progress,
    )
    return ExportResult(
        "otlp-metrics",
        http.redact_url(url),
        events=len(pts),
        sent=sent.sent,
        failed=sent.failed,
        rejected=sent.rejected,
        requests=sent.requests,
        errors=sent.errors[:3],
        summary=kind,
    )
