"""The OpenTelemetry Collector's ``debug`` exporter (``verbosity: detailed``), as text.

The exporter logs every batch as an indented listing rather than JSON::

    ResourceSpans #0
    Resource attributes:
         -> service.name: Str(support-app)
    ScopeSpans #0
    InstrumentationScope opentelemetry.instrumentation.openai 0.1
    Span #0
        Trace ID       : 5b8aa5a2d2c872e8321cf37308d69df2
        Parent ID      : 051581bf3cb55c13
        ID             : 5fb397be34d26b51
        Name           : chat gpt-4o
        Kind           : Client
        Start time     : 2025-05-01 10:00:00.1 +0000 UTC
        End time       : 2025-05-01 10:00:01.1 +0000 UTC
        Status code    : Unset
        Status message :
    Attributes:
         -> gen_ai.usage.input_tokens: Int(120)

Collector log prefixes before the listing (timestamps, ``info TracesExporter {...}``) are
ignored. Values are typed (``Str``, ``Int``, ``Double``, ``Bool``, ``Slice``, ``Map``,
``Bytes``); lists and maps are JSON in the parentheses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmobs_cli.core.ingest.readers.base import display_name, read_bytes
from llmobs_cli.core.ingest.readers.genai import Span

MARK = b"Span #"
_FIELD = re.compile(r"^\s{2,}([A-Za-z ]+?)\s*:\s?(.*)$")
_ATTR = re.compile(r"^\s*-> ([^:]+): (\w+)\((.*)\)\s*$")
_TIME = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d{4})")


def is_debug_text(head: bytes) -> bool:
    return MARK in head and b"Trace ID" in head and b"ResourceSpans #" in head


def _value(kind: str, text: str) -> Any:
    if kind == "Int":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "Double":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "Bool":
        return text.lower() == "true"
    if kind in ("Slice", "Map"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _time(text: str) -> int | None:
    m = _TIME.match(text.strip())
    if not m:
        return None
    day, clock, frac, off = m.groups()
    dt = datetime.fromisoformat(f"{day}T{clock}{off[:3]}:{off[3:]}").astimezone(UTC)
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return int(dt.timestamp()) * 1_000_000_000 + nanos


_STATUS = {"error": "error", "ok": "ok"}


def spans(path: Path) -> Iterator[Span]:
    """Every span of a debug-exporter listing, with its resource attributes."""
    name = display_name(path)
    text = read_bytes(path).decode("utf-8", errors="replace")
    resource: dict[str, Any] = {}
    scope: str | None = None
    cur: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    events: list[tuple[str, int | None, dict[str, Any]]] = []
    event: dict[str, Any] | None = None
    lineno = 0

    def finish() -> Span | None:
        if cur is None:
            return None
        if event is not None:
            events.append((event.get("Name", ""), _time(event.get("Timestamp", "")), event["a"]))
        return Span(
            trace_id=cur.get("Trace ID") or None,
            span_id=cur.get("ID") or None,
            parent_id=cur.get("Parent ID") or None,
            name=cur.get("Name", ""),
            start_ns=_time(cur.get("Start time", "")),
            end_ns=_time(cur.get("End time", "")),
            attrs=cur["a"],
            events=list(events),
            resource=dict(resource),
            status=_STATUS.get(str(cur.get("Status code", "")).strip().lower()),
            status_message=cur.get("Status message") or None,
            kind=cur.get("Kind"),
            scope=scope,
            where=cur["where"],
        )

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("ResourceSpans #"):
            done = finish()
            if done:
                yield done
            cur, event, events = None, None, []
            resource, target = {}, None
            continue
        if stripped == "Resource attributes:":
            target = resource
            continue
        if stripped == "InstrumentationScope attributes:":
            target = {}  # scope attributes are not kept
            continue
        if stripped.startswith("InstrumentationScope "):
            scope = stripped.split(" ")[1] if len(stripped.split(" ")) > 1 else None
            continue
        if stripped.startswith("Span #"):
            done = finish()
            if done:
                yield done
            cur = {"a": {}, "where": f"{name}:{lineno}"}
            event, events, target = None, [], None
            continue
        if cur is None:
            m = _ATTR.match(line)
            if m and target is not None:
                target[m.group(1).strip()] = _value(m.group(2), m.group(3))
            continue
        if stripped == "Attributes:":
            target = cur["a"]
            continue
        if stripped.startswith("SpanEvent #"):
            if event is not None:
                events.append(
                    (event.get("Name", ""), _time(event.get("Timestamp", "")), event["a"])
                )
            event, target = {"a": {}}, None
            continue
        if stripped in ("Events:", "Links:"):
            target = None
            continue
        if event is not None:
            if stripped.startswith("-> Attributes:"):
                target = event["a"]
                continue
            m = _ATTR.match(line)
            if m and target is event["a"]:
                target[m.group(1).strip()] = _value(m.group(2), m.group(3))
                continue
            if stripped.startswith("-> "):
                k, _, v = stripped[3:].partition(": ")
                event[k.strip()] = v.strip()
            continue
        m = _ATTR.match(line)
        if m and target is not None:
            target[m.group(1).strip()] = _value(m.group(2), m.group(3))
            continue
        f = _FIELD.match(line)
        if f and target is None:
            cur[f.group(1).strip()] = f.group(2).strip()
    done = finish()
    if done:
        yield done
