"""Evaluation events as OpenTelemetry log records: an OTLP/JSON file or OTLP/HTTP.

Encoding goes through ``opentelemetry-proto`` (the ``otlp`` extra; the test extra has it):
one ``ExportLogsServiceRequest`` per batch, one ``LogRecord`` per judgment with
``event_name = "gen_ai.evaluation.result"``, severity INFO, the evaluation attributes,
and the judged call's ``trace_id``/``span_id`` so that backends parent the event to the
span it judges. Ids that are not hex of the right width (16 bytes for a trace, 8 for a
span; UUIDs with dashes are accepted) cannot be carried in those fields: the record then
has no parent, and the ids ride along as ``llmobs.trace_id`` / ``llmobs.span_id``.

OTLP/JSON follows the specification's JSON mapping: lowerCamelCase keys, ids as hex,
64-bit integers as strings, enums as numbers. The time of a record is the judged call's
start time (so the event falls in the same time range as its span); the observed time is
the export time.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from llmobs_cli.core.export import http
from llmobs_cli.core.export.evaluations import EVENT_NAME, EvaluationEvent
from llmobs_cli.errors import UsageError

#: Records per request: small enough for any collector's default size limit.
BATCH = 512
SEVERITY_INFO = 9
SEVERITY_WARN = 13


def _proto() -> Any:
    try:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
        from opentelemetry.proto.common.v1 import common_pb2
        from opentelemetry.proto.logs.v1 import logs_pb2
        from opentelemetry.proto.resource.v1 import resource_pb2
    except ImportError as exc:  # an optional extra, not a hard dependency
        raise UsageError(
            'OTLP export needs the OpenTelemetry protocol package: pip install "llmobs[otlp]"'
        ) from exc
    return logs_service_pb2, common_pb2, logs_pb2, resource_pb2


def hex_id(value: str | None, nbytes: int) -> bytes | None:
    """The id as raw bytes when it is hex of exactly ``nbytes`` (dashes ignored), else None."""
    if not value:
        return None
    text = value.replace("-", "").strip().lower()
    if len(text) != 2 * nbytes:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return None if raw == bytes(nbytes) else raw


def _any_value(common_pb2: Any, value: Any) -> Any:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    return common_pb2.AnyValue(string_value=str(value))


def _record(mods: Any, event: EvaluationEvent, observed_ns: int) -> Any:
    _, common_pb2, logs_pb2, _ = mods
    attrs = event.otel_attributes()
    trace = hex_id(event.trace_id, 16)
    span = hex_id(event.span_id, 8) if trace is not None else None
    if trace is None:
        attrs["llmobs.trace_id"] = event.trace_id
    if span is None and event.span_id:
        attrs["llmobs.span_id"] = event.span_id
    rec = logs_pb2.LogRecord(
        time_unix_nano=int(event.timestamp.timestamp() * 1e9),
        observed_time_unix_nano=observed_ns,
        severity_number=SEVERITY_WARN if event.error else SEVERITY_INFO,
        severity_text="WARN" if event.error else "INFO",
        event_name=EVENT_NAME,
        attributes=[
            common_pb2.KeyValue(key=k, value=_any_value(common_pb2, v)) for k, v in attrs.items()
        ],
    )
    if trace is not None:
        rec.trace_id = trace
        if span is not None:
            rec.span_id = span
            rec.flags = 1  # sampled: the judged span was recorded
    return rec


def requests(
    events: Iterable[EvaluationEvent],
    *,
    service_name: str = "llmobs",
    version: str = "",
    batch: int = BATCH,
    resource: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """``ExportLogsServiceRequest`` messages of at most ``batch`` records each; the
    resource is ``resource`` when given (OTEL_RESOURCE_ATTRIBUTES), else ``service_name``."""
    mods = _proto()
    logs_service_pb2, common_pb2, logs_pb2, resource_pb2 = mods
    attrs = dict(resource) if resource else {"service.name": service_name}
    resource_msg = resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(key=k, value=_any_value(common_pb2, v)) for k, v in attrs.items()
        ]
    )
    scope = common_pb2.InstrumentationScope(name="llmobs", version=version)
    observed = time.time_ns()
    chunk: list[Any] = []
    for event in events:
        chunk.append(_record(mods, event, observed))
        if len(chunk) >= batch:
            yield _request(logs_service_pb2, logs_pb2, resource_msg, scope, chunk)
            chunk = []
    if chunk:
        yield _request(logs_service_pb2, logs_pb2, resource_msg, scope, chunk)


def _request(svc: Any, logs_pb2: Any, resource: Any, scope: Any, records: list[Any]) -> Any:
    return svc.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource,
                scope_logs=[logs_pb2.ScopeLogs(scope=scope, log_records=records)],
            )
        ]
    )


def to_json(request: Any) -> dict[str, Any]:
    """A request in the OTLP/JSON mapping (ids as hex, not protobuf-JSON's base64)."""
    from google.protobuf import json_format

    doc: dict[str, Any] = json_format.MessageToDict(request)
    for rl in doc.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for rec in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64decode(rec[key]).hex()
    return doc


def json_lines(events: Iterable[EvaluationEvent], **kw: Any) -> Iterator[str]:
    """One OTLP/JSON document per line (the OTel Collector's ``file`` exporter layout)."""
    for req in requests(events, **kw):
        yield json.dumps(to_json(req), separators=(",", ":"), ensure_ascii=False)


def parse_headers(text: str | None) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` syntax: ``k1=v1,k2=v2`` with URL-encoded values."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError("headers: expected key=value pairs separated by commas")
        out[unquote(key.strip())] = unquote(value.strip())
    return out


def logs_url(endpoint: str, *, signal_specific: bool = False) -> str:
    """The logs URL: a signal-specific endpoint is used as given; a base endpoint gets
    ``/v1/logs`` appended, as the OTLP exporter specification says."""
    if signal_specific:
        return endpoint
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/v1/logs"))


@dataclass
class SendResult:
    """What an HTTP export did: records accepted, rejected by the receiver, or not sent."""

    sent: int = 0
    rejected: int = 0
    failed: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)


def send(
    events: Iterable[EvaluationEvent],
    url: str,
    *,
    protocol: str = "protobuf",
    headers: Mapping[str, str] | None = None,
    policy: http.RetryPolicy = http.RetryPolicy(),
    compress: bool = True,
    version: str = "",
    on_progress: Callable[[str], None] | None = None,
    client: Any = None,
    resource: Mapping[str, str] | None = None,
) -> SendResult:
    """POST every event to an OTLP/HTTP logs endpoint, batched, gzipped and retried.

    A batch that still fails after its retries is counted in ``failed`` and the next batch
    is tried; partial success reported by the receiver is counted in ``rejected``.
    """
    if protocol not in ("protobuf", "json"):
        raise UsageError(f"protocol: {protocol!r} is not one of protobuf, json")
    svc = _proto()[0]
    batches = (
        (req, sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs))
        for req in requests(events, version=version, resource=resource)
    )
    return post_batches(
        batches,
        url,
        encode=to_json,
        rejected=lambda body: _rejected(svc, body, protocol),
        unit="evaluation event(s)",
        protocol=protocol,
        headers=headers,
        policy=policy,
        compress=compress,
        client=client,
        on_progress=on_progress,
    )


def post_batches(
    batches: Iterable[tuple[Any, int]],
    url: str,
    *,
    encode: Callable[[Any], Any],
    rejected: Callable[[bytes], int],
    unit: str,
    protocol: str,
    headers: Mapping[str, str] | None,
    policy: http.RetryPolicy,
    compress: bool,
    client: Any,
    on_progress: Callable[[str], None] | None,
) -> SendResult:
    """POST each (export request, records in it) with retries; count what the receiver
    accepted, rejected (its partial success, read by ``rejected``) or never got. Shared
    by the logs (judgments) and metrics exporters. ``encode`` gives a request's OTLP/JSON
    document for ``protocol="json"``."""
    result = SendResult()
    hdrs = dict(headers or {})
    hdrs["Content-Type"] = (
        "application/x-protobuf" if protocol == "protobuf" else "application/json"
    )
    for req, n in batches:
        payload = (
            req.SerializeToString() if protocol == "protobuf" else json.dumps(encode(req)).encode()
        )
        out = http.post(
            url,
            payload,
            headers=hdrs,
            policy=policy,
            compress=compress,
            client=client,
            on_wait=on_progress,
        )
        result.requests += 1
        if not out.ok:
            result.failed += n
            result.errors.append(out.error or "failed")
            continue
        refused = rejected(out.body)
        result.rejected += refused
        result.sent += n - refused
        if on_progress is not None:
            on_progress(f"sent {result.sent} {unit}")
    return result


def _rejected(svc: Any, body: bytes, protocol: str) -> int:
    """``partial_success.rejected_log_records`` of a receiver's reply (0 when absent)."""
    if not body:
        return 0
    try:
        if protocol == "protobuf":
            resp = svc.ExportLogsServiceResponse()
            resp.ParseFromString(body)
            return int(resp.partial_success.rejected_log_records)
        doc = json.loads(body)
        return int((doc.get("partialSuccess") or {}).get("rejectedLogRecords") or 0)
    except Exception:  # a reply we cannot parse carries no partial-success information
        return 0


def write_file(lines: Sequence[str] | Iterable[str]) -> str:
    """The text of an OTLP/JSON lines file."""
    return "".join(line + "\n" for line in lines)
