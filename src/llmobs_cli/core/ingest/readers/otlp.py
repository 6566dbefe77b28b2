"""OTLP/JSON and SDK span dumps → canonical records.

Containers read (one reader, detected per document):

* ``ExportTraceServiceRequest`` / ``TracesData`` documents (``resourceSpans`` →
  ``scopeSpans`` → ``spans``), one per line as the OpenTelemetry Collector's file exporter
  writes them, or a single (pretty-printed) document; camelCase or snake_case keys, the
  old ``instrumentationLibrarySpans`` too;
* span lists as the SDKs dump them: Python ``ReadableSpan.to_json()`` (``context``,
  ``0x`` hex ids, ISO times; also decimal-integer ids and nanosecond times, as
  any-agent writes them, and ``{"spans": [...]}`` wrappers), JS ``ReadableSpan``
  (``spanContext``, HrTime ``[sec, nanos]``), concatenated or in a JSON array;
* a bare attribute dict (one span's attributes: no ids, no times).

Every encoding real files use: hex (any case) or base64 ids (protobuf JSON mapping), 64-bit
integers as strings or numbers, enum names or numbers, every ``AnyValue`` kind
(string, bool, int, double, bytes, array, kvlist).

JSONL input streams line by line in batches: LLM spans become records at once (columnar
per batch), other spans leave only a small context row (ids, parent, name) used at the
end to find each trace's root (the route) and its retriever documents.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from llmobs_cli.core.ingest.readers import genai, values
from llmobs_cli.core.ingest.readers.base import RawRead, display_name, parquet_target, read_bytes
from llmobs_cli.core.ingest.readers.genai import Span
from llmobs_cli.core.record.schema import DOCUMENT, ROW


# orjson is 2-3x faster, but rejects integers beyond 64 bits: fall back per document.
def _loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


BATCH_SPANS = 20000


class ExactIntsNeeded(Exception):
    """A document whose ids are integers too large for orjson (re-parse with json)."""


class SpanError(ValueError):
    """A span that cannot be read; ``field`` names the JSON path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# ------------------------------------------------------------------------ values


def norm_id(value: Any, size: int, field: str) -> str | None:
    """A trace/span id as lowercase hex of ``size`` bytes (hex, 0x-hex, base64 or integer);
    any other string is an opaque id, kept unchanged."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SpanError(field, f"expected an id, got {value!r}")
    if isinstance(value, float):
        if value != value or value % 1 or abs(value) < 2**63:
            raise SpanError(field, f"expected an id, got {value!r}")
        # orjson turns integers beyond 64 bits (decimal trace ids) into floats: the
        # document is re-parsed exactly with the json module.
        raise ExactIntsNeeded(field)
    if isinstance(value, int):
        return format(value, f"0{size * 2}x")
    if not isinstance(value, str):
        raise SpanError(field, f"expected an id, got {type(value).__name__}")
    s = value.strip()
    if s.startswith(("0x", "0X")):
        s = s[2:]
    if len(s) == size * 2:
        try:
            int(s, 16)
            return s.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(s, validate=True)
        if len(raw) == size:
            return raw.hex()
    except (binascii.Error, ValueError):
        pass
    if s.isdigit():
        return format(int(s), f"0{size * 2}x")
    if all(c in "0123456789abcdefABCDEF" for c in s):
        return s.lower()
    # Sanitised fixtures and some SDKs use arbitrary strings ("trace-1", UUIDs): an id
    # only has to be the same wherever it is referred to, so it is kept as it is.
    return s


def any_value(v: Any) -> Any:
    """An OTLP ``AnyValue`` (or an already plain value) as a Python value."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v or "string_value" in v:
        return v.get("stringValue", v.get("string_value"))
    if "intValue" in v or "int_value" in v:
        x = v.get("intValue", v.get("int_value"))
        return int(x) if x is not None else None
    if "doubleValue" in v or "double_value" in v:
        x = v.get("doubleValue", v.get("double_value"))
        return float(x) if x is not None else None
    if "boolValue" in v or "bool_value" in v:
        return bool(v.get("boolValue", v.get("bool_value")))
    if "arrayValue" in v or "array_value" in v:
        arr = v.get("arrayValue", v.get("array_value")) or {}
        return [any_value(x) for x in arr.get("values", [])]
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = v.get("kvlistValue", v.get("kvlist_value")) or {}
        return {x.get("key"): any_value(x.get("value")) for x in kv.get("values", [])}
    if "bytesValue" in v or "bytes_value" in v:
        return v.get("bytesValue", v.get("bytes_value"))
    if not v:
        return None
    return v


