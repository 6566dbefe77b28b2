"""Small formatting and table helpers shared by the views (numbers, times, keys, cells)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# metric name in the page → path in a report metrics object (contract section 2).
_METRICS: dict[str, tuple[tuple[str, ...], ...]] = {
    "calls": (("calls",),),
    "sampled": (("sampled",),),
    "cost_usd": (("cost_usd",),),
    "cost_per_call_usd": (("cost_per_call_usd",),),
    "cache_hit_rate": (("cache_hit_rate",),),
    "error_rate": (("error_rate",),),
    "refusal_rate": (("refusal_rate",),),
    "input_tokens": (("input_tokens",),),
    "output_tokens": (("output_tokens",),),
    "cached_tokens": (("cached_tokens",),),
    "unpriced_calls": (("unpriced_calls",), ("unpriced",), ("unpriced", "calls")),
    "latency_p50": (("latency_ms", "p50"),),
    "latency_p95": (("latency_ms", "p95"),),
    "latency_p99": (("latency_ms", "p99"),),
    "ttft_p50": (("ttft_ms", "p50"),),
    "ttft_p95": (("ttft_ms", "p95"),),
    "ttft_p99": (("ttft_ms", "p99"),),
}

# --- helpers --------------------------------------------------------------------------------


def _get(d: Mapping[str, Any] | None, *paths: tuple[str, ...]) -> Any:
    for path in paths:
        cur: Any = d
        for p in path:
            if not isinstance(cur, Mapping) or p not in cur:
                cur = None
                break
            cur = cur[p]
        if cur is not None and not isinstance(cur, Mapping):
            return cur
    return None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def _x(ts: Any) -> str | None:
    """A time for Plotly: ``YYYY-MM-DD HH:MM:SS`` in UTC (Plotly has no time zones)."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        dt = ts
    else:
        try:
            dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _when(ts: Any) -> str:
    x = _x(ts)
    if x is None:
        return "-"
    return x[:-3] if not x.endswith("00:00:00") else x[:10]


def key_label(key: Any) -> str:
    """A group key ``{"route": "chat", "model": "x"}`` → ``chat · x`` (null → ``(none)``)."""
    if isinstance(key, Mapping):
        if not key:
            return "all"
        return " · ".join("(none)" if v is None else str(v) for v in key.values())
    return "(none)" if key is None else str(key)


def _metric(m: Mapping[str, Any] | None, name: str) -> float | None:
    return _num(_get(m, *_METRICS[name]))


def _cell(text: str, cls: str | None = None) -> str | dict[str, str]:
    return {"t": text, "c": cls} if cls else text


def _table(
    title: str,
    columns: Sequence[str],
    rows: list[list[Any]],
    *,
    num: Sequence[bool] | None = None,
    wrap: Sequence[bool] | None = None,
    empty: str = "nothing to show",
) -> dict[str, Any]:
    return {
        "title": title,
        "columns": list(columns),
        "rows": rows,
        "num": list(num) if num else [],
        "wrap": list(wrap) if wrap else [],
        "empty": empty,
    }


def _pvalue(p: Any) -> str:
    v = _num(p)
    if v is None:
        return "-"
    if v < 1e-10:
        return "<1e-10"
    return f"{v:.2g}" if v < 0.01 else f"{v:.3f}"


def _score(x: Any) -> str:
    v = _num(x)
    return "-" if v is None else f"{v:.3f}"


def _signed_pct(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == 0:
        return ""
    return f" ({(after - before) / abs(before) * 100:+.0f}%)"


def _score_ci(side: Mapping[str, Any]) -> str:
    lo, hi = _score(side.get("ci_low")), _score(side.get("ci_high"))
    return f"{_score(side.get('score'))} [{lo}, {hi}] n={side.get('judged', 0)}"


def _signed(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:+.{digits}f}"


def _window_text(window: Mapping[str, Any] | None) -> str:
    if not window:
        return ""
    return f"{_when(window.get('start'))} → {_when(window.get('end'))} UTC"


def exemplar_table(title: str, items: list[tuple[str, Any]], empty: str) -> dict[str, Any] | None:
    """A table of example calls: what they illustrate, the trace id, the value that picked
    them, an excerpt, and the ``llmobs show`` line to copy (all cells plain text)."""
    rows = []
    for label, ex in items:
        if not isinstance(ex, Mapping):
            continue
        value = ex.get("value")
        shown = _score(value) if isinstance(value, float) else ("-" if value is None else value)
        rows.append(
            [
                str(label),
                str(ex.get("trace_id") or "-"),
                str(shown),
                str(ex.get("excerpt") or ""),
                str(ex.get("show") or f"llmobs show {ex.get('trace_id')} TRACES..."),
            ]
        )
    if not rows:
        return None
    return _table(
        title,
        ["for", "trace", "value", "excerpt", "open it (copy)"],
        rows,
        num=[False, False, True, False, False],
        wrap=[False, False, False, True, True],
        empty=empty,
    )
