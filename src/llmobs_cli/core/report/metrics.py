"""The report's metrics object: names, paths and how an aggregated row becomes one.

A leaf module (no Polars work, no imports from the report engine), so that the gates can
name metrics without importing the engine that evaluates them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llmobs_cli.core.record.jsonable import iso

QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)
TOKEN_KINDS = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
)

__all__ = [
    "QUANTILES",
    "TOKEN_KINDS",
    "flatten_metrics",
    "metric_paths",
    "metric_value",
    "to_metrics",
]


def _q(qv: float) -> str:
    return f"p{qv * 100:g}".replace(".", "_")


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or (isinstance(b, float) and math.isnan(b)):
        return None
    return a / b


def to_metrics(
    row: dict[str, Any], qs: Sequence[float], session_row: dict[str, Any] | None
) -> dict[str, Any]:
    """One aggregated row → the contract's metrics object M (plus extras)."""
    calls = row.get("calls") or 0.0
    sampled = int(row.get("sampled") or 0)
    w2 = row.get("_w2") or 0.0
    m: dict[str, Any] = {
        "sampled": sampled,
        "calls": calls,
        "n_eff": (calls * calls / w2) if w2 else 0.0,
    }
    for col in ("latency_ms", "ttft_ms"):
        got = row.get(f"{col}__q") or []
        d = {_q(q): (got[i] if i < len(got) else None) for i, q in enumerate(qs)}
        d["mean"] = _div(row.get(f"_{col}_wy"), row.get(f"_{col}_w"))
        m[col] = d
    for tok in TOKEN_KINDS:
        m[tok] = row.get(tok) or 0.0
    m["cache_hit_rate"] = (
        _div(row.get("_cached_hit"), row.get("input_tokens")) if row.get("_n_cached") else None
    )
    priced_calls = row.get("_priced_calls") or 0.0
    m["cost_usd"] = row.get("cost_usd") or 0.0
    m["cost_per_call_usd"] = _div(row.get("cost_usd"), priced_calls)
    m["cost_complete"] = not (row.get("unpriced_calls") or 0)
    m["unpriced_calls"] = row.get("unpriced_calls") or 0.0
    m["unpriced_sampled"] = int(row.get("unpriced_sampled") or 0)
    m["error_rate"] = _div(row.get("_errors"), calls)
    m["refusal_rate"] = _div(row.get("_refusals"), row.get("_ok"))
    m["citation_rate"] = _div(row.get("_cited"), row.get("_rag"))
    m["rag_calls"] = row.get("_rag") or 0.0
    if session_row is not None and session_row.get("sessions_sampled"):
        m["sessions"] = session_row.get("sessions")
        m["sessions_sampled"] = int(session_row.get("sessions_sampled") or 0)
        m["cost_per_session_usd"] = _div(row.get("_session_cost"), session_row.get("sessions"))
    else:
        m["sessions"] = None
        m["sessions_sampled"] = 0
        m["cost_per_session_usd"] = None
    m["first_timestamp"] = iso(row.get("_first"))
    m["last_timestamp"] = iso(row.get("_last"))
    return m


def flatten_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """``{"latency_ms": {"p50": 1}}`` → ``{"latency_ms.p50": 1}`` (numbers only)."""
    out: dict[str, Any] = {}
    for k, v in m.items():
        if k in ("key", "first_timestamp", "last_timestamp"):
            continue
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        elif isinstance(v, bool):
            out[k] = float(v)
        else:
            out[k] = v
    return out


def metric_value(m: dict[str, Any], path: str) -> Any:
    """``latency_ms.p99`` → the value in a metrics object; KeyError when unknown."""
    cur: Any = m
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def metric_paths(qs: Sequence[float] = QUANTILES) -> list[str]:
    """Every metric path a gate may name."""
    return list(flatten_metrics(to_metrics({}, qs, None)))