def attributes(raw: Any) -> dict[str, Any]:
    """OTLP ``[{key, value}]`` lists or plain dicts → a flat dict."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, list):
        return {}  # not attributes at all (a damaged export): nothing to read
    out: dict[str, Any] = {}
    for kv in raw:
        if kv.__class__ is not dict or "key" not in kv:
            continue
        v = kv.get("value")
        if v.__class__ is dict:  # fast paths for the common kinds
            s = v.get("stringValue")
            if s is not None:
                out[kv["key"]] = s
                continue
            i = v.get("intValue")
            if i is not None:
                out[kv["key"]] = int(i)
                continue
        out[kv["key"]] = any_value(v)
    return out


def time_ns(value: Any, field: str) -> int | None:
    """Epoch nanoseconds from an integer/string of nanos, an HrTime ``[s, ns]`` or ISO text."""
    if value is None or value == "" or value == 0 or value == "0":
        return None
    if isinstance(value, bool):
        raise SpanError(field, f"expected a time, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]) * 1_000_000_000 + int(value[1])
    if isinstance(value, str):
        s = value.strip()
        if s.isdigit():
            return int(s)
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SpanError(field, f"not a time ({value!r})") from exc
        if dt.tzinfo is None:
            from datetime import UTC

            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    raise SpanError(field, f"expected a time, got {type(value).__name__}")


_STATUS = {
    "0": None,
    "1": "ok",
    "2": "error",
    "unset": None,
    "ok": "ok",
    "error": "error",
    "status_code_unset": None,
    "status_code_ok": "ok",
    "status_code_error": "error",
    "statuscode.unset": None,
    "statuscode.ok": "ok",
    "statuscode.error": "error",
}


def status_of(raw: Any) -> tuple[str | None, str | None]:
    if not isinstance(raw, dict):
        return None, None
    code = raw.get("code", raw.get("status_code", raw.get("statusCode")))
    msg = raw.get("message", raw.get("description"))
    return _STATUS.get(str(code).lower() if code is not None else "0"), msg or None


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    v = d.get(camel)
    return d.get(snake) if v is None else v


# ---------------------------------------------------------------- span shapes


def _events(raw: Any, path: str) -> list[tuple[str, int | None, dict[str, Any]]]:
    out = []
    for i, e in enumerate(raw or []):
        if not isinstance(e, dict):
            continue
        t = e.get("timeUnixNano", e.get("time_unix_nano", e.get("timestamp", e.get("time"))))
        out.append(
            (
                str(e.get("name", "")),
                time_ns(t, f"{path}.events[{i}].time"),
                attributes(e.get("attributes")),
            )
        )
    return out


def otlp_spans(doc: dict[str, Any], where: str) -> Iterator[Span]:
    """Spans of an ``ExportTraceServiceRequest`` / ``TracesData`` document."""
    rss = _get(doc, "resourceSpans", "resource_spans") or []
    for ri, rs in enumerate(rss):
        resource = attributes((rs.get("resource") or {}).get("attributes"))
        sss = (
            rs.get("scopeSpans")
            or rs.get("scope_spans")
            or rs.get("instrumentationLibrarySpans")
            or []
        )
        for si, ss in enumerate(sss):
            scope = (ss.get("scope") or ss.get("instrumentationLibrary") or {}).get("name")
            for pi, sp in enumerate(ss.get("spans") or []):
                path = f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]"
                yield otlp_span(sp, where, path, resource, scope)


def otlp_span(
    sp: dict[str, Any],
    where: str,
    path: str,
    resource: dict[str, Any] | None = None,
    scope: str | None = None,
) -> Span:
    """One OTLP protobuf-JSON span (camelCase or snake_case), inside a document or bare
    (as gateways, the Collector's debug exporter, Phoenix ``/spans/otlpv1`` and MLflow's
    ``Trace.to_dict()`` write them)."""
    trace = norm_id(_get(sp, "traceId", "trace_id"), 16, f"{path}.traceId")
    if trace is None:
        raise SpanError(f"{path}.traceId", "missing")
    st, msg = status_of(sp.get("status"))
    attrs = attributes(sp.get("attributes"))
    kind_top = sp.get("span_kind", sp.get("spanKind"))
    if isinstance(kind_top, str) and "openinference.span.kind" not in attrs:
        attrs = {**attrs, "openinference.span.kind": kind_top}
    if resource is None:
        res = sp.get("resource")
        resource = attributes(res.get("attributes") if isinstance(res, dict) else None)
    return Span(
        trace_id=trace,
        span_id=norm_id(_get(sp, "spanId", "span_id"), 8, f"{path}.spanId"),
        parent_id=norm_id(_get(sp, "parentSpanId", "parent_span_id"), 8, f"{path}.parentSpanId"),
        name=str(sp.get("name", "")),
        start_ns=time_ns(
            _get(sp, "startTimeUnixNano", "start_time_unix_nano"), f"{path}.startTimeUnixNano"
        ),
        end_ns=time_ns(
            _get(sp, "endTimeUnixNano", "end_time_unix_nano"), f"{path}.endTimeUnixNano"
        ),
        attrs=_flat_attrs(attrs) if isinstance(sp.get("attributes"), dict) else attrs,
        events=_events(sp.get("events"), path),
        resource=resource,
        status=st,
        status_message=msg,
        kind=str(sp.get("kind")) if sp.get("kind") is not None else None,
        scope=scope,
        where=where,
    )


def is_otlp_span(obj: Any) -> bool:
    """A bare OTLP span object: ids at the top level and OTLP time fields."""
    return (
        isinstance(obj, dict)
        and ("traceId" in obj or "trace_id" in obj)
        and ("spanId" in obj or "span_id" in obj)
        and (
            "startTimeUnixNano" in obj
            or "start_time_unix_nano" in obj
            or "endTimeUnixNano" in obj
            or "end_time_unix_nano" in obj
        )
    )


def sdk_span(sp: dict[str, Any], where: str, path: str) -> Span:
    """A Python (``to_json``) or JS ``ReadableSpan`` object."""
    ctx = sp.get("context") or sp.get("spanContext") or sp.get("span_context") or {}
    parent = sp.get("parent") or sp.get("parentSpanContext") or {}
    parent_raw = sp.get("parent_id", sp.get("parentSpanId", sp.get("parent_span_id")))
    if parent_raw is None and isinstance(parent, dict):
        parent_raw = _get(parent, "spanId", "span_id")
    trace = norm_id(
        _get(ctx, "traceId", "trace_id") or sp.get("traceId") or sp.get("trace_id"),
        16,
        f"{path}.context.trace_id",
    )
    if trace is None:
        raise SpanError(f"{path}.context.trace_id", "missing")
    st, msg = status_of(
        sp.get("status")
        if "status" in sp
        else {"code": sp.get("status_code"), "message": sp.get("status_message")}
    )
    res = sp.get("resource") or {}
    res_attrs = attributes(
        res.get("attributes") if isinstance(res, dict) and "attributes" in res else res
    )
    attrs = _flat_attrs(attributes(sp.get("attributes")))
    kind_top = sp.get("span_kind", sp.get("spanKind"))
    if isinstance(kind_top, str) and "openinference.span.kind" not in attrs:
        # Phoenix's REST spans carry the OpenInference kind beside the attributes
        attrs = {**attrs, "openinference.span.kind": kind_top}
    return Span(
        trace_id=trace,
        span_id=norm_id(
            _get(ctx, "spanId", "span_id") or sp.get("spanId"), 8, f"{path}.context.span_id"
        ),
        parent_id=norm_id(parent_raw, 8, f"{path}.parent_id"),
        name=str(sp.get("name", "")),
        start_ns=time_ns(_get(sp, "startTime", "start_time"), f"{path}.start_time"),
        end_ns=time_ns(_get(sp, "endTime", "end_time"), f"{path}.end_time"),
        attrs=attrs,
        events=_events(sp.get("events"), path),
        resource=res_attrs,
        status=st,
        status_message=msg,
        kind=str(sp.get("kind")) if sp.get("kind") is not None else None,
        scope=(sp.get("instrumentationScope") or sp.get("instrumentation_scope") or {}).get("name")
        if isinstance(sp.get("instrumentationScope") or sp.get("instrumentation_scope"), dict)
        else None,
        where=where,
    )


def _flat_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Phoenix nests attributes (``{"llm": {"model_name": ...}}``); flatten to dotted keys."""
    if not any(
        isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict))
        for v in attrs.values()
    ):
        return attrs
    return values.flatten_obj(attrs)


