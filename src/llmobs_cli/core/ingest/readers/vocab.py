"""Other vendors' span vocabularies, restated in the GenAI/OpenInference terms that
:mod:`genai` reads.

A span from the Langfuse SDK (``langfuse.observation.*``), from MLflow tracing
(``mlflow.spanType``, ``mlflow.spanInputs``/``spanOutputs``, ``mlflow.chat.tokenUsage``) or
from OpenLLMetry/Traceloop (``llm.usage.*``, ``llm.request.model``) says the same things
under other names. :func:`restate` adds the equivalent standard keys (never overwriting
one the span already has), so classification and extraction stay in one place.
"""

from __future__ import annotations

from typing import Any

from llmobs_cli.core.ingest.readers.values import flatten_obj, loads_maybe, to_float, to_int

#: Prefixes of attributes consumed by :func:`restate` (kept out of ``metadata``).
CONSUMED = (
    "langfuse.observation.",
    "langfuse.trace.tags",
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "mlflow.chat.tokenUsage",
    "mlflow.spanType",
    "mlflow.traceRequestId",
    "llm.usage.",
)


def json_value(v: Any) -> Any:
    """MLflow JSON-encodes every attribute value, strings included (``"\\"LLM\\""``)."""
    if isinstance(v, str) and v[:1] in ('"', "[", "{"):
        s = v.strip()
        if s[:1] == '"':
            import json

            try:
                return json.loads(s)
            except ValueError:
                return v
        return loads_maybe(s)
    return v


def restate(a: dict[str, Any]) -> dict[str, Any]:
    """``a`` with standard keys added for the vendor keys it holds (``a`` if none)."""
    # Membership tests only (no scan of every key): this runs once per span.
    add: dict[str, Any] = {}
    if "langfuse.observation.type" in a or "langfuse.trace.tags" in a:
        _langfuse(a, add)
    if "mlflow.spanType" in a:
        _mlflow(a, add)
    if any(k in a for k in _TRACELOOP_KEYS):
        _traceloop(a, add)
    if not add:
        return a
    return {**add, **a}  # the span's own keys win


_TRACELOOP_KEYS = (
    "llm.request.type",
    "llm.request.model",
    "llm.response.model",
    "llm.usage.prompt_tokens",
    "llm.usage.completion_tokens",
    "llm.usage.total_tokens",
)


def _langfuse(a: dict[str, Any], add: dict[str, Any]) -> None:
    kind = str(a.get("langfuse.observation.type") or "").lower()
    if kind == "generation":
        add["__kind"] = "llm"
    elif kind == "embedding":
        add["__kind"] = "embedding"
    elif kind == "retriever":
        add["__kind"] = "retriever"
    elif kind:
        add["__kind"] = "other"
    model = a.get("langfuse.observation.model.name")
    if model:
        add["gen_ai.response.model"] = model
    usage = loads_maybe(a.get("langfuse.observation.usage_details"))
    if isinstance(usage, dict) and usage:
        from llmobs_cli.core.ingest.readers.langfuse import normalise_usage

        _tokens(normalise_usage(flatten_obj(usage)), add)
    cost = loads_maybe(a.get("langfuse.observation.cost_details"))
    if isinstance(cost, dict) and to_float(cost.get("total")) is not None:
        add["llm.cost.total"] = to_float(cost["total"])
    params = loads_maybe(a.get("langfuse.observation.model.parameters"))
    if isinstance(params, dict):
        add["llm.invocation_parameters"] = params
    inp = loads_maybe(a.get("langfuse.observation.input"))
    if isinstance(inp, list):
        add["gen_ai.input.messages"] = inp
    elif inp is not None:
        add["input.value"] = inp
    out = a.get("langfuse.observation.output")
    if out is not None:
        add["output.value"] = loads_maybe(out)
    first_token = json_value(a.get("langfuse.observation.completion_start_time"))
    if isinstance(first_token, str) and first_token:
        add["__first_token_time"] = first_token  # ISO time; TTFT is taken from the span start
    if str(a.get("langfuse.observation.level") or "").upper() == "ERROR":
        add["__error"] = a.get("langfuse.observation.status_message") or "error"
    tags = a.get("langfuse.trace.tags")
    if tags is not None:
        add["tag.tags"] = loads_maybe(tags)
    for src, dst in (
        ("langfuse.release", "service.version"),
        ("langfuse.environment", "deployment.environment"),
    ):
        if a.get(src) is not None:
            add[dst] = a[src]
    for k, v in a.items():
        for prefix in ("langfuse.trace.metadata.", "langfuse.observation.metadata."):
            if k.startswith(prefix):
                add["metadata." + k[len(prefix) :]] = loads_maybe(v)


