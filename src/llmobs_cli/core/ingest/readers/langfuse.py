"""Langfuse exports → canonical records.

Read:

* the UI trace export ``{"trace": {...}, "observations": [...]}`` (one document, an array of
  them, or one per line);
* blob-storage / API observation exports: rows of observations (JSONL, JSON array or
  ``{"data": [...]}``, CSV, Parquet), legacy ``observations/`` or enriched
  ``observations_v2/`` (which carry the trace's user, session, name, tags, release);
  camelCase (UI/API) and snake_case (blob storage) field names alike.

Only ``GENERATION`` observations become records. Trace fields (user, session, release,
tags, environment; the trace name is the route) are carried down to them.

Usage normalisation: Langfuse's usage keys are a breakdown that sums to ``total`` — its
``input`` excludes the cached (and other detailed) input tokens, which live in keys like
``input_cache_read``, ``input_cached_tokens`` or ``prompt_details.cache_read``. The
canonical ``input_tokens`` includes them. Some ingestion paths (OpenTelemetry) instead
write ``output`` including ``completion_details.reasoning``; which convention a row
uses is decided from ``total`` when present. Latency: start/end times when present; else
the ``latency`` field, in milliseconds in current exports and in seconds in the older
schema (no ``usageDetails``). A generation logged without an end time (an instant) gets
latency 0 and ``metadata.latency_unknown = true``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.ingest.readers import genai, values
from llmobs_cli.core.ingest.readers.base import RawRead, display_name, parquet_target, read_bytes
from llmobs_cli.core.ingest.readers.values import loads_maybe, to_float, to_int
from llmobs_cli.core.record.schema import ROW

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


def _snake_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {snake(k): v for k, v in d.items()}


def _ns(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    if isinstance(value, (int, float)):
        x = float(value)
        return (
            int(x * 1e9)
            if x < 1e11
            else int(x * 1e6)
            if x < 1e14
            else int(x * 1e3)
            if x < 1e17
            else int(x)
        )
    s = str(value).strip().replace(" ", "T", 1).replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def normalise_usage(usage: dict[str, Any]) -> dict[str, int | None]:
    """Langfuse usage details → canonical token counts (input includes cached)."""
    u = {str(k): to_int(v) for k, v in usage.items() if to_int(v) is not None}
    if not u:
        return {}
    base_in = u.get("input", u.get("prompt_tokens", u.get("promptTokens")))
    base_out = u.get("output", u.get("completion_tokens", u.get("completionTokens")))
    total = u.get("total", u.get("total_tokens", u.get("totalTokens")))
    base_keys = {
        "input",
        "output",
        "total",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "promptTokens",
        "completionTokens",
        "totalTokens",
        "unit",
    }
    in_details = {
        k: v for k, v in u.items() if k not in base_keys and k.startswith(("input", "prompt"))
    }
    out_details = {
        k: v for k, v in u.items() if k not in base_keys and k.startswith(("output", "completion"))
    }
    din = sum(v or 0 for v in in_details.values())
    dout = sum(v or 0 for v in out_details.values())
    bi, bo = base_in or 0, base_out or 0
    # Which breakdown convention: details disjoint from input/output (sum to total) or subsets.
    in_disjoint, out_disjoint = True, True
    if total is not None:
        for a, b in ((True, True), (True, False), (False, True), (False, False)):
            if bi + bo + (din if a else 0) + (dout if b else 0) == total:
                in_disjoint, out_disjoint = a, b
                break
    cached = (
        sum(v or 0 for k, v in in_details.items() if "cache_read" in k or "cached" in k)
        if in_details
        else None
    )
    cache_write = (
        sum(v or 0 for k, v in in_details.items() if "cache_creation" in k or "cache_write" in k)
        if any("cache_creation" in k or "cache_write" in k for k in in_details)
        else None
    )
    reasoning = (
        sum(v or 0 for k, v in out_details.items() if "reasoning" in k)
        if any("reasoning" in k for k in out_details)
        else None
    )
    inp = None if base_in is None and not in_details else bi + (din if in_disjoint else 0)
    out = None if base_out is None and not out_details else bo + (dout if out_disjoint else 0)
    if cached is not None and not any("cache_read" in k or "cached" in k for k in in_details):
        cached = None
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cached_tokens": cached,
        "cache_write_tokens": cache_write,
        "reasoning_tokens": reasoning,
    }


def _usage_of(o: dict[str, Any]) -> dict[str, Any]:
    for key in ("usage_details", "usage"):
        v = loads_maybe(o.get(key))
        if isinstance(v, dict) and v:
            return v
    legacy = {
        "input": o.get("input_usage", o.get("prompt_tokens")),
        "output": o.get("output_usage", o.get("completion_tokens")),
        "total": o.get("total_usage", o.get("total_tokens")),
    }
    return {k: v for k, v in legacy.items() if v is not None}


def _route_lookup(key: str, o: dict[str, Any], trace: dict[str, Any], meta: Any) -> str | None:
    for source in (o, trace):
        v = source.get(key, source.get(snake(key)))
        if v is not None:
            return str(v)
    if isinstance(meta, dict):
        k = key[len("metadata.") :] if key.startswith("metadata.") else key
        v = meta.get(k)
        if v is None and isinstance(meta.get("attributes"), dict):
            v = meta["attributes"].get(k)
        if v is not None:
            return str(v)
    return None


def record(o: dict[str, Any], trace: dict[str, Any], route_from: str | None) -> dict[str, Any]:
    """One canonical raw record from a GENERATION observation (snake_case keys)."""
    start, end = _ns(o.get("start_time")), _ns(o.get("end_time"))
    meta = loads_maybe(o.get("metadata"))
    metadata: dict[str, Any] = (
        dict(meta) if isinstance(meta, dict) else ({"metadata": meta} if meta else {})
    )
    latency = None
    if start is not None and end is not None:
        latency = (end - start) / 1e6
    elif o.get("latency") is not None:
        lat = to_float(o["latency"])
        # Older exports (no usage_details) give seconds, current ones milliseconds.
        seconds = "usage_details" not in o and "calculated_total_cost" in o
        latency = None if lat is None else lat * 1000.0 if seconds else lat
    if latency is None:
        latency = 0.0
        metadata["latency_unknown"] = True
    ttft = None
    cst = _ns(o.get("completion_start_time"))
    if cst is not None and start is not None:
        ttft = (cst - start) / 1e6
    elif o.get("time_to_first_token") is not None:
        t = to_float(o["time_to_first_token"])
        ttft = None if t is None else t * 1000.0
    msgs = None
    inp = loads_maybe(o.get("input"))
    prompt = None
    if isinstance(inp, list) or (isinstance(inp, dict) and "messages" in inp):
        msgs = values.message_list(inp)
    elif isinstance(inp, str):
        prompt = inp
    elif inp is not None:
        prompt = values.text_of(inp)
    system, p2, msgs = values.split_messages(msgs)
    prompt = p2 if p2 is not None else prompt
    response, finish = values.output_text(loads_maybe(o.get("output")))
    usage = normalise_usage(_usage_of(o))
    cost = to_float(o.get("total_cost", o.get("calculated_total_cost")))
    cd = loads_maybe(o.get("cost_details"))
    if cost is None and isinstance(cd, dict):
        cost = to_float(cd.get("total"))
    params = loads_maybe(o.get("model_parameters"))
    level = str(o.get("level") or "DEFAULT").upper()
    tags = trace.get("tags", o.get("tags"))
    tags = loads_maybe(tags)
    for key in ("name", "type", "prompt_name", "prompt_version", "version", "project_id"):
        if o.get(key) not in (None, ""):
            metadata.setdefault(f"langfuse.{key}", o[key])
    trace_meta = loads_maybe(trace.get("metadata"))
    if isinstance(trace_meta, dict):
        for k, v in trace_meta.items():
            metadata.setdefault(k, v)
    route = trace.get("name", o.get("trace_name"))
    if route_from:
        route = _route_lookup(route_from, o, trace, meta) or route
    return {
        "trace_id": values.as_str(o.get("trace_id")),
        "span_id": values.as_str(o.get("id")),
        "parent_span_id": values.as_str(o.get("parent_observation_id")),
        "session_id": values.as_str(trace.get("session_id", o.get("session_id"))),
        "user_id": values.as_str(trace.get("user_id", o.get("user_id"))),
        "timestamp": None if start is None else start // 1000,
        "end_time": None if end is None else end // 1000,
        "latency_ms": latency,
        "ttft_ms": ttft,
        "route": values.as_str(route) or None,
        "environment": values.as_str(trace.get("environment", o.get("environment"))),
        "release": values.as_str(trace.get("release", o.get("release"))),
        "provider": _provider(meta),
        "model": values.as_str(o.get("model") or o.get("provided_model_name")),
        "params": json.dumps(params, ensure_ascii=False, default=str)
        if isinstance(params, dict) and params
        else None,
        "system": system,
        "prompt": prompt,
        "messages": msgs,
        "retrieved": None,
        "response": response,
        "finish_reason": values.as_str(finish),
        **{
            k: usage.get(k)
            for k in (
                "input_tokens",
                "output_tokens",
                "cached_tokens",
                "reasoning_tokens",
                "cache_write_tokens",
            )
        },
        "cost_usd": cost,
        "status": "error" if level == "ERROR" else "ok",
        "error": values.as_str(o.get("status_message")) if level == "ERROR" else None,
        "metadata": json.dumps(metadata, ensure_ascii=False, default=str) if metadata else None,
        "tags": [str(t) for t in tags] if isinstance(tags, list) and tags else None,
    }


def _provider(meta: Any) -> str | None:
    """The provider from the raw OTel attributes Langfuse keeps in ``metadata.attributes``."""
    attrs = meta.get("attributes") if isinstance(meta, dict) else None
    if not isinstance(attrs, dict):
        return None
    for key in ("gen_ai.provider.name", "llm.provider", "gen_ai.system", "llm.system"):
        if attrs.get(key):
            return str(attrs[key]).lower()
    return None


def _documents(path: Path) -> Iterator[tuple[Any, str]]:
    """JSON documents of a file: one document, an array, or one per line."""
    name = display_name(path)
    data = read_bytes(path)
    try:
        yield json.loads(data), name
        return
    except ValueError:
        pass
    for i, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            try:
                yield json.loads(line), f"{name}:{i}"
            except ValueError as exc:
                yield exc, f"{name}:{i}"


def _rows_from_doc(doc: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(observation, trace) pairs of a document, snake_case keys."""
    if isinstance(doc, list):
        for d in doc:
            yield from _rows_from_doc(d)
        return
    if not isinstance(doc, dict):
        return
    if "observations" in doc:
        trace = _snake_dict(doc.get("trace") or {})
        for o in doc["observations"] or []:
            yield _snake_dict(o), trace
        return
    if isinstance(doc.get("data"), list):
        for o in doc["data"]:
            yield _snake_dict(o), {}
        return
    yield _snake_dict(doc), {}