def phoenix_row_span(row: dict[str, Any], where: str) -> Span:
    """A row of Phoenix's spans dataframe (``context.trace_id``, ``attributes.*`` columns)."""
    attrs: dict[str, Any] = {}
    for k, v in row.items():
        if k.startswith("attributes.") and v is not None:
            key = k[len("attributes.") :]
            v = (
                values.loads_maybe(v)
                if key in ("llm.input_messages", "llm.output_messages", "retrieval.documents")
                else v
            )
            if isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict)):
                attrs.update(values.flatten_obj(v, key))
            else:
                attrs[key] = v
    if "openinference.span.kind" not in attrs and row.get("span_kind"):
        attrs["openinference.span.kind"] = row["span_kind"]
    st, msg = status_of({"code": row.get("status_code"), "message": row.get("status_message")})
    events = values.loads_maybe(row.get("events"))
    return Span(
        trace_id=norm_id(row.get("context.trace_id"), 16, "context.trace_id"),
        span_id=norm_id(row.get("context.span_id"), 8, "context.span_id"),
        parent_id=norm_id(row.get("parent_id"), 8, "parent_id"),
        name=str(row.get("name") or ""),
        start_ns=time_ns(_iso(row.get("start_time")), "start_time"),
        end_ns=time_ns(_iso(row.get("end_time")), "end_time"),
        attrs=attrs,
        events=_events(events if isinstance(events, list) else [], "span"),
        status=st,
        status_message=msg,
        where=where,
    )