def _tokens(usage: dict[str, int | None], add: dict[str, Any]) -> None:
    for field, key in (
        ("input_tokens", "gen_ai.usage.input_tokens"),
        ("output_tokens", "gen_ai.usage.output_tokens"),
        ("cached_tokens", "gen_ai.usage.cache_read.input_tokens"),
        ("cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens"),
        ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
    ):
        if usage.get(field) is not None:
            add[key] = usage[field]


_MLFLOW_KINDS = {
    "CHAT_MODEL": "llm",
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "RETRIEVER": "retriever",
}


def _mlflow(a: dict[str, Any], add: dict[str, Any]) -> None:
    kind = str(json_value(a.get("mlflow.spanType")) or "").upper()
    add["__kind"] = _MLFLOW_KINDS.get(kind, "other")
    if add["__kind"] != "llm":
        return
    inputs = json_value(a.get("mlflow.spanInputs"))
    outputs = json_value(a.get("mlflow.spanOutputs"))
    if isinstance(inputs, dict):
        if inputs.get("model"):
            add["gen_ai.request.model"] = inputs["model"]
        if isinstance(inputs.get("messages"), list):
            add["gen_ai.input.messages"] = inputs["messages"]
        params = {k: v for k, v in inputs.items() if k not in ("model", "messages")}
        if params:
            add["llm.invocation_parameters"] = params
    elif inputs is not None:
        add["input.value"] = inputs
    if isinstance(outputs, dict):
        if outputs.get("model"):
            add["gen_ai.response.model"] = outputs["model"]
        usage = outputs.get("usage")
        if isinstance(usage, dict):
            _openai_usage(usage, add)
    if outputs is not None:
        add["output.value"] = outputs
    tu = json_value(a.get("mlflow.chat.tokenUsage"))
    if isinstance(tu, dict):
        for src, dst in (
            ("input_tokens", "gen_ai.usage.input_tokens"),
            ("output_tokens", "gen_ai.usage.output_tokens"),
        ):
            if to_int(tu.get(src)) is not None:
                add[dst] = to_int(tu[src])


def _openai_usage(usage: dict[str, Any], add: dict[str, Any]) -> None:
    """An OpenAI (chat completions or responses) usage object: input includes cached."""
    f = flatten_obj(usage)
    pairs = (
        (("prompt_tokens", "input_tokens"), "gen_ai.usage.input_tokens"),
        (("completion_tokens", "output_tokens"), "gen_ai.usage.output_tokens"),
        (
            ("prompt_tokens_details.cached_tokens", "input_tokens_details.cached_tokens"),
            "gen_ai.usage.cache_read.input_tokens",
        ),
        (
            (
                "completion_tokens_details.reasoning_tokens",
                "output_tokens_details.reasoning_tokens",
            ),
            "gen_ai.usage.reasoning.output_tokens",
        ),
    )
    for srcs, dst in pairs:
        for src in srcs:
            if to_int(f.get(src)) is not None:
                add[dst] = to_int(f[src])
                break


def _traceloop(a: dict[str, Any], add: dict[str, Any]) -> None:
    for src, dst in (
        ("llm.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
        ("llm.usage.completion_tokens", "gen_ai.usage.output_tokens"),
        ("llm.usage.cache_read_input_tokens", "gen_ai.usage.cache_read.input_tokens"),
        ("llm.usage.cache_creation_input_tokens", "gen_ai.usage.cache_creation.input_tokens"),
        ("llm.usage.reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
        ("llm.request.model", "gen_ai.request.model"),
        ("llm.response.model", "gen_ai.response.model"),
        ("llm.vendor", "gen_ai.system"),
    ):
        if a.get(src) is not None:
            add[dst] = a[src]
    rtype = a.get("llm.request.type")
    if isinstance(rtype, str) and "gen_ai.operation.name" not in a:
        low = rtype.lower()
        if low in ("chat", "completion"):
            add["gen_ai.operation.name"] = "chat" if low == "chat" else "text_completion"
        elif low in ("embedding", "embeddings"):
            add["gen_ai.operation.name"] = "embeddings"
