"""LangSmith run exports → canonical records.

Input: runs as the LangSmith API/SDK return them (``Client.list_runs`` dumped to JSONL, a
JSON array, ``{"runs": [...]}``, or CSV/Parquet with the same columns): ``id``,
``trace_id``, ``parent_run_id``, ``name``, ``run_type``, ``start_time``, ``end_time``,
``status``, ``error``, ``inputs``, ``outputs``, ``extra`` (``metadata``,
``invocation_params``), ``tags``, ``prompt_tokens``, ``completion_tokens``,
``prompt_token_details``/``completion_token_details``, ``prompt_cost``,
``completion_cost``, ``total_cost``, ``first_token_time``.

Only ``run_type == "llm"`` runs become records (``embedding`` runs with
``include_embeddings``); the route is the name of the trace's root run (or
``--route-from KEY`` looked up in the run, its metadata, then the root's). LangSmith's
``prompt_tokens`` already include cache reads (LangChain's usage convention), which are
taken from ``prompt_token_details.cache_read``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.ingest.readers import genai, values
from llmobs_cli.core.ingest.readers.base import RawRead, display_name
from llmobs_cli.core.ingest.readers.langfuse import _ns
from llmobs_cli.core.ingest.readers.rows import read_rows
from llmobs_cli.core.ingest.readers.values import loads_maybe, to_float, to_int
from llmobs_cli.core.record.schema import ROW


def _meta(run: dict[str, Any]) -> dict[str, Any]:
    extra = loads_maybe(run.get("extra")) or {}
    meta = extra.get("metadata") if isinstance(extra, dict) else None
    m = loads_maybe(run.get("metadata")) or meta or {}
    return m if isinstance(m, dict) else {}


def _response(outputs: Any) -> tuple[str | None, str | None]:
    outputs = loads_maybe(outputs)
    if isinstance(outputs, dict):
        gens = outputs.get("generations")
        if isinstance(gens, list) and gens:
            g = gens[0][0] if isinstance(gens[0], list) and gens[0] else gens[0]
            if isinstance(g, dict):
                msg = g.get("message")
                if isinstance(msg, dict):
                    kw = msg.get("kwargs", msg)
                    text = values.text_of(kw.get("content"))
                else:
                    text = g.get("text")
                info = g.get("generation_info") or {}
                return text, info.get("finish_reason") if isinstance(info, dict) else None
        if "choices" in outputs or "output" in outputs or "content" in outputs:
            return values.output_text(outputs.get("choices", outputs.get("output", outputs)))
    return values.output_text(outputs)


def _messages(inputs: Any) -> list[dict[str, str | None]] | None:
    inputs = loads_maybe(inputs)
    if not isinstance(inputs, dict):
        return values.message_list(inputs)
    if "messages" in inputs:
        msgs = inputs["messages"]
        if isinstance(msgs, list) and msgs and isinstance(msgs[0], list):
            msgs = msgs[0]
        out = []
        for m in msgs or []:
            if isinstance(m, dict) and "kwargs" in m:  # serialized LangChain message
                kw = m["kwargs"]
                cls = (m.get("id") or [""])[-1]
                role = {
                    "SystemMessage": "system",
                    "HumanMessage": "user",
                    "AIMessage": "assistant",
                    "ToolMessage": "tool",
                }.get(cls, kw.get("type"))
                out.append({"role": role, "content": values.text_of(kw.get("content"))})
            else:
                out.extend(values.message_list([m]) or [])
        return out
    if "prompts" in inputs and isinstance(inputs["prompts"], list):
        return [{"role": "user", "content": values.text_of(p)} for p in inputs["prompts"]]
    if "input" in inputs:
        return values.message_list(inputs["input"])
    return None


def _usage(
    run: dict[str, Any], meta: dict[str, Any]
) -> tuple[int | None, int | None, dict[str, Any], dict[str, Any]]:
    """Token usage where the SDK leaves it when the server has not summed it yet:
    ``outputs.usage_metadata`` (LangChain's usage: input includes cache reads), the same in
    ``extra.metadata``, or ``outputs.llm_output.token_usage`` (OpenAI's names)."""
    outputs = loads_maybe(run.get("outputs"))
    outputs = outputs if isinstance(outputs, dict) else {}
    um = loads_maybe(outputs.get("usage_metadata")) or loads_maybe(meta.get("usage_metadata"))
    if isinstance(um, dict) and um:
        itd = um.get("input_token_details") or {}
        otd = um.get("output_token_details") or {}
        return (
            to_int(um.get("input_tokens")),
            to_int(um.get("output_tokens")),
            itd if isinstance(itd, dict) else {},
            otd if isinstance(otd, dict) else {},
        )
    llm_output = loads_maybe(outputs.get("llm_output"))
    tu = llm_output.get("token_usage") if isinstance(llm_output, dict) else None
    if isinstance(tu, dict) and tu:
        ptd = tu.get("prompt_tokens_details") or {}
        ctd = tu.get("completion_tokens_details") or {}
        return (
            to_int(tu.get("prompt_tokens")),
            to_int(tu.get("completion_tokens")),
            {"cache_read": ptd.get("cached_tokens")} if isinstance(ptd, dict) else {},
            {"reasoning": ctd.get("reasoning_tokens")} if isinstance(ctd, dict) else {},
        )
    return None, None, {}, {}


def record(
    run: dict[str, Any], root: dict[str, Any] | None, route_from: str | None
) -> dict[str, Any]:
    start, end = _ns(run.get("start_time")), _ns(run.get("end_time"))
    meta = _meta(run)
    extra = loads_maybe(run.get("extra")) or {}
    inv = extra.get("invocation_params") if isinstance(extra, dict) else None
    inv = inv if isinstance(inv, dict) else {}
    system, prompt, msgs = values.split_messages(_messages(run.get("inputs")))
    response, finish = _response(run.get("outputs"))
    ptd = loads_maybe(run.get("prompt_token_details")) or {}
    ctd = loads_maybe(run.get("completion_token_details")) or {}
    inp, out = to_int(run.get("prompt_tokens")), to_int(run.get("completion_tokens"))
    if inp is None and out is None:
        inp, out, ptd, ctd = _usage(run, meta)
    cached = to_int(ptd.get("cache_read")) if isinstance(ptd, dict) else None
    cache_write = (
        to_int(ptd.get("cache_creation", ptd.get("cache_write"))) if isinstance(ptd, dict) else None
    )
    if cached is not None and inp is not None and cached > inp:
        inp += cached + (cache_write or 0)
    cost = to_float(run.get("total_cost"))
    if cost is None and (
        run.get("prompt_cost") is not None or run.get("completion_cost") is not None
    ):
        cost = (to_float(run.get("prompt_cost")) or 0.0) + (
            to_float(run.get("completion_cost")) or 0.0
        )
    ftt = _ns(run.get("first_token_time"))
    status = str(run.get("status") or ("error" if run.get("error") else "success")).lower()
    route = (root or run).get("name")
    if route_from:
        v = run.get(route_from, meta.get(route_from.removeprefix("metadata.")))
        if v is None and root is not None:
            v = root.get(route_from, _meta(root).get(route_from.removeprefix("metadata.")))
        route = v if v is not None else route
    tags = loads_maybe(run.get("tags"))
    params = {k: v for k, v in inv.items() if k not in ("model", "model_name", "messages", "_type")}
    metadata = dict(meta)
    metadata.setdefault("langsmith.run_name", run.get("name"))
    if run.get("session_id"):
        metadata.setdefault("langsmith.project_id", run.get("session_id"))
    return {
        "trace_id": values.as_str(run.get("trace_id") or run.get("id")),
        "span_id": values.as_str(run.get("id")),
        "parent_span_id": values.as_str(run.get("parent_run_id")),
        "session_id": values.as_str(
            meta.get("thread_id") or meta.get("session_id") or meta.get("conversation_id")
        ),
        "user_id": values.as_str(meta.get("user_id")),
        "timestamp": None if start is None else start // 1000,
        "end_time": None if end is None else end // 1000,
        "latency_ms": None if start is None or end is None else (end - start) / 1e6,
        "ttft_ms": None if ftt is None or start is None else (ftt - start) / 1e6,
        "route": values.as_str(route),
        "environment": values.as_str(meta.get("environment") or meta.get("LANGCHAIN_ENV")),
        "release": values.as_str(meta.get("revision_id") or meta.get("release")),
        "provider": values.as_str(meta.get("ls_provider")),
        "model": values.as_str(
            meta.get("ls_model_name")
            or inv.get("model")
            or inv.get("model_name")
            or _response_model(run.get("outputs"))
            or (genai.UNKNOWN_MODEL if status == "error" else None)
        ),
        "params": json.dumps(params, default=str) if params else None,
        "system": system,
        "prompt": prompt,
        "messages": msgs,
        "retrieved": None,
        "response": response,
        "finish_reason": values.as_str(finish),
        "input_tokens": inp,
        "output_tokens": out,
        "cached_tokens": cached,
        "reasoning_tokens": to_int(ctd.get("reasoning")) if isinstance(ctd, dict) else None,
        "cache_write_tokens": cache_write,
        "cost_usd": cost,
        "status": "error" if status == "error" else "ok",
        "error": values.as_str(run.get("error")),
        "metadata": json.dumps(metadata, default=str) if metadata else None,
        "tags": [str(t) for t in tags] if isinstance(tags, list) and tags else None,
    }


def _response_model(outputs: Any) -> Any:
    outputs = loads_maybe(outputs)
    if isinstance(outputs, dict):
        llm_output = outputs.get("llm_output")
        if isinstance(llm_output, dict) and llm_output.get("model_name"):
            return llm_output["model_name"]
        return outputs.get("model")
    return None


def merge_batches(
    rows: list[dict[str, Any]], where: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Runs as the SDK sends them put together: a ``post`` creates a run, a later
    ``patch`` (same ``id``) adds its outputs, end time and error. Batched bodies
    ``{"post": [...], "patch": [...]}`` (one per line or an array of them) and single
    run payloads alike; a run stays where its ``post`` was."""
    if not any("post" in r or "patch" in r for r in rows):
        return rows, where
    runs: dict[str, dict[str, Any]] = {}
    locs: dict[str, str] = {}
    for r, w in zip(rows, where, strict=True):
        if "post" not in r and "patch" not in r:
            key = str(r.get("id"))
            runs.setdefault(key, {}).update(r)
            locs.setdefault(key, w)
            continue
        for op in ("post", "patch"):
            runs_of_op = r.get(op)
            for run in runs_of_op if isinstance(runs_of_op, list) else []:
                if not isinstance(run, dict):
                    continue
                key = str(run.get("id"))
                merged = runs.setdefault(key, {})
                merged.update({k: v for k, v in run.items() if v is not None or k not in merged})
                locs.setdefault(key, w)
    return list(runs.values()), [locs[k] for k in runs]


def read_langsmith(path: Path, opts: Any) -> RawRead:
    name = display_name(path)
    rows, where, problems = read_rows(path, list_keys=("runs", "data"))
    rows, where = merge_batches(rows, where)
    by_id = {str(r.get("id")): r for r in rows}
    roots = {}
    for r in rows:
        if not r.get("parent_run_id"):
            roots[str(r.get("trace_id") or r.get("id"))] = r
    kinds = {"llm"} | ({"embedding"} if getattr(opts, "include_embeddings", False) else set())
    recs, locs = [], []
    for r, w in zip(rows, where, strict=True):
        if str(r.get("run_type", "")).lower() not in kinds:
            continue
        root = roots.get(str(r.get("trace_id") or r.get("id")))
        if root is None and r.get("parent_run_id") in by_id:
            root = by_id[r["parent_run_id"]]
        recs.append(record(r, root, getattr(opts, "route_from", None)))
        locs.append(w)
    frame, wrappers = genai.leaf_calls(genai.frame_from_records(recs))
    if wrappers:
        locs = [locs[i] for i in frame[ROW]]
        frame = frame.drop(ROW).with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    return RawRead(
        frame=frame,
        locate=lambda rr: [locs[i] if 0 <= i < len(locs) else name for i in rr],
        problems=problems,
        fmt="langsmith",
        note=None if recs else f"{len(rows)} run(s), none with run_type llm",
        tolerated={"LLM wrapper run(s) not counted: their LLM child carries the usage": wrappers}
        if wrappers
        else {},
    )


def sniff(path: Path, head: bytes) -> str | None:
    h = head[:65536]
    if b'"run_type"' in h and (
        b'"dotted_order"' in h or b'"parent_run_id"' in h or b'"inputs"' in h
    ):
        return "langsmith"
    first = h.split(b"\n", 1)[0]
    if (
        b"run_type" in first
        and b"parent_run_id" in first
        and not first.lstrip().startswith((b"{", b"["))
    ):
        return "langsmith"
    return None