def _iso(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 1e14:
        return int(v * 1_000_000)  # Phoenix JSON (pandas) writes epoch milliseconds
    return v


def is_attribute_dict(doc: dict[str, Any]) -> bool:
    """A bare span-attribute dict (``gen_ai.*``/``llm.*`` keys, no span structure)."""
    keys = list(doc)[:200]
    return (
        bool(keys)
        and any(k.startswith(("gen_ai.", "llm.", "openinference.", "ai.")) for k in keys)
        and not any(
            k in doc
            for k in ("resourceSpans", "spans", "context", "spanContext", "trace", "observations")
        )
    )


def attribute_span(doc: dict[str, Any], where: str) -> Span:
    """One span from a bare attribute dict: its id is a hash of the content, no times."""
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    attrs = {k: v for k, v in doc.items() if k not in ("input", "output")}
    return Span(
        trace_id=digest[:32],
        span_id=digest[32:48],
        parent_id=None,
        name=str(doc.get("gen_ai.operation.name", "")),
        start_ns=None,
        end_ns=None,
        attrs=attrs,
        where=where,
    )


def is_sdk_span(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and ("context" in obj or "spanContext" in obj or "span_context" in obj)
        and "name" in obj
    )


def spans_of(doc: Any, where: str) -> Iterator[Span]:
    """Spans of any supported OTel document shape."""
    if isinstance(doc, dict):
        if "resourceSpans" in doc or "resource_spans" in doc:
            yield from otlp_spans(doc, where)
        elif _is_mlflow_trace(doc):
            yield from _mlflow_spans(doc, where, "data.spans")
        elif isinstance(doc.get("traces"), list):  # `mlflow traces search --output json`
            for i, t in enumerate(doc["traces"]):
                yield from _one(t, where, f"traces[{i}]")
        elif isinstance(doc.get("data"), list):
            for i, sp in enumerate(doc["data"]):
                yield from _one(sp, where, f"data[{i}]")
        elif "context.trace_id" in doc:
            yield phoenix_row_span(doc, where)
        elif isinstance(doc.get("spans"), list):
            for i, sp in enumerate(doc["spans"]):
                yield from _one(sp, where, f"spans[{i}]")
        elif isinstance(doc.get("trace"), str) and doc["trace"].lstrip().startswith("{"):
            # a row of mlflow.search_traces() without its spans column: the trace as JSON
            yield from spans_of(_loads(doc["trace"]), where)
        elif is_sdk_span(doc):
            yield sdk_span(doc, where, "span")
        elif is_otlp_span(doc):
            yield otlp_span(doc, where, "span")
        elif is_attribute_dict(doc):
            yield attribute_span(doc, where)
        else:
            raise SpanError(
                "(document)",
                "not an OTLP/JSON document or span (no resourceSpans, spans or context)",
            )
    elif isinstance(doc, list):
        for i, sp in enumerate(doc):
            yield from _one(sp, where, f"[{i}]")
    else:
        raise SpanError("(document)", f"expected a JSON object or array, got {type(doc).__name__}")


def _is_mlflow_trace(doc: dict[str, Any]) -> bool:
    """``Trace.to_dict()`` / ``to_json()``: ``{"info": {...}, "data": {"spans": [...]}}``."""
    data = doc.get("data")
    return isinstance(doc.get("info"), dict) and isinstance(data, dict) and "spans" in data


def _mlflow_spans(doc: dict[str, Any], where: str, path: str) -> Iterator[Span]:
    for i, sp in enumerate(doc["data"].get("spans") or []):
        yield otlp_span(sp, where, f"{path}[{i}]")


def _one(sp: Any, where: str, path: str) -> Iterator[Span]:
    if isinstance(sp, dict) and ("resourceSpans" in sp or "resource_spans" in sp):
        yield from otlp_spans(sp, where)
    elif isinstance(sp, dict) and "context.trace_id" in sp:
        yield phoenix_row_span(sp, where)
    elif is_sdk_span(sp):
        yield sdk_span(sp, where, path)
    elif is_otlp_span(sp):
        yield otlp_span(sp, where, path)
    elif isinstance(sp, dict) and _is_mlflow_trace(sp):
        yield from _mlflow_spans(sp, where, f"{path}.data.spans")
    elif isinstance(sp, dict) and isinstance(sp.get("spans"), list):
        for i, x in enumerate(sp["spans"]):
            yield from _one(x, where, f"{path}.spans[{i}]")
    else:
        raise SpanError(path, "not a span")


# ----------------------------------------------------------------- documents


def iter_documents(path: Path) -> Iterator[tuple[Any | None, str, str | None]]:
    """``(document, where, problem)`` for every JSON document in a file.

    JSON lines stream line by line; otherwise the file is one document or several
    concatenated ones (the SDK console exporters print pretty JSON objects back to back).
    """
    name = display_name(path)
    low = path.name.lower()
    compressed = low.endswith((".gz", ".zst", ".zstd"))
    if not compressed:
        with path.open("rb") as fh:
            first = b""
            for line in fh:
                if line.strip():
                    first = line
                    break
        try:
            _loads(first)
            line_mode = True
        except ValueError:
            line_mode = False
        if line_mode:
            with path.open("rb") as fh:
                for i, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        yield _loads(line), f"{name}:{i}", None
                    except (ValueError, UnicodeDecodeError) as exc:
                        yield (
                            None,
                            f"{name}:{i}",
                            f"{name}:{i}: (line): invalid JSON ({_short(exc)})",
                        )
            return
    data = read_bytes(path)
    try:
        yield _loads(data), name, None
        return
    except ValueError:
        pass
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if len([ln for ln in lines if ln.strip()]) > 1 and _each_line_json(lines[:3]):
        for i, row in enumerate(lines, start=1):
            if not row.strip():
                continue
            try:
                yield _loads(row), f"{name}:{i}", None
            except ValueError as exc:
                yield None, f"{name}:{i}", f"{name}:{i}: (line): invalid JSON ({_short(exc)})"
        return
    dec = json.JSONDecoder()
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        lineno = text.count("\n", 0, pos) + 1
        try:
            obj, pos = dec.raw_decode(text, pos)
        except ValueError as exc:
            yield (
                None,
                f"{name}:{lineno}",
                f"{name}:{lineno}: (document): invalid JSON ({_short(exc)})",
            )
            return
        yield obj, f"{name}:{lineno}", None


def _exact_document(path: Path, where: str) -> Any:
    """Re-read one document with the json module (exact big integers)."""
    name = display_name(path)
    line = where[len(name) + 1 :] if where.startswith(name + ":") else ""
    text = read_bytes(path).decode("utf-8", errors="replace")
    if not line:
        return json.loads(text)
    start = int(line)
    lines = text.split("\n")
    try:
        return json.loads(lines[start - 1])
    except ValueError:
        # a document starting on that line of concatenated pretty JSON
        offset = sum(len(ln) + 1 for ln in lines[: start - 1])
        return json.JSONDecoder().raw_decode(text, offset)[0]


def _each_line_json(lines: list[str]) -> bool:
    for ln in lines:
        if ln.strip():
            try:
                _loads(ln)
            except ValueError:
                return False
    return True


def _short(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:120]


# ----------------------------------------------------------------- the reader

CONTEXT_SCHEMA = {
    "trace_id": pl.String(),
    "span_id": pl.String(),
    "parent_id": pl.String(),
    "name": pl.String(),
    "start_ns": pl.Int64(),
    "route_value": pl.String(),
    "model": pl.String(),  # a model the span names (for failed children that name none)
}
RETRIEVER_SCHEMA = {"trace_id": pl.String(), "end_ns": pl.Int64(), "docs": pl.List(DOCUMENT)}


class SpanAccumulator:
    """Streams spans into record frames (per batch) plus the context needed at the end."""

    def __init__(self, route_from: str | None, include_embeddings: bool) -> None:
        self.route_from = route_from
        self.include_embeddings = include_embeddings
        self.frames: list[pl.DataFrame] = []
        self.where: list[str] = []
        self._records: list[dict[str, Any]] = []
        self._own_route: list[str | None] = []
        self._ctx: dict[str, list[Any]] = {k: [] for k in CONTEXT_SCHEMA}
        self._ret: dict[str, list[Any]] = {k: [] for k in RETRIEVER_SCHEMA}
        self.ctx_frames: list[pl.DataFrame] = []
        self.ret_frames: list[pl.DataFrame] = []
        self.kinds: dict[str, int] = {}
        self._flushed = 0
        #: What was read around (not lost silently): reason → count.
        self.tolerated: dict[str, int] = {}

    def note(self) -> str:
        """Why no record came out (for the loader's "nothing read" error)."""
        n = sum(self.kinds.values())
        if not n:
            return "no span found"
        found = ", ".join(f"{v} {k}" for k, v in sorted(self.kinds.items()))
        return (
            f"{n} span(s) ({found}), none an LLM call: no gen_ai.*, llm.*, openinference, "
            "Vercel ai.*, langfuse.observation.* or mlflow LLM span"
        )

    def add(self, span: Span) -> None:
        kind = genai.classify(span)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        ctx = self._ctx
        ctx["trace_id"].append(span.trace_id)
        ctx["span_id"].append(span.span_id)
        ctx["parent_id"].append(span.parent_id)
        ctx["name"].append(span.name)
        ctx["start_ns"].append(span.start_ns)
        ctx["route_value"].append(
            genai.route_value(span, self.route_from) if self.route_from else None
        )
        ctx["model"].append(genai.named_model(span.attrs))
        if len(ctx["trace_id"]) >= BATCH_SPANS:
            self.flush_context()
        if kind == "retriever":
            docs = genai.documents(span)
            if docs:
                self._ret["trace_id"].append(span.trace_id)
                self._ret["end_ns"].append(span.end_ns)
                self._ret["docs"].append(docs)
        elif kind == "llm" or (kind == "embedding" and self.include_embeddings):
            self._records.append(genai.extract(span, None, None))
            own = ctx["route_value"][-1]
            if own is None and not self.route_from:
                # Vercel AI SDK names the flow itself (its spans often have no parent ids)
                fid = span.attrs.get("ai.telemetry.functionId")
                own = str(fid) if fid else None
            self._own_route.append(own)
            self.where.append(span.where)
            if len(self._records) >= BATCH_SPANS:
                self.flush()

    def flush(self) -> None:
        if self._records:
            frame = genai.frame_from_records(self._records).drop(ROW)
            start = self._flushed
            self._flushed += frame.height
            self.frames.append(
                frame.with_columns(
                    pl.Series("_own_route", self._own_route, dtype=pl.String),
                    # the record's index in self.where (kept through the filters below)
                    pl.int_range(start, self._flushed, dtype=pl.Int64).alias("_rec"),
                )
            )
            self._records, self._own_route = [], []

    def flush_context(self) -> None:
        """Context rows as compact frames (bounded Python memory)."""
        if self._ctx["trace_id"]:
            self.ctx_frames.append(pl.DataFrame(self._ctx, schema=CONTEXT_SCHEMA))
            self._ctx = {k: [] for k in CONTEXT_SCHEMA}
        if self._ret["trace_id"]:
            self.ret_frames.append(pl.DataFrame(self._ret, schema=RETRIEVER_SCHEMA))
            self._ret = {k: [] for k in RETRIEVER_SCHEMA}

    def state(self) -> tuple[list[pl.DataFrame], list[pl.DataFrame], list[pl.DataFrame], list[str]]:
        self.flush()
        self.flush_context()
        return self.frames, self.ctx_frames, self.ret_frames, self.where

    def merge(
        self, state: tuple[list[pl.DataFrame], list[pl.DataFrame], list[pl.DataFrame], list[str]]
    ) -> None:
        frames, ctx, ret, where = state
        self.flush()
        self.flush_context()
        offset = self._flushed
        self._flushed += len(where)
        self.frames.extend(f.with_columns(pl.col("_rec") + offset) for f in frames)
        self.ctx_frames.extend(ctx)
        self.ret_frames.extend(ret)
        self.where.extend(where)

    def finish(self) -> pl.DataFrame:
        """All records, with routes from the trace roots and retriever documents joined."""
        self.flush()
        self.flush_context()
        if not self.frames:
            return genai.frame_from_records([])
        df = pl.concat(self.frames, how="vertical")
        df = self._finished_only(df)
        df, wrappers = genai.leaf_calls(df)
        if wrappers:
            self.tolerated["LLM wrapper span(s) not counted: their LLM child carries the usage"] = (
                wrappers
            )
        ctx = (
            pl.concat(self.ctx_frames, how="vertical")
            if self.ctx_frames
            else pl.DataFrame(schema=CONTEXT_SCHEMA)
        )
        ids = ctx.select(
            "trace_id", pl.col("span_id").alias("parent_id"), pl.lit(True).alias("_known")
        )
        roots = (
            ctx.join(ids, on=["trace_id", "parent_id"], how="left")
            .with_columns(_is_root=pl.col("_known").is_null())
            .filter(pl.col("_is_root"))
            .sort(["trace_id", pl.col("parent_id").is_not_null(), "start_ns"], nulls_last=False)
            .group_by("trace_id", maintain_order=True)
            .first()
            .select(
                "trace_id",
                pl.col("name").alias("_root_name"),
                pl.col("route_value").alias("_root_value"),
            )
        )
        df = df.join(roots, on="trace_id", how="left")
        if self.route_from:
            any_value_ = (
                ctx.filter(pl.col("route_value").is_not_null())
                .group_by("trace_id", maintain_order=True)
                .agg(pl.col("route_value").first().alias("_any_value"))
            )
            df = (
                df.join(any_value_, on="trace_id", how="left")
                .with_columns(route=pl.coalesce("_own_route", "_root_value", "_any_value"))
                .drop("_any_value")
            )
        else:
            df = df.with_columns(
                route=pl.coalesce("_own_route", pl.col("_root_name").replace("", None))
            )
        df = df.drop("_own_route", "_root_name", "_root_value")
        df = self._parent_models(df, ctx)
        self.where = [self.where[i] for i in df["_rec"]]
        df = df.drop("_rec")
        if self.ret_frames:
            ret = pl.concat(self.ret_frames, how="vertical")
            df = self._join_documents(df, ret)
        return df.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))

    @staticmethod
    def _parent_models(df: pl.DataFrame, ctx: pl.DataFrame) -> pl.DataFrame:
        """A failed call naming no model takes the one its parent span names (an agent or
        a framework wrapper that was asked for it), before falling back to "unknown"."""
        unknown = pl.col("model") == genai.UNKNOWN_MODEL
        if not df.select(unknown.any()).item():
            return df
        parents = ctx.filter(pl.col("model").is_not_null()).select(
            "trace_id",
            pl.col("span_id").alias("parent_span_id"),
            pl.col("model").alias("_parent_model"),
        )
        parents = parents.unique(["trace_id", "parent_span_id"], keep="first")
        return (
            df.join(parents, on=["trace_id", "parent_span_id"], how="left", maintain_order="left")
            .with_columns(
                model=pl.when(unknown & pl.col("_parent_model").is_not_null())
                .then(pl.col("_parent_model"))
                .otherwise(pl.col("model"))
            )
            .drop("_parent_model")
        )

    def _finished_only(self, df: pl.DataFrame) -> pl.DataFrame:
        """Unfinished copies out: a dump that prints each span when it starts (no end
        time) and again when it ends holds two copies; the finished one wins. A span that
        never finished is skipped and counted, not a failure of the file."""
        open_ = pl.col("timestamp").is_not_null() & pl.col("end_time").is_null()
        n_open = int(df.select(open_.sum()).item())
        if not n_open:
            return df
        finished = df.filter(pl.col("end_time").is_not_null()).select("trace_id", "span_id")
        unfinished = df.filter(open_)
        replaced = unfinished.join(finished, on=["trace_id", "span_id"], how="semi").height
        if replaced:
            self.tolerated["unfinished span copy(ies) replaced by their finished copy"] = replaced
        if n_open - replaced:
            self.tolerated["unfinished span(s) skipped (no end time, no finished copy)"] = (
                n_open - replaced
            )
        return df.filter(~open_)

    @staticmethod
    def _join_documents(df: pl.DataFrame, ret: pl.DataFrame) -> pl.DataFrame:
        """The latest retriever of the trace that ended before the call, else its first."""
        df = df.with_row_index("_i")
        left = df.select("_i", "trace_id", pl.col("timestamp").dt.epoch("ns").alias("_t")).sort(
            "_t"
        )
        right = ret.filter(pl.col("end_ns").is_not_null()).sort("end_ns")
        asof = left.join_asof(
            right,
            left_on="_t",
            right_on="end_ns",
            by="trace_id",
            strategy="backward",
            check_sortedness=False,
        )
        first = ret.group_by("trace_id", maintain_order=True).agg(
            pl.col("docs").first().alias("_first")
        )
        docs = asof.join(first, on="trace_id", how="left").select(
            "_i", pl.coalesce("docs", "_first").alias("_docs")
        )
        return (
            df.join(docs, on="_i", how="left")
            .with_columns(retrieved=pl.coalesce("retrieved", "_docs"))
            .sort("_i")
            .drop("_i", "_docs")
        )


