"""Renderers of ``llmobs calls``: Rich table, JSON, CSV and Markdown.

The table keeps every number whole (``no_wrap``); only the excerpt — text — shrinks to
the width left, ending in ``…``. Full text is one ``llmobs show TRACE_ID`` away.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Group
from rich.text import Text

from llmobs_cli.core.explore.calls import CallsResult
from llmobs_cli.render.tables import Col, fitted_tables, human_ms, human_number, markdown_table


def _usd(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        return f"${x:.2g}" if abs(x) >= 1e-4 else f"${x:.1e}"
    return f"${x:,.2f}" if abs(x) < 1000 else f"${x:,.0f}"


def _tokens(r: dict[str, Any]) -> str:
    i, o = r.get("input_tokens"), r.get("output_tokens")
    if i is None and o is None:
        return "-"
    return f"{human_number(i)}→{human_number(o)}"


def _time(r: dict[str, Any]) -> str:
    ts = r.get("timestamp")
    return "-" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def _score(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _excerpt(r: dict[str, Any]) -> str:
    p = r.get("prompt_excerpt") or ""
    a = r.get("response_excerpt") or ""
    if p and a:
        return f"{p} ⇒ {a}"
    return p or a or "-"


def _extra(res: CallsResult) -> str | None:
    """The sort key's column when it is not one of the standard ones."""
    name = res.sort.field
    return name if name in res.calls.columns and name not in _STANDARD else None


_STANDARD = {
    "trace_id",
    "span_id",
    "timestamp",
    "route",
    "model",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "status",
    "sample_rate",
    "score",
    "evaluator",
    "explanation",
    "judgments",
    "spread",
    "flagged",
    "review",
    "prompt_excerpt",
    "response_excerpt",
}


def _fmt_value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if hasattr(v, "strftime"):
        return str(v.strftime("%Y-%m-%d %H:%M:%S"))
    return str(v)


def rows(res: CallsResult) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the listing (shared by the table and Markdown)."""
    headers = ["trace", "time", "route", "model", "latency", "tokens", "cost", "status"]
    extra = _extra(res)
    if res.judged:
        headers += ["score", "judge"]
    if extra:
        headers.append(extra)
    headers.append("prompt ⇒ response")
    out = []
    for r in res.calls.iter_rows(named=True):
        cells = [
            str(r["trace_id"]),
            _time(r),
            str(r.get("route") or "-"),
            str(r.get("model") or "-"),
            human_ms(r.get("latency_ms")),
            _tokens(r),
            _usd(r.get("cost_usd")),
            str(r.get("status") or "-"),
        ]
        if res.judged:
            cells += [_score(r.get("score")), _judge(r)]
        if extra:
            cells.append(_fmt_value(r.get(extra)))
        cells.append(_excerpt(r))
        out.append(cells)
    return headers, out


def _judge(r: dict[str, Any]) -> str:
    parts = [str(r.get("evaluator") or "-")]
    if (r.get("spread") or 0) >= 0.5:
        parts.append("disagree")
    if r.get("review"):
        parts.append("review")
    return " ".join(parts)


def _caption(res: CallsResult) -> str:
    shown = res.calls.height
    where = f" where {res.where}" if res.where else ""
    return (
        f"{shown} of {res.matched:,} matching call(s){where} (of {res.scanned:,} read), "
        f"by {res.sort.label()}. Full trace: llmobs show TRACE_ID TRACES..."
    )


def rich_calls(
    res: CallsResult,
    width: int = 100,
    *,
    wide: bool = False,
    only: list[str] | None = None,
) -> Group:
    """The listing fitted to ``width``: numbers whole, the id and the excerpt shortened."""
    headers, body = rows(res)
    if not body:
        return Group(Text("no call matches", style="yellow"))
    prio = {
        "trace": 0,
        "latency": 1,
        "score": 1,
        "cost": 2,
        "route": 2,
        "prompt ⇒ response": 3,
        "status": 4,
        "tokens": 4,
        "judge": 4,
        "time": 5,
        "model": 5,
    }
    cols: list[Col] = []
    for h in headers:
        if h == "trace":
            cols.append(Col(h, priority=0, flex=True, min_width=16, crop=True, style="bold"))
        elif h == "prompt ⇒ response":
            cols.append(Col(h, priority=3, flex=True, min_width=18, name="excerpt"))
        else:
            right = h in ("latency", "tokens", "cost", "score")
            cols.append(Col(h, justify="right" if right else "left", priority=prio.get(h, 1)))
    tables = fitted_tables(
        cols, body, width, caption=_caption(res), wide=wide, only=only, second_table=False
    )
    return Group(*tables)


def markdown_calls(res: CallsResult) -> str:
    headers, body = rows(res)
    return "\n".join(
        [f"### llmobs calls by {res.sort.label()}", "", _caption(res), "", ""]
    ) + markdown_table(headers, body)


def json_calls(res: CallsResult) -> str:
    return json.dumps(res.as_dict(), indent=2, allow_nan=False, ensure_ascii=False)


def csv_calls(res: CallsResult) -> str:
    recs = res.records()
    buf = io.StringIO()
    fields = list(res.calls.columns)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in recs:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()
