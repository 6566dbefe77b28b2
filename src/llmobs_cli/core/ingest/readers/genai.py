"""Spans → canonical records: the semantic conventions of LLM spans, in one place.

Every span-shaped input (OTLP/JSON, SDK span dumps, Phoenix exports) is first turned into
:class:`Span` objects by its container parser; this module decides which spans are LLM
calls and maps their attributes onto the canonical record (``docs/record.md``).

Vocabularies understood (first match wins, field by field):

* **OTel GenAI, current** — ``gen_ai.provider.name``, ``gen_ai.request.model`` /
  ``gen_ai.response.model``, ``gen_ai.usage.input_tokens``/``output_tokens``,
  ``gen_ai.usage.cache_read.input_tokens``, ``gen_ai.usage.cache_creation.input_tokens``,
  reasoning tokens, ``gen_ai.request.*`` params, ``gen_ai.response.finish_reasons``,
  ``gen_ai.conversation.id``, content in ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` (messages with ``parts``).
* **OTel GenAI, deprecated** — ``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` /
  ``completion_tokens``, ``gen_ai.prompt``/``gen_ai.completion`` (JSON or flattened
  ``gen_ai.prompt.N.*``), content in span events (``gen_ai.user.message``,
  ``gen_ai.choice``, ``gen_ai.content.prompt``, ...).
* **OpenInference** — ``openinference.span.kind``, ``llm.model_name``,
  ``llm.token_count.*``, flattened ``llm.input_messages.N.message.*``,
  ``input.value``/``output.value``, ``llm.invocation_parameters``, ``session.id``,
  ``user.id``, ``metadata``, ``tag.tags``; ``retrieval.documents.N.document.*`` of
  RETRIEVER spans are joined onto the LLM calls of the same trace.
* **Vercel AI SDK** — ``ai.*.doGenerate``/``doStream`` spans, ``ai.usage.*``,
  ``ai.prompt.messages``, ``ai.response.text``.

Only LLM calls become records; agent/chain/tool spans give context (the route is the name
of the trace's root span, or ``--route-from ATTRIBUTE``); embedding spans are skipped
unless asked for.

Token convention (so cost and cache hit rate mean the same for every input): canonical
``input_tokens`` include cached tokens, ``cached_tokens`` ⊆ ``input_tokens``. GenAI and
OpenInference already count that way; when a span's cache reads exceed its input count
(Anthropic-style exclusive counting), the cache reads and writes are added to the input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from llmobs_cli.core.ingest.readers import vocab
from llmobs_cli.core.ingest.readers.values import (
    as_str,
    dumps,
    first,
    flatten_obj,
    loads_maybe,
    message_list,
    only_text,
    output_text,
    split_messages,
    text_of,
    to_float,
    to_int,
    unflatten,
)
from llmobs_cli.core.record.schema import ROW, SCHEMA, UTC_US

LLM_OPERATIONS = {
    "chat",
    "text_completion",
    "completion",
    "generate_content",
    "call_llm",
    "generate",
    "responses",
}
EMBEDDING_OPERATIONS = {"embeddings", "embedding", "embed"}

#: The model of a failed call that names none (it is counted, never dropped).
UNKNOWN_MODEL = "unknown"

TIME_COLUMNS = ("timestamp", "end_time")
#: Canonical fields a span never carries (storage sampling and references come later).
_NOT_FROM_SPANS = ("customer_id", "feature", "logprobs", "sample_rate", "reference")
#: The raw frame's columns and dtypes: the canonical ones, but times as epoch
#: nanoseconds (normalize() turns them into UTC datetimes and validates everything).
RAW_SCHEMA: dict[str, pl.DataType] = {
    name: pl.Int64() if name in TIME_COLUMNS else dtype
    for name, dtype in SCHEMA.items()
    if name not in _NOT_FROM_SPANS
}
_NESTED = ("messages", "retrieved")


@dataclass
class Span:
    """One span, whatever container it came in. Times are epoch nanoseconds."""

    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    name: str
    start_ns: int | None
    end_ns: int | None
    attrs: dict[str, Any]
    events: list[tuple[str, int | None, dict[str, Any]]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    status: str | None = None  # "ok" | "error" | None (unset)
    status_message: str | None = None
    kind: str | None = None
    scope: str | None = None
    where: str = ""  # "file:line" of the document holding the span, for messages


def _oi_messages(attrs: dict[str, Any], prefix: str) -> list[dict[str, str | None]] | None:
    """OpenInference flattened (or Phoenix nested) messages."""
    items = unflatten(attrs, prefix)
    if not items and isinstance(attrs.get(prefix), list):
        items = [flatten_obj(x) for x in attrs[prefix] if isinstance(x, dict)]
    if not items:
        return None
    out = []
    for item in items:
        role = item.get("message.role")
        content = item.get("message.content")
        if content is None:
            parts = unflatten(item, "message.contents")
            texts = [str(p["message_content.text"]) for p in parts if p.get("message_content.text")]
            content = "\n".join(texts) if texts else None
        if content is None:
            calls = unflatten(item, "message.tool_calls")
            if calls:
                content = json.dumps(
                    [
                        {
                            "tool_call": c.get("tool_call.function.name"),
                            "arguments": c.get("tool_call.function.arguments"),
                        }
                        for c in calls
                    ],
                    ensure_ascii=False,
                )
        out.append({"role": role, "content": text_of(content)})
    return out


# ------------------------------------------------------------------- classification


def classify(span: Span) -> str:
    """``llm``, ``embedding``, ``retriever`` or ``other`` (context).

    Vendor vocabularies (Langfuse, MLflow, Traceloop) are restated first, once per span
    (:func:`vocab.restate`), so that :func:`extract` sees the same keys.
    """
    a = span.attrs
    if _RESTATED not in a:
        a = span.attrs = {**vocab.restate(a), _RESTATED: True}
    kind = a.get("openinference.span.kind")
    if isinstance(kind, str):
        k = kind.upper()
        if k == "LLM":
            return "llm"
        if k == "EMBEDDING":
            return "embedding"
        if k == "RETRIEVER":
            return "retriever"
        return "other"
    vendor = a.get("__kind")
    if vendor in ("llm", "embedding", "retriever"):
        return str(vendor)
    op = a.get("gen_ai.operation.name")
    if isinstance(op, str):
        o = op.lower()
        if o in LLM_OPERATIONS:
            return "llm"
        if o in EMBEDDING_OPERATIONS:
            return "embedding"
        return "other"
    vercel = a.get("ai.operationId") or (span.name if span.name.startswith("ai.") else None)
    if isinstance(vercel, str) and vercel.startswith("ai."):
        if vercel.endswith((".doGenerate", ".doStream")):
            return "llm"
        if vercel.endswith(".doEmbed"):
            return "embedding"
        return "other"
    if vendor == "other":
        return "other"
    if any(
        k in a for k in ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
    ) and any(
        k.startswith(("gen_ai.usage.", "llm.token_count.", "gen_ai.prompt", "gen_ai.completion"))
        for k in a
    ):
        return "llm"
    return "other"


# ------------------------------------------------------------------------ extraction

#: Marks attributes already restated by :func:`vocab.restate` (an internal key).
_RESTATED = "__restated"

_FLAT = ("llm.input_messages.", "llm.output_messages.", "gen_ai.prompt.", "gen_ai.completion.")
_PARAM_PREFIX = "gen_ai.request."
_NOT_PARAMS = {"gen_ai.request.model"}

#: Attributes consumed into canonical fields (kept out of metadata).
_CONSUMED_PREFIXES = (
    "gen_ai.usage.",
    "gen_ai.request.",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    "llm.token_count.",
    "llm.invocation_parameters",
    "ai.prompt",
    "ai.response.text",
    "ai.usage.",
    "retrieval.documents",
    "input.value",
    "output.value",
    "ai.embeddings",
    "ai.values",
    *vocab.CONSUMED,
)


def _event_content(span: Span) -> dict[str, Any]:
    """Deprecated GenAI content carried in span events."""
    msgs: list[dict[str, str | None]] = []
    outs: list[str] = []
    finish: str | None = None
    merged: dict[str, Any] = {}
    for name, _t, ea in span.events:
        if name in ("gen_ai.content.prompt",) and "gen_ai.prompt" in ea:
            merged.setdefault("gen_ai.prompt", ea["gen_ai.prompt"])
        elif name in ("gen_ai.content.completion",) and "gen_ai.completion" in ea:
            merged.setdefault("gen_ai.completion", ea["gen_ai.completion"])
        elif name == "gen_ai.client.inference.operation.details":
            for k, v in ea.items():
                merged.setdefault(k, v)
        elif name.startswith("gen_ai.") and name.endswith(".message"):
            role = ea.get("role") or name[len("gen_ai.") : -len(".message")]
            content = ea.get("content")
            if content is None and "gen_ai.event.content" in ea:
                body = loads_maybe(ea["gen_ai.event.content"])
                content = body.get("content") if isinstance(body, dict) else body
            msgs.append({"role": role, "content": text_of(loads_maybe(content))})
        elif name == "gen_ai.choice":
            body = ea
            if "gen_ai.event.content" in ea:
                body = loads_maybe(ea["gen_ai.event.content"]) or {}
            message = loads_maybe(body.get("message"))
            content = message.get("content") if isinstance(message, dict) else body.get("content")
            text = text_of(loads_maybe(content))
            if text:
                outs.append(text)
            finish = finish or body.get("finish_reason")
    if msgs:
        merged["__event_messages"] = msgs
    if outs:
        merged["__event_response"] = "\n".join(outs)
    if finish:
        merged["__event_finish"] = finish
    return merged


def _provider(a: dict[str, Any]) -> str | None:
    p = first(
        a,
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "ai.model.provider",
    )
    if isinstance(p, str):
        # Vercel writes "openai.responses", "openai.chat"; GenAI "az.ai.openai" stays.
        if (
            p.startswith(("openai.", "anthropic.", "google.", "mistral."))
            and "ai.model.provider" in a
        ):
            p = p.split(".", 1)[0]
        return p
    return None


def extract(
    span: Span, route: str | None, retrieved: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """One canonical raw record from an LLM (or embedding) span."""
    if _RESTATED not in span.attrs:
        classify(span)
    a = span.attrs
    ev = _event_content(span) if span.events else {}
    look = {**ev, **a} if ev else a
    # Flattened attribute families present (``llm.input_messages.0.…`` → one scan).
    flat = {
        k.split(".", 2)[0] + "." + k.split(".", 2)[1]
        for k in a
        if k.count(".") >= 2 and k.startswith(_FLAT)
    }

    # --- model / provider
    model = first(
        a, "gen_ai.response.model", "llm.model_name", "ai.response.model", "gen_ai.request.model"
    )
    if model is None:
        model = first(a, "ai.model.id")
    request_model = a.get("gen_ai.request.model") or a.get("ai.model.id")
    if model is None:
        # A failed call often has no response model: the requested one is in its
        # invocation parameters (OpenInference) or request attributes.
        inv = loads_maybe(a.get("llm.invocation_parameters"))
        if isinstance(inv, dict):
            model = first(inv, "model", "model_name", "model_id")

    # --- messages
    msgs = None
    if "gen_ai.input.messages" in look:
        msgs = message_list(look["gen_ai.input.messages"])
    elif "llm.input_messages" in flat:
        msgs = _oi_messages(a, "llm.input_messages")
    elif "gen_ai.prompt" in look:
        msgs = message_list(look["gen_ai.prompt"])
    elif "gen_ai.prompt" in flat:
        msgs = [
            {"role": m.get("role"), "content": text_of(m.get("content"))}
            for m in unflatten(a, "gen_ai.prompt")
        ]
    elif "ai.prompt.messages" in a:
        msgs = message_list(a["ai.prompt.messages"])
    elif "__event_messages" in look:
        msgs = look["__event_messages"]
    elif "ai.prompt" in a:
        p = loads_maybe(a["ai.prompt"])
        if isinstance(p, dict):
            msgs = message_list(p.get("messages")) or (
                [{"role": "user", "content": text_of(p.get("prompt"))}] if p.get("prompt") else None
            )
            if p.get("system"):
                msgs = [{"role": "system", "content": text_of(p["system"])}, *(msgs or [])]
    system, prompt, msgs = split_messages(msgs)
    instr = look.get("gen_ai.system_instructions")
    if instr is not None:
        sys_text = only_text(loads_maybe(instr))
        if sys_text:
            system = sys_text
            if msgs is not None and not any(m["role"] == "system" for m in msgs):
                msgs = [{"role": "system", "content": sys_text}, *msgs]
    if prompt is None and msgs is None and a.get("input.value") is not None:
        iv = loads_maybe(a["input.value"])
        m2 = message_list(iv) if isinstance(iv, dict) and "messages" in iv else None
        if m2:
            system, prompt, msgs = split_messages(m2)
        else:
            prompt = text_of(iv) if not isinstance(iv, str) else iv

    # --- response
    response, finish = None, None
    if "gen_ai.output.messages" in look:
        response, finish = output_text(look["gen_ai.output.messages"])
    elif "llm.output_messages" in flat:
        outs = _oi_messages(a, "llm.output_messages") or []
        texts = [m["content"] for m in outs if m["content"]]
        response = "\n".join(texts) if texts else None
    elif "gen_ai.completion" in look:
        response, finish = output_text(look["gen_ai.completion"])
    elif "gen_ai.completion" in flat:
        outs = unflatten(a, "gen_ai.completion")
        said = [text_of(m.get("content")) for m in outs if m.get("content") is not None]
        response = "\n".join(t for t in said if t) or None
        finish = next((m.get("finish_reason") for m in outs if m.get("finish_reason")), None)
    elif "ai.response.text" in a or "ai.response.object" in a:
        response = text_of(first(a, "ai.response.text", "ai.response.object"))
    elif "__event_response" in look:
        response = look["__event_response"]
    elif "gen_ai.output" in a:
        response = text_of(a["gen_ai.output"])
    if response is None and a.get("output.value") is not None:
        ov = loads_maybe(a["output.value"])
        response, f2 = output_text(ov) if not isinstance(ov, str) else (ov, None)
        finish = finish or f2
    fr = a.get("gen_ai.response.finish_reasons")
    fr = loads_maybe(fr)
    if isinstance(fr, list) and fr:
        finish = str(fr[0])
    elif isinstance(fr, str) and fr:
        finish = fr
    finish = finish or a.get("ai.response.finishReason") or look.get("__event_finish")
    if (
        finish is None
        and isinstance(a.get("output.value"), str)
        and '"finish_reason"' in a["output.value"]
    ):
        # OpenInference keeps the raw provider response in output.value
        _, finish = output_text(loads_maybe(a["output.value"]))

    # --- tokens
    inp = to_int(
        first(
            a,
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.token_count.prompt",
            "ai.usage.inputTokens",
            "ai.usage.promptTokens",
        )
    )
    out = to_int(
        first(
            a,
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
            "ai.usage.outputTokens",
            "ai.usage.completionTokens",
        )
    )
    cached = to_int(
        first(
            a,
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "gen_ai.usage.cached_tokens",
            "llm.token_count.prompt_details.cache_read",
            "ai.usage.cachedInputTokens",
        )
    )
    cache_write = to_int(
        first(
            a,
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        )
    )
    reasoning = to_int(
        first(
            a,
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
            "gen_ai.usage.output_tokens_details.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
            "ai.usage.reasoningTokens",
        )
    )
    if cached is not None and inp is not None and cached > inp:
        inp = inp + cached + (cache_write or 0)

    # --- cost
    cost = to_float(first(a, "llm.cost.total", "gen_ai.usage.cost", "gen_ai.usage.total_cost"))
    if cost is None and ("gen_ai.usage.input_cost" in a or "gen_ai.usage.output_cost" in a):
        cost = (to_float(a.get("gen_ai.usage.input_cost")) or 0.0) + (
            to_float(a.get("gen_ai.usage.output_cost")) or 0.0
        )

    # --- params
    params: dict[str, Any] = {}
    inv = loads_maybe(a.get("llm.invocation_parameters"))
    if isinstance(inv, dict):
        params.update({k: v for k, v in inv.items() if k not in ("messages", "model")})
    for k, v in a.items():
        if k.startswith(_PARAM_PREFIX) and k not in _NOT_PARAMS:
            params[k[len(_PARAM_PREFIX) :]] = v
        elif k.startswith("ai.settings.") and k != "ai.settings.maxRetries":
            params[k[len("ai.settings.") :]] = v

    # --- ttft
    ttft = to_float(a.get("ai.response.msToFirstChunk"))
    if ttft is None and a.get("gen_ai.server.time_to_first_token") is not None:
        t = to_float(a["gen_ai.server.time_to_first_token"])
        ttft = None if t is None else t * 1000.0
    if ttft is None and span.start_ns is not None and "__first_token_time" in a:
        first_ns = _iso_ns(a["__first_token_time"])
        ttft = None if first_ns is None else (first_ns - span.start_ns) / 1e6
    if ttft is None and span.start_ns is not None:
        for name, t_ns, _ea in span.events:
            # OpenInference's streaming instrumentations mark the first token this way
            if t_ns is not None and name.lower() == "first token stream event":
                ttft = (t_ns - span.start_ns) / 1e6
                break

    # --- status
    status = "error" if span.status == "error" or "__error" in a else "ok"
    error = None
    if status == "error":
        error = span.status_message or a.get("__error") or a.get("error.type")
        for name, _t, ea in span.events:
            if name == "exception" and ea.get("exception.message"):
                error = (
                    error or f"{ea.get('exception.type', 'exception')}: {ea['exception.message']}"
                )
        error = error or "error"

    # --- context fields
    res = span.resource
    tags = loads_maybe(a.get("tag.tags"))
    if isinstance(tags, str):
        tags = [tags]
    metadata: dict[str, Any] = {}
    for k, v in res.items():
        metadata[k] = v
    meta_attr = loads_maybe(a.get("metadata"))
    if isinstance(meta_attr, dict):
        metadata.update(meta_attr)
    for k, v in a.items():
        if k == "metadata" or k.startswith(_CONSUMED_PREFIXES) or k.startswith("__"):
            continue
        if k.startswith("metadata.") and k not in metadata:
            metadata[k[len("metadata.") :]] = v
            continue
        if k.startswith("ai.telemetry.metadata."):
            metadata[k[len("ai.telemetry.metadata.") :]] = v
            continue
        metadata.setdefault(k, v)
    metadata["span.name"] = span.name
    if span.scope:
        metadata["otel.scope.name"] = span.scope
    if request_model and request_model != model:
        metadata["gen_ai.request.model"] = request_model

    start, end = span.start_ns, span.end_ns
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_id,
        "session_id": as_str(
            first(
                a,
                "gen_ai.conversation.id",
                "session.id",
                "session_id",
                "ai.telemetry.metadata.sessionId",
            )
        ),
        "user_id": as_str(
            first(a, "user.id", "enduser.id", "gen_ai.user.id", "ai.telemetry.metadata.userId")
        ),
        "timestamp": None if start is None else start // 1000,
        "end_time": None if end is None else end // 1000,
        "latency_ms": None if start is None or end is None else (end - start) / 1e6,
        "ttft_ms": ttft,
        "route": route,
        "environment": as_str(
            first(res, "deployment.environment.name", "deployment.environment")
            or first(a, "deployment.environment.name", "deployment.environment")
        ),
        "release": as_str(first(res, "service.version") or a.get("service.version")),
        "provider": _provider(a),
        # A failed call is counted even when nothing says which model it asked for.
        "model": as_str(model) if model is not None or status != "error" else UNKNOWN_MODEL,
        "params": dumps(params) if params else None,
        "system": system,
        "prompt": prompt,
        "messages": msgs,
        "retrieved": retrieved,
        "response": response,
        "finish_reason": as_str(finish),
        "input_tokens": inp,
        "output_tokens": out,
        "cached_tokens": cached,
        "reasoning_tokens": reasoning,
        "cache_write_tokens": cache_write,
        "cost_usd": cost,
        "status": status,
        "error": as_str(error),
        "metadata": dumps(metadata) if metadata else None,
        "tags": [str(t) for t in tags] if isinstance(tags, list) else None,
    }


def documents(span: Span) -> list[dict[str, Any]]:
    """OpenInference ``retrieval.documents.N.document.{id,content,score}`` of a retriever span."""
    a = span.attrs
    items = unflatten(a, "retrieval.documents")
    if not items and isinstance(a.get("retrieval.documents"), list):
        items = [flatten_obj(x) for x in a["retrieval.documents"] if isinstance(x, dict)]
    docs = [
        {
            "id": as_str(d.get("document.id")),
            "content": text_of(d.get("document.content")),
            "score": to_float(d.get("document.score")),
        }
        for d in items
    ]
    # Best first (the contract's order); unscored documents keep their order at the end.
    return sorted(docs, key=lambda d: -(d["score"] if d["score"] is not None else float("-inf")))


# ------------------------------------------------------------------------ assembly


def route_value(span: Span, key: str) -> str | None:
    if key in ("name", "span.name"):
        return span.name
    v = span.attrs.get(key)
    if v is None:
        v = span.resource.get(key)
    if v is None and key.startswith("metadata."):
        meta = loads_maybe(span.attrs.get("metadata"))
        if isinstance(meta, dict):
            v = meta.get(key[len("metadata.") :])
    return None if v is None else str(v)


def records_from_spans(
    spans: Sequence[Span], *, route_from: str | None = None, include_embeddings: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """LLM records (and where each came from) from all spans of a source.

    Spans are grouped by trace to find the root span (the route) and the retriever
    documents of the trace.
    """
    by_trace: dict[str | None, list[Span]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    records: list[dict[str, Any]] = []
    where: list[str] = []
    for trace_spans in by_trace.values():
        kinds = [classify(s) for s in trace_spans]
        wanted = [
            (s, k)
            for s, k in zip(trace_spans, kinds, strict=True)
            if k == "llm" or (include_embeddings and k == "embedding")
        ]
        if not wanted:
            continue
        root = _root(trace_spans)
        retrievers = sorted(
            (s for s, k in zip(trace_spans, kinds, strict=True) if k == "retriever"),
            key=lambda s: s.end_ns or 0,
        )
        for s, _k in wanted:
            route = None
            if route_from:
                route = route_value(s, route_from) or route_value(root, route_from)
                if route is None:
                    for other in trace_spans:
                        route = (
                            route_value(other, route_from)
                            if route_from not in ("name", "span.name")
                            else None
                        )
                        if route:
                            break
            else:
                route = root.name or None
            docs = None
            if retrievers:
                before = [
                    r
                    for r in retrievers
                    if r.end_ns is not None and s.start_ns is not None and r.end_ns <= s.start_ns
                ]
                chosen = before[-1] if before else retrievers[0]
                docs = documents(chosen) or None
            records.append(extract(s, route, docs))
            where.append(s.where)
    return records, where


def _root(spans: list[Span]) -> Span:
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id or s.parent_id not in ids]
    pool = roots or spans
    return min(
        pool, key=lambda s: (s.parent_id is not None, s.start_ns if s.start_ns is not None else 0)
    )


def _iso_ns(text: Any) -> int | None:
    """Epoch nanoseconds of an ISO 8601 time (``Z`` or an offset; naive means UTC)."""
    from datetime import UTC, datetime

    try:
        dt = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


_MODEL_KEYS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "ai.model.id",
    "langfuse.observation.model.name",
    "llm.request.model",
)


def named_model(a: dict[str, Any]) -> str | None:
    """A model a span names in its attributes (any vocabulary; no parsing), else None."""
    for k in _MODEL_KEYS:
        v = a.get(k)
        if v:
            return str(v)
    return None


def leaf_calls(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The one wrapper rule, for every reader: an LLM record is a *wrapper* — not counted —
    when its direct children in the same trace include LLM records carrying usage, and
    its own usage is none or just repeats theirs (its input and output tokens equal the
    sums over those children). Vercel's ``ai.generateText`` around ``doGenerate``, a
    Langfuse GENERATION around the model's, an agent's LLM run around the chat model's:
    only the leaves are counted. A parent whose usage differs from its children's is a
    call of its own and stays. Returns the kept rows and how many wrappers were dropped.
    """
    if df.height < 2 or "parent_span_id" not in df.columns:
        return df, 0
    children = (
        df.filter(
            pl.col("parent_span_id").is_not_null()
            & (pl.col("input_tokens").is_not_null() | pl.col("output_tokens").is_not_null())
        )
        .group_by("trace_id", pl.col("parent_span_id").alias("span_id"))
        .agg(
            pl.col("input_tokens").fill_null(0).sum().alias("_cin"),
            pl.col("output_tokens").fill_null(0).sum().alias("_cout"),
        )
    )
    if not children.height:
        return df, 0
    own_usage = pl.col("input_tokens").is_not_null() | pl.col("output_tokens").is_not_null()
    repeats = (pl.col("input_tokens").fill_null(0) == pl.col("_cin")) & (
        pl.col("output_tokens").fill_null(0) == pl.col("_cout")
    )
    marked = df.join(children, on=["trace_id", "span_id"], how="left", maintain_order="left")
    wrapper = pl.col("_cin").is_not_null() & (~own_usage | repeats)
    kept = marked.filter(~wrapper).drop("_cin", "_cout")
    return kept, df.height - kept.height


def frame_from_records(records: Iterable[dict[str, Any]], n: int | None = None) -> pl.DataFrame:
    """Columnar assembly of raw records (canonical names, ``_row`` added)."""
    recs = records if isinstance(records, list) else list(records)
    cols: dict[str, Any] = {}
    for name, dtype in RAW_SCHEMA.items():
        values = [r.get(name) for r in recs]
        if name in _NESTED:
            # Lists of structs build ~8x faster from JSON text decoded by Polars than
            # from Python dicts.
            text = pl.Series(name, [None if v is None else dumps(v) for v in values], pl.String)
            cols[name] = (
                text.str.json_decode(dtype) if text.null_count() < len(values) else text.cast(dtype)
            )
        else:
            cols[name] = pl.Series(name, values, dtype)
    df = pl.DataFrame(cols)
    df = df.with_columns(
        [
            pl.col(c).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(UTC_US)
            for c in TIME_COLUMNS
        ]
    )
    return df.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