#: JSON-lines files larger than this are parsed by worker processes, one byte range each.
PARALLEL_BYTES = 64 * 2**20
CHUNK_BYTES = 32 * 2**20

State = tuple[list[pl.DataFrame], list[pl.DataFrame], list[pl.DataFrame], list[str]]


def _line_ranges(path: Path, chunk: int) -> list[tuple[int, int, int]]:
    """``(start, end, first_line)`` byte ranges cut at newlines."""
    size = path.stat().st_size
    out: list[tuple[int, int, int]] = []
    with path.open("rb") as fh:
        start, line = 0, 1
        while start < size:
            fh.seek(min(start + chunk, size))
            fh.readline()
            end = min(fh.tell(), size)
            fh.seek(start)
            lines = fh.read(end - start).count(b"\n")
            out.append((start, end, line))
            start, line = end, line + lines
    return out


def _range_worker(job: tuple[str, int, int, int, str | None, bool]) -> tuple[State, list[str]]:
    """Parse one byte range of a JSON-lines file (runs in a worker process)."""
    name, start, end, first_line, route_from, include_embeddings = job
    acc = SpanAccumulator(route_from, include_embeddings)
    problems: list[str] = []
    with open(name, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    for i, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        where = f"{name}:{first_line + i}"
        try:
            doc = _loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{where}: (line): invalid JSON ({_short(exc)})")
            continue
        try:
            try:
                spans = list(spans_of(doc, where))
            except ExactIntsNeeded:
                spans = list(spans_of(json.loads(line), where))
        except SpanError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for span in spans:
            acc.add(span)
    return acc.state(), problems


def _read_parallel(
    path: Path, route_from: str | None, include_embeddings: bool, acc: SpanAccumulator
) -> list[str]:
    """Worker processes parse byte ranges; results merge in file order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = max(1, min(os.cpu_count() or 1, 8))
    jobs = [
        (display_name(path), s, e, first, route_from, include_embeddings)
        for s, e, first in _line_ranges(path, CHUNK_BYTES)
    ]
    problems: list[str] = []
    # spawn, not fork: forking a process whose Polars thread pool is running can deadlock
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for state, probs in pool.map(_range_worker, jobs):
            acc.merge(state)
            problems.extend(probs)
    return problems


def _line_mode(path: Path) -> bool:
    """Whether the file is JSON lines (its first non-blank line is a whole document)."""
    if path.name.lower().endswith((".gz", ".zst", ".zstd")):
        return False
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    _loads(line)
                    return True
                except ValueError:
                    return False
    return False


def read_spans_file(
    path: Path, route_from: str | None, include_embeddings: bool, fmt: str
) -> RawRead:
    """Read any OTel-shaped file (see the module docstring) into a raw record frame."""
    acc = SpanAccumulator(route_from, include_embeddings)
    problems: list[str] = []
    parallel = (os.cpu_count() or 1) > 1 and path.stat().st_size > PARALLEL_BYTES
    if parallel and _line_mode(path):
        problems = _read_parallel(path, route_from, include_embeddings, acc)
        frame = acc.finish()
        found = acc.where
        return RawRead(
            frame=frame,
            locate=lambda rows: [found[r] if 0 <= r < len(found) else str(path) for r in rows],
            problems=problems,
            fmt=fmt,
            note=None if frame.height else acc.note(),
            tolerated=acc.tolerated,
        )
    from llmobs_cli.core.ingest.readers import otel_debug

    if otel_debug.is_debug_text(_head(path)):
        for span in otel_debug.spans(path):
            acc.add(span)
        frame = acc.finish()
        found = acc.where
        return RawRead(
            frame=frame,
            locate=lambda rows: [found[r] if 0 <= r < len(found) else str(path) for r in rows],
            fmt=fmt,
            note=None if frame.height else acc.note(),
            tolerated=acc.tolerated,
        )
    for doc, where, problem in iter_documents(path):
        if problem:
            problems.append(problem)
            continue
        try:
            spans = list(spans_of(doc, where))
        except ExactIntsNeeded:
            try:
                spans = list(spans_of(_exact_document(path, where), where))
            except SpanError as exc:
                problems.append(f"{where}: {exc}")
                continue
        except SpanError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for span in spans:
            acc.add(span)
    frame = acc.finish()
    spots = acc.where
    return RawRead(
        frame=frame,
        locate=lambda rows: [spots[r] if 0 <= r < len(spots) else display_name(path) for r in rows],
        problems=problems,
        fmt=fmt,
        note=None if frame.height else acc.note(),
        tolerated=acc.tolerated,
    )


def _head(path: Path) -> bytes:
    from llmobs_cli.core.ingest.readers.formats import head

    return head(path, 8192)


def read_otlp(path: Path, opts: Any) -> RawRead:
    low = path.name.lower()
    if path.is_dir() or low.endswith((".parquet", ".pq")):
        return _read_span_rows(path, opts, "otlp")
    return read_spans_file(path, opts.route_from, opts.include_embeddings, "otlp")


def _read_span_rows(path: Path, opts: Any, fmt: str) -> RawRead:
    """A Parquet table whose rows are span-shaped documents (MLflow's ``search_traces()``
    frame: a ``spans`` list or a ``trace`` JSON column per row)."""
    frame = pl.read_parquet(parquet_target(path))
    name = display_name(path)
    acc = SpanAccumulator(opts.route_from, opts.include_embeddings)
    problems: list[str] = []
    for i, row in enumerate(frame.iter_rows(named=True)):
        where = f"{name}: row {i + 1}"
        try:
            for span in spans_of(row, where):
                acc.add(span)
        except SpanError as exc:
            problems.append(f"{where}: {exc}")
    out = acc.finish()
    found = acc.where
    return RawRead(
        frame=out,
        locate=lambda rows: [found[r] if 0 <= r < len(found) else name for r in rows],
        problems=problems,
        fmt=fmt,
        note=None if out.height else acc.note(),
        tolerated=acc.tolerated,
    )


def read_openinference(path: Path, opts: Any) -> RawRead:
    """OpenInference spans: in OTLP/JSON, Phoenix REST JSON, or Phoenix's spans dataframe
    written to JSON (records) or Parquet."""
    low = path.name.lower()
    if not (path.is_dir() or low.endswith((".parquet", ".pq"))):
        return read_spans_file(path, opts.route_from, opts.include_embeddings, "openinference")
    frame = pl.read_parquet(parquet_target(path))
    name = display_name(path)
    acc = SpanAccumulator(opts.route_from, opts.include_embeddings)
    problems: list[str] = []
    for i, row in enumerate(frame.iter_rows(named=True)):
        try:
            acc.add(phoenix_row_span(row, f"{name}: row {i + 1}"))
        except SpanError as exc:
            problems.append(f"{name}: row {i + 1}: {exc}")
    out = acc.finish()
    where = acc.where
    return RawRead(
        frame=out,
        locate=lambda rows: [where[r] if 0 <= r < len(where) else name for r in rows],
        problems=problems,
        fmt="openinference",
        note=None if out.height else acc.note(),
        tolerated=acc.tolerated,
    )


#: A bare OTLP span: OTLP's own time field names (never used by canonical records).
_BARE_SPAN = re.compile(rb'"(?:startTimeUnixNano|start_time_unix_nano)"\s*:')
_SDK_CONTEXT = re.compile(
    rb'"(?:context|spanContext|span_context)"\s*:\s*\{[^{}]*"(?:trace_?[iI]d|span_?[iI]d)"'
)


def sniff(path: Path, head: bytes) -> str | None:
    """OTLP/JSON or an SDK span dump, from the first bytes."""
    if head == b"PAR1":
        try:
            target = next(path.rglob("*.parquet")) if path.is_dir() else path
            cols = set(pl.read_parquet_schema(target))
        except Exception:
            return None
        if {"context.trace_id", "context.span_id"} <= cols:
            return "openinference"
        if {"trace_id", "trace"} <= cols and ("spans" in cols or "request" in cols):
            return "otlp"  # mlflow.search_traces() written to Parquet
        return None
    h = head[:65536]
    if b'"resourceSpans"' in h or b'"resource_spans"' in h:
        return "otlp"
    if b'"mlflow.spanType"' in h or _BARE_SPAN.search(h):
        return "otlp"
    from llmobs_cli.core.ingest.readers.otel_debug import is_debug_text

    if is_debug_text(h):
        return "otlp"  # the Collector's debug exporter, as text
    if b'"context.trace_id"' in h or (b'"span_kind"' in h and _SDK_CONTEXT.search(h)):
        return "openinference"
    if _SDK_CONTEXT.search(h):
        return "otlp"
    stripped = h.lstrip()
    # a bare attribute dict with GenAI/OpenInference keys (not a canonical record)
    if (
        stripped.startswith(b"{")
        and (b'"gen_ai.' in h or b'"llm.' in h)
        and b'"observations"' not in h
        and b'"trace_id"' not in h
        and b'"model"' not in h[:200]
    ):
        return "otlp"
    return None
