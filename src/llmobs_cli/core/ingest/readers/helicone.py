"""Helicone request exports → canonical records.

Input: ``HeliconeRequest`` rows as the Helicone export tool (``@helicone/export``: JSON,
JSONL, CSV) and the ``/v1/request/query-clickhouse`` API write them: ``request_id``,
``request_created_at``, ``response_created_at``, ``request_model``/``response_model``/
``model``, ``provider``, ``delay_ms``, ``time_to_first_token``, ``prompt_tokens``,
``completion_tokens``, ``prompt_cache_read_tokens``, ``prompt_cache_write_tokens``,
``cost`` (or ``costUSD``), ``response_status``, ``request_user_id``,
``request_properties``/``properties`` (``Helicone-Session-Id``, custom properties),
``request_body``/``response_body`` (OpenAI/Anthropic shapes).

Every request is an LLM call (one record). Token convention: Helicone reports Anthropic
``prompt_tokens`` without cache reads/writes (the provider's own counting) and OpenAI's with
them; canonical input includes them, so they are added for Anthropic, and whenever the
cache reads exceed the prompt count. The route is the ``--route-from`` property, else a
``Helicone-Property-Route``/``route`` property, else the request path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmobs_cli.core.ingest.readers import genai, values
from llmobs_cli.core.ingest.readers.base import RawRead, display_name
from llmobs_cli.core.ingest.readers.langfuse import _ns
from llmobs_cli.core.ingest.readers.rows import read_rows
from llmobs_cli.core.ingest.readers.values import loads_maybe, to_float, to_int


def _props(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("properties", "request_properties"):
        p = loads_maybe(r.get(key))
        if isinstance(p, dict):
            out.update(p)
    return out


def _prop(props: dict[str, Any], *names: str) -> Any:
    low = {k.lower(): v for k, v in props.items()}
    for n in names:
        for cand in (n, f"helicone-property-{n}", f"helicone-{n}"):
            if cand.lower() in low:
                return low[cand.lower()]
    return None


def record(r: dict[str, Any], route_from: str | None) -> dict[str, Any]:
    props = _props(r)
    start = _ns(r.get("request_created_at"))
    delay = to_float(r.get("delay_ms"))
    end = _ns(r.get("response_created_at"))
    latency = (
        delay
        if delay is not None
        else (None if start is None or end is None else (end - start) / 1e6)
    )
    body = loads_maybe(r.get("request_body")) or {}
    resp = loads_maybe(r.get("response_body")) or {}
    msgs = (
        values.message_list(body.get("messages"))
        if isinstance(body, dict) and body.get("messages")
        else None
    )
    system, prompt, msgs = values.split_messages(msgs)
    if isinstance(body, dict) and body.get("system") and not system:
        system = values.text_of(body["system"])
    if isinstance(body, dict) and prompt is None and body.get("prompt"):
        prompt = values.text_of(body["prompt"])
    response, finish = (None, None)
    if isinstance(resp, dict):
        if "choices" in resp:
            response, finish = values.output_text(resp["choices"])
            ch = resp["choices"][0] if resp["choices"] else {}
            finish = finish or (ch.get("finish_reason") if isinstance(ch, dict) else None)
        elif "content" in resp:  # Anthropic
            response = (
                values.only_text(resp["content"])
                if isinstance(resp["content"], list)
                else values.text_of(resp["content"])
            )
            finish = resp.get("stop_reason")
    provider = values.as_str(r.get("provider"))
    inp, out = to_int(r.get("prompt_tokens")), to_int(r.get("completion_tokens"))
    cached, write = (
        to_int(r.get("prompt_cache_read_tokens")),
        to_int(r.get("prompt_cache_write_tokens")),
    )
    anthropic = bool(provider and "anthropic" in provider.lower())
    if inp is not None and (anthropic or (cached or 0) > inp):
        inp += (cached or 0) + (write or 0)
    status_code = to_int(r.get("response_status"))
    error = None
    if status_code is not None and status_code >= 400:
        err = resp.get("error") if isinstance(resp, dict) else None
        error = (
            values.text_of(err.get("message") if isinstance(err, dict) else err)
            or f"HTTP {status_code}"
        )
    route = _prop(props, route_from) if route_from else None
    if route is None and route_from:
        route = r.get(route_from)
    route = route or _prop(props, "route") or r.get("request_path") or None
    params = (
        {
            k: v
            for k, v in body.items()
            if k
            in (
                "temperature",
                "top_p",
                "max_tokens",
                "max_completion_tokens",
                "seed",
                "stop",
                "presence_penalty",
                "frequency_penalty",
            )
        }
        if isinstance(body, dict)
        else {}
    )
    metadata = {k: v for k, v in props.items()}
    for k in (
        "request_path",
        "target_url",
        "country_code",
        "cache_reference_id",
        "prompt_id",
        "prompt_version",
        "response_status",
    ):
        if r.get(k) not in (None, ""):
            metadata.setdefault(f"helicone.{k}", r[k])
    model = (
        r.get("response_model")
        or r.get("model")
        or r.get("request_model")
        or (body.get("model") if isinstance(body, dict) else None)
    )
    ttft = to_float(r.get("time_to_first_token"))
    return {
        "trace_id": values.as_str(
            (_prop(props, "session-id", "session_id") and r.get("request_id"))
            or r.get("request_id")
        ),
        "span_id": values.as_str(r.get("request_id")),
        "parent_span_id": None,
        "session_id": values.as_str(_prop(props, "session-id", "session_id")),
        "user_id": values.as_str(
            r.get("request_user_id") or r.get("helicone_user") or _prop(props, "user-id")
        ),
        "timestamp": None if start is None else start // 1000,
        "end_time": None,
        "latency_ms": latency,
        "ttft_ms": ttft if ttft is not None and ttft > 0 else None,
        "route": values.as_str(route),
        "environment": values.as_str(_prop(props, "environment", "env")),
        "release": values.as_str(_prop(props, "release", "version")),
        "provider": provider.lower() if provider else None,
        "model": values.as_str(model),
        "params": json.dumps(params) if params else None,
        "system": system,
        "prompt": prompt,
        "messages": msgs,
        "retrieved": None,
        "response": response,
        "finish_reason": values.as_str(finish),
        "input_tokens": inp,
        "output_tokens": out,
        "cached_tokens": cached,
        "reasoning_tokens": None,
        "cache_write_tokens": write,
        "cost_usd": to_float(r.get("cost", r.get("costUSD"))),
        "status": "error" if error else "ok",
        "error": error,
        "metadata": json.dumps(metadata, default=str) if metadata else None,
        "tags": None,
    }


def read_helicone(path: Path, opts: Any) -> RawRead:
    name = display_name(path)
    rows, where, problems = read_rows(path, list_keys=("data", "requests"))
    recs = [record(r, getattr(opts, "route_from", None)) for r in rows]
    return RawRead(
        frame=genai.frame_from_records(recs),
        locate=lambda rr: [where[i] if 0 <= i < len(where) else name for i in rr],
        problems=problems,
        fmt="helicone",
    )


def sniff(path: Path, head: bytes) -> str | None:
    h = head[:65536]
    if (
        b"request_created_at" in h
        and (b"delay_ms" in h or b"request_id" in h)
        and b"prompt_tokens" in h
    ):
        return "helicone"
    return None