def read_langfuse(path: Path, opts: Any) -> RawRead:
    """Read a Langfuse export (see the module docstring)."""
    name = display_name(path)
    route_from = getattr(opts, "route_from", None)
    recs: list[dict[str, Any]] = []
    where: list[str] = []
    problems: list[str] = []
    low = path.name.lower()
    if (
        path.is_dir()
        or low.endswith((".parquet", ".pq"))
        or low.endswith(".csv")
        or low.endswith(".csv.gz")
    ):
        if low.endswith((".csv", ".csv.gz")):
            import io

            frame = pl.read_csv(io.BytesIO(read_bytes(path)), infer_schema=False)
        else:
            frame = pl.read_parquet(parquet_target(path))
        rows: list[tuple[dict[str, Any], dict[str, Any]]] = [
            (_snake_dict(r), {}) for r in frame.to_dicts()
        ]
        seen = len(rows)
        for i, (o, t) in enumerate(rows):
            if str(o.get("type", "")).upper() == "GENERATION":
                recs.append(record(o, t, route_from))
                where.append(
                    f"{name}: row {i + 1}" if not low.endswith(".csv") else f"{name}:{i + 2}"
                )
    else:
        seen = 0
        for doc, loc in _documents(path):
            if isinstance(doc, Exception):
                problems.append(f"{loc}: (line): invalid JSON ({str(doc)[:100]})")
                continue
            for o, t in _rows_from_doc(doc):
                seen += 1
                if str(o.get("type", "")).upper() == "GENERATION":
                    recs.append(record(o, t, route_from))
                    where.append(f"{loc}: observation {o.get('id')}" if loc == name else loc)
    frame, wrappers = genai.leaf_calls(genai.frame_from_records(recs))
    if wrappers:
        where = [where[i] for i in frame[ROW]]
        frame = frame.drop(ROW).with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    return RawRead(
        frame=frame,
        locate=lambda rows: [where[r] if 0 <= r < len(where) else name for r in rows],
        problems=problems,
        fmt="langfuse",
        note=None
        if recs
        else f"{seen} observation(s)/row(s), none of type GENERATION "
        "(no Langfuse trace export or observation rows)",
        tolerated={
            "GENERATION wrapper(s) not counted: their GENERATION child carries the usage": wrappers
        }
        if wrappers
        else {},
    )


def sniff(path: Path, head: bytes) -> str | None:
    if head == b"PAR1":
        return (
            "langfuse" if _parquet_has(path, {"parent_observation_id", "usage_details"}) else None
        )
    h = head[:65536]
    if b'"observations"' in h and b'"trace"' in h:
        return "langfuse"
    if (b'"parentObservationId"' in h or b'"parent_observation_id"' in h) and b'"GENERATION"' in h:
        return "langfuse"
    first = h.split(b"\n", 1)[0]
    if b"parent_observation_id" in first and b"," in first and not first.lstrip().startswith(b"{"):
        return "langfuse"
    return None


def _parquet_has(path: Path, cols: set[str]) -> bool:
    try:
        target = next(path.rglob("*.parquet")) if path.is_dir() else path
        names = set(pl.read_parquet_schema(target))
    except Exception:
        return False
    return cols <= names
